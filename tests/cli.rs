//! The two command-line tools run as the user runs them: exit codes, what reaches stdout and
//! stderr, and that every mistake (missing or damaged files, bad inputs, bad flags) ends in
//! a one-paragraph message naming the file or input and saying what to do, never a panic.

mod common;

use common::tool::{Run, expect_error, expect_ok, run};
use common::{
    Attr, OnnxBuilder, assert_parties_sent_what_was_estimated, max_abs_diff, printed_numbers,
    profile_table, read_npy, temp_dir,
};
use ndarray::{ArrayD, IxDyn};
use ndarray_npy::{WritableElement, WriteNpyExt};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

const CONVERT: &str = env!("CARGO_BIN_EXE_tfe-convert");
const PREDICT: &str = env!("CARGO_BIN_EXE_tfe-predict");

/// Max |logit error| allowed against onnxruntime (fixed point and mpc).
const LOGIT_TOLERANCE: f32 = 1e-2;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn convert<S: AsRef<OsStr>>(args: &[S]) -> Run {
    run(CONVERT, args)
}

fn predict<S: AsRef<OsStr>>(args: &[S]) -> Run {
    run(PREDICT, args)
}

fn fixture(name: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
        .join(file)
}

fn s(path: &Path) -> String {
    path.display().to_string()
}

/// The mlp fixture converted once (default options) for every test that only reads it.
fn mlp_plan() -> &'static Path {
    static PLAN: OnceLock<PathBuf> = OnceLock::new();
    PLAN.get_or_init(|| {
        let plan = temp_dir("cli-shared-mlp-plan").join("mlp.plan");
        expect_ok(&convert(&[
            s(&fixture("mlp", "model.onnx")),
            "-o".into(),
            s(&plan),
        ]));
        plan
    })
}

fn write_npy<T: WritableElement>(path: &Path, array: &ArrayD<T>) {
    array
        .write_npy(std::fs::File::create(path).unwrap())
        .unwrap();
}

fn array(shape: &[usize], values: Vec<f32>) -> ArrayD<f32> {
    ArrayD::from_shape_vec(IxDyn(shape), values).unwrap()
}

/// The byte ranges of a plan file's two sections (see src/plan/format.rs).
struct Layout {
    graph: std::ops::Range<usize>,
    weights: std::ops::Range<usize>,
}

fn layout(bytes: &[u8]) -> Layout {
    let len_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap()) as usize;
    let graph_start = 8 + 4 + 8;
    let graph = graph_start..graph_start + len_at(12);
    let weights_start = graph.end + 32 + 8;
    let weights = weights_start..weights_start + len_at(graph.end + 32);
    assert_eq!(weights.end + 32, bytes.len(), "unexpected plan layout");
    Layout { graph, weights }
}

/// Writes `bytes` to `dir/name` and asserts tfe-predict rejects it as a plan with `needles`.
fn expect_bad_plan(dir: &Path, name: &str, bytes: &[u8], needles: &[&str]) {
    let plan = dir.join(name);
    std::fs::write(&plan, bytes).unwrap();
    let r = predict(&[s(&plan), s(&fixture("mlp", "input_b1.npy"))]);
    let mut all = vec![plan.to_str().unwrap()];
    all.extend_from_slice(needles);
    expect_error(&r, 1, &all);
}

/// Runs the mlp plan on `input` (written to a temp file) and expects an error with `needles`.
fn expect_bad_input<T: WritableElement>(test: &str, input: &ArrayD<T>, needles: &[&str]) {
    let path = temp_dir(test).join("x.npy");
    write_npy(&path, input);
    for mode in ["mpc", "float"] {
        let r = predict(&[s(mlp_plan()), s(&path), "--mode".into(), mode.into()]);
        expect_error(&r, 1, needles);
    }
}

/// A model with several unsupported operators, two of them repeated and one in a custom
/// domain, around a supported Relu.
fn unsupported_model(test: &str) -> PathBuf {
    let mut b = OnnxBuilder::new(17);
    b.input("x", &[None, Some(4)])
        .output("n1")
        .output("n2")
        .output("t")
        .output("c1")
        .output("c2")
        .node("Relu", &["x"], &["r"], vec![]) // relu_0
        .node("NonMaxSuppression", &["r", "r"], &["n1"], vec![]) // nonmaxsuppression_1
        .node(
            "StringNormalizer",
            &["r"],
            &["t"],
            vec![Attr::Str("case_change_action", "LOWER")],
        ) // stringnormalizer_2
        .node("NonMaxSuppression", &["r", "r"], &["n2"], vec![]) // nonmaxsuppression_3
        .node("SecretSauce", &["r"], &["c1"], vec![]) // secretsauce_4
        .in_domain("com.example.private")
        .node("SecretSauce", &["c1"], &["c2"], vec![]) // secretsauce_5
        .in_domain("com.example.private");
    b.save_with_opsets(test, &[("com.example.private", 1)])
}

const UNSUPPORTED_NODES: [&str; 5] = [
    "nonmaxsuppression_1",
    "stringnormalizer_2",
    "nonmaxsuppression_3",
    "secretsauce_4",
    "secretsauce_5",
];

/// Two inputs (plus an initializer that older exporters list among the graph inputs) and two
/// outputs: d = x - y, e = d + w.
fn two_in_two_out_model(test: &str) -> PathBuf {
    let mut b = OnnxBuilder::new(17);
    b.input("x", &[None, Some(3)])
        .input("w", &[Some(3)])
        .input("y", &[None, Some(3)])
        .init("w", &array(&[3], vec![0.5, -1.0, 2.0]))
        .output("d")
        .output("e")
        .node("Sub", &["x", "y"], &["d"], vec![])
        .node("Add", &["d", "w"], &["e"], vec![]);
    b.save(test)
}

// ---------------------------------------------------------------------------------------
// Happy paths
// ---------------------------------------------------------------------------------------

#[test]
fn convert_then_predict_to_a_file_matches_onnxruntime() {
    let dir = temp_dir("cli-happy-mpc");
    let plan = dir.join("mlp.plan");
    let r = convert(&[s(&fixture("mlp", "model.onnx")), "-o".into(), s(&plan)]);
    expect_ok(&r);
    assert!(
        r.stdout.contains(&format!("wrote {}", s(&plan))) && r.stdout.contains("any batch size"),
        "{r}"
    );
    let out = dir.join("out.npy");
    let r = predict(&[
        s(&plan),
        s(&fixture("mlp", "input_b1.npy")),
        "-o".into(),
        s(&out),
    ]);
    expect_ok(&r);
    assert!(
        r.stdout.is_empty(),
        "with -o nothing is printed on stdout\n{r}"
    );
    assert!(r.stderr.contains("mpc: batch 1"), "{r}");
    let err = max_abs_diff(
        &read_npy(&out),
        &read_npy(&fixture("mlp", "expected_b1.npy")),
    );
    assert!(err <= LOGIT_TOLERANCE, "max |error| {err}");
}

#[test]
fn convert_writes_next_to_the_model_without_o_and_honours_frac_bits() {
    let dir = temp_dir("cli-default-output");
    let model = dir.join("digits.onnx");
    std::fs::copy(fixture("mlp", "model.onnx"), &model).unwrap();
    let r = convert(&[s(&model), "--frac-bits".into(), "20".into()]);
    expect_ok(&r);
    assert!(r.stdout.contains("20 fractional bits"), "{r}");
    let plan = dir.join("digits.plan");
    assert!(plan.is_file(), "no plan at {}\n{r}", plan.display());
    let r = predict(&[
        s(&plan),
        s(&fixture("mlp", "input_b1.npy")),
        "--mode".into(),
        "fixed".into(),
    ]);
    expect_ok(&r);
}

#[test]
fn convert_json_summary_is_valid_json() {
    let plan = temp_dir("cli-convert-json").join("mlp.plan");
    let r = convert(&[
        s(&fixture("mlp", "model.onnx")),
        "-o".into(),
        s(&plan),
        "--json".into(),
    ]);
    expect_ok(&r);
    let v: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}\n{r}"));
    assert_eq!(v["plan"], s(&plan));
    assert_eq!(v["frac_bits"], 16);
    assert_eq!(
        v["batch"],
        serde_json::Value::Null,
        "the mlp serves any batch size"
    );
    assert_eq!(v["coverage"]["supported"], true);
}

#[test]
fn predict_without_o_prints_the_outputs() {
    let r = predict(&[s(mlp_plan()), s(&fixture("mlp", "input_b1.npy"))]);
    expect_ok(&r);
    let (head, body) = r.stdout.split_once('\n').expect("a heading line");
    assert_eq!(head, "output (shape [1, 10]):", "{r}");
    let printed = array(&[1, 10], printed_numbers(body));
    let err = max_abs_diff(&printed, &read_npy(&fixture("mlp", "expected_b1.npy")));
    assert!(err <= LOGIT_TOLERANCE, "max |error| {err}\n{r}");
}

#[test]
fn profile_prints_a_table_per_step_with_a_total_beside_the_estimate() {
    let out = temp_dir("cli-profile").join("out.npy");
    let r = predict(&[
        s(mlp_plan()),
        s(&fixture("mlp", "input_b1.npy")),
        "-o".into(),
        s(&out),
        "--profile".into(),
    ]);
    expect_ok(&r);
    let table = profile_table(&r.stderr).unwrap_or_else(|| panic!("no table\n{r}"));
    for column in ["op", "time ms", "bytes", "estimated", "rounds", "est."] {
        assert!(
            table.header.contains(column),
            "header lacks {column:?}\n{r}"
        );
    }
    // The mlp lowers to 8 steps (3 x MatMul + Add, 2 x Relu), and the reveal.
    assert_eq!(table.steps.len(), 9, "one line per step\n{r}");
    for node in [
        "/fc1/Gemm",
        "/Relu",
        "/fc2/Gemm",
        "/Relu_1",
        "/fc3/Gemm",
        "(reveal)",
    ] {
        assert!(
            table.steps.iter().any(|(l, _)| l.starts_with(node)),
            "no line for {node}\n{r}"
        );
    }
    table.assert_measured_equals_estimated();
    assert_parties_sent_what_was_estimated(&r.stderr, &["party 0", "party 1", "party 2"]);
}

/// Under Pond, and at a later request of a session where the truncations' dealer has
/// rotated on (one truncation per request, so the second request's is another party's),
/// each party still sends what the estimate of that request says.
#[test]
fn profile_estimates_each_partys_bytes_under_pond_and_on_later_requests() {
    let dir = temp_dir("cli-profile-parties");
    let mut b = OnnxBuilder::new(17);
    b.input("x", &[None, Some(6)])
        .output("y")
        .init("w", &common::random(&[6, 5], 7, 0.5))
        .node("MatMul", &["x", "w"], &["m"], vec![])
        .node("Relu", &["m"], &["y"], vec![]);
    let model = b.save("cli-profile-parties-model");
    let plan = dir.join("one-layer.plan");
    expect_ok(&convert(&[s(&model), "-o".into(), s(&plan)]));
    let input = dir.join("x.npy");
    write_npy(&input, &common::random(&[3, 6], 8, 1.0));
    for (protocol, names, repeat) in [
        ("aby3", ["party 0", "party 1", "party 2"], "2"),
        ("pond", ["server 0", "server 1", "crypto producer"], "1"),
    ] {
        let r = predict(&[
            s(&plan),
            s(&input),
            "--profile".into(),
            "--protocol".into(),
            protocol.into(),
            "--repeat".into(),
            repeat.into(),
        ]);
        expect_ok(&r);
        assert_parties_sent_what_was_estimated(&r.stderr, &names);
    }
}

#[test]
fn plaintext_modes_match_onnxruntime() {
    let dir = temp_dir("cli-modes");
    let expected = read_npy(&fixture("mlp", "expected_b1.npy"));
    for (mode, tolerance) in [("float", 1e-4), ("fixed", LOGIT_TOLERANCE)] {
        let out = dir.join(format!("{mode}.npy"));
        let r = predict(&[
            s(mlp_plan()),
            s(&fixture("mlp", "input_b1.npy")),
            "--mode".into(),
            mode.into(),
            "-o".into(),
            s(&out),
        ]);
        expect_ok(&r);
        assert!(r.stderr.contains(&format!("{mode}: batch 1")), "{r}");
        let err = max_abs_diff(&read_npy(&out), &expected);
        assert!(err <= tolerance, "{mode}: max |error| {err}");
    }
}

#[test]
fn one_plan_serves_batch_32() {
    let out = temp_dir("cli-batch32").join("out.npy");
    let r = predict(&[
        s(mlp_plan()),
        s(&fixture("mlp", "input_b32.npy")),
        "-o".into(),
        s(&out),
    ]);
    expect_ok(&r);
    assert!(r.stderr.contains("mpc: batch 32"), "{r}");
    let err = max_abs_diff(
        &read_npy(&out),
        &read_npy(&fixture("mlp", "expected_b32.npy")),
    );
    assert!(err <= LOGIT_TOLERANCE, "max |error| {err}");
}

#[test]
fn repeat_serves_requests_on_one_session() {
    let out = temp_dir("cli-repeat").join("out.npy");
    let input = fixture("mlp", "input_b1.npy");
    let args = [s(mlp_plan()), s(&input), "-o".into(), s(&out)];
    let r = predict(&[&args[..], &["--repeat".into(), "3".into()]].concat());
    expect_ok(&r);
    for i in 1..=3 {
        assert!(r.stderr.contains(&format!("request {i}: ")), "{r}");
    }
    assert!(r.stderr.contains("mpc: batch 1") && r.stderr.contains("one-time setup"));
    let err = max_abs_diff(
        &read_npy(&out),
        &read_npy(&fixture("mlp", "expected_b1.npy")),
    );
    assert!(err <= LOGIT_TOLERANCE, "max |error| {err}");
    let r = predict(&[s(mlp_plan()), s(&input), "--repeat".into(), "0".into()]);
    expect_error(&r, 2, &["--repeat"]);
    let float = ["--repeat", "2", "--mode", "float"].map(String::from);
    let r = predict(&[&args[..], &float].concat());
    expect_error(&r, 2, &["--repeat", "--mode mpc"]);
}

#[test]
fn cnn_plan_runs_at_batch_1_and_32() {
    let dir = temp_dir("cli-cnn");
    let plan = dir.join("cnn.plan");
    expect_ok(&convert(&[
        s(&fixture("cnn", "model.onnx")),
        "-o".into(),
        s(&plan),
    ]));
    for batch in [1, 32] {
        let out = dir.join(format!("out{batch}.npy"));
        let r = predict(&[
            s(&plan),
            s(&fixture("cnn", &format!("input_b{batch}.npy"))),
            "-o".into(),
            s(&out),
        ]);
        expect_ok(&r);
        let err = max_abs_diff(
            &read_npy(&out),
            &read_npy(&fixture("cnn", &format!("expected_b{batch}.npy"))),
        );
        assert!(err <= LOGIT_TOLERANCE, "batch {batch}: max |error| {err}");
    }
}

#[test]
fn inputs_and_outputs_follow_the_graph_order() {
    let dir = temp_dir("cli-order");
    let plan = dir.join("m.plan");
    expect_ok(&convert(&[
        s(&two_in_two_out_model("cli-order-model")),
        "-o".into(),
        s(&plan),
    ]));
    let (x, y) = (dir.join("x.npy"), dir.join("y.npy"));
    write_npy(&x, &array(&[2, 3], vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]));
    write_npy(&y, &array(&[2, 3], vec![0.5, 0.25, 1.0, -1.0, 2.0, 0.0]));
    let (d, e) = (dir.join("d.npy"), dir.join("e.npy"));
    for mode in ["mpc", "float"] {
        let r = predict(&[
            s(&plan),
            s(&x),
            s(&y),
            "-o".into(),
            s(&d),
            "-o".into(),
            s(&e),
            "--mode".into(),
            mode.into(),
        ]);
        expect_ok(&r);
        let want_d = array(&[2, 3], vec![0.5, 1.75, 2.0, 5.0, 3.0, 6.0]);
        let want_e = array(&[2, 3], vec![1.0, 0.75, 4.0, 5.5, 2.0, 8.0]);
        assert!(
            max_abs_diff(&read_npy(&d), &want_d) < 1e-3,
            "{mode}: d = x - y"
        );
        assert!(
            max_abs_diff(&read_npy(&e), &want_e) < 1e-3,
            "{mode}: e = d + w"
        );
    }
    // Without -o both outputs are printed, each under its name.
    let r = predict(&[s(&plan), s(&x), s(&y)]);
    expect_ok(&r);
    assert!(
        r.stdout.contains("d (shape [2, 3])") && r.stdout.contains("e (shape [2, 3])"),
        "{r}"
    );
}

// ---------------------------------------------------------------------------------------
// --check
// ---------------------------------------------------------------------------------------

#[test]
fn check_prints_one_line_per_node_and_exits_0() {
    let r = convert(&[s(&fixture("mlp", "model.onnx")), "--check".into()]);
    expect_ok(&r);
    for node in ["/fc1/Gemm", "/Relu", "/fc2/Gemm", "/Relu_1", "/fc3/Gemm"] {
        let line = r
            .stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(node));
        let line = line.unwrap_or_else(|| panic!("no line for {node}\n{r}"));
        assert!(line.ends_with("lowered"), "{line}");
    }
    assert!(
        r.stdout
            .contains("5 nodes: 5 lowered, 0 folded, 0 unsupported"),
        "{r}"
    );
    assert!(r.stdout.contains("every operator is supported"), "{r}");
}

/// The estimate counts the protocol's rounds (a ReLU layer is 4, a secret matmul with its
/// truncation 2, or 1 when the ReLU after it takes its truncation's second round), and
/// bytes that grow with the batch while rounds do not.
#[test]
fn check_estimates_the_cost_per_node() {
    let estimate = |batch: &str| {
        let r = convert(&[
            s(&fixture("mlp", "model.onnx")),
            "--check".into(),
            "--json".into(),
            "--batch".into(),
            batch.into(),
        ]);
        expect_ok(&r);
        let v: serde_json::Value =
            serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}\n{r}"));
        v["estimate"].clone()
    };
    let (one, four) = (estimate("1"), estimate("4"));
    assert_eq!(one["rounds"], 12, "{one}");
    assert_eq!(four["rounds"], 12, "{four}");
    let bytes = |v: &serde_json::Value| v["bytes"].as_u64().unwrap();
    // Bits packed 64 to a word fill up at larger batches.
    assert!(
        3 * bytes(&one) < bytes(&four) && bytes(&four) <= 4 * bytes(&one),
        "{one}\n{four}"
    );
    let relu = one["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["node"] == "/Relu")
        .expect("a /Relu entry");
    assert_eq!(relu["rounds"], 4, "{relu}");
    let rounds_of = |node: &str| {
        one["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|n| n["node"] == node)
            .unwrap()["rounds"]
            .clone()
    };
    // fc1 and fc2 feed a ReLU; fc3 is the output.
    assert_eq!(rounds_of("/fc1/Gemm"), 1, "{one}");
    assert_eq!(rounds_of("/fc3/Gemm"), 2, "{one}");
    // The parties' bytes and the client's input shares make up the total.
    let parties: u64 = (one["bytes_by_party"].as_array().unwrap().iter())
        .map(|b| b.as_u64().unwrap())
        .sum();
    assert_eq!(
        parties + one["input_bytes"].as_u64().unwrap(),
        bytes(&one),
        "{one}"
    );
    assert_eq!(one["party_roles"][2], "party 2", "{one}");
    let text = convert(&[s(&fixture("mlp", "model.onnx")), "--check".into()]);
    assert!(
        text.stdout
            .contains("estimated online cost per inference at batch 1"),
        "{text}"
    );
    assert!(text.stdout.contains("sent by party 0 "), "{text}");
}

#[test]
fn check_json_is_valid_and_supported() {
    let r = convert(&[
        s(&fixture("cnn_dynamic", "model.onnx")),
        "--check".into(),
        "--json".into(),
    ]);
    expect_ok(&r);
    let v: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}\n{r}"));
    assert_eq!(v["supported"], true, "{r}");
    let nodes = v["nodes"].as_array().expect("a node list");
    assert!(!nodes.is_empty());
    for n in nodes {
        assert!(n["name"].is_string() && n["op_type"].is_string(), "{n}");
        assert!(
            ["lowered", "folded"].contains(&n["status"].as_str().unwrap()),
            "{n}"
        );
    }
    assert_eq!(v["unsupported_op_types"], serde_json::json!({}));
}

// ---------------------------------------------------------------------------------------
// Unsupported operators
// ---------------------------------------------------------------------------------------

#[test]
fn check_lists_every_unsupported_op_with_counts() {
    let r = convert(&[
        s(&unsupported_model("cli-unsupported-check")),
        "--check".into(),
    ]);
    assert_eq!(r.code, 1, "{r}");
    let relu = r
        .stdout
        .lines()
        .find(|l| l.starts_with("relu_0"))
        .unwrap_or_else(|| panic!("{r}"));
    assert!(relu.contains("lowered"), "{relu}");
    for node in UNSUPPORTED_NODES {
        let line = r
            .stdout
            .lines()
            .find(|l| l.starts_with(node))
            .unwrap_or_else(|| panic!("no line for {node}\n{r}"));
        assert!(line.contains("UNSUPPORTED"), "{line}");
    }
    assert!(
        r.stdout
            .contains("6 nodes: 1 lowered, 0 folded, 5 unsupported"),
        "{r}"
    );
    assert!(
        r.stdout.contains(
            "unsupported op types: NonMaxSuppression (x2), SecretSauce (x2), StringNormalizer (x1)"
        ),
        "{r}"
    );
    assert!(
        r.stdout.contains("com.example.private"),
        "the custom domain is named\n{r}"
    );
}

#[test]
fn convert_lists_every_unsupported_op_at_once() {
    let model = unsupported_model("cli-unsupported-convert");
    let plan = model.with_extension("plan");
    let r = convert(&[s(&model), "-o".into(), s(&plan)]);
    let mut needles = vec![
        model.to_str().unwrap(),
        "cannot be converted",
        "NonMaxSuppression (x2)",
        "SecretSauce (x2)",
        "StringNormalizer (x1)",
        "com.example.private",
    ];
    needles.extend(UNSUPPORTED_NODES);
    expect_error(&r, 1, &needles);
    assert!(
        !r.stderr.contains("relu_0"),
        "the supported node is not a problem\n{r}"
    );
    assert!(
        !plan.exists(),
        "no plan is written for an unsupported model"
    );
}

#[test]
fn check_json_reports_unsupported() {
    let r = convert(&[
        s(&unsupported_model("cli-unsupported-json")),
        "--check".into(),
        "--json".into(),
    ]);
    assert_eq!(r.code, 1, "{r}");
    let v: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}\n{r}"));
    assert_eq!(v["supported"], false);
    assert_eq!(
        v["unsupported_op_types"],
        serde_json::json!({"NonMaxSuppression": 2, "SecretSauce": 2, "StringNormalizer": 1})
    );
    let unsupported: Vec<&str> = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["status"] == "unsupported")
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(unsupported, UNSUPPORTED_NODES);
}

// ---------------------------------------------------------------------------------------
// Bad model files
// ---------------------------------------------------------------------------------------

#[test]
fn missing_model_file() {
    let model = temp_dir("cli-missing-model").join("nowhere.onnx");
    for extra in [None, Some("--check")] {
        let mut args = vec![s(&model)];
        args.extend(extra.map(String::from));
        expect_error(
            &convert(&args),
            1,
            &[
                model.to_str().unwrap(),
                "cannot read model file",
                "No such file",
            ],
        );
    }
}

#[test]
fn a_file_that_is_not_onnx() {
    let dir = temp_dir("cli-not-onnx");
    let noise = dir.join("noise.onnx");
    // Deterministic bytes that are not a protobuf message.
    let bytes: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    std::fs::write(&noise, bytes).unwrap();
    let text = dir.join("notes.onnx");
    std::fs::write(&text, "this is a text file, not a model\n").unwrap();
    for file in [&noise, &text] {
        for extra in [None, Some("--check")] {
            let mut args = vec![s(file)];
            args.extend(extra.map(String::from));
            expect_error(
                &convert(&args),
                1,
                &[
                    file.to_str().unwrap(),
                    "is not an ONNX model",
                    "give the .onnx file",
                ],
            );
        }
    }
}

/// Integer inputs that no lookup reads (masks, labels) are numbers like any other input;
/// an input of a type tfe cannot take (strings) is refused by name.
#[test]
fn integer_and_unsupported_model_inputs() {
    let dir = temp_dir("cli-int64-input");
    let mut b = OnnxBuilder::new(17);
    b.input_typed("mask", 7, &[None, Some(4)])
        .output("y")
        .node("Relu", &["mask"], &["y"], vec![]);
    let model = b.save("cli-int64-input");
    let plan = dir.join("mask.plan");
    expect_ok(&convert(&[s(&model), "-o".into(), s(&plan)]));
    let ids = dir.join("mask.npy");
    write_npy(
        &ids,
        &ArrayD::from_shape_vec(IxDyn(&[2, 4]), vec![0i64, 1, -2, 3, 40, -5, 6, 0]).unwrap(),
    );
    let out = dir.join("y.npy");
    expect_ok(&predict(&[s(&plan), s(&ids), "-o".into(), s(&out)]));
    assert_eq!(
        read_npy(&out),
        array(&[2, 4], vec![0.0, 1.0, 0.0, 3.0, 40.0, 0.0, 6.0, 0.0])
    );
    let mut b = OnnxBuilder::new(17);
    b.input_typed("names", 8, &[None, Some(4)])
        .output("y")
        .node("Identity", &["names"], &["y"], vec![]);
    let model = b.save("cli-string-input");
    expect_error(
        &convert(&[s(&model)]),
        1,
        &[model.to_str().unwrap(), "graph input names", "int64"],
    );
}

#[test]
fn a_model_reading_an_undefined_tensor() {
    let mut b = OnnxBuilder::new(17);
    b.input("x", &[None, Some(4)])
        .output("y")
        .node("Relu", &["x"], &["r"], vec![])
        .node(
            "Add",
            &["r", "bias_that_was_never_exported"],
            &["y"],
            vec![],
        );
    let model = b.save("cli-undefined-tensor");
    let r = convert(&[s(&model)]);
    expect_error(
        &r,
        1,
        &[model.to_str().unwrap(), "bias_that_was_never_exported"],
    );
    let r = convert(&[s(&model), "--check".into()]);
    assert_eq!(r.code, 1, "{r}");
    assert!(r.stdout.contains("bias_that_was_never_exported"), "{r}");
}

// ---------------------------------------------------------------------------------------
// Damaged plans
// ---------------------------------------------------------------------------------------

fn plan_bytes() -> Vec<u8> {
    std::fs::read(mlp_plan()).unwrap()
}

#[test]
fn missing_plan_file() {
    let plan = temp_dir("cli-missing-plan").join("gone.plan");
    let r = predict(&[s(&plan), s(&fixture("mlp", "input_b1.npy"))]);
    expect_error(&r, 1, &[plan.to_str().unwrap(), "cannot read plan file"]);
}

#[test]
fn plan_file_io_errors_are_worded_right_and_said_once() {
    let dir = temp_dir("cli-plan-io");
    let plan = dir.join("gone.plan");
    let r = predict(&[s(&plan), s(&fixture("mlp", "input_b1.npy"))]);
    expect_error(&r, 1, &[plan.to_str().unwrap(), "cannot read plan file"]);
    assert_eq!(
        r.stderr.matches("No such file").count(),
        1,
        "the reason is given once\n{r}"
    );
    let plan = dir.join("no-such-dir").join("model.plan");
    let r = convert(&[s(&fixture("mlp", "model.onnx")), "-o".into(), s(&plan)]);
    expect_error(&r, 1, &[plan.to_str().unwrap(), "No such file"]);
    assert!(
        !r.stderr.contains("read"),
        "a failed write is not a failed read\n{r}"
    );
    assert_eq!(
        r.stderr.matches("No such file").count(),
        1,
        "the reason is given once\n{r}"
    );
}

#[test]
fn a_file_that_is_not_a_plan() {
    let dir = temp_dir("cli-not-a-plan");
    let needles = ["is not a tfe plan", "tfe-convert"];
    expect_bad_plan(
        &dir,
        "text.plan",
        b"hello, this is not a plan at all\n",
        &needles,
    );
    // The usual mistake: the ONNX model instead of its plan.
    let model = std::fs::read(fixture("mlp", "model.onnx")).unwrap();
    expect_bad_plan(&dir, "model.onnx", &model, &needles);
    let mut bytes = plan_bytes();
    bytes[0] ^= 0x20;
    expect_bad_plan(&dir, "magic.plan", &bytes, &needles);
}

#[test]
fn a_plan_of_another_format_version() {
    let dir = temp_dir("cli-plan-version");
    for version in [0u32, 1, 3, 0xdead_beef] {
        let mut bytes = plan_bytes();
        bytes[8..12].copy_from_slice(&version.to_le_bytes());
        let found = format!("is a version {version} plan");
        expect_bad_plan(
            &dir,
            &format!("v{version}.plan"),
            &bytes,
            &[&found, "convert the model again"],
        );
    }
}

#[test]
fn a_truncated_plan() {
    let dir = temp_dir("cli-plan-truncated");
    let bytes = plan_bytes();
    let l = layout(&bytes);
    let cuts = [
        (0, "is not a tfe plan"),
        (5, "is not a tfe plan"),
        (10, "no version"),
        (16, "graph section cut short"),
        (l.graph.start + l.graph.len() / 2, "graph section cut short"),
        (l.graph.end + 10, "graph section cut short"),
        (l.weights.start - 3, "weights section cut short"),
        (
            l.weights.start + l.weights.len() / 2,
            "weights section cut short",
        ),
        (bytes.len() - 1, "weights section cut short"),
    ];
    for (cut, what) in cuts {
        expect_bad_plan(
            &dir,
            &format!("cut{cut}.plan"),
            &bytes[..cut],
            &[what, "tfe-convert"],
        );
    }
    // Bytes after the last section are damage too.
    let mut longer = bytes.clone();
    longer.extend_from_slice(b"junk");
    expect_bad_plan(
        &dir,
        "longer.plan",
        &longer,
        &["unexpected bytes after the weights section", "tfe-convert"],
    );
}

#[test]
fn a_flipped_byte_fails_the_checksum() {
    let dir = temp_dir("cli-plan-flipped");
    let bytes = plan_bytes();
    let l = layout(&bytes);
    for (section, at) in [
        ("graph", l.graph.start + l.graph.len() / 3),
        ("graph", l.graph.end + 5), // in the graph's digest
        ("weights", l.weights.start + l.weights.len() / 2),
        ("weights", l.weights.end - 1),
    ] {
        let mut damaged = bytes.clone();
        damaged[at] ^= 0x01;
        let what = format!("the {section} section fails its checksum");
        expect_bad_plan(
            &dir,
            &format!("flip{at}.plan"),
            &damaged,
            &[&what, "convert the model again"],
        );
    }
}

/// A plan whose graph section was edited by hand and its checksum recomputed, as the JSON
/// section invites: the plan must be rejected up front, not fail inside the arithmetic.
fn edited_plan(edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    let bytes = plan_bytes();
    let l = layout(&bytes);
    let mut graph: serde_json::Value = serde_json::from_slice(&bytes[l.graph.clone()]).unwrap();
    edit(&mut graph);
    let graph = serde_json::to_vec(&graph).unwrap();
    let mut out = bytes[..12].to_vec();
    out.extend_from_slice(&(graph.len() as u64).to_le_bytes());
    out.extend_from_slice(&graph);
    out.extend_from_slice(&Sha256::digest(&graph));
    out.extend_from_slice(&bytes[l.graph.end + 32..]);
    out
}

#[test]
fn a_hand_edited_plan_with_an_inconsistent_graph() {
    let dir = temp_dir("cli-plan-edited");
    let bytes = edited_plan(|g| g["outputs"] = serde_json::json!([999]));
    expect_bad_plan(
        &dir,
        "outputs.plan",
        &bytes,
        &["truncated or damaged", "never computed"],
    );
    let bytes = edited_plan(|g| g["steps"][0]["inputs"] = serde_json::json!([0]));
    expect_bad_plan(
        &dir,
        "arity.plan",
        &bytes,
        &["truncated or damaged", "inputs, expected 2"],
    );
}

#[test]
fn a_hand_edited_plan_with_bad_frac_bits() {
    let dir = temp_dir("cli-plan-frac-bits");
    for frac_bits in [0, 27, 32, 99] {
        let bytes = edited_plan(|g| g["fixed_point"]["frac_bits"] = frac_bits.into());
        expect_bad_plan(
            &dir,
            &format!("f{frac_bits}.plan"),
            &bytes,
            &["fractional bits", "tfe-convert"],
        );
    }
}

// ---------------------------------------------------------------------------------------
// Bad inputs
// ---------------------------------------------------------------------------------------

#[test]
fn an_input_of_the_wrong_rank() {
    let x = ArrayD::<f32>::zeros(IxDyn(&[64]));
    expect_bad_input(
        "cli-input-rank",
        &x,
        &["input input must have rank 2 (shape [N, 64])", "[64]"],
    );
    let x = ArrayD::<f32>::zeros(IxDyn(&[1, 8, 8]));
    expect_bad_input(
        "cli-input-rank3",
        &x,
        &["input input must have rank 2", "[1, 8, 8]"],
    );
}

#[test]
fn an_input_of_the_wrong_shape() {
    let x = ArrayD::<f32>::zeros(IxDyn(&[1, 63]));
    expect_bad_input(
        "cli-input-shape",
        &x,
        &["input input must have shape [N, 64]", "[1, 63]"],
    );
    let empty = ArrayD::<f32>::zeros(IxDyn(&[0, 64]));
    expect_bad_input(
        "cli-input-empty",
        &empty,
        &["input input must have shape [N, 64]", "[0, 64]"],
    );
}

/// float64, int32 and bool files are read as numbers; other element types, and integers
/// float32 cannot hold exactly, are refused naming the file.
#[test]
fn input_files_of_other_element_types() {
    let dir = temp_dir("cli-input-dtype");
    let f32_path = dir.join("x32.npy");
    let x = ArrayD::from_shape_fn(IxDyn(&[1, 64]), |i| (i[1] % 7) as f32);
    write_npy(&f32_path, &x);
    let reference = predict(&[s(mlp_plan()), s(&f32_path), "--mode".into(), "float".into()]);
    expect_ok(&reference);
    let f64_path = dir.join("x64.npy");
    write_npy(&f64_path, &x.mapv(f64::from));
    let i32_path = dir.join("i32.npy");
    write_npy(&i32_path, &x.mapv(|v| v as i32));
    for path in [f64_path, i32_path] {
        let r = predict(&[s(mlp_plan()), s(&path), "--mode".into(), "float".into()]);
        expect_ok(&r);
        assert_eq!(r.stdout, reference.stdout, "{}", path.display());
    }
    let u16_path = dir.join("u16.npy");
    write_npy(&u16_path, &ArrayD::<u16>::zeros(IxDyn(&[1, 64])));
    expect_error(
        &predict(&[s(mlp_plan()), s(&u16_path)]),
        1,
        &[
            u16_path.to_str().unwrap(),
            "float32, float64, int32, int64 or bool",
        ],
    );
    let big_path = dir.join("big.npy");
    write_npy(&big_path, &ArrayD::from_elem(IxDyn(&[1, 64]), 1i64 << 30));
    expect_error(
        &predict(&[s(mlp_plan()), s(&big_path)]),
        1,
        &[big_path.to_str().unwrap(), "beyond the 2^24"],
    );
}

#[test]
fn an_input_that_is_not_npy() {
    let path = temp_dir("cli-input-not-npy").join("x.npy");
    std::fs::write(&path, "0.1, 0.2, 0.3\n").unwrap();
    let r = predict(&[s(mlp_plan()), s(&path)]);
    expect_error(
        &r,
        1,
        &[
            path.to_str().unwrap(),
            "is not a readable .npy file",
            "numpy.save",
        ],
    );
}

#[test]
fn a_missing_input_file() {
    let path = temp_dir("cli-input-missing").join("absent.npy");
    let r = predict(&[s(mlp_plan()), s(&path)]);
    expect_error(
        &r,
        1,
        &[
            path.to_str().unwrap(),
            "cannot open input file",
            "No such file",
        ],
    );
}

#[test]
fn non_finite_inputs() {
    for (test, value, shown) in [
        ("cli-input-nan", f32::NAN, "NaN"),
        ("cli-input-inf", f32::INFINITY, "inf"),
    ] {
        let mut x = read_npy(&fixture("mlp", "input_b1.npy"));
        x[[0, 5]] = value;
        let what = format!("element 5 is {shown}");
        expect_bad_input(
            test,
            &x,
            &["input input", &what, "inputs must be finite numbers"],
        );
    }
}

#[test]
fn input_encoding_errors_say_it_once() {
    let cases = [
        ("cli-input-nan-once", 5, f32::NAN, "element 5 is NaN"),
        ("cli-input-range-once", 7, 3e9, "element 7 is 3000000000"),
    ];
    for (test, index, value, what) in cases {
        let mut x = read_npy(&fixture("mlp", "input_b1.npy"));
        x[[0, index]] = value;
        let path = temp_dir(test).join("x.npy");
        write_npy(&path, &x);
        let r = predict(&[s(mlp_plan()), s(&path)]);
        expect_error(&r, 1, &[what]);
        assert_eq!(
            r.stderr.matches(what).count(),
            1,
            "the reason is given once\n{r}"
        );
    }
}

#[test]
fn an_input_outside_the_fixed_point_range() {
    let mut x = read_npy(&fixture("mlp", "input_b1.npy"));
    x[[0, 7]] = 3e9;
    expect_bad_input(
        "cli-input-range",
        &x,
        &[
            "input input",
            "element 7",
            "outside the fixed-point range",
            "scale the input down",
        ],
    );
}

#[test]
fn the_wrong_number_of_inputs() {
    let input = s(&fixture("mlp", "input_b1.npy"));
    let r = predict(&[s(mlp_plan()), input.clone(), input]);
    expect_error(
        &r,
        1,
        &[
            "the model takes 1 input(s) (input), but 2 were given",
            "one .npy file per input",
        ],
    );

    let dir = temp_dir("cli-input-count");
    let plan = dir.join("m.plan");
    expect_ok(&convert(&[
        s(&two_in_two_out_model("cli-input-count-model")),
        "-o".into(),
        s(&plan),
    ]));
    let x = dir.join("x.npy");
    write_npy(&x, &ArrayD::<f32>::zeros(IxDyn(&[2, 3])));
    let r = predict(&[s(&plan), s(&x)]);
    expect_error(
        &r,
        1,
        &[
            "the model takes 2 input(s) (x, y), but 1 were given",
            "in this order",
        ],
    );
    let y = dir.join("y.npy");
    write_npy(&y, &ArrayD::<f32>::zeros(IxDyn(&[3, 3])));
    let r = predict(&[s(&plan), s(&x), s(&y)]);
    expect_error(
        &r,
        1,
        &[
            "disagree on the batch size",
            "x has batch 2",
            "y has batch 3",
        ],
    );
}

#[test]
fn o_given_the_wrong_number_of_times() {
    let dir = temp_dir("cli-o-count");
    let (a, b) = (dir.join("a.npy"), dir.join("b.npy"));
    let r = predict(&[
        s(mlp_plan()),
        s(&fixture("mlp", "input_b1.npy")),
        "-o".into(),
        s(&a),
        "-o".into(),
        s(&b),
    ]);
    expect_error(
        &r,
        1,
        &[
            "the model has 1 output(s) (output) but -o was given 2 time(s)",
            "give -o once per output",
        ],
    );
    assert!(!a.exists() && !b.exists(), "nothing is written on an error");

    let plan = dir.join("m.plan");
    expect_ok(&convert(&[
        s(&two_in_two_out_model("cli-o-count-model")),
        "-o".into(),
        s(&plan),
    ]));
    let x = dir.join("x.npy");
    write_npy(&x, &ArrayD::<f32>::zeros(IxDyn(&[1, 3])));
    let r = predict(&[s(&plan), s(&x), s(&x), "-o".into(), s(&a)]);
    expect_error(
        &r,
        1,
        &["the model has 2 output(s) (d, e) but -o was given 1 time(s)"],
    );
}

#[test]
fn an_output_that_cannot_be_written() {
    let out = temp_dir("cli-output-unwritable")
        .join("no-such-dir")
        .join("out.npy");
    let r = predict(&[
        s(mlp_plan()),
        s(&fixture("mlp", "input_b1.npy")),
        "-o".into(),
        s(&out),
    ]);
    expect_error(&r, 1, &[out.to_str().unwrap(), "cannot create output file"]);
}

// ---------------------------------------------------------------------------------------
// Command-line usage errors: exit 2
// ---------------------------------------------------------------------------------------

#[test]
fn unknown_flags() {
    let model = s(&fixture("mlp", "model.onnx"));
    expect_error(
        &convert(&[model.as_str(), "--bogus"]),
        2,
        &["--bogus", "Usage"],
    );
    let input = s(&fixture("mlp", "input_b1.npy"));
    expect_error(
        &predict(&[s(mlp_plan()), input, "--fast".into()]),
        2,
        &["--fast", "Usage"],
    );
}

#[test]
fn missing_required_arguments() {
    expect_error(&convert::<&str>(&[]), 2, &["<MODEL>", "Usage"]);
    expect_error(&predict::<&str>(&[]), 2, &["<PLAN>", "Usage"]);
    expect_error(&predict(&[s(mlp_plan())]), 2, &["<INPUTS>", "Usage"]);
    expect_error(
        &convert(&[s(&fixture("mlp", "model.onnx")), "-o".into()]),
        2,
        &["-o", "value"],
    );
}

#[test]
fn an_unknown_mode() {
    let r = predict(&[
        s(mlp_plan()),
        s(&fixture("mlp", "input_b1.npy")),
        "--mode".into(),
        "bogus".into(),
    ]);
    expect_error(&r, 2, &["'bogus'", "--mode", "mpc, fixed, float"]);
}

#[test]
fn frac_bits_out_of_range() {
    let model = s(&fixture("mlp", "model.onnx"));
    for bits in ["0", "99", "many"] {
        let r = convert(&[model.as_str(), "--frac-bits", bits]);
        expect_error(&r, 2, &["--frac-bits", bits]);
    }
    let r = convert(&[model.as_str(), "--frac-bits", "0"]);
    assert!(r.stderr.contains("1..=26"), "the range is given\n{r}");
}

// ---------------------------------------------------------------------------------------
// Networked mode: misplaced files and bad arguments fail before any connection
// ---------------------------------------------------------------------------------------

const PKI: &str = env!("CARGO_BIN_EXE_tfe-pki");

#[test]
fn share_files_are_refused_where_they_do_not_belong() {
    let dir = temp_dir("cli-share-files");
    let plan = dir.join("mlp.plan");
    expect_ok(&convert(&[
        s(mlp_plan()),
        "--share".into(),
        "-o".into(),
        s(&plan),
    ]));
    let input = s(&fixture("mlp", "input_b1.npy"));
    let party = s(&dir.join("mlp.party0.plan"));
    expect_error(
        &predict(&[party.as_str(), input.as_str()]),
        1,
        &[
            "mlp.party0.plan",
            "is a share file for the networked mode",
            "tfe-party",
        ],
    );
    let missing = s(&dir.join("nowhere.json"));
    let client = s(&dir.join("mlp.client.plan"));
    expect_error(
        &predict(&[
            "--config",
            missing.as_str(),
            client.as_str(),
            input.as_str(),
        ]),
        1,
        &["nowhere.json"],
    );
}

#[test]
fn a_test_pki_needs_three_ports() {
    let dir = s(&temp_dir("cli-pki"));
    expect_error(
        &run(PKI, &[dir.as_str(), "--ports", "7000,7001"]),
        1,
        &["three ports"],
    );
}
