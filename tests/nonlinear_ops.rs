//! Per-op tests for the comparison-based and approximated operators, against tract in float,
//! fixed and mpc at batch 1 and 3 (see tests/common/cases.rs). Inputs that must be positive
//! (log, sqrt, reciprocal, divisors) are made so inside the model: x*x + c.

mod common;

use common::Attr;
use common::cases::*;

/// x [N, 3, 4] and a positive p = x*x + c computed from it.
fn with_positive(name: &str, opset: i64, c: f32) -> Case {
    case(name, opset)
        .input("x", &[N, Some(3), Some(4)])
        .scalar("c", c)
        .node("Mul", &["x", "x"], &["xx"], vec![])
        .node("Add", &["xx", "c"], &["p"], vec![])
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

#[test]
fn division_and_powers() {
    let pow = |p: f32| {
        with_positive(&format!("pow{p}"), 13, 0.5)
            .scalar("e", p)
            .node("Pow", &["p", "e"], &["y"], vec![])
            .output("y")
            .relative_tolerance(2e-4)
    };
    run_all(vec![
        with_positive("div-secret", 13, 0.5)
            .node("Div", &["x", "p"], &["y"], vec![])
            .output("y"),
        case("div-constant", 13)
            .input("x", &[N, Some(4)])
            .init("d", &ndarray::arr1(&[2.0f32, -4.0, 0.5, 8.0]).into_dyn())
            .node("Div", &["x", "d"], &["y"], vec![])
            .output("y"),
        pow(1.0),
        pow(2.0),
        pow(3.0),
        pow(5.0),
        pow(-1.0),
        pow(-2.0),
        pow(0.5),
        pow(-0.5),
        pow(1.7),
    ]);
}

#[test]
fn max_min_and_reductions() {
    let reduce = |op: &str, opset: i64, axes: Option<&[i64]>, keep: i64| {
        let name = format!("{op}-{opset}-{axes:?}-{keep}");
        let c = case(&name, opset).input("x", &[N, Some(3), Some(4), Some(5)]);
        let c = match (axes, opset >= 18) {
            (Some(a), true) => {
                c.init_i64("axes", a)
                    .node(op, &["x", "axes"], &["y"], vec![int("keepdims", keep)])
            }
            (Some(a), false) => c.node(
                op,
                &["x"],
                &["y"],
                vec![ints("axes", a), int("keepdims", keep)],
            ),
            (None, _) => c.node(op, &["x"], &["y"], vec![int("keepdims", keep)]),
        };
        c.output("y")
    };
    run_all(vec![
        case("max3", 13)
            .input("a", &[N, Some(3), Some(4)])
            .input("b", &[N, Some(3), Some(4)])
            .weight("c", &[4])
            .node("Max", &["a", "b", "c"], &["y"], vec![])
            .output("y"),
        case("min2", 13)
            .input("a", &[N, Some(3), Some(4)])
            .weight("c", &[3, 1])
            .node("Min", &["a", "c"], &["y"], vec![])
            .output("y"),
        reduce("ReduceMax", 13, Some(&[-1]), 1),
        reduce("ReduceMax", 13, Some(&[1, 3]), 0),
        reduce("ReduceMin", 13, Some(&[2]), 0),
        reduce("ReduceMax", 13, None, 1),
        reduce("ReduceMax", 18, Some(&[1, -1]), 1),
        reduce("ReduceMin", 18, Some(&[0]), 0),
    ]);
}

#[test]
fn arg_max_and_arg_min() {
    let arg = |op: &str, axis: i64, keep: i64, last: i64| {
        // Relu makes ties (zeros), so select_last_index matters.
        case(&format!("{op}-{axis}-{keep}-{last}"), 13)
            .input("x", &[N, Some(6), Some(5)])
            .node("Relu", &["x"], &["r"], vec![])
            .node(
                op,
                &["r"],
                &["y"],
                vec![
                    int("axis", axis),
                    int("keepdims", keep),
                    int("select_last_index", last),
                ],
            )
            .output("y")
    };
    run_all(vec![
        arg("ArgMax", 1, 1, 0),
        arg("ArgMax", -1, 0, 0),
        arg("ArgMax", 1, 1, 1),
        arg("ArgMin", 2, 0, 0),
        arg("ArgMin", 1, 1, 1),
        arg("ArgMax", 0, 1, 0),
    ]);
}

#[test]
fn softmax_and_log_softmax() {
    let soft = |op: &str, opset: i64, axis: Option<i64>| {
        let attrs = axis.map(|a| vec![int("axis", a)]).unwrap_or_default();
        case(&format!("{op}-{opset}-{axis:?}"), opset)
            .input("x", &[N, Some(3), Some(6)])
            .input_scale(4.0)
            .node(op, &["x"], &["y"], attrs)
            .output("y")
    };
    run_all(vec![
        soft("Softmax", 13, None),
        soft("Softmax", 13, Some(1)),
        soft("Softmax", 11, None),
        soft("Softmax", 11, Some(2)),
        soft("LogSoftmax", 13, None),
        soft("LogSoftmax", 13, Some(-2)),
        soft("LogSoftmax", 11, Some(1)),
    ]);
}

#[test]
fn normalizations() {
    run_all(vec![
        case("layernorm-last", 17)
            .input("x", &[N, Some(4), Some(8)])
            .weight("g", &[8])
            .weight("b", &[8])
            .node("LayerNormalization", &["x", "g", "b"], &["y"], vec![])
            .output("y"),
        case("layernorm-two-axes-no-bias", 17)
            .input("x", &[N, Some(4), Some(8)])
            .input_scale(3.0)
            .weight("g", &[4, 8])
            .node(
                "LayerNormalization",
                &["x", "g"],
                &["y"],
                vec![int("axis", -2), float("epsilon", 1e-3)],
            )
            .output("y"),
        case("instancenorm", 13)
            .input("x", &[N, Some(3), Some(4), Some(4)])
            .weight("s", &[3])
            .weight("b", &[3])
            .node("InstanceNormalization", &["x", "s", "b"], &["y"], vec![])
            .output("y"),
    ]);
}

/// Scaled dot-product attention on one head: softmax(Q K^T / sqrt d) V, with secret Q, K, V.
#[test]
fn attention() {
    run_all(vec![
        case("attention", 13)
            .input("x", &[N, Some(5), Some(8)])
            .weight("wq", &[8, 8])
            .weight("wk", &[8, 8])
            .weight("wv", &[8, 8])
            .scalar("scale", 1.0 / 8f32.sqrt())
            .node("MatMul", &["x", "wq"], &["q"], vec![])
            .node("MatMul", &["x", "wk"], &["k"], vec![])
            .node("MatMul", &["x", "wv"], &["v"], vec![])
            .node("Transpose", &["k"], &["kt"], vec![ints("perm", &[0, 2, 1])])
            .node("MatMul", &["q", "kt"], &["s"], vec![])
            .node("Mul", &["s", "scale"], &["ss"], vec![])
            .node("Softmax", &["ss"], &["p"], vec![int("axis", -1)])
            .node("MatMul", &["p", "v"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn conv_transpose() {
    let ct = |name: &str,
              c: i64,
              m: i64,
              group: i64,
              spatial: &[i64],
              kernel: &[i64],
              attrs: Vec<Attr>,
              bias: bool| {
        let mut dims = vec![N, Some(c)];
        dims.extend(spatial.iter().map(|&s| Some(s)));
        let mut w_shape = vec![c as usize, (m / group) as usize];
        w_shape.extend(kernel.iter().map(|&k| k as usize));
        let mut inputs = vec!["x", "w"];
        let mut attrs = attrs;
        attrs.push(int("group", group));
        let mut case = case(&format!("convtranspose-{name}"), 13)
            .input("x", &dims)
            .weight("w", &w_shape);
        if bias {
            case = case.weight("b", &[m as usize]);
            inputs.push("b");
        }
        case.node("ConvTranspose", &inputs, &["y"], attrs)
            .output("y")
    };
    run_all(vec![
        ct("basic", 2, 3, 1, &[4, 4], &[3, 3], vec![], true),
        ct(
            "stride2",
            2,
            3,
            1,
            &[3, 4],
            &[3, 3],
            vec![ints("strides", &[2, 2])],
            false,
        ),
        ct(
            "pads",
            2,
            2,
            1,
            &[4, 4],
            &[3, 3],
            vec![ints("strides", &[2, 2]), ints("pads", &[1, 0, 1, 2])],
            true,
        ),
        ct(
            "output-padding",
            2,
            2,
            1,
            &[3, 3],
            &[3, 3],
            vec![ints("strides", &[2, 2]), ints("output_padding", &[1, 0])],
            false,
        ),
        ct(
            "dilation",
            2,
            2,
            1,
            &[4, 4],
            &[2, 2],
            vec![ints("dilations", &[2, 2])],
            false,
        ),
        ct(
            "groups",
            4,
            4,
            2,
            &[3, 3],
            &[2, 2],
            vec![ints("strides", &[2, 1])],
            true,
        ),
        // output_shape and auto_pad variants: tract cannot run them, see tests/ort_cases.rs.
        ct(
            "1d",
            3,
            2,
            1,
            &[5],
            &[3],
            vec![ints("strides", &[2]), ints("pads", &[1, 1])],
            true,
        ),
    ]);
}

/// A recurrent op type and its number of gate blocks.
#[derive(Clone, Copy)]
struct Rnn(&'static str, usize);
const LSTM: Rnn = Rnn("LSTM", 4);
const GRU: Rnn = Rnn("GRU", 3);
const RNN: Rnn = Rnn("RNN", 1);

/// An LSTM, GRU or RNN with hidden size 5 over x [N, 4, 3] as exporters feed it: transposed to
/// [4, N, 3] for layout 0, as is for layout 1. `inputs` after X, W, R, B, where the names of
/// `states` are initial states computed from x; `outputs` named Y, Y_h (and LSTM's Y_c).
fn rnn(
    kind: Rnn,
    name: &str,
    directions: usize,
    attrs: Vec<Attr>,
    inputs: &[&str],
    states: &[&str],
    outputs: &[&str],
) -> Case {
    let batch_first = attrs.iter().any(|a| matches!(a, Attr::Int("layout", 1)));
    let (c, xs) = rnn_operands(kind, name, directions, batch_first, states);
    let c = c.node(kind.0, &rnn_inputs(xs, inputs), outputs, with_hidden(attrs));
    graph_outputs(c, outputs)
}

/// The reverse op (layout 0) of [`rnn`] with these arguments, checked against the forward op
/// on the time-reversed sequence with Y reversed back: tract 0.23 drops the initial state of
/// a reverse LSTM, GRU or RNN (onnxruntime agrees with tfe).
fn reversed(
    kind: Rnn,
    name: &str,
    attrs: impl Fn() -> Vec<Attr>,
    inputs: &[&str],
    states: &[&str],
    outputs: &[&str],
) -> Case {
    let mut reverse = vec![Attr::Str("direction", "reverse")];
    reverse.extend(attrs());
    rnn(kind, name, 1, reverse, inputs, states, outputs).reference(reversed_forward(
        kind,
        name,
        attrs(),
        inputs,
        states,
        outputs,
    ))
}

/// The forward op on the time-reversed sequence, Y reversed back.
fn reversed_forward(
    kind: Rnn,
    name: &str,
    attrs: Vec<Attr>,
    inputs: &[&str],
    states: &[&str],
    outputs: &[&str],
) -> Case {
    let (c, xs) = rnn_operands(kind, name, 1, false, states);
    let back = |from: &str, to: &str, c: Case| {
        c.node(
            "Slice",
            &[from, "first", "past", "time", "back"],
            &[to],
            vec![],
        )
    };
    let c = c
        .init_i64("first", &[-1])
        .init_i64("past", &[i64::MIN])
        .init_i64("time", &[0])
        .init_i64("back", &[-1]);
    let c = back(xs, "xr", c);
    let forward_outputs: Vec<&str> = ["y_forward"]
        .into_iter()
        .chain(outputs[1..].iter().copied())
        .collect();
    let c = c.node(
        kind.0,
        &rnn_inputs("xr", inputs),
        &forward_outputs,
        with_hidden(attrs),
    );
    graph_outputs(back("y_forward", outputs[0], c), outputs)
}

/// [`rnn`] with layout 1 (batch first) and a computed initial state.
fn layout_1(kind: Rnn, name: &str) -> Case {
    let attrs = vec![int("layout", 1)];
    rnn(kind, name, 1, attrs, &["", "h0"], &["h0"], &["y", "y_h"])
}

/// x, the transposed sequence for layout 0, the parameters and the computed `states`.
fn rnn_operands(
    kind: Rnn,
    name: &str,
    directions: usize,
    batch_first: bool,
    states: &[&str],
) -> (Case, &'static str) {
    let c = case(name, 14)
        .input("x", &[N, Some(4), Some(3)])
        .weight("w", &[directions, 5 * kind.1, 3])
        .weight("r", &[directions, 5 * kind.1, 5])
        .weight_scaled("b", &[directions, 10 * kind.1], 0.5);
    let (c, xs) = if batch_first {
        (c, "x")
    } else {
        let perm = vec![ints("perm", &[1, 0, 2])];
        (c.node("Transpose", &["x"], &["xs"], perm), "xs")
    };
    let c = states
        .iter()
        .fold(c, |c, state| with_state(c, state, batch_first));
    (c, xs)
}

fn rnn_inputs<'a>(xs: &'a str, inputs: &[&'a str]) -> Vec<&'a str> {
    [xs, "w", "r", "b"]
        .into_iter()
        .chain(inputs.iter().copied())
        .collect()
}

fn with_hidden(mut attrs: Vec<Attr>) -> Vec<Attr> {
    attrs.push(int("hidden_size", 5));
    attrs
}

fn graph_outputs(c: Case, outputs: &[&str]) -> Case {
    outputs
        .iter()
        .filter(|o| !o.is_empty())
        .fold(c, |c, o| c.output(o))
}

/// A secret initial state computed from the input: tanh(x[:, 0, :] V) as [1, N, 5] (or
/// [N, 1, 5] batch first).
fn with_state(c: Case, name: &str, batch_first: bool) -> Case {
    let (first, v, proj, t) = (
        format!("{name}_x0"),
        format!("{name}_v"),
        format!("{name}_p"),
        format!("{name}_t"),
    );
    c.weight(&v, &[3, 5])
        .init_i64(&format!("{name}_idx"), &[0])
        .init_i64(&format!("{name}_axis"), &[if batch_first { 1 } else { 0 }])
        .node(
            "Gather",
            &["x", &format!("{name}_idx")],
            &[&first],
            vec![int("axis", 1)],
        )
        .node(
            "Squeeze",
            &[&first, &format!("{name}_idx_sq")],
            &[&format!("{first}_sq")],
            vec![],
        )
        .init_i64(&format!("{name}_idx_sq"), &[1])
        .node("MatMul", &[&format!("{first}_sq"), &v], &[&proj], vec![])
        .node("Tanh", &[&proj], &[&t], vec![])
        .node("Unsqueeze", &[&t, &format!("{name}_axis")], &[name], vec![])
}

#[test]
fn lstm_unrolled() {
    let forward = rnn(LSTM, "lstm-forward", 1, vec![], &[], &[], &["y", "y_h"]);
    let reverse = reversed(
        LSTM,
        "lstm-reverse-initial-states",
        Vec::new,
        &["", "h0", "c0"],
        &["h0", "c0"],
        &["y", "", "y_c"],
    );
    let bidirectional = rnn(
        LSTM,
        "lstm-bidirectional",
        2,
        vec![Attr::Str("direction", "bidirectional")],
        &[],
        &[],
        &["y", "y_h", "y_c"],
    );
    let batch_first = layout_1(LSTM, "lstm-layout-1");
    let constant_states = case("lstm-constant-states", 14)
        .input("x", &[Some(2), Some(4), Some(3)])
        .weight("w", &[1, 20, 3])
        .weight("r", &[1, 20, 5])
        .weight("h0", &[1, 2, 5])
        .weight("c0", &[1, 2, 5])
        .node("Transpose", &["x"], &["xs"], vec![ints("perm", &[1, 0, 2])])
        .node(
            "LSTM",
            &["xs", "w", "r", "", "", "h0", "c0"],
            &["y"],
            vec![int("hidden_size", 5)],
        )
        .output("y")
        .fixed_shapes();
    let peepholes = rnn(
        LSTM,
        "lstm-peepholes",
        1,
        vec![],
        &["", "", "c0", "p"],
        &["c0"],
        &["y", "y_h", "y_c"],
    )
    .weight("p", &[1, 15]);
    let peepholes_from_zero = rnn(
        LSTM,
        "lstm-peepholes-zero-state",
        1,
        vec![],
        &["", "", "", "p"],
        &[],
        &["y"],
    )
    .weight("p", &[1, 15]);
    run_all(vec![
        forward,
        reverse,
        bidirectional,
        batch_first,
        constant_states,
        peepholes,
        peepholes_from_zero,
    ]);
    refuse_all(vec![
        (
            rnn(
                LSTM,
                "refuse-lstm-clip",
                1,
                vec![float("clip", 3.0)],
                &[],
                &[],
                &["y"],
            ),
            &["LSTM with a cell clip"],
        ),
        (
            rnn(
                LSTM,
                "refuse-lstm-input-forget",
                1,
                vec![int("input_forget", 1)],
                &[],
                &[],
                &["y"],
            ),
            &["input_forget=1"],
        ),
    ]);
}

#[test]
fn gru_unrolled() {
    let before_reset = || int("linear_before_reset", 1);
    let pytorch_form = rnn(
        GRU,
        "gru-linear-before-reset",
        1,
        vec![before_reset()],
        &[],
        &[],
        &["y", "y_h"],
    );
    let onnx_default = rnn(
        GRU,
        "gru-default",
        1,
        vec![],
        &["", "h0"],
        &["h0"],
        &["y", "y_h"],
    );
    let reverse = reversed(
        GRU,
        "gru-reverse-initial-state",
        || vec![before_reset()],
        &["", "h0"],
        &["h0"],
        &["y"],
    );
    let bidirectional = rnn(
        GRU,
        "gru-bidirectional",
        2,
        vec![Attr::Str("direction", "bidirectional"), before_reset()],
        &[],
        &[],
        &["y", "y_h"],
    );
    let batch_first = layout_1(GRU, "gru-layout-1");
    run_all(vec![
        pytorch_form,
        onnx_default,
        reverse,
        bidirectional,
        batch_first,
    ]);
    refuse_all(vec![(
        rnn(
            GRU,
            "refuse-gru-clip",
            1,
            vec![float("clip", 3.0)],
            &[],
            &[],
            &["y"],
        ),
        &["GRU with a cell clip"],
    )]);
}

/// The forward ReLU RNN of [`rnn`] (layout 0, no initial state) spelled out step by step in
/// MatMul, Add and Relu: tract 0.23 applies tanh whatever an RNN's activations say.
fn relu_rnn_reference(name: &str) -> Case {
    let (mut c, xs) = rnn_operands(RNN, name, 1, false, &[]);
    c = c
        .init_i64("axis0", &[0])
        .init_i64("lo", &[0])
        .init_i64("mid", &[5])
        .init_i64("hi", &[10])
        .node("Squeeze", &["w", "axis0"], &["w2"], vec![])
        .node("Transpose", &["w2"], &["wt"], vec![])
        .node("Squeeze", &["r", "axis0"], &["r2"], vec![])
        .node("Transpose", &["r2"], &["rt"], vec![])
        .node("Squeeze", &["b", "axis0"], &["b1"], vec![])
        .node("Slice", &["b1", "lo", "mid"], &["wb"], vec![])
        .node("Slice", &["b1", "mid", "hi"], &["rb"], vec![])
        .node("Add", &["wb", "rb"], &["bias"], vec![]);
    let mut steps = vec![];
    for t in 0..4 {
        let n = |what: &str| format!("{what}{t}");
        c = c
            .init_i64_shaped(&n("index"), &[], &[t])
            .node(
                "Gather",
                &[xs, &n("index")],
                &[&n("x")],
                vec![int("axis", 0)],
            )
            .node("MatMul", &[&n("x"), "wt"], &[&n("xw")], vec![])
            .node("Add", &[&n("xw"), "bias"], &[&n("in")], vec![]);
        let input = if t == 0 {
            n("in")
        } else {
            let prev = format!("h{}", t - 1);
            c = c.node("MatMul", &[&prev, "rt"], &[&n("hr")], vec![]).node(
                "Add",
                &[&n("in"), &n("hr")],
                &[&n("pre")],
                vec![],
            );
            n("pre")
        };
        c = c
            .node("Relu", &[&input], &[&n("h")], vec![])
            .init_i64(&n("axes"), &[0, 1])
            .node("Unsqueeze", &[&n("h"), &n("axes")], &[&n("y")], vec![]);
        steps.push(n("y"));
    }
    let steps: Vec<&str> = steps.iter().map(String::as_str).collect();
    c.node("Concat", &steps, &["y"], vec![int("axis", 0)])
        .node("Unsqueeze", &["h3", "axis0"], &["y_h"], vec![])
        .output("y")
        .output("y_h")
}

#[test]
fn rnn_unrolled() {
    let tanh = rnn(RNN, "rnn-tanh", 1, vec![], &[], &[], &["y", "y_h"]);
    let relu = rnn(
        RNN,
        "rnn-relu",
        1,
        vec![Attr::Strs("activations", vec!["Relu"])],
        &[],
        &[],
        &["y", "y_h"],
    )
    .reference(relu_rnn_reference("rnn-relu"));
    let reverse = reversed(
        RNN,
        "rnn-reverse-initial-state",
        Vec::new,
        &["", "h0"],
        &["h0"],
        &["y"],
    );
    let batch_first = layout_1(RNN, "rnn-layout-1");
    run_all(vec![tanh, relu, reverse, batch_first]);
    refuse_all(vec![(
        rnn(
            RNN,
            "refuse-rnn-sigmoid",
            1,
            vec![Attr::Strs("activations", vec!["Sigmoid"])],
            &[],
            &[],
            &["y"],
        ),
        &["RNN activations", "Tanh"],
    )]);
}

/// `--sigmoid piecewise` swaps the approximation in the plan and keeps within its bar.
#[test]
fn piecewise_sigmoid_option() {
    use tfe::lower::{Options, SigmoidMethod, convert};
    use tfe::plan::{Function, Op};
    use tfe::serve::{Mode, predict};
    let mut onnx = common::OnnxBuilder::new(13);
    onnx.input("x", &[N, Some(40)])
        .node("Sigmoid", &["x"], &["y"], vec![])
        .output("y");
    let path = onnx.save("piecewise-sigmoid");
    let options = Options {
        sigmoid: SigmoidMethod::Piecewise,
        ..Options::default()
    };
    let plan = convert(&path, options).unwrap().plan;
    assert!(plan.steps.iter().any(|s| s.op
        == Op::Function {
            function: Function::SigmoidPiecewise
        }));
    let x = common::random(&[2, 40], 5, 10.0);
    let got = predict(&plan, std::slice::from_ref(&x), Mode::Mpc)
        .unwrap()
        .outputs
        .remove(0);
    let exact = x.mapv(|v| 1.0 / (1.0 + (-v).exp()));
    let err = common::max_abs_diff(&got, &exact);
    assert!(err < 3.6e-3 && err > 1e-4, "piecewise sigmoid error {err}");
}
