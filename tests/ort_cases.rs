//! Operator variants whose plaintext reference is onnxruntime because tract cannot run them
//! (fixtures/ort_cases, made by fixtures/make_ort_cases.py): every mode against the expected
//! output, with the per-op tests' tolerances.

mod common;

use common::{max_abs_diff, read_npy};
use std::path::Path;
use tfe::lower::{Options, convert};
use tfe::mpc::Protocol;
use tfe::serve::{Mode, predict};

#[test]
fn onnxruntime_reference_cases() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/ort_cases");
    let mut cases: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(!cases.is_empty());
    for dir in cases {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let plan = convert(&dir.join("model.onnx"), Options::default())
            .unwrap_or_else(|e| panic!("{name}: {e:#}"))
            .plan;
        let input = read_npy(&dir.join("input.npy"));
        let expected = read_npy(&dir.join("expected.npy"));
        for (mode, tolerance) in [
            (Mode::Float, 1e-4),
            (Mode::Fixed, 2e-3),
            (Mode::Mpc(Protocol::Aby3), 2e-3),
            (Mode::Mpc(Protocol::Pond), 2e-3),
        ] {
            let got = predict(&plan, std::slice::from_ref(&input), mode)
                .unwrap()
                .outputs
                .remove(0);
            let err = max_abs_diff(&got, &expected);
            assert!(
                err <= tolerance,
                "{name} {mode:?}: max |error| {err} > {tolerance}"
            );
        }
    }
}
