//! A compute party learns nothing about the secret input: party 0's whole view (its key,
//! its shares of the weights and the input, every message it receives, and every value it
//! reconstructs when a masked value is opened, net of the mask part it knows itself) has
//! the same distribution for two very different inputs.
//!
//! Checked to fail when a protocol leaks: opening a comparison bit without its daBit mask,
//! or a truncation party omitting its half of the mask, each scores z = 20.
//!
//! The test runs a plan that exercises every protocol (resharing, truncation, comparison,
//! secret-by-secret products, max pooling) many times per input and compares, position by
//! position, how often chosen bits of the view are set. A secret-dependent word would differ
//! in about R runs out of R; independent uniform words differ by about sqrt(R/2).

use ndarray::{ArrayD, IxDyn};
use std::sync::{Arc, Mutex};
use tfe::net::{Role, Transport, tap::Tap};
use tfe::plan::{Dim, Op, Plan, PlanBuilder, Shape, Source, Visibility};
use tfe::serve::{EmbeddedSession, run_requests};
use tfe::tensor::{FixedPoint, Window};

const RUNS: usize = 200;
/// Every bit of every view word is compared (packed comparison bits sit in the low bits).
const BITS: std::ops::Range<u32> = 0..64;
/// Largest allowed |count_a - count_b| / sqrt(RUNS / 2) over all positions and bits. Under
/// the hypothesis of equal distributions the maximum over ~10^5 comparisons stays below ~5;
/// a leaked bit scores sqrt(2 RUNS) = 20.
const MAX_Z: f64 = 6.5;

fn plan() -> Plan {
    let mut b = PlanBuilder::new(
        FixedPoint::default(),
        Source {
            file_name: "view".into(),
            sha256: String::new(),
        },
    );
    let n = |k: usize| Dim::Batch(k);
    let f = Dim::Fixed;
    let x = b.input("x", Shape(vec![n(1), f(8)]));
    let w_data = ArrayD::from_shape_fn(IxDyn(&[8, 8]), |ix| {
        ((ix[0] * 3 + ix[1] * 5) % 7) as f32 * 0.25 - 0.75
    });
    let w = b.weight("w", w_data, Visibility::Secret);
    let y = b.step("mm", Op::MatMul, &[x, w], "y", Shape(vec![n(1), f(8)]));
    let r = b.step("relu", Op::Relu, &[y], "r", Shape(vec![n(1), f(8)]));
    let product = b.step("square", Op::Mul, &[r, x], "rx", Shape(vec![n(1), f(8)]));
    // A second ReLU, so that party 0 plays every part of the comparison (its dealer
    // rotates per call); a third, so that it plays every part of a comparison folded into
    // a truncation (whose dealer deals it).
    let sq = b.step("relu2", Op::Relu, &[product], "sq", Shape(vec![n(1), f(8)]));
    let cube = b.step("cube", Op::Mul, &[sq, x], "sqx", Shape(vec![n(1), f(8)]));
    let sq = b.step("relu3", Op::Relu, &[cube], "sq3", Shape(vec![n(1), f(8)]));
    let img = b.step(
        "reshape",
        Op::Reshape {
            shape: Shape(vec![n(1), f(1), f(8)]),
        },
        &[sq],
        "img",
        Shape(vec![n(1), f(1), f(8)]),
    );
    let window = Window {
        kernel: vec![3],
        strides: vec![2],
        dilations: vec![1],
        pads_begin: vec![1],
        pads_end: vec![1],
        ceil_mode: false,
    };
    let pooled = b.step(
        "pool",
        Op::MaxPool { window },
        &[img],
        "p",
        Shape(vec![n(1), f(1), f(4)]),
    );
    b.output(pooled);
    b.build().unwrap()
}

/// Party 0's view of one run on `input`, as one vector of words.
fn view_of_party_0(plan: &Plan, input: &ArrayD<f32>) -> Vec<u64> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let wrap = move |end: tfe::net::local::LocalTransport| -> Box<dyn Transport> {
        if end.me() == Role::Party(0) {
            let sink = sink.clone();
            Box::new(Tap::new(end, move |_from, words: &[u64]| {
                sink.lock().unwrap().extend_from_slice(words)
            }))
        } else {
            Box::new(end)
        }
    };
    let session = EmbeddedSession::start_wrapped(Arc::new(plan.clone()), &wrap).unwrap();
    run_requests(Box::new(session), std::slice::from_ref(input), 1, |_| ()).unwrap();
    seen.lock().unwrap().clone()
}

/// How often each (position, bit) is set across runs.
fn bit_counts(plan: &Plan, input: &ArrayD<f32>) -> (usize, Vec<u32>) {
    let mut counts: Vec<u32> = vec![];
    let mut len = None;
    for _ in 0..RUNS {
        let view = view_of_party_0(plan, input);
        assert_eq!(
            *len.get_or_insert(view.len()),
            view.len(),
            "the view's length must not depend on randomness"
        );
        counts.resize(view.len() * 64, 0);
        for (p, w) in view.iter().enumerate() {
            for b in BITS {
                counts[p * 64 + b as usize] += ((w >> b) & 1) as u32;
            }
        }
    }
    (len.unwrap(), counts)
}

#[test]
fn party_view_does_not_depend_on_the_secret_input() {
    let plan = plan();
    let a = ArrayD::from_shape_vec(
        IxDyn(&[2, 8]),
        (0..16).map(|i| 0.5 + i as f32 * 0.01).collect(),
    )
    .unwrap();
    let b = ArrayD::from_shape_vec(
        IxDyn(&[2, 8]),
        (0..16)
            .map(|i| if i % 3 == 0 { 7.25 } else { -3.5 - i as f32 })
            .collect(),
    )
    .unwrap();
    let (len_a, counts_a) = bit_counts(&plan, &a);
    let (len_b, counts_b) = bit_counts(&plan, &b);
    assert_eq!(
        len_a, len_b,
        "the view's length must not depend on the input"
    );
    let scale = (RUNS as f64 / 2.0).sqrt();
    let (worst, at) = counts_a
        .iter()
        .zip(&counts_b)
        .map(|(&x, &y)| (x as f64 - y as f64).abs() / scale)
        .enumerate()
        .fold(
            (0.0, 0),
            |(best, at), (i, z)| if z > best { (z, i) } else { (best, at) },
        );
    assert!(
        worst < MAX_Z,
        "view word {} bit {} is set {} times for one input and {} for the other (z = {worst:.1}): the view depends on the input",
        at / 64,
        at % 64,
        counts_a[at],
        counts_b[at]
    );
    // Sanity: the view is large enough to cover every protocol.
    assert!(len_a > 500, "view of {len_a} words");
}
