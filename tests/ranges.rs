//! No silent overflow: `--mode fixed` stops at the node whose product or comparison leaves
//! the range the protocol handles, and `tfe-convert --calibrate` reports every node's range
//! on samples, recommends the fractional bits and refuses a model that would overflow.

mod common;

use common::tool::{expect_error, expect_ok, run};
use common::{max_abs_diff, read_npy, temp_dir};
use ndarray::{ArrayD, IxDyn};
use ndarray_npy::WriteNpyExt;
use std::path::{Path, PathBuf};
use tfe::plan::{Dim, Op, PlanBuilder, Shape, Source};
use tfe::serve::{Mode, predict};
use tfe::tensor::FixedPoint;

const CONVERT: &str = env!("CARGO_BIN_EXE_tfe-convert");
const PREDICT: &str = env!("CARGO_BIN_EXE_tfe-predict");

fn fixture(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/cnn")
        .join(file)
}

/// The digits CNN's image scaled by 2e8: every input encodes (below 1.07e9), but the
/// second convolution's products reach 1.2e9, past the range at 16 fractional bits.
fn overflowing_input(dir: &Path) -> PathBuf {
    let x = read_npy(&fixture("input_b1.npy")).mapv(|v| v * 2e8);
    let path = dir.join("huge.npy");
    x.write_npy(std::fs::File::create(&path).unwrap()).unwrap();
    path
}

fn s(p: &Path) -> String {
    p.display().to_string()
}

#[test]
fn fixed_mode_names_the_node_whose_product_overflows() {
    let dir = temp_dir("ranges-fixed");
    let plan = dir.join("cnn.plan");
    expect_ok(&run(
        CONVERT,
        &[s(&fixture("model.onnx")), "-o".into(), s(&plan)],
    ));
    let huge = overflowing_input(&dir);
    let out = run(
        PREDICT,
        &[s(&plan), s(&huge), "--mode".into(), "fixed".into()],
    );
    expect_error(
        &out,
        1,
        &[
            "node /conv2/Conv",
            "before its truncation",
            "--frac-bits",
            "--calibrate",
        ],
    );
    // The fixture's own image stays in range.
    expect_ok(&run(
        PREDICT,
        &[
            s(&plan),
            s(&fixture("input_b1.npy")),
            "--mode".into(),
            "fixed".into(),
        ],
    ));
}

/// A sum of in-range values past the comparison's 48 bits reaches a ReLU: the comparison
/// would read another number's sign, and fixed point says so.
#[test]
fn fixed_mode_names_the_comparison_whose_input_overflows() {
    let mut b = PlanBuilder::new(FixedPoint::default(), Source::withheld());
    let shape = || Shape(vec![Dim::Batch(1), Dim::Fixed(2)]);
    let x = b.input("x", shape());
    let twice = b.step("twice", Op::Add, &[x, x], "x2", shape());
    let thrice = b.step("thrice", Op::Add, &[twice, x], "x3", shape());
    let relu = b.step("the_relu", Op::Relu, &[thrice], "r", shape());
    b.output(relu);
    let plan = b.build().unwrap();
    let fine = ArrayD::from_shape_vec(IxDyn(&[1, 2]), vec![1.0e8, -2.0]).unwrap();
    predict(&plan, &[fine], Mode::Fixed).unwrap();
    let huge = ArrayD::from_shape_vec(IxDyn(&[1, 2]), vec![1.0e9, -2.0]).unwrap();
    let Err(err) = predict(&plan, &[huge], Mode::Fixed) else {
        panic!("a comparison past its width went through")
    };
    let message = format!("{err:#}");
    assert!(
        message.contains("node the_relu") && message.contains("comparison input"),
        "{message}"
    );
}

#[test]
fn calibrate_recommends_the_default_bits_for_the_fixture() {
    let out = run(
        CONVERT,
        &[
            s(&fixture("model.onnx")),
            "--calibrate".into(),
            s(&fixture("input_b32.npy")),
        ],
    );
    expect_ok(&out);
    assert!(out.stdout.contains("on 32 sample(s)"), "{}", out.stdout);
    for node in ["/conv1/Conv", "/conv2/Conv", "/fc/Gemm"] {
        let line = out.stdout.lines().find(|l| l.starts_with(node)).unwrap();
        assert!(line.ends_with("ok"), "{line}");
    }
    assert!(out.stdout.contains("use --frac-bits 16"), "{}", out.stdout);
}

#[test]
fn calibrate_refuses_an_overflowing_model_and_its_recommendation_fits() {
    let dir = temp_dir("ranges-calibrate");
    let huge = overflowing_input(&dir);
    let model = s(&fixture("model.onnx"));
    let out = run(CONVERT, &[model.clone(), "--calibrate".into(), s(&huge)]);
    assert_eq!(out.code, 1, "{out}");
    assert!(out.stderr.starts_with("error:"), "{out}");
    for needle in ["/conv2/Conv", "convert with --frac-bits 13"] {
        assert!(out.stderr.contains(needle), "{needle}: {out}");
    }
    let conv = out
        .stdout
        .lines()
        .find(|l| l.starts_with("/conv2/Conv"))
        .unwrap();
    assert!(conv.ends_with("OVERFLOWS"), "{conv}");
    let json = run(
        CONVERT,
        &[
            model.clone(),
            "--calibrate".into(),
            s(&huge),
            "--json".into(),
        ],
    );
    assert_eq!(json.code, 1, "{json}");
    let report: serde_json::Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(report["overflow"], true);
    assert_eq!(report["recommended_frac_bits"], 13);
    let nodes = report["nodes"].as_array().unwrap();
    let conv = nodes.iter().find(|n| n["node"] == "/conv2/Conv").unwrap();
    assert_eq!(conv["overflows"], true);
    assert!(conv["max_abs"].as_f64().unwrap() > 1.07e9);
    // At the recommended bits the samples calibrate clean, and fixed point runs them close
    // to float (the error relative to the logits' size).
    let ok = run(
        CONVERT,
        &[
            model.clone(),
            "--calibrate".into(),
            s(&huge),
            "--frac-bits".into(),
            "13".into(),
        ],
    );
    expect_ok(&ok);
    let plan = dir.join("cnn13.plan");
    expect_ok(&run(
        CONVERT,
        &[
            model,
            "--frac-bits".into(),
            "13".into(),
            "-o".into(),
            s(&plan),
        ],
    ));
    let outputs: Vec<ArrayD<f32>> = ["fixed", "float"]
        .iter()
        .map(|mode| {
            let path = dir.join(format!("{mode}.npy"));
            let args = [
                s(&plan),
                s(&huge),
                "--mode".into(),
                mode.to_string(),
                "-o".into(),
                s(&path),
            ];
            expect_ok(&run(PREDICT, &args));
            read_npy(&path)
        })
        .collect();
    let scale = outputs[1].iter().fold(0f32, |m, v| m.max(v.abs()));
    let err = max_abs_diff(&outputs[0], &outputs[1]);
    assert!(
        err < 1e-4 * scale,
        "fixed differs from float by {err} on logits of {scale}"
    );
}
