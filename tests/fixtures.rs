//! End to end on the committed fixtures (real torch.onnx.export models): convert, then run
//! in every mode at batch 1 and 32 with one plan, against onnxruntime's outputs.

mod common;

use common::{max_abs_diff, read_npy};
use std::path::Path;
use tfe::exec::{Mode, predict};
use tfe::lower::{Options, convert};

/// Max |logit error| allowed against the plaintext runtime (the bar).
const LOGIT_TOLERANCE: f32 = 1e-2;
/// The float interpreter must match the source model much more closely: it only reorders
/// float operations.
const FLOAT_TOLERANCE: f32 = 1e-4;

fn top1(a: &ndarray::ArrayD<f32>) -> Vec<usize> {
    a.rows()
        .into_iter()
        .map(|r| {
            r.iter()
                .enumerate()
                .fold(0, |best, (i, v)| if *v > r[best] { i } else { best })
        })
        .collect()
}

fn check_fixture(name: &str) {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name);
    let converted = convert(&dir.join("model.onnx"), Options::default()).unwrap();
    let plan = tfe::plan::Plan::from_bytes(&converted.plan.to_bytes(), name).unwrap();
    for batch in [1, 32] {
        let input = read_npy(&dir.join(format!("input_b{batch}.npy")));
        let expected = read_npy(&dir.join(format!("expected_b{batch}.npy")));
        for (mode, tolerance) in [
            (Mode::Float, FLOAT_TOLERANCE),
            (Mode::Fixed, LOGIT_TOLERANCE),
            (Mode::Mpc, LOGIT_TOLERANCE),
        ] {
            let got = predict(&plan, std::slice::from_ref(&input), mode)
                .unwrap()
                .outputs
                .remove(0);
            let err = max_abs_diff(&got, &expected);
            assert!(
                err <= tolerance,
                "{name} batch {batch} {mode:?}: max |error| {err} > {tolerance}"
            );
            assert_eq!(
                top1(&got),
                top1(&expected),
                "{name} batch {batch} {mode:?}: top-1 differs"
            );
        }
    }
}

#[test]
fn mlp() {
    check_fixture("mlp");
}

#[test]
fn cnn_exported_with_a_fixed_batch() {
    check_fixture("cnn");
}

#[test]
fn cnn_with_a_shape_subgraph() {
    check_fixture("cnn_dynamic");
}

#[test]
fn depthwise_conv_pooling_variants_and_standalone_batchnorm() {
    check_fixture("bn_depthwise");
}

#[test]
fn lenet() {
    check_fixture("lenet");
}

#[test]
fn network_a_mlp() {
    check_fixture("mlp_a");
}

#[test]
fn cnn_with_batchnorm_left_for_the_converter_to_fold() {
    check_fixture("cnn_bn");
}
