//! Private training, then private prediction: two hospitals each hold part of scikit-learn's
//! breast-cancer records (standardised) and may not pool them. Each secret-shares its rows
//! and labels with the three parties, who train a logistic regression under MPC; only the
//! model owner learns the trained weights, written as ONNX. That model is then converted
//! and served by an embedded three-party session, the library behind `tfe-predict`, on the
//! held-out rows, with the accuracy checked against training in the clear (`--mode float`).
//!
//!     cargo run --release --example train_logreg
//!
//! The same with the tools:
//!
//!     tfe-train fixtures/train/logreg.onnx --loss bce --epochs 5 --batch 32 --lr 0.5 \
//!         --data owner0_x.npy --labels owner0_y.npy --data owner1_x.npy --labels owner1_y.npy \
//!         -o trained.onnx
//!     tfe-convert trained.onnx -o trained.plan && tfe-predict trained.plan test_x.npy
//!
//! Data: examples/data/breast_cancer (written by make_breast_cancer.py there).

use anyhow::{Result, ensure};
use ndarray::ArrayD;
use std::path::{Path, PathBuf};
use tfe::cli::read_npy;
use tfe::lower::{Options as LowerOptions, convert};
use tfe::mpc::Protocol;
use tfe::serve::{Mode, predict};
use tfe::train::{DataOwner, Hyper, Loss, Optimizer, Options, TrainedWeights, Trainer};

fn owner(dir: &Path, k: usize) -> Result<DataOwner> {
    Ok(DataOwner {
        name: format!("hospital {k}"),
        x: read_npy(&dir.join(format!("owner{k}_x.npy")))?,
        y: read_npy(&dir.join(format!("owner{k}_y.npy")))?,
    })
}

/// The fraction of test rows whose probability is on the side of 0.5 their label says.
fn accuracy(p: &ArrayD<f32>, labels: &ArrayD<f32>) -> f64 {
    let right = p
        .iter()
        .zip(labels)
        .filter(|(p, y)| f32::from(u8::from(**p > 0.5)) == **y)
        .count();
    right as f64 / labels.len() as f64
}

fn main() -> Result<()> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let data = root.join("examples/data/breast_cancer");
    let owners = [owner(&data, 0)?, owner(&data, 1)?];
    let (test_x, test_y) = (
        read_npy(&data.join("test_x.npy"))?,
        read_npy(&data.join("test_y.npy"))?,
    );
    let trainer = Trainer::new(&root.join("fixtures/train/logreg.onnx"), &[])?;
    let mut options = Options {
        hyper: Hyper {
            loss: Loss::Bce,
            optimizer: Optimizer::Sgd,
            lr: 0.5,
            batch: 32,
            momentum: 0.9,
        },
        epochs: 5,
        seed: 1,
        mode: Mode::Mpc(Protocol::Aby3),
        report_loss: true,
        share: false,
    };
    let tp = trainer.plan(&options.hyper, true)?;
    let show =
        |epoch, loss: Option<f32>| println!("epoch {}: loss {:.4}", epoch + 1, loss.unwrap_or(0.0));
    let trained = trainer.train(&owners, &options, &show)?;
    let TrainedWeights::Revealed(weights) = trained.weights else {
        unreachable!("revealed unless --share");
    };
    let report = &trained.report;
    println!(
        "{} steps under mpc: {:.1} ms and {} bytes per step; sharing the rows and weights first: {} bytes",
        report.steps,
        1e3 * report.time.as_secs_f64() / report.steps as f64,
        report.traffic.bytes_sent / report.steps as u64,
        report.setup.bytes_sent
    );

    // The model owner writes the trained model, and serves it privately.
    let out = std::env::temp_dir().join(format!("tfe-train-logreg-{}.onnx", std::process::id()));
    trainer.write_onnx(&tp, &weights, &out)?;
    let plan = convert(&out, LowerOptions::default())?.plan;
    std::fs::remove_file(&out)?;
    let served = predict(
        &plan,
        std::slice::from_ref(&test_x),
        Mode::Mpc(Protocol::Aby3),
    )?;
    let private = accuracy(&served.outputs[0], &test_y);

    options.mode = Mode::Float;
    let clear = trainer.train(&owners, &options, &|_, _| ())?;
    let TrainedWeights::Revealed(clear_weights) = clear.weights else {
        unreachable!("revealed unless --share");
    };
    let reference = trainer.trained_plan(&tp, &clear_weights);
    let plain = predict(&reference, &[test_x], Mode::Float)?;
    let clear_accuracy = accuracy(&plain.outputs[0], &test_y);
    println!(
        "test accuracy: trained and served under mpc {private:.4}, trained in the clear {clear_accuracy:.4}"
    );
    ensure!(private >= 0.93, "accuracy {private} below 0.93");
    ensure!(
        (private - clear_accuracy).abs() <= 0.015,
        "mpc and float training differ by more than 1.5 points"
    );
    Ok(())
}

#[test]
fn runs() {
    main().unwrap()
}
