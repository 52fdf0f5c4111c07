//! End to end on the committed fixtures, made by the exporters users run (torch.onnx.export
//! both ways, tf2onnx, skl2onnx, a frozen TensorFlow graph, Hugging Face and timm models):
//! convert, then run in every mode at batch 1 and a larger batch (32, or what the manifest
//! lists) with one plan, against the outputs of the plaintext runtime.

mod common;

use common::max_abs_diff;
use ndarray::ArrayD;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use tfe::exec::estimate;
use tfe::lower::{Options, convert};
use tfe::mpc::Protocol;
use tfe::plan::Plan;
use tfe::serve::{Mode, Prediction, predict};

/// Max |output error| allowed against the plaintext runtime (the issues' bar).
const OUTPUT_TOLERANCE: f32 = 1e-2;
/// The float interpreter must match the source model much more closely: it only reorders
/// float operations.
const FLOAT_TOLERANCE: f32 = 1e-4;

fn top1(a: &ArrayD<f32>) -> Vec<usize> {
    a.rows()
        .into_iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .fold(0, |best, (i, v)| if *v > r[best] { i } else { best })
        })
        .collect()
}

/// What a fixture's manifest entry says about its files: per graph input and per output,
/// the file for each batch size; class labels (int64) are compared exactly.
struct Files {
    batches: Vec<usize>,
    inputs: Vec<BTreeMap<usize, String>>,
    outputs: Vec<(BTreeMap<usize, String>, bool)>,
}

/// `{"b1": "input_b1.npy", "b32": ...}` by batch size.
fn by_batch(files: &serde_json::Value) -> Option<BTreeMap<usize, String>> {
    files
        .as_object()?
        .iter()
        .map(|(b, f)| Some((b.strip_prefix('b')?.parse().ok()?, f.as_str()?.to_string())))
        .collect()
}

/// The fixture's files from fixtures/manifest.json; entries that list no files per batch
/// have one input `input_bB.npy` and outputs `expected_bB.npy` (or labels and
/// probabilities) at batches 1 and 32.
fn files(name: &str, dir: &Path) -> Files {
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("../manifest.json")).unwrap())
            .unwrap();
    let entry = &manifest["fixtures"][name];
    let inputs: Option<Vec<_>> = entry["inputs"].as_array().and_then(|inputs| {
        inputs
            .iter()
            .map(|i| by_batch(&i["saved_as"]["files"]))
            .collect()
    });
    let outputs: Option<Vec<_>> = entry["outputs"].as_array().and_then(|outputs| {
        outputs
            .iter()
            .map(|o| Some((by_batch(&o["expected"])?, o["saved_as"]["dtype"] == "int64")))
            .collect()
    });
    let batches = [1, 32];
    let per_batch = |pattern: &str| batches.map(|b| (b, pattern.replace("{b}", &b.to_string())));
    let inputs = inputs.unwrap_or_else(|| vec![per_batch("input_b{b}.npy").into()]);
    let outputs = outputs.unwrap_or_else(|| {
        if dir.join("expected_b1.npy").exists() {
            vec![(per_batch("expected_b{b}.npy").into(), false)]
        } else {
            vec![
                (per_batch("expected_b{b}_labels.npy").into(), true),
                (per_batch("expected_b{b}_probabilities.npy").into(), false),
            ]
        }
    });
    Files {
        batches: inputs[0].keys().copied().collect(),
        inputs,
        outputs,
    }
}

fn model_file(dir: &Path) -> PathBuf {
    let onnx = dir.join("model.onnx");
    if onnx.exists() {
        onnx
    } else {
        dir.join("model.pb")
    }
}

/// An .npy file as reals, whatever its element type (token ids and labels are int64).
fn read_numbers(path: &Path) -> ArrayD<f32> {
    tfe::cli::read_npy(path).unwrap_or_else(|e| panic!("{e:#}"))
}

fn check_fixture(name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    let files = files(name, &dir);
    let converted =
        convert(&model_file(&dir), Options::default()).unwrap_or_else(|e| panic!("{name}: {e:#}"));
    let plan = tfe::plan::Plan::from_bytes(&converted.plan.to_bytes(), name).unwrap();
    for &batch in &files.batches {
        let inputs: Vec<ArrayD<f32>> = files
            .inputs
            .iter()
            .map(|f| read_numbers(&dir.join(&f[&batch])))
            .collect();
        let expected: Vec<(ArrayD<f32>, bool)> = files
            .outputs
            .iter()
            .map(|(f, exact)| (read_numbers(&dir.join(&f[&batch])), *exact))
            .collect();
        for (mode, tolerance) in [
            (Mode::Float, FLOAT_TOLERANCE),
            (Mode::Fixed, OUTPUT_TOLERANCE),
            (Mode::Mpc(Protocol::Aby3), OUTPUT_TOLERANCE),
            (Mode::Mpc(Protocol::Pond), OUTPUT_TOLERANCE),
        ] {
            let prediction = predict(&plan, &inputs, mode).unwrap();
            if let Mode::Mpc(protocol) = mode {
                check_cost_estimate(name, &plan, batch, protocol, &prediction);
            }
            let got = prediction.outputs;
            assert_eq!(got.len(), expected.len(), "{name}: number of outputs");
            for (i, (g, (e, exact))) in got.iter().zip(&expected).enumerate() {
                let g = if *exact {
                    g.mapv(f32::round)
                } else {
                    g.clone()
                };
                let e = e
                    .clone()
                    .into_shape_with_order(g.shape())
                    .unwrap_or_else(|_| {
                        panic!(
                            "{name} output {i}: shape {:?} vs {:?}",
                            g.shape(),
                            e.shape()
                        )
                    });
                let err = max_abs_diff(&g, &e);
                let bound = if *exact { 0.0 } else { tolerance };
                assert!(
                    err <= bound,
                    "{name} batch {batch} {mode:?} output {i}: max |error| {err} > {bound}"
                );
                if !exact && g.ndim() == 2 && g.shape()[1] > 1 {
                    assert_eq!(
                        top1(&g),
                        top1(&e),
                        "{name} batch {batch} {mode:?} output {i}: top-1 differs"
                    );
                }
            }
        }
    }
}

/// The plan's cost estimate must be what the protocol spends, step by step, party by party
/// and in total.
fn check_cost_estimate(
    name: &str,
    plan: &Plan,
    batch: usize,
    protocol: Protocol,
    run: &Prediction,
) {
    let estimate = estimate(plan, batch, protocol).unwrap();
    assert_eq!(
        estimate.steps.steps.len(),
        run.profile.steps.len(),
        "{name}: steps"
    );
    for (e, m) in estimate.steps.steps.iter().zip(&run.profile.steps) {
        assert_eq!(
            (e.stats.bytes_sent, e.stats.rounds),
            (m.stats.bytes_sent, m.stats.rounds),
            "{name} batch {batch} node {}: estimated vs measured (bytes, rounds)",
            m.node
        );
    }
    let by_party: Vec<u64> = run.by_party.iter().map(|s| s.bytes_sent).collect();
    assert_eq!(
        by_party,
        estimate.parties.party_bytes(),
        "{name} batch {batch} {protocol:?}: bytes each party sent, measured vs estimated"
    );
    // Besides the estimate, the client sends the batch size to each party and, once, its two
    // seeds (two words each; both to party 0, one each to parties 1 and 2 under ABY3, to
    // server 1 alone under Pond): 3 + 8 or 3 + 6 words.
    let seeds = match protocol {
        Protocol::Aby3 => 8,
        Protocol::Pond => 6,
    };
    let overhead = 8 * (3 + seeds);
    let online = estimate.total().bytes_sent + overhead;
    assert_eq!(
        online, run.online.bytes_sent,
        "{name} batch {batch}: online bytes"
    );
}

macro_rules! fixtures {
    ($($test:ident => $name:literal),* $(,)?) => {
        $(#[test] fn $test() { check_fixture($name); })*
    };
}

fixtures! {
    mlp => "mlp",
    cnn_exported_with_a_fixed_batch => "cnn",
    cnn_with_a_shape_subgraph => "cnn_dynamic",
    cnn_with_batchnorm_left_for_the_converter_to_fold => "cnn_bn",
    depthwise_conv_pooling_variants_and_standalone_batchnorm => "bn_depthwise",
    lenet => "lenet",
    network_a_mlp => "mlp_a",
    cnn_from_the_dynamo_exporter => "cnn_dynamo",
    transformer_encoder_torchscript_exporter => "transformer_ts",
    transformer_encoder_dynamo_exporter => "transformer_dynamo",
    lstm_torchscript_exporter => "lstm_ts",
    lstm_dynamo_exporter => "lstm_dynamo",
    bidirectional_gru_torchscript_exporter => "gru_ts",
    keras_cnn_through_tf2onnx => "keras_cnn",
    keras_mlp_through_tf2onnx => "keras_mlp",
    frozen_tensorflow_graph => "tf_cnn",
    frozen_keras_mobilenet_v2_with_filters_behind_identities => "keras_mobilenet",
    sklearn_logistic_regression => "skl_logreg",
    sklearn_logistic_regression_with_zipmap => "skl_logreg_zipmap",
    sklearn_linear_regression => "skl_linreg",
    sklearn_scaler_pipeline => "skl_scaler_logreg",
    sklearn_normalizer_pipeline => "skl_normalizer_logreg",
    sklearn_mlp_classifier => "skl_mlp",
    vision_transformer_timm => "vit_tiny",
    bert_with_token_ids_and_attention_mask => "bert_tiny",
    bert_from_the_dynamo_exporter => "bert_tiny_dynamo",
    gpt2_causal_language_model => "gpt2_tiny",
    llama_causal_language_model => "llama_tiny",
    sklearn_linear_svc => "skl_linear_svc",
    sklearn_linear_svc_binary_with_a_scalar_column_index => "skl_linear_svc_binary",
    sklearn_random_forest => "skl_forest",
    sklearn_gradient_boosting => "skl_gbm",
    sklearn_decision_tree_regressor => "skl_tree_regressor",
    xgboost_classifier_through_onnxmltools => "xgb_classifier",
    sklearn_svc_rbf_one_vs_one => "skl_svc",
    sklearn_k_nearest_neighbours_with_a_scan => "skl_knn",
    sklearn_binary_random_forest => "skl_forest_binary",
    xgboost_binary_classifier_with_a_margin_column => "xgb_binary",
}
