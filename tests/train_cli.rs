//! tfe-train's command-line contract: --json, the trained ONNX served by tfe-predict, share
//! files served by three tfe-party processes equal to the same weights revealed, fine-tuning
//! a head on a frozen Conv body, and the refusals (exit 1 naming the file or node, exit 2
//! for usage). Children are killed on every exit path (see `common::children`).

mod common;

use common::children::{Children, free_ports, run};
use common::{max_abs_diff, read_npy, temp_dir};
use ndarray::ArrayD;
use std::path::{Path, PathBuf};
use std::time::Duration;
use tfe::mpc::Protocol;
use tfe::plan::{Holder, SharedPlan};
use tfe::serve::{Mode, predict};

const TRAIN: &str = env!("CARGO_BIN_EXE_tfe-train");
const PARTY: &str = env!("CARGO_BIN_EXE_tfe-party");
const PREDICT: &str = env!("CARGO_BIN_EXE_tfe-predict");
const CONVERT: &str = env!("CARGO_BIN_EXE_tfe-convert");
const PKI: &str = env!("CARGO_BIN_EXE_tfe-pki");

fn s(p: &Path) -> String {
    p.display().to_string()
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cancer(file: &str) -> String {
    s(&root().join("examples/data/breast_cancer").join(file))
}

/// tfe-train on the breast-cancer rows of both owners with `extra` arguments; returns its
/// status, stdout and stderr.
fn train_cancer(dir: &Path, log: &str, extra: &[&str]) -> (bool, String, String) {
    let model = s(&root().join("fixtures/train/logreg.onnx"));
    let mut args = vec![model.as_str()];
    let data = [
        cancer("owner0_x.npy"),
        cancer("owner0_y.npy"),
        cancer("owner1_x.npy"),
        cancer("owner1_y.npy"),
    ];
    for pair in data.chunks(2) {
        args.extend(["--data", &pair[0], "--labels", &pair[1]]);
    }
    args.extend([
        "--loss", "bce", "--epochs", "3", "--batch", "32", "--lr", "0.5",
    ]);
    args.extend_from_slice(extra);
    let mut children = Children::new(dir);
    children.spawn(log, TRAIN, &args);
    let (status, err) = children.wait(0, Duration::from_secs(300));
    (status.success(), children.stdout(0), err)
}

/// The fraction of probabilities on the right side of 0.5.
fn accuracy(p: &ArrayD<f32>, labels: &ArrayD<f32>) -> f64 {
    let right = p
        .iter()
        .zip(labels)
        .filter(|(p, y)| ((**p > 0.5) as u8 as f32) == **y)
        .count();
    right as f64 / labels.len() as f64
}

#[test]
fn json_reports_the_run_and_the_trained_onnx_serves_through_tfe_predict() {
    let dir = temp_dir("train-cli-json");
    let out = dir.join("trained.onnx");
    let (ok, stdout, err) = train_cancer(&dir, "train.log", &["--json", "-o", &s(&out)]);
    assert!(ok, "{err}");
    let json: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(json["steps"], 3 * (455 / 32));
    assert_eq!(json["loss"].as_array().unwrap().len(), 3);
    let losses: Vec<f64> = (0..3).map(|e| json["loss"][e].as_f64().unwrap()).collect();
    assert!(losses[2] < losses[0] && losses[0] < 0.7, "{losses:?}");
    assert!(json["bytes_sent"].as_u64().unwrap() > 0 && json["rounds"].as_u64().unwrap() > 0);
    assert!(json["seconds"].as_f64().unwrap() > 0.0);
    assert_eq!(json["trained_parameters"], 31);

    let plan = dir.join("trained.plan");
    let (status, err) = run(CONVERT, &[&s(&out), "-o", &s(&plan)], &dir, "convert.log");
    assert!(status.success(), "{err}");
    let predicted = dir.join("p.npy");
    let args = [&s(&plan), &cancer("test_x.npy"), "-o", &s(&predicted)];
    let (status, err) = run(PREDICT, &args, &dir, "predict.log");
    assert!(status.success(), "{err}");
    let labels = read_npy(Path::new(&cancer("test_y.npy")));
    let a = accuracy(&read_npy(&predicted), &labels);
    assert!(a >= 0.93, "accuracy {a}");
}

/// Adds up the parties' first components of every secret weight (Pond's producer holds
/// none): the trained model that the share files hold (the test plays the model owner to
/// check them).
fn reconstructed(stem: &Path) -> tfe::plan::Plan {
    let files: Vec<SharedPlan> = (0..3)
        .map(|i| SharedPlan::read(&stem.with_extension(format!("party{i}.plan"))).unwrap())
        .collect();
    let dealing = &files[0].dealing;
    assert!(files.iter().all(|f| &f.dealing == dealing));
    assert_eq!(files[1].holder, Holder::Party(1));
    let mut plan = files[0].plan.clone();
    let fixed = plan.fixed_point;
    let secret = plan
        .weights
        .iter_mut()
        .filter(|w| w.visibility == tfe::plan::Visibility::Secret);
    let holding: Vec<&SharedPlan> = files.iter().filter(|f| !f.shares.is_empty()).collect();
    for (k, w) in secret.enumerate() {
        let mut sum = holding[0].shares[k][0].clone();
        for f in &holding[1..] {
            sum.zip_mut_with(&f.shares[k][0], |a, b| *a = a.wrapping_add(*b));
        }
        if files[0].protocol == Protocol::Aby3 {
            // Each party's second component is the next party's first.
            assert_eq!(files[0].shares[k][1], files[1].shares[k][0]);
        }
        w.data = fixed.decode_array(sum.view());
    }
    plan
}

#[test]
fn share_files_serve_through_three_parties_as_the_revealed_weights_do() {
    serve_trained_shares(Protocol::Aby3);
}

/// Trained under Pond and kept shared: the servers' files hold the trained weights'
/// additive shares, the producer's none, and the three processes serve them.
#[test]
fn pond_share_files_serve_through_the_servers_and_the_producer() {
    serve_trained_shares(Protocol::Pond);
}

fn serve_trained_shares(protocol: Protocol) {
    let dir = temp_dir(&format!("train-cli-share-{}", protocol.name()));
    let stem = dir.join("model.onnx");
    let share = ["--share", "--protocol", protocol.name(), "-o", &s(&stem)];
    let (ok, stdout, err) = train_cancer(&dir, "train.log", &share);
    assert!(ok, "{err}");
    assert!(stdout.contains("model.party0.plan") && stdout.contains("model.client.plan"));
    assert!(!stem.exists(), "no weights in the clear");

    let pki = dir.join("pki");
    let ports = free_ports();
    let args = [&s(&pki), "--ports", ports.as_str(), "--read-ms", "10000"];
    let (status, err) = run(PKI, &args, &dir, "pki.log");
    assert!(status.success(), "{err}");
    let config = s(&pki.join("parties.json"));
    let mut children = Children::new(&dir);
    for i in 0..3 {
        let (id, plan) = (
            format!("party{i}"),
            s(&dir.join(format!("model.party{i}.plan"))),
        );
        let args = ["--config", &config, "--id", &id, "--plan", &plan, "--once"];
        children.spawn(&format!("{id}.log"), PARTY, &args);
    }
    let out = dir.join("out.npy");
    let client_plan = s(&dir.join("model.client.plan"));
    let test_x = cancer("test_x.npy");
    let args = ["--config", &config, &client_plan, &test_x, "-o", &s(&out)];
    let client = children.spawn("client.log", PREDICT, &args);
    let (status, err) = children.wait(client, Duration::from_secs(120));
    assert!(status.success(), "{err}");
    for i in 0..3 {
        let (status, err) = children.wait(i, Duration::from_secs(30));
        assert!(status.success(), "party {i}: {err}");
    }
    let networked = read_npy(&out);

    let plan = reconstructed(&dir.join("model"));
    let x = read_npy(Path::new(&test_x));
    let revealed = predict(&plan, &[x], Mode::Float).unwrap().outputs.remove(0);
    let d = max_abs_diff(&networked, &revealed);
    assert!(d < 1e-3, "networked vs revealed weights: {d}");
    let labels = read_npy(Path::new(&cancer("test_y.npy")));
    let (a, b) = (accuracy(&networked, &labels), accuracy(&revealed, &labels));
    assert_eq!(a, b);
    assert!(a >= 0.93, "accuracy {a}");
}

#[test]
fn a_head_trains_on_a_frozen_conv_body_and_conv_weights_are_named() {
    let dir = temp_dir("train-cli-cnn");
    let digits = root().join("examples/data/digits");
    let x = read_npy(&digits.join("test_x.npy"));
    let x = x
        .into_shape_with_order(ndarray::IxDyn(&[360, 1, 8, 8]))
        .unwrap();
    let (xs, ys) = (dir.join("x.npy"), s(&digits.join("test_y.npy")));
    tfe::cli::write_npy(&xs, &x).unwrap();
    let model = s(&root().join("fixtures/cnn/model.onnx"));
    let out = s(&dir.join("head.onnx"));
    let common = [
        model.as_str(),
        "--data",
        &s(&xs),
        "--labels",
        &ys,
        "--loss",
        "ce",
        "--epochs",
        "1",
        "--batch",
        "64",
        "--lr",
        "0.1",
        "-o",
        &out,
    ];
    let (status, err) = run(TRAIN, &common, &dir, "cnn.log");
    assert!(status.success(), "{err}");
    assert!(err.contains("note: weight /conv1/Conv/W"), "{err}");
    let args = [&common[..], &["--freeze", "/conv", "--json"]].concat();
    let mut children = Children::new(&dir);
    children.spawn("frozen.log", TRAIN, &args);
    let (status, err) = children.wait(0, Duration::from_secs(300));
    assert!(status.success(), "{err}");
    assert!(!err.contains("note:"), "frozen on purpose: {err}");
    let json: serde_json::Value = serde_json::from_str(&children.stdout(0)).unwrap();
    assert_eq!(json["trained_parameters"], 128 * 10 + 10);
}

#[test]
fn bad_runs_are_refused_naming_the_file_or_option() {
    let dir = temp_dir("train-cli-errors");
    let out = s(&dir.join("x.onnx"));
    let (ok, _, err) = train_cancer(&dir, "freeze.log", &["--freeze", "/nothing", "-o", &out]);
    assert!(
        !ok && err.contains("--freeze /nothing matches no weight"),
        "{err}"
    );
    let (ok, _, err) = train_cancer(
        &dir,
        "share.log",
        &["--share", "--mode", "float", "-o", &out],
    );
    assert!(!ok && err.contains("only --mode mpc"), "{err}");

    let model = s(&root().join("fixtures/train/logreg.onnx"));
    let (x, y) = (cancer("owner0_x.npy"), cancer("owner1_y.npy"));
    let base = [
        "--loss", "bce", "--epochs", "1", "--batch", "8", "--lr", "0.1", "-o", &out,
    ];
    let args = [&[model.as_str(), "--data", &x, "--labels", &y][..], &base].concat();
    let (status, err) = run(TRAIN, &args, &dir, "rows.log");
    assert_eq!(status.code(), Some(1));
    assert!(
        err.contains("owner0_x.npy") && err.contains("labels for"),
        "{err}"
    );
    let tiny_lr = [&[model.as_str(), "--data", &x, "--labels", &x][..], &base].concat();
    let tiny_lr: Vec<&str> = tiny_lr
        .into_iter()
        .map(|a| if a == "0.1" { "1e-5" } else { a })
        .collect();
    let (status, err) = run(TRAIN, &tiny_lr, &dir, "lr.log");
    assert_eq!(status.code(), Some(1));
    assert!(err.contains("raise --lr"), "{err}");
    let args = [&[model.as_str(), "--data", &x][..], &base].concat();
    let (status, err) = run(TRAIN, &args, &dir, "usage.log");
    assert_eq!(status.code(), Some(2), "{err}");
    let big = dir.join("big.npy");
    let mut rows = read_npy(Path::new(&x));
    rows[[0, 0]] = 1e6;
    tfe::cli::write_npy(&big, &rows).unwrap();
    let (big, y0) = (s(&big), cancer("owner0_y.npy"));
    let args = [
        &[model.as_str(), "--data", &big, "--labels", &y0][..],
        &base,
    ]
    .concat();
    let (status, err) = run(TRAIN, &args, &dir, "range.log");
    assert_eq!(status.code(), Some(1));
    assert!(
        err.contains("big.npy") && err.contains("standardise"),
        "{err}"
    );
}
