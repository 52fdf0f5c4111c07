//! Time and bytes per private training step, against TF Encrypted's published figures (ABY3
//! on three 4-core servers, LAN): logistic regression on 784 features at batch 128 (0.010 s
//! per step) and Network-A, 784-128-128-10, at batch 128 (0.167 s per step). Embedded
//! three parties, rows and weights secret; random rows in [0, 1] (the cost does not depend
//! on the values). Each row: the mean over the steps of a few epochs, without and with the
//! loss computed each step, and the closed-form estimate of one step.
//!
//!     cargo run --release --example train_bench [-- --epochs 3]

use anyhow::Result;
use ndarray::{ArrayD, IxDyn};
use std::path::PathBuf;
use tfe::exec::human_bytes;
use tfe::mpc::Protocol;
use tfe::serve::Mode;
use tfe::train::{DataOwner, Hyper, Loss, Optimizer, Options, Trainer};

const BATCH: usize = 128;
const ROWS: usize = 1280;

/// Rows in [0, 1] and labels from a fixed linear rule, from a small deterministic stream.
fn rows(features: usize, classes: usize) -> DataOwner {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    let x = ArrayD::from_shape_simple_fn(IxDyn(&[ROWS, features]), &mut next);
    let y = ArrayD::from_shape_fn(IxDyn(&[ROWS]), |i| {
        let s: f32 = (0..8).map(|j| x[[i[0], j]]).sum();
        ((s * classes as f32 / 8.0) as usize).min(classes - 1) as f32
    });
    DataOwner {
        name: "bench rows".into(),
        x,
        y,
    }
}

fn main() -> Result<()> {
    let epochs: usize = std::env::args()
        .skip_while(|a| a != "--epochs")
        .nth(1)
        .map_or(Ok(2), |e| e.parse())?;
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let cases = [
        (
            "logistic regression 784",
            "fixtures/train/logreg784.onnx",
            Loss::Bce,
            2,
            0.010,
        ),
        (
            "Network-A 784-128-128-10",
            "fixtures/mlp_a/model.onnx",
            Loss::Ce,
            10,
            0.167,
        ),
    ];
    println!(
        "| model | batch | time per step | sent per step | rounds per step | estimate per step | with the loss: time, sent | TF Encrypted (published) |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, model, loss, classes, tfe_published) in cases {
        let trainer = Trainer::new(&root.join(model), &[])?;
        let mut owner = rows(784, classes);
        if loss == Loss::Bce {
            owner.y.mapv_inplace(|v| v.min(1.0));
        }
        let mut measured = vec![];
        for report_loss in [false, true] {
            let options = Options {
                hyper: Hyper {
                    loss,
                    optimizer: Optimizer::Sgd,
                    lr: 0.1,
                    batch: BATCH,
                    momentum: 0.9,
                },
                epochs,
                seed: 0,
                mode: Mode::Mpc(Protocol::Aby3),
                report_loss,
                share: false,
            };
            let out = trainer.train(std::slice::from_ref(&owner), &options, &|_, _| ())?;
            let steps = out.report.steps as f64;
            let tp = trainer.plan(&options.hyper, report_loss)?;
            measured.push((
                out.report.time.as_secs_f64() / steps,
                out.report.traffic.bytes_sent as f64 / steps,
                out.report.traffic.rounds as f64 / steps,
                Trainer::step_cost(&tp, Protocol::Aby3)?,
            ));
        }
        let (time, sent, rounds, estimate) = measured[0];
        let (time_loss, sent_loss, _, _) = measured[1];
        println!(
            "| {name} | {BATCH} | {:.1} ms | {} | {rounds:.0} | {} in {} rounds | {:.1} ms, {} | {:.0} ms |",
            time * 1e3,
            human_bytes(sent as u64),
            human_bytes(estimate.bytes_sent),
            estimate.rounds,
            time_loss * 1e3,
            human_bytes(sent_loss as u64),
            tfe_published * 1e3
        );
    }
    Ok(())
}
