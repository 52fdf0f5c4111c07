//! LSTM, GRU and RNN unrolled over time (src/lower/recurrent.rs): directions, layouts,
//! initial states, peepholes, and the attributes that are refused.

use crate::common::Attr;
use crate::common::cases::*;

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
