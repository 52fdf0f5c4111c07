//! Secure aggregation against the plaintext sum and mean: the library API (weights, clip,
//! both rings), the traffic against the protocol's closed form, the refusals, the parties'
//! minimum rule with inputters that do not submit, and a party's view against the inputs;
//! under both protocols (ABY3's rotating pairs, Pond's two servers).

mod common;

use common::random;
use ndarray::{ArrayD, IxDyn};
use std::sync::{Arc, Mutex};
use tfe::aggregate::{self, Ring, Round};
use tfe::mpc::Protocol;
use tfe::mpc::hooks::{self, Controls, Fault};
use tfe::mpc::run_local_roles;
use tfe::net::local::LocalTransport;
use tfe::net::{Role, Transport, tap::Tap};
use tfe::serve::{AggregateOp, Aggregation, AggregationError};

/// The plaintext weighted sum in f64.
fn plain_sum(inputs: &[ArrayD<f32>], weights: &[f64]) -> ArrayD<f64> {
    let mut sum = ArrayD::<f64>::zeros(inputs[0].raw_dim());
    for (x, w) in inputs.iter().zip(weights) {
        sum.zip_mut_with(x, |s, &v| *s += w * v as f64);
    }
    sum
}

fn max_err(got: &ArrayD<f32>, want: &ArrayD<f64>) -> f64 {
    got.iter()
        .zip(want.iter())
        .map(|(&g, &w)| (g as f64 - w).abs())
        .fold(0.0, f64::max)
}

fn inputs(n: usize, shape: &[usize], scale: f32) -> Vec<ArrayD<f32>> {
    (0..n)
        .map(|k| random(shape, 100 + k as u64, scale))
        .collect()
}

const PROTOCOLS: [Protocol; 2] = [Protocol::Aby3, Protocol::Pond];

/// Runs `body` while no other test of this file runs: the security test switches a mask
/// off for every inputter in the process.
fn in_turn(body: impl FnOnce()) {
    hooks::with(Controls::default(), body)
}

#[test]
fn mean_of_five_matches_the_plaintext_mean_in_the_32_bit_ring() {
    in_turn(|| {
        for protocol in PROTOCOLS {
            mean_of_five(protocol);
        }
    });
}

fn mean_of_five(protocol: Protocol) {
    let xs = inputs(5, &[3, 7], 10.0);
    let got = Aggregation {
        protocol,
        ..Aggregation::new(AggregateOp::Mean)
    }
    .run(&xs)
    .unwrap();
    let want = plain_sum(&xs, &[0.2; 5]);
    // Each value is rounded to 2^-17; the mean of such errors is no larger, plus f32 output.
    assert!(
        max_err(&got.values, &want) < 1.6e-5,
        "{}",
        max_err(&got.values, &want)
    );
    assert_eq!(got.values.shape(), &[3, 7]);
    assert_eq!((got.included, got.ring), (5, Ring::Z32));
    assert_eq!(
        got.traffic, got.estimate,
        "metered traffic vs the closed form"
    );
    assert_eq!(got.traffic.rounds, 1);
    // 21 values in 11 words per inputter, and its two key words; the parties' bitmaps and
    // the terms of those holding shares (three, or Pond's two servers): 3 x 2 x 1 +
    // holders x (1 + 11) words, after their key agreement (3 x 2 words).
    let holders = protocol.holders() as u64;
    assert_eq!(
        got.traffic.bytes_sent,
        8 * (5 * (11 + 2) + 6 + holders * 12 + 6),
        "{protocol:?}"
    );
}

#[test]
fn weighted_sums_and_means_match_the_plaintext_ones() {
    in_turn(|| {
        for protocol in PROTOCOLS {
            weighted(protocol);
        }
    });
}

fn weighted(protocol: Protocol) {
    let xs = inputs(3, &[50], 4.0);
    // Integer weights are applied exactly.
    let weights = vec![1.0, 2.0, 3.0];
    let agg = Aggregation {
        weights: Some(weights.clone()),
        protocol,
        ..Aggregation::new(AggregateOp::Sum)
    };
    let got = agg.run(&xs).unwrap();
    let want = plain_sum(&xs, &weights);
    assert!(max_err(&got.values, &want) < 6.0 * 2f64.powi(-17) + 1e-5);
    let got = Aggregation {
        op: AggregateOp::Mean,
        ..agg
    }
    .run(&xs)
    .unwrap();
    let want = want.mapv(|v| v / 6.0);
    assert!(max_err(&got.values, &want) < 2e-5);
    // Fractional weights are scaled so the largest is 2^16 and rounded: each off by at most
    // 1.5 x 2^-17 here, times |x| <= 4, over three inputs.
    let weights = vec![0.5, 0.25, 1.5];
    let got = Aggregation {
        weights: Some(weights.clone()),
        protocol,
        ..Aggregation::new(AggregateOp::Sum)
    }
    .run(&xs)
    .unwrap();
    let want = plain_sum(&xs, &weights);
    let err = max_err(&got.values, &want);
    assert!(err < 3.0 * 4.0 * 1.5 * 2f64.powi(-17) + 1e-4, "{err}");
    assert!(err > 0.0 || got.values.iter().all(|v| *v == 0.0));
}

#[test]
fn large_values_take_the_64_bit_ring_and_clipping_applies() {
    in_turn(|| {
        let xs = inputs(4, &[20], 5e5);
        let got = Aggregation::new(AggregateOp::Sum).run(&xs).unwrap();
        assert_eq!(got.ring, Ring::Z64);
        let want = plain_sum(&xs, &[1.0; 4]);
        // f32 output of sums up to 2e6: one ulp is 0.125.
        assert!(max_err(&got.values, &want) < 0.25);
        assert_eq!(got.traffic, got.estimate);
        let clipped = Aggregation {
            clip: Some(1.0),
            ..Aggregation::new(AggregateOp::Mean)
        }
        .run(&xs)
        .unwrap();
        assert_eq!(clipped.ring, Ring::Z32);
        let xs_clipped: Vec<_> = xs.iter().map(|x| x.mapv(|v| v.clamp(-1.0, 1.0))).collect();
        let want = plain_sum(&xs_clipped, &[0.25; 4]);
        assert!(max_err(&clipped.values, &want) < 1.6e-5);
    });
}

#[test]
fn refusals_say_why() {
    in_turn(|| {
        let xs = inputs(3, &[4], 1.0);
        let err = |agg: &Aggregation, xs: &[ArrayD<f32>]| -> String {
            let e = agg.run(xs).err().expect("refused");
            assert!(e.downcast_ref::<AggregationError>().is_some(), "{e}");
            e.to_string()
        };
        let mean = Aggregation::new(AggregateOp::Mean);
        let e = err(
            &Aggregation {
                min_inputs: 4,
                ..mean.clone()
            },
            &xs,
        );
        assert!(
            e.contains("3 input(s) given, fewer than the minimum of 4"),
            "{e}"
        );
        let mut bad = xs.clone();
        bad[1] = random(&[5], 1, 1.0);
        let e = err(&mean, &bad);
        assert!(e.contains("input 1 has shape [5]"), "{e}");
        bad[1] = xs[1].clone();
        bad[2][[3]] = f32::INFINITY;
        let e = err(&mean, &bad);
        assert!(e.contains("input 2: element 3 is inf"), "{e}");
        bad[2][[3]] = 1e14;
        let e = err(&mean, &bad);
        assert!(
            e.contains("could overflow") && e.contains("must stay below 2^63"),
            "{e}"
        );
        let e = err(
            &Aggregation {
                weights: Some(vec![1.0, 2.0]),
                ..mean.clone()
            },
            &xs,
        );
        assert!(e.contains("2 weight(s) given for 3 input(s)"), "{e}");
        let e = err(
            &Aggregation {
                clip: Some(-1.0),
                ..mean
            },
            &xs,
        );
        assert!(e.contains("--clip must be a positive"), "{e}");
    });
}

/// Runs the protocol directly: inputter k submits its vector when `submits[k]`, only its key
/// when `Some(false)`, nothing when `None`; returns the receiver's result or the failure.
fn round_with(
    round: &Round,
    xs: &[Vec<u64>],
    submits: &[Option<bool>],
) -> anyhow::Result<aggregate::Revealed> {
    let mut roles = round.inputters.clone();
    roles.push(Role::Receiver);
    let party = |p: &mut tfe::mpc::Party| {
        let pieces = aggregate::collect(p, round)?;
        aggregate::finish(p, round, pieces, Role::Receiver)
    };
    let (_, revealed) = run_local_roles(
        &|e| Box::new(e),
        round.protocol,
        &roles,
        party,
        |mut ends| {
            let mut receiver = ends.pop().unwrap();
            for (k, mut end) in ends.into_iter().enumerate() {
                match submits[k] {
                    Some(true) => aggregate::submit(&mut end, round, k, &xs[k])?,
                    Some(false) => {
                        let key = [7u64, 9];
                        let mask_at = aggregate::holders(round.protocol, k).0;
                        end.send(Role::Party(mask_at as u8), &key)?
                    }
                    None => {}
                }
            }
            aggregate::receive(&mut receiver, round)
        },
    )?;
    Ok(revealed)
}

#[test]
fn the_parties_enforce_the_minimum_and_leave_out_partial_submissions() {
    in_turn(|| {
        for protocol in PROTOCOLS {
            minimum(protocol);
        }
    });
}

fn minimum(protocol: Protocol) {
    let xs: Vec<Vec<u64>> = (0..4)
        .map(|k| (0..6).map(|i| (i * 10 + k) as u64).collect())
        .collect();
    let round = Round {
        inputters: (0..4).map(Role::Inputter).collect(),
        weights: vec![1, 1, 1, 1],
        len: 6,
        min_inputs: 2,
        ring: Ring::Z32,
        protocol,
    };
    let got = round_with(&round, &xs, &[Some(true), Some(false), None, Some(true)]).unwrap();
    assert_eq!(got.included, [true, false, false, true]);
    let want: Vec<i64> = (0..6).map(|i| 2 * i * 10 + 3).collect();
    assert_eq!(got.sum, want);
    let strict = Round {
        min_inputs: 3,
        ..round.clone()
    };
    let e = round_with(&strict, &xs, &[Some(true), Some(false), None, Some(true)])
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("only 2 of the round's 4 inputters submitted, fewer than its minimum of 3"),
        "{e}"
    );
    // Negative values wrap and come back signed in both rings.
    for ring in [Ring::Z32, Ring::Z64] {
        let neg: Vec<Vec<u64>> = xs
            .iter()
            .map(|x| x.iter().map(|&v| (-(v as i64) - 1) as u64).collect())
            .collect();
        let r = Round {
            ring,
            ..round.clone()
        };
        let got = round_with(&r, &neg, &[Some(true); 4]).unwrap();
        let want: Vec<i64> = (0..6).map(|i| -(4 * i * 10 + 6) - 4).collect();
        assert_eq!(got.sum, want, "{ring:?}");
    }
}

const RUNS: usize = 200;
/// As in tests/security.rs: the largest |count_a - count_b| / sqrt(RUNS / 2) allowed.
const MAX_Z: f64 = 6.5;

/// Every word `role` receives in one aggregation of `xs` under `protocol`.
fn view_of(protocol: Protocol, role: Role, xs: &[ArrayD<f32>]) -> Vec<u64> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let wrap = move |end: LocalTransport| -> Box<dyn Transport> {
        if end.me() == role {
            let sink = sink.clone();
            Box::new(Tap::new(end, move |_from, words: &[u64]| {
                sink.lock().unwrap().extend_from_slice(words)
            }))
        } else {
            Box::new(end)
        }
    };
    let agg = Aggregation {
        clip: Some(8.0),
        protocol,
        ..Aggregation::new(AggregateOp::Sum)
    };
    agg.run_wrapped(xs, &wrap).unwrap();
    seen.lock().unwrap().clone()
}

/// The largest z-score of a difference in how often a bit of the view is set.
fn worst_z(view: impl Fn(&[ArrayD<f32>]) -> Vec<u64>, a: &[ArrayD<f32>], b: &[ArrayD<f32>]) -> f64 {
    let counts = |xs: &[ArrayD<f32>]| {
        let mut counts: Vec<u32> = vec![];
        for _ in 0..RUNS {
            let v = view(xs);
            counts.resize(v.len() * 64, 0);
            for (p, w) in v.iter().enumerate() {
                for bit in 0..64 {
                    counts[p * 64 + bit] += ((w >> bit) & 1) as u32;
                }
            }
        }
        counts
    };
    let (ca, cb) = (counts(a), counts(b));
    assert_eq!(
        ca.len(),
        cb.len(),
        "the view's length must not depend on the inputs"
    );
    let scale = (RUNS as f64 / 2.0).sqrt();
    ca.iter()
        .zip(&cb)
        .map(|(&x, &y)| (x as f64 - y as f64).abs() / scale)
        .fold(0.0, f64::max)
}

#[test]
fn each_party_view_is_independent_of_the_inputs() {
    let a = inputs(4, &[16], 0.5);
    let b: Vec<ArrayD<f32>> = (0..4)
        .map(|k| {
            ArrayD::from_shape_fn(
                IxDyn(&[16]),
                |i| if (i[0] + k) % 3 == 0 { 7.25 } else { -6.5 },
            )
        })
        .collect();
    for protocol in PROTOCOLS {
        for p in 0..3 {
            let view = |xs: &[ArrayD<f32>]| view_of(protocol, Role::Party(p), xs);
            let z = worst_z(view, &a, &b);
            assert!(
                z < MAX_Z,
                "{protocol:?}: party {p}'s view depends on the inputs (z = {z:.1})"
            );
        }
        // The check can fail: the sum of the receiver's terms is the result itself, and
        // without the inputters' masks the parties holding the masked vectors see them.
        let holders = protocol.holders();
        let sum_of_terms = |xs: &[ArrayD<f32>]| {
            let v = view_of(protocol, Role::Receiver, xs);
            let part = v.len() / holders;
            (0..part)
                .map(|i| (0..holders).fold(0u64, |s, h| s.wrapping_add(v[h * part + i])))
                .collect()
        };
        assert!(worst_z(sum_of_terms, &a, &b) > 15.0, "{protocol:?}");
        let unmasked = Controls {
            fault: Some(Fault::UnmaskedPiece),
            ..Controls::default()
        };
        let z = hooks::with(unmasked, || {
            worst_z(|xs| view_of(protocol, Role::Party(1), xs), &a, &b)
        });
        assert!(z > 15.0, "{protocol:?}: z = {z:.1} without the masks");
    }
}
