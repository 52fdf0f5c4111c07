//! Activations written out op by op (src/lower/activation_patterns.rs): GELU's erf and tanh
//! forms in the orders exporters emit and SiLU fold into one cheap function at their last
//! node; expressions that only look alike, or whose intermediates another node reads, are
//! lowered op by op. All against tract in float, fixed and mpc.

use crate::common::cases::*;

/// The nodes of each variant; x is the input, y the output, constants are scalars.
type Nodes = &'static [(&'static str, &'static [&'static str], &'static str)];

/// torch.nn.TransformerEncoder (transformer_ts): (x * (erf(x / √2) + 1)) * 0.5.
const GELU_TS: Nodes = &[
    ("Div", &["x", "sqrt2"], "d"),
    ("Erf", &["d"], "e"),
    ("Add", &["e", "one"], "a"),
    ("Mul", &["x", "a"], "m"),
    ("Mul", &["m", "half"], "y"),
];
/// (x * 0.5) * (1 + erf(x * 1/√2)): the product first, 1/√2 as a factor.
const GELU_HALF_FIRST: Nodes = &[
    ("Mul", &["x", "half"], "h"),
    ("Mul", &["inv_sqrt2", "x"], "d"),
    ("Erf", &["d"], "e"),
    ("Add", &["one", "e"], "a"),
    ("Mul", &["h", "a"], "y"),
];
/// GPT-2 (gpt2_tiny): 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x^3))).
const GELU_TANH: Nodes = &[
    ("Mul", &["x", "half"], "h"),
    ("Pow", &["x", "three"], "p"),
    ("Mul", &["p", "cubic"], "c"),
    ("Add", &["x", "c"], "s"),
    ("Mul", &["s", "sqrt_2_over_pi"], "t"),
    ("Tanh", &["t"], "th"),
    ("Add", &["th", "one"], "a"),
    ("Mul", &["h", "a"], "y"),
];
/// SiLU as torch exports it, in both operand orders.
const SILU: Nodes = &[("Sigmoid", &["x"], "s"), ("Mul", &["x", "s"], "y")];
const SILU_SWAPPED: Nodes = &[("Sigmoid", &["x"], "s"), ("Mul", &["s", "x"], "y")];
/// 0.5 x (1 + erf(x / 2)): the GELU shape with the wrong constant.
const NOT_GELU: Nodes = &[
    ("Div", &["x", "two"], "d"),
    ("Erf", &["d"], "e"),
    ("Add", &["e", "one"], "a"),
    ("Mul", &["x", "a"], "m"),
    ("Mul", &["m", "half"], "y"),
];

fn written_out(name: &str, nodes: Nodes, scale: f32) -> Case {
    let mut c = case(name, 13)
        .input("x", &[N, Some(24)])
        .input_scale(scale)
        .scalar("sqrt2", std::f32::consts::SQRT_2)
        .scalar("inv_sqrt2", std::f32::consts::FRAC_1_SQRT_2)
        .scalar("one", 1.0)
        .scalar("two", 2.0)
        .scalar("half", 0.5)
        .scalar("three", 3.0)
        .scalar("cubic", 0.044715)
        .scalar("sqrt_2_over_pi", (2.0 / std::f32::consts::PI).sqrt());
    for (op, inputs, output) in nodes {
        c = c.node(op, inputs, &[output], vec![]);
    }
    c.output("y")
}

fn folded(c: &Case) -> usize {
    c.statuses().iter().filter(|(_, s)| *s == "folded").count()
}

#[test]
fn written_out_activations_fold_into_one_function() {
    let cases = vec![
        (written_out("gelu-ts", GELU_TS, 6.0), GELU_TS.len() - 1),
        (written_out("gelu-half-first", GELU_HALF_FIRST, 6.0), 4),
        (
            written_out("gelu-tanh", GELU_TANH, 6.0),
            GELU_TANH.len() - 1,
        ),
        (written_out("silu", SILU, 14.0), 1),
        (written_out("silu-swapped", SILU_SWAPPED, 3.0), 1),
    ];
    for (c, expected) in &cases {
        assert_eq!(folded(c), *expected, "{}: {:?}", c.name, c.statuses());
    }
    run_all(cases.into_iter().map(|(c, _)| c).collect());
}

/// A look-alike with another constant, and GELU whose erf another output reads, keep the
/// op-by-op lowering (and its accurate erf).
#[test]
fn look_alikes_and_shared_intermediates_are_lowered_op_by_op() {
    let cases = vec![
        written_out("not-gelu", NOT_GELU, 4.0),
        written_out("gelu-shared-erf", GELU_TS, 4.0).output("e"),
    ];
    for c in &cases {
        assert_eq!(folded(c), 0, "{}: {:?}", c.name, c.statuses());
    }
    run_all(cases);
}
