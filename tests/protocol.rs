//! The protocol primitives against their plaintext definitions, run on three real parties.

use ndarray::{ArrayD, IxDyn};
use tfe::mpc::Protocol;
use tfe::mpc::cost::Cost;
use tfe::mpc::share::{Dealer, recv_revealed, recv_secret, reveal_to};
use tfe::mpc::{ArithShare, Party, arith::product_term, run_local};
use tfe::net::Role;
use tfe::tensor::{Elem, broadcast::zip_with};

fn vector(values: Vec<u64>) -> ArrayD<u64> {
    ArrayD::from_shape_vec(IxDyn(&[values.len()]), values).unwrap()
}

/// Shares `inputs` from the client, runs `f` on the parties, and reveals its result.
fn run(
    inputs: Vec<ArrayD<u64>>,
    f: impl Fn(&mut Party, Vec<ArithShare>) -> anyhow::Result<ArithShare> + Sync,
) -> ArrayD<u64> {
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|x| x.shape().to_vec()).collect();
    let out_shape = std::sync::Mutex::new(None);
    let (_, out) = run_local(
        |party| {
            let shares = shapes
                .iter()
                .map(|s| recv_secret(party, Role::Client, s))
                .collect::<anyhow::Result<Vec<_>>>()?;
            let y = f(party, shares)?;
            *out_shape.lock().unwrap() = Some(y.shape().to_vec());
            reveal_to(party, Role::Client, &y)
        },
        |client, _owner| {
            let mut dealer = Dealer::from_os(Protocol::Aby3)?;
            for x in &inputs {
                dealer.send_secret(client, x)?;
            }
            // The parties' result shape is the input shape in these tests.
            recv_revealed(client, Protocol::Aby3, &shapes[0])
        },
    )
    .unwrap();
    out
}

#[test]
fn reshare_of_a_product_is_the_product() {
    let x = vector(vec![3, u64::MAX, 1 << 40, 0, 17]);
    let y = vector(vec![5, 2, 1 << 30, 9, u64::MAX - 3]);
    let got = run(vec![x.clone(), y.clone()], |p, s| {
        let term = product_term(&s[0], &s[1], |a, b| {
            zip_with(&a.view(), &b.view(), |x, y| x.mul(y))
        })?;
        p.reshare(&term)
    });
    let expect: Vec<u64> = x
        .iter()
        .zip(y.iter())
        .map(|(a, b)| a.wrapping_mul(*b))
        .collect();
    assert_eq!(got, vector(expect));
}

/// `count` values uniform over [-2^62, 2^62) from a fixed seed (an LCG: reproducible).
fn spread(seed: u64, count: usize) -> impl Iterator<Item = i64> {
    std::iter::successors(Some(seed), |s| {
        Some(
            s.wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407),
        )
    })
    .skip(1)
    .take(count)
    .map(|s| (s as i64) >> 2)
}

#[test]
fn truncation_is_within_one_ulp_across_the_range() {
    let f = 16;
    let mut values: Vec<i64> = vec![
        0,
        1,
        -1,
        65535,
        65536,
        -65536,
        -65537,
        (1 << 62) - 1,
        -(1 << 62),
        123456789,
        -987654321,
    ];
    values.extend(spread(0x1234_5678_9abc_def0, 2000));
    let x = vector(values.iter().map(|&v| v as u64).collect());
    let got = run(vec![x], |p, s| p.truncate(&s[0].cur, f));
    for (v, g) in values.iter().zip(got.iter()) {
        let exact = v >> f;
        let diff = (*g as i64).wrapping_sub(exact);
        assert!(
            diff == 0 || diff == 1,
            "trunc({v}) = {} expected {exact} or +1",
            *g as i64
        );
    }
}

#[test]
fn relu_is_exact_at_the_edges() {
    let values: Vec<i64> = vec![
        0,
        1,
        -1,
        2,
        -2,
        i64::MAX,
        i64::MIN + 1,
        1 << 62,
        -(1 << 62),
        65536,
        -65536,
        77,
        -77,
        1 << 47,
        -(1 << 47),
    ];
    // more than 64 elements, so that packed bits span several words
    let values: Vec<i64> = values
        .iter()
        .cycle()
        .take(200)
        .enumerate()
        .map(|(i, v)| v.wrapping_add(i as i64 / 15))
        .collect();
    let x = vector(values.iter().map(|&v| v as u64).collect());
    let got = run(vec![x], |p, s| p.relu(&s[0], 64));
    for (v, g) in values.iter().zip(got.iter()) {
        assert_eq!(*g as i64, (*v).max(0), "relu({v})");
    }
}

/// A ReLU folded into a truncation (the comparison reads its first-round terms, its second
/// round rides the comparison's first) is the ReLU of the truncation, whichever party deals.
#[test]
fn relu_of_a_pending_truncation_is_the_relu_of_the_truncation() {
    let f = 16;
    let mut values: Vec<i64> = vec![0, 1, -1, 65535, 65536, -65536, -65537, (1 << 62) - 1];
    values.push(-(1 << 62));
    values.extend(spread(0x0bad_cafe_dead_beef, 300));
    let x = vector(values.iter().map(|&v| v as u64).collect());
    for before in 0..3 {
        let got = run(vec![x.clone()], |p, s| {
            // Earlier truncations rotate the dealer.
            for _ in 0..before {
                p.truncate(&s[0].cur, f)?;
            }
            let pending = p.truncate_open(&s[0].cur, f)?;
            p.relu_pending(&pending, 64 - f)
        });
        for (v, g) in values.iter().zip(got.iter()) {
            let exact = v >> f;
            let g = *g as i64;
            assert!(
                g == exact.max(0) || g == (exact + 1).max(0),
                "relu(trunc({v})) = {g}, expected {} or {} (dealer {before})",
                exact.max(0),
                (exact + 1).max(0)
            );
        }
    }
}

/// A comparison of `width` bits is exact for every |x| < 2^(width - 1), whatever lies above.
#[test]
fn narrow_comparisons_are_exact_within_their_range() {
    for width in [48u32, 33, 20, 18, 17, 6, 5, 2] {
        let limit = 1i64 << (width - 1);
        let mut values: Vec<i64> = vec![0, 1, -1, limit - 1, -limit + 1, limit / 2, -limit / 2];
        let mut state = 0x0bad_5eed_u64 + width as u64;
        for _ in 0..300 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            values.push((state as i64) % limit);
        }
        let x = vector(values.iter().map(|&v| v as u64).collect());
        // The comparison's dealer rotates with the call count: each party plays each part.
        for skip in 0..3 {
            let got = run(vec![x.clone()], |p, s| {
                for _ in 0..skip {
                    p.begin_call();
                }
                p.relu(&s[0], width)
            });
            for (v, g) in values.iter().zip(got.iter()) {
                assert_eq!(
                    *g as i64,
                    (*v).max(0),
                    "relu({v}) at width {width}, skip {skip}"
                );
            }
        }
    }
}

#[test]
fn gate_applies_one_comparison_to_several_values() {
    let xs: Vec<i64> = (0..150).map(|i| (i as i64 - 75) * 1_000_003).collect();
    let x = vector(xs.iter().map(|&v| v as u64).collect());
    let y = vector((0..150u64).map(|i| i * 7 + 1).collect());
    let got = run(vec![x, y.clone()], |p, s| {
        Ok(p.gate(&s[0], &[s[1].clone(), s[0].clone()], 64)?.remove(0))
    });
    for (i, (&v, g)) in xs.iter().zip(got.iter()).enumerate() {
        assert_eq!(*g, if v >= 0 { y[i] } else { 0 }, "gate at {v}");
    }
    let got = run(
        vec![vector(xs.iter().map(|&v| v as u64).collect())],
        |p, s| Ok(p.gate(&s[0], &[s[0].clone(), s[0].clone()], 48)?.remove(1)),
    );
    for (&v, g) in xs.iter().zip(got.iter()) {
        assert_eq!(*g as i64, v.max(0), "second gated value at {v}");
    }
}

#[test]
fn msb_onehot_marks_the_top_bit() {
    let values: Vec<u64> = vec![
        1,
        2,
        3,
        4,
        5,
        255,
        256,
        65535,
        65536,
        1 << 40,
        (1 << 45) + 12345,
        7,
        0,
    ];
    let width = 46u32;
    let got = run(vec![vector(values.clone())], |p, s| {
        let onehot = p.msb_onehot(&s[0], width)?;
        // Reveal sum_i h_i * (i + 1): the top bit's position plus one (0 for x = 0).
        let weights: Vec<u64> = (1..=width as u64).collect();
        let reduce = |a: &ndarray::ArrayD<u64>| {
            let n = a.shape()[1];
            ndarray::ArrayD::from_shape_fn(IxDyn(&[n]), |k| {
                (0..width as usize).fold(0u64, |acc, i| {
                    acc.wrapping_add(a[[i, k[0]]].wrapping_mul(weights[i]))
                })
            })
        };
        Ok(ArithShare {
            cur: reduce(&onehot.cur),
            next: reduce(&onehot.next),
        })
    });
    for (&v, g) in values.iter().zip(got.iter()) {
        let expect = if v == 0 {
            0
        } else {
            64 - v.leading_zeros() as u64
        };
        assert_eq!(*g, expect, "msb position of {v}");
    }
}

/// The words all parties send and the rounds a call takes, metered on the real transport.
fn metered(n: usize, f: impl Fn(&mut Party, &ArithShare) -> anyhow::Result<()> + Sync) -> Cost {
    let x = vector((0..n as u64).map(|i| i.wrapping_mul(0x9e37_79b9)).collect());
    let (views, ()) = run_local(
        |party| {
            let share = recv_secret(party, Role::Client, x.shape())?;
            let before = party.stats();
            f(party, &share)?;
            Ok(party.stats() - before)
        },
        |client, _owner| Dealer::from_os(Protocol::Aby3)?.send_secret(client, &x),
    )
    .unwrap();
    Cost {
        words: views.iter().map(|s| s.bytes_sent / 8).sum(),
        rounds: views.iter().map(|s| s.rounds).max().unwrap(),
    }
}

/// The closed-form costs that `tfe-convert --check` estimates from are exact.
#[test]
fn every_call_costs_what_its_formula_says() {
    for n in [1usize, 63, 64, 65, 300] {
        let nu = n as u64;
        assert_eq!(
            metered(n, |p, x| p.reshare(&x.cur).map(drop)),
            Cost::reshare(nu),
            "reshare of {n}"
        );
        for f in [1u32, 16, 31, 40, 61] {
            assert_eq!(
                metered(n, |p, x| p.truncate(&x.cur, f).map(drop)),
                Cost::truncate(nu, f),
                "truncate of {n} by 2^{f}"
            );
            assert_eq!(
                metered(n, |p, x| p.truncate_open(&x.cur, f).map(drop)),
                Cost::truncate_open(nu, f),
                "first round of a truncation of {n} by 2^{f}"
            );
        }
        assert_eq!(
            metered(n, |p, x| {
                let pending = p.truncate_open(&x.cur, 16)?;
                p.relu_pending(&pending, 48).map(drop)
            }),
            Cost::truncate_open(nu, 16) + Cost::relu_pending(nu, 48),
            "ReLU of a pending truncation of {n}"
        );
        for width in [2u32, 3, 20, 47, 48, 64] {
            for gated in [1usize, 2] {
                assert_eq!(
                    metered(n, |p, x| p
                        .gate(x, &vec![x.clone(); gated], width)
                        .map(drop)),
                    Cost::gate(nu, width, gated as u64),
                    "gate of {n} values at width {width}, {gated} gated"
                );
            }
        }
        for width in [5u32, 46] {
            assert_eq!(
                metered(n, |p, x| p.msb_onehot(x, width).map(drop)),
                Cost::msb_onehot(nu, width),
                "msb_onehot of {n} at width {width}"
            );
        }
    }
}
