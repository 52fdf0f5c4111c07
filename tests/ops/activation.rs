//! Activations (src/lower/activation.rs): the exact ones by secure comparison (Relu,
//! LeakyRelu, Abs, Clip, PRelu, HardSigmoid, HardSwish) and the approximated ones (Sigmoid,
//! Tanh, Erf, Gelu, Exp, Log, Sqrt, Reciprocal, ...), with `--sigmoid piecewise`.

use super::with_positive;
use crate::common;
use crate::common::Attr;
use crate::common::cases::*;

/// Products that reach a ReLU through linear steps leave their truncations' second rounds
/// to it: two of them meeting in an Add (as a residual block's branches do) differ in
/// dealer, so one settles on its own. Exact against tract in every mode, and the estimate
/// is what the parties send, step by step: 1 + 1 + 1 (the settling) + 4 rounds.
#[test]
fn products_meeting_before_a_relu() {
    let build = || {
        case("two-products-relu", 13)
            .input("x", &[N, Some(4)])
            .weight("w1", &[4, 4])
            .weight("w2", &[4, 4])
            .scalar("b", 0.25)
            .node("MatMul", &["x", "w1"], &["p"], vec![])
            .node("MatMul", &["x", "w2"], &["q"], vec![])
            .node("Add", &["p", "b"], &["pb"], vec![])
            .node("Add", &["pb", "q"], &["s"], vec![])
            .node("Relu", &["s"], &["y"], vec![])
            .output("y")
    };
    run_all(vec![build()]);
    let c = build();
    let plan = tfe::lower::convert(&c.onnx.save(&c.name), c.options())
        .unwrap()
        .plan;
    let x = ndarray::ArrayD::from_shape_fn(ndarray::IxDyn(&[3, 4]), |ix| {
        (ix[0] * 4 + ix[1]) as f32 * 0.37 - 2.0
    });
    let run =
        tfe::serve::predict(&plan, &[x], tfe::serve::Mode::Mpc(tfe::mpc::Protocol::Aby3)).unwrap();
    let estimate = tfe::exec::estimate(&plan, 3, tfe::mpc::Protocol::Aby3).unwrap();
    let steps = |p: &tfe::exec::Profile| -> Vec<(u64, u64)> {
        p.steps
            .iter()
            .map(|s| (s.stats.bytes_sent, s.stats.rounds))
            .collect()
    };
    assert_eq!(steps(&estimate.steps), steps(&run.profile));
    assert_eq!(estimate.total().rounds, 7);
}

#[test]
fn relu() {
    run_all(vec![
        case("relu", 13)
            .input("x", &[N, Some(3), Some(5)])
            .node("Relu", &["x"], &["y"], vec![])
            .output("y"),
        case("relu-large", 13)
            .input("x", &[N, Some(8)])
            .input_scale(50.0)
            .node("Relu", &["x"], &["y"], vec![])
            .output("y"),
        // values near zero and exact zeros after a shift
        case("relu-after-sub", 13)
            .input("x", &[N, Some(4), Some(3)])
            .scalar("c", 0.5)
            .node("Sub", &["x", "c"], &["s"], vec![])
            .node("Relu", &["s"], &["r"], vec![])
            .node("Relu", &["r"], &["y"], vec![])
            .output("y"),
    ]);
}

fn unary(op: &str, opset: i64, scale: f32, attrs: Vec<Attr>) -> Case {
    case(&format!("{op}-{opset}-{scale}"), opset)
        .input("x", &[N, Some(3), Some(5)])
        .input_scale(scale)
        .node(op, &["x"], &["y"], attrs)
        .output("y")
}

#[test]
fn smooth_activations() {
    run_all(vec![
        unary("Sigmoid", 13, 1.0, vec![]),
        unary("Sigmoid", 13, 12.0, vec![]),
        unary("Tanh", 13, 1.0, vec![]),
        unary("Tanh", 13, 6.0, vec![]),
        unary("Erf", 13, 3.0, vec![]),
        unary("Softplus", 13, 10.0, vec![]),
        unary("Elu", 13, 4.0, vec![float("alpha", 0.7)]),
        unary("Selu", 13, 3.0, vec![]),
        unary("Exp", 13, 3.0, vec![]).relative_tolerance(2e-4),
        unary("Gelu", 20, 3.0, vec![]),
        unary("Gelu", 20, 3.0, vec![Attr::Str("approximate", "tanh")]),
        unary("Softsign", 13, 4.0, vec![]),
    ]);
}

#[test]
fn exact_activations() {
    run_all(vec![
        unary("Relu", 14, 2.0, vec![]),
        unary("LeakyRelu", 13, 2.0, vec![]),
        unary("LeakyRelu", 16, 2.0, vec![float("alpha", 0.3)]),
        unary("Abs", 13, 2.0, vec![]),
        unary("HardSigmoid", 13, 5.0, vec![]),
        unary(
            "HardSigmoid",
            13,
            5.0,
            vec![float("alpha", 0.3), float("beta", 0.4)],
        ),
        unary("HardSwish", 14, 5.0, vec![]),
        unary("Clip", 6, 2.0, vec![float("min", -0.5), float("max", 0.8)]),
        case("clip-relu6", 13)
            .input("x", &[N, Some(6)])
            .input_scale(10.0)
            .scalar("lo", 0.0)
            .scalar("hi", 6.0)
            .node("Clip", &["x", "lo", "hi"], &["y"], vec![])
            .output("y"),
        case("clip-min-only", 13)
            .input("x", &[N, Some(6)])
            .scalar("lo", -0.25)
            .node("Clip", &["x", "lo"], &["y"], vec![])
            .output("y"),
        case("clip-max-only", 13)
            .input("x", &[N, Some(6)])
            .scalar("hi", 0.25)
            .node("Clip", &["x", "", "hi"], &["y"], vec![])
            .output("y"),
        case("prelu-per-channel", 9)
            .input("x", &[N, Some(3), Some(2), Some(2)])
            .weight("slope", &[3, 1, 1])
            .node("PRelu", &["x", "slope"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn positive_domain_functions() {
    let of_positive = |op: &str, c: f32| {
        with_positive(&format!("{op}-{c}"), 13, c)
            .node(op, &["p"], &["y"], vec![])
            .output("y")
    };
    run_all(vec![
        of_positive("Log", 0.05),
        of_positive("Log", 3.0),
        of_positive("Sqrt", 0.01),
        of_positive("Reciprocal", 0.2),
        of_positive("Reciprocal", 5.0),
        case("reciprocal-signed", 13)
            .input("x", &[N, Some(8)])
            .input_scale(4.0)
            .node("Reciprocal", &["x"], &["y"], vec![])
            .output("y")
            .relative_tolerance(1e-3),
    ]);
}

/// Lowers one `op` node with `options`, checks that the plan computes `function`, and
/// returns the mpc error against `exact` on inputs of scale `scale`.
fn option_error(
    op: &str,
    opset: i64,
    options: tfe::lower::Options,
    function: tfe::plan::Function,
    (scale, exact): (f32, fn(f32) -> f32),
) -> f32 {
    use tfe::lower::convert;
    use tfe::plan::Op;
    use tfe::serve::{Mode, predict};
    let mut onnx = common::OnnxBuilder::new(opset);
    onnx.input("x", &[N, Some(40)])
        .node(op, &["x"], &["y"], vec![])
        .output("y");
    let path = onnx.save(&format!("option-{}", function.name()));
    let plan = convert(&path, options).unwrap().plan;
    assert!(
        plan.steps.iter().any(|s| s.op == Op::Function { function }),
        "{op} should lower to {}",
        function.name()
    );
    let x = common::random(&[2, 40], 5, scale);
    let got = predict(
        &plan,
        std::slice::from_ref(&x),
        Mode::Mpc(tfe::mpc::Protocol::Aby3),
    )
    .unwrap()
    .outputs
    .remove(0);
    common::max_abs_diff(&got, &x.mapv(exact))
}

/// `--sigmoid piecewise` swaps the approximation in the plan and keeps within its bar.
#[test]
fn piecewise_sigmoid_option() {
    use tfe::lower::{Options, SigmoidMethod};
    let options = Options {
        sigmoid: SigmoidMethod::Piecewise,
        ..Options::default()
    };
    let sigmoid = |v: f32| 1.0 / (1.0 + (-v).exp());
    let err = option_error(
        "Sigmoid",
        13,
        options,
        tfe::plan::Function::SigmoidPiecewise,
        (10.0, sigmoid),
    );
    assert!(err < 3.6e-3 && err > 1e-4, "piecewise sigmoid error {err}");
}

/// Gelu is one piecewise polynomial by default (error within 2e-4), and `--gelu erf` keeps
/// the accurate erf.
#[test]
fn gelu_methods() {
    use tfe::lower::{GeluMethod, Options};
    use tfe::plan::Function;
    let gelu = |v: f32| Function::Gelu.exact(v as f64) as f32;
    let piecewise = option_error("Gelu", 20, Options::default(), Function::Gelu, (6.0, gelu));
    assert!(piecewise < 2e-4, "piecewise gelu error {piecewise}");
    let options = Options {
        gelu: GeluMethod::Erf,
        ..Options::default()
    };
    let accurate = option_error("Gelu", 20, options, Function::Erf, (6.0, gelu));
    assert!(accurate < 1e-4, "gelu through erf: error {accurate}");
}

/// Sigmoid and Tanh are polynomials of the clamped input by default (errors within 1e-4 and
/// 2e-4), and `--sigmoid exact` keeps the accurate exp and reciprocal.
#[test]
fn sigmoid_methods() {
    use tfe::lower::{Options, SigmoidMethod};
    use tfe::plan::Function;
    let sigmoid = |v: f32| Function::Sigmoid.exact(v as f64) as f32;
    let tanh = |v: f32| v.tanh();
    let default = Options::default();
    let polynomial = option_error(
        "Sigmoid",
        13,
        default.clone(),
        Function::SigmoidPolynomial,
        (14.0, sigmoid),
    );
    assert!(polynomial < 1e-4, "polynomial sigmoid error {polynomial}");
    let polynomial = option_error("Tanh", 13, default, Function::TanhPolynomial, (7.0, tanh));
    assert!(polynomial < 2e-4, "polynomial tanh error {polynomial}");
    let options = Options {
        sigmoid: SigmoidMethod::Exact,
        ..Options::default()
    };
    let accurate = option_error(
        "Sigmoid",
        13,
        options.clone(),
        Function::Sigmoid,
        (14.0, sigmoid),
    );
    assert!(accurate < 5e-5, "accurate sigmoid error {accurate}");
    let accurate = option_error("Tanh", 13, options, Function::Tanh, (7.0, tanh));
    assert!(accurate < 1e-4, "accurate tanh error {accurate}");
}
