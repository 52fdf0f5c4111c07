//! No compute party learns anything about the input or the weights: each party's whole view
//! (every message it receives and every value it opens) is independent of them.
//!
//! For each party P in turn, P's keys (the two it shares with its neighbours and the owners'
//! component keys it holds) are fixed, and every other key is fresh in each run
//! (`mpc::hooks`). Fixing P's keys is subtracting every stream P can derive: a value masked
//! only by such streams becomes a function of the secrets, which the statistic sees as a
//! word that does not change between runs. The plan runs `RUNS` times on one input and one
//! set of weights, and `RUNS` times on another input and other weights (every element
//! different). Then, over the words of P's view:
//!
//! - **public** words are the same in every run of both settings (P's own keys coming back
//!   to it, the batch size); there are a handful;
//! - every other word must be **fresh** in each run: no word whose runs all lie within
//!   2^48 of each other (an unmasked or partly masked value), and no bit that keeps its value
//!   in every run (a mask that misses bits);
//! - bits must be **unbiased**: the mean of z^2 (z the bit's count of ones against RUNS/2)
//!   over all bits stays near 1, and no bit is set much more often in one setting than in
//!   the other;
//! - masks are **not reused**: no two words whose difference, sum or XOR stays within 2^48
//!   of its first value in every run (the same mask on two values).
//!
//! The plan covers every protocol call: resharing with and without truncation (the
//! normalisation's exact product is a reshare with shift 0), truncation with a secret and
//! with a public operand, the truncation left pending for a ReLU, the dealer-assisted
//! comparison (`mpc/sign.rs` with the merges of `mpc/merge.rs`) as a gate of replicated
//! values (max pooling, Clip) and on a pending truncation, daBits, and `msb_onehot`
//! (Rsqrt's normalisation), with enough calls that every party plays every part. Every
//! comparison covers a multiple of 64 values, so packed words have no padding bits.
//!
//! Negative controls (`mpc::hooks::Fault`) remove a mask or reuse one, and the test asserts
//! that the statistic then fails.
//!
//! Under Pond the same statistic runs on each server's view (the plan's products of
//! secrets then take Beaver triples, and every truncation and comparison has the producer
//! as dealer), with controls for the Beaver masks, the truncation's r, the daBit and the
//! tables; the crypto producer's view must hold nothing but the key it is given and the
//! client's public batch size and stop request.
//!
//! `TFE_DEBUG_VIEW=1` prints which sender each range of a view's words came from, to place a
//! failing word.

use ndarray::{ArrayD, IxDyn};
use std::sync::{Arc, Mutex};
use tfe::mpc::Protocol;
use tfe::mpc::hooks::{self, Controls, Fault};
use tfe::net::{Role, Transport, tap::Tap};
use tfe::plan::{Dim, Function, Op, Plan, PlanBuilder, Shape, Source, Visibility};
use tfe::serve::{EmbeddedSession, Mode, predict, run_requests};
use tfe::tensor::{FixedPoint, Window};

/// Runs per setting.
const RUNS: usize = 40;
/// Two values within this distance of each other in every run are one value.
const NEAR: u64 = 1 << 48;
/// Most public words a view may hold.
const MAX_PUBLIC: usize = 16;
/// Largest |count_a - count_b| / sqrt(RUNS / 2) allowed for one bit: the maximum over
/// ~10^6 bits of independent views stays below ~5.5.
const MAX_Z: f64 = 6.5;
/// Features (and batch): 8 x 8 = 64 values per tensor.
const WIDTH: usize = 8;

/// Deterministic data: a splitmix64 stream mapped to [lo, hi).
fn data(seed: u64, shape: &[usize], lo: f32, hi: f32) -> ArrayD<f32> {
    let mut state = seed;
    ArrayD::from_shape_simple_fn(IxDyn(shape), || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        lo + (hi - lo) * (z >> 40) as f32 / (1u64 << 24) as f32
    })
}

/// The plan, with weights drawn from `seed`.
fn plan(seed: u64) -> Plan {
    let mut b = PlanBuilder::new(
        FixedPoint::default(),
        Source {
            file_name: "view".into(),
            sha256: String::new(),
        },
    );
    let (n, f) = (Dim::Batch, Dim::Fixed);
    let flat = || Shape(vec![n(1), f(WIDTH)]);
    let x = b.input("x", flat());
    let square = [WIDTH, WIDTH];
    let w = b.weight("w", data(seed, &square, -1.0, 1.0), Visibility::Secret);
    let offset = data(seed + 1, &[WIDTH], 0.5, 2.0);
    let offset = b.weight("offset", offset, Visibility::Secret);
    let public = b.weight("scale", data(7, &[WIDTH], 0.25, 1.5), Visibility::Public);
    // A product straight into a ReLU: the truncation stays pending for the comparison.
    let y = b.step("mm", Op::MatMul, &[x, w], "y", flat());
    let r = b.step("relu", Op::Relu, &[y], "r", flat());
    // Secret x secret, and secret x public (truncations), then a gate of replicated values.
    let rx = b.step("mul", Op::Mul, &[r, x], "rx", flat());
    let scaled = b.step("scale", Op::Mul, &[rx, public], "scaled", flat());
    let clip = Op::Clip {
        min: Some(-1.0),
        max: Some(3.0),
    };
    let clipped = b.step("clip", clip, &[scaled], "clipped", flat());
    let img_shape = || Shape(vec![n(1), f(1), f(WIDTH)]);
    let img = b.step(
        "reshape",
        Op::Reshape { shape: img_shape() },
        &[clipped],
        "img",
        img_shape(),
    );
    let window = Window {
        kernel: vec![3],
        strides: vec![1],
        dilations: vec![1],
        pads_begin: vec![1],
        pads_end: vec![1],
        ceil_mode: false,
    };
    let pooled = b.step("pool", Op::MaxPool { window }, &[img], "p", img_shape());
    let back = b.step(
        "flatten",
        Op::Reshape { shape: flat() },
        &[pooled],
        "pf",
        flat(),
    );
    // rsqrt(p^2 + offset): msb_onehot, public-operand truncations and a reshare.
    let sq = b.step("square", Op::Mul, &[back, back], "sq", flat());
    let positive = b.step("add", Op::Add, &[sq, offset], "pos", flat());
    let rsqrt = Op::Function {
        function: Function::Rsqrt,
    };
    let out = b.step("rsqrt", rsqrt, &[positive], "out", flat());
    b.output(out);
    b.output(r);
    b.build().unwrap()
}

/// The two settings: plan and input, every secret element different between them.
fn settings() -> [(Arc<Plan>, ArrayD<f32>); 2] {
    let shape = [WIDTH, WIDTH];
    [
        (Arc::new(plan(1)), data(100, &shape, -2.0, 2.0)),
        (Arc::new(plan(2)), data(200, &shape, -2.0, 2.0)),
    ]
}

/// Party `party`'s view of one session of two requests under `protocol` (so that what a
/// session fixes once, Pond's masks of the weights, serves twice), as one vector of words.
fn view(plan: &Arc<Plan>, input: &ArrayD<f32>, protocol: Protocol, party: usize) -> Vec<u64> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let wrap = move |end: tfe::net::local::LocalTransport| -> Box<dyn Transport> {
        if end.me() == Role::Party(party as u8) {
            let sink = sink.clone();
            Box::new(Tap::new(end, move |from, words: &[u64]| {
                if std::env::var("TFE_DEBUG_VIEW").is_ok() {
                    let at = sink.lock().unwrap().len();
                    eprintln!(
                        "view {at}..{}: {from} ({} words)",
                        at + words.len(),
                        words.len()
                    );
                }
                sink.lock().unwrap().extend_from_slice(words)
            }))
        } else {
            Box::new(end)
        }
    };
    let session = EmbeddedSession::start_wrapped(plan.clone(), protocol, &wrap).unwrap();
    let got = run_requests(Box::new(session), std::slice::from_ref(input), 2, |_| ()).unwrap();
    assert_eq!(got.outputs.len(), 2);
    seen.lock().unwrap().clone()
}

/// `RUNS` views of `party` in each setting, with its keys fixed and `fault` in force.
fn views(protocol: Protocol, party: usize, fault: Option<Fault>) -> [Vec<Vec<u64>>; 2] {
    let controls = Controls {
        fixed_party: Some((party, 0x5ec0_0000 + party as u64)),
        fault,
    };
    // Each run under its own `with`: keys are drawn afresh per run, the fixed ones equal.
    settings().map(|(plan, input)| {
        (0..RUNS)
            .map(|_| hooks::with(controls, || view(&plan, &input, protocol, party)))
            .collect()
    })
}

/// What the statistic found in one party's views.
#[derive(Debug, Default)]
struct Audit {
    words: usize,
    public: usize,
    /// Words whose runs lie within [`NEAR`] of each other, in either setting.
    fixed: Vec<usize>,
    /// (word, bit) kept in every run of a setting, in a word that is not public.
    stuck: Vec<(usize, u32)>,
    /// Mean z^2 of the bits' counts of ones, and its limit.
    bias: (f64, f64),
    /// Largest two-sample z between the settings, and where.
    between: (f64, usize),
    /// Pairs of words related by a shared mask.
    reused: Vec<(usize, usize, &'static str)>,
}

impl Audit {
    fn failures(&self) -> Vec<String> {
        let mut out = vec![];
        if self.public > MAX_PUBLIC {
            out.push(format!("{} public words", self.public));
        }
        if !self.fixed.is_empty() {
            out.push(format!(
                "{} words not fresh between runs (first: {})",
                self.fixed.len(),
                self.fixed[0]
            ));
        }
        if !self.stuck.is_empty() {
            out.push(format!(
                "{} bits stuck (first: word {} bit {})",
                self.stuck.len(),
                self.stuck[0].0,
                self.stuck[0].1
            ));
        }
        if self.bias.0 > self.bias.1 {
            out.push(format!("biased bits: mean z^2 {:.3}", self.bias.0));
        }
        if self.between.0 > MAX_Z {
            out.push(format!(
                "word {} bit {} differs between the settings (z = {:.1})",
                self.between.1 / 64,
                self.between.1 % 64,
                self.between.0
            ));
        }
        if let Some((p, q, how)) = self.reused.first() {
            out.push(format!(
                "{} pairs of words share a mask (first: words {p} and {q}, their {how})",
                self.reused.len()
            ));
        }
        out
    }

    fn summary(&self) -> String {
        format!(
            "{} words ({} public): {} not fresh, {} stuck bits, mean z^2 {:.3} (limit {:.3}), max z between settings {:.1}, {} pairs sharing a mask",
            self.words,
            self.public,
            self.fixed.len(),
            self.stuck.len(),
            self.bias.0,
            self.bias.1,
            self.between.0,
            self.reused.len()
        )
    }
}

/// How two words combine into one that a shared mask would keep fixed.
type Relation = fn(u64, u64) -> u64;

fn near(a: u64, b: u64) -> bool {
    a.wrapping_sub(b).wrapping_add(NEAR) < 2 * NEAR
}

/// Whether words p and q keep `relate(p, q)` within [`NEAR`] of its first run, in every
/// run of every setting.
fn related(sets: &[Vec<Vec<u64>>; 2], p: usize, q: usize, relate: Relation) -> bool {
    sets.iter().all(|runs| {
        let first = relate(runs[0][p], runs[0][q]);
        runs.iter().all(|v| near(relate(v[p], v[q]), first))
    })
}

fn audit(sets: &[Vec<Vec<u64>>; 2]) -> Audit {
    let len = sets[0][0].len();
    for runs in sets {
        for v in runs {
            assert_eq!(
                v.len(),
                len,
                "the view's length depends on the run or the secrets"
            );
        }
    }
    let public: Vec<bool> = (0..len)
        .map(|p| sets.iter().flatten().all(|v| v[p] == sets[0][0][p]))
        .collect();
    let secret: Vec<usize> = (0..len).filter(|&p| !public[p]).collect();
    let mut a = Audit {
        words: len,
        public: len - secret.len(),
        ..Audit::default()
    };
    let mut counts = [vec![0u32; len * 64], vec![0u32; len * 64]];
    for (runs, counts) in sets.iter().zip(&mut counts) {
        for v in runs {
            for &p in &secret {
                for bit in 0..64 {
                    counts[p * 64 + bit] += ((v[p] >> bit) & 1) as u32;
                }
            }
        }
    }
    let r = RUNS as f64;
    let (mut z2, mut bits) = (0.0, 0usize);
    for &p in &secret {
        if sets
            .iter()
            .any(|runs| runs.iter().all(|v| near(v[p], runs[0][p])))
        {
            a.fixed.push(p);
        }
        for bit in 0..64 {
            let i = p * 64 + bit;
            for c in [counts[0][i], counts[1][i]] {
                if c == 0 || c == RUNS as u32 {
                    a.stuck.push((p, bit as u32));
                }
                z2 += (2.0 * c as f64 - r).powi(2) / r;
                bits += 1;
            }
            let z = (counts[0][i] as f64 - counts[1][i] as f64).abs() / (r / 2.0).sqrt();
            if z > a.between.0 {
                a.between = (z, i);
            }
        }
    }
    let bits = bits.max(1) as f64;
    a.bias = (z2 / bits, 1.0 + 8.0 * (2.0 / bits).sqrt());
    // Shared masks: words whose change from run 0 to run 1 matches (or cancels) another's,
    // confirmed over every run. Sorting by that change finds the candidates.
    let step = |p: usize| sets[0][1][p].wrapping_sub(sets[0][0][p]);
    let mut keyed: Vec<(u64, usize)> = secret
        .iter()
        .flat_map(|&p| [(step(p), p), (step(p).wrapping_neg(), p)])
        .collect();
    keyed.sort_unstable();
    let mut pairs = std::collections::BTreeSet::new();
    for w in keyed.windows(2) {
        let ((k1, p), (k2, q)) = (w[0], w[1]);
        if p != q && k2 - k1 < NEAR {
            pairs.insert((p.min(q), p.max(q)));
        }
    }
    let mut by_xor: std::collections::HashMap<u64, Vec<usize>> = Default::default();
    for &p in &secret {
        by_xor
            .entry(sets[0][1][p] ^ sets[0][0][p])
            .or_default()
            .push(p);
    }
    for group in by_xor.values() {
        for (i, &p) in group.iter().enumerate() {
            for &q in &group[i + 1..] {
                pairs.insert((p, q));
            }
        }
    }
    for (p, q) in pairs {
        let relations: [(&str, Relation); 3] = [
            ("difference", u64::wrapping_sub),
            ("sum", u64::wrapping_add),
            ("xor", |a, b| a ^ b),
        ];
        if let Some((how, _)) = relations
            .into_iter()
            .find(|(_, relate)| related(sets, p, q, *relate))
        {
            a.reused.push((p, q, how));
        }
    }
    a
}

/// The plan computes under `protocol` what the fixed-point interpreter does, so its values
/// are in range. (Under the controls' lock, with none in force: other tests here break
/// masks.)
fn agrees_with_fixed_point(protocol: Protocol) {
    hooks::with(Controls::default(), || {
        for (plan, input) in settings() {
            let fixed = predict(&plan, std::slice::from_ref(&input), Mode::Fixed).unwrap();
            let mpc = predict(&plan, std::slice::from_ref(&input), Mode::Mpc(protocol)).unwrap();
            for (f, m) in fixed.outputs.iter().zip(&mpc.outputs) {
                let err = f
                    .iter()
                    .zip(m)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f32, f32::max);
                assert!(err < 1e-3, "{protocol:?} differs from fixed point by {err}");
            }
        }
    });
}

/// `party`'s views under `protocol` pass every statistic.
fn independent(protocol: Protocol, party: usize) {
    let a = audit(&views(protocol, party, None));
    println!("{protocol:?} party {party}: {}", a.summary());
    assert!(a.words > 2000, "party {party} sees {} words", a.words);
    let failures = a.failures();
    assert!(
        failures.is_empty(),
        "{protocol:?}: party {party}'s view depends on the secrets: {}",
        failures.join("; ")
    );
}

#[test]
fn every_partys_view_is_independent_of_the_input_and_the_weights() {
    agrees_with_fixed_point(Protocol::Aby3);
    for party in 0..3 {
        independent(Protocol::Aby3, party);
    }
}

/// Pond: each server's view passes the statistic, and the crypto producer receives
/// nothing but the key server 1 drew for it and the client's public batch size and stop.
#[test]
fn under_pond_each_servers_view_is_independent_and_the_producer_sees_nothing() {
    agrees_with_fixed_point(Protocol::Pond);
    for server in 0..2 {
        independent(Protocol::Pond, server);
    }
    // Its key, then the client's batch size for each request and its stop (all public).
    for (setting, runs) in views(Protocol::Pond, 2, None).iter().enumerate() {
        for view in runs {
            assert_eq!(
                view[2..],
                [WIDTH as u64, WIDTH as u64, 0],
                "setting {setting}: the producer saw {view:?}"
            );
        }
    }
}

/// The statistic fails on `party`'s view under `protocol` when `fault` breaks a mask.
fn fails_under(protocol: Protocol, fault: Fault, party: usize, expect: &str) {
    let a = audit(&views(protocol, party, Some(fault)));
    let failures = a.failures();
    println!("{protocol:?} {fault:?}, party {party}: {}", a.summary());
    assert!(
        failures.iter().any(|f| f.contains(expect)),
        "{protocol:?} {fault:?} should make party {party}'s view fail with \"{expect}\": {failures:?}"
    );
}

fn fails_with(fault: Fault, party: usize, expect: &str) {
    fails_under(Protocol::Aby3, fault, party, expect);
}

#[test]
fn under_pond_beaver_operands_opened_without_their_masks_fail() {
    fails_under(Protocol::Pond, Fault::UnmaskedTriple, 1, "share a mask");
}

#[test]
fn under_pond_a_truncation_without_its_mask_fails() {
    fails_under(Protocol::Pond, Fault::UnmaskedTruncation, 0, "not fresh");
}

#[test]
fn under_pond_a_comparison_opened_without_its_dabit_fails() {
    fails_under(Protocol::Pond, Fault::UnmaskedComparison, 1, "not fresh");
}

#[test]
fn under_pond_comparison_tables_without_masks_fail() {
    fails_under(Protocol::Pond, Fault::UnmaskedTables, 0, "stuck");
}

#[test]
fn a_reshare_without_its_zero_sharing_fails() {
    fails_with(Fault::UnmaskedReshare, 0, "stuck");
}

#[test]
fn a_truncation_without_its_mask_fails() {
    fails_with(Fault::UnmaskedTruncation, 1, "not fresh");
}

#[test]
fn a_comparison_opened_without_its_dabit_fails() {
    fails_with(Fault::UnmaskedComparison, 2, "not fresh");
}

#[test]
fn comparison_tables_without_masks_fail() {
    fails_with(Fault::UnmaskedTables, 1, "stuck");
}

#[test]
fn a_dabit_reused_across_comparisons_fails() {
    fails_with(Fault::ReusedDaBit, 0, "share a mask");
}

#[test]
fn streams_reused_across_calls_fail() {
    fails_with(Fault::ReusedNonce, 2, "share a mask");
}
