//! tfe-train: trains an ONNX model on several data owners' secret rows under three-party
//! MPC, and writes the trained model (revealed to the model owner only) or per-party share
//! files that tfe-party serves without the weights ever being reconstructed.

use anyhow::{Result, ensure};
use clap::Parser;
use std::path::PathBuf;
use tfe::cli::{self, ModeArg};
use tfe::exec::human_bytes;
use tfe::mpc::Protocol;
use tfe::serve::Mode;
use tfe::train::{
    DataOwner, EpochProgress, Hyper, Loss, Optimizer, Options, Outcome, TrainedWeights, Trainer,
};

#[derive(Clone, Copy, clap::ValueEnum)]
enum LossArg {
    /// binary cross-entropy: a sigmoid output (or a logit), labels 0/1
    Bce,
    /// cross-entropy: a softmax output (or logits), labels as class indices or one-hot rows
    Ce,
    /// mean squared error over every output
    Mse,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum OptimizerArg {
    /// w ← w − lr·g
    Sgd,
    /// v ← 0.9·v + g, w ← w − lr·v
    Momentum,
}

#[derive(Parser)]
#[command(
    name = "tfe-train",
    version,
    about = "Train an ONNX model on data owners' secret rows under three-party MPC",
    long_about = "Reads MODEL.onnx (the architecture and initial weights), derives a training step \
from it, and trains on the rows of every --data/--labels pair (one data owner each) under \
three-party replicated secret sharing: no party sees a row, a label or a weight. The trained \
model is revealed to the model owner alone (-o TRAINED.onnx), or with --share left as share \
files for tfe-party. docs/TRAINING.md describes what is derived and what stays public.\n\n\
Exit status: 0 on success, 1 when the model or the data cannot be trained on (the message \
names the node or file), 2 for command-line mistakes.",
    after_help = "Examples:\n  tfe-train model.onnx --data a_x.npy --labels a_y.npy --data b_x.npy --labels b_y.npy --loss bce --epochs 5 --batch 32 --lr 0.1 -o trained.onnx\n  tfe-train model.onnx --data x.npy --labels y.npy --loss ce --epochs 10 --batch 64 --lr 0.5 --share -o trained.onnx"
)]
struct Args {
    /// The model: its architecture and initial weights (an untrained export, or a trained
    /// model to fine-tune).
    model: PathBuf,
    /// A data owner's rows (.npy, one row per entry of axis 0); once per data owner.
    #[arg(long, required = true, value_name = "X.npy")]
    data: Vec<PathBuf>,
    /// The labels of the rows of the --data at the same position.
    #[arg(long, required = true, value_name = "Y.npy")]
    labels: Vec<PathBuf>,
    #[arg(long, value_enum)]
    loss: LossArg,
    #[arg(long, value_name = "E", value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    epochs: u64,
    /// Rows per step (a last partial batch of each epoch is left out).
    #[arg(long, value_name = "B", value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    batch: u64,
    /// Learning rate (public).
    #[arg(long, value_name = "L")]
    lr: f32,
    #[arg(long, value_enum, default_value = "sgd")]
    optimizer: OptimizerArg,
    #[arg(long, value_enum, default_value = "mpc")]
    mode: ModeArg,
    /// The secure protocol of --mode mpc: aby3 (three computing parties) or pond (two
    /// servers and a crypto producer).
    #[arg(long, value_enum, default_value = "aby3")]
    protocol: Protocol,
    /// Seed of the public shuffle: the same seed gives the same batches in every mode.
    #[arg(long, value_name = "S", default_value_t = 0)]
    seed: u64,
    /// Keep fixed every weight whose initializer or node name starts with PREFIX
    /// (fine-tuning a head on a frozen body); repeatable.
    #[arg(long, value_name = "PREFIX")]
    freeze: Vec<String>,
    /// Skip computing the loss (it costs a logarithm per row each step).
    #[arg(long)]
    no_loss: bool,
    /// Print machine-readable JSON: steps, seconds, bytes sent, rounds, loss per epoch.
    #[arg(long)]
    json: bool,
    /// Where to write the trained model (with --share: the stem of the share files).
    #[arg(short, long, value_name = "TRAINED.onnx")]
    output: PathBuf,
    /// Write TRAINED.party0.plan, .party1.plan, .party2.plan and .client.plan instead: each
    /// party's shares of the trained weights, never reconstructed.
    #[arg(long)]
    share: bool,
}

fn main() {
    let args = Args::parse();
    cli::run(|| train(&args))
}

/// An epoch bar on an interactive stderr, with the loss when it is reported.
fn epoch_bar(epochs: u64) -> (Option<indicatif::ProgressBar>, Box<EpochProgress<'static>>) {
    use std::io::IsTerminal;
    if !std::io::stderr().is_terminal() {
        return (None, Box::new(|_, _| ()));
    }
    let bar = indicatif::ProgressBar::new(epochs).with_style(
        indicatif::ProgressStyle::with_template(
            "epoch {pos}/{len} [{bar:40}] {elapsed} elapsed, about {eta} left {msg}",
        )
        .expect("the template is valid")
        .progress_chars("=> "),
    );
    let drawn = bar.clone();
    let progress: Box<EpochProgress<'static>> = Box::new(move |epoch, loss| {
        if let Some(loss) = loss {
            drawn.set_message(format!("loss {loss:.4}"));
        }
        drawn.set_position(epoch as u64 + 1);
    });
    (Some(bar), progress)
}

fn train(args: &Args) -> Result<()> {
    ensure!(
        args.data.len() == args.labels.len(),
        "{} --data files and {} --labels files; give one --labels per --data (one pair per data owner)",
        args.data.len(),
        args.labels.len()
    );
    let owners = args
        .data
        .iter()
        .zip(&args.labels)
        .map(|(x, y)| {
            Ok(DataOwner {
                name: format!("{} / {}", x.display(), y.display()),
                x: cli::read_npy(x)?,
                y: cli::read_npy(y)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let options = Options {
        hyper: Hyper {
            loss: match args.loss {
                LossArg::Bce => Loss::Bce,
                LossArg::Ce => Loss::Ce,
                LossArg::Mse => Loss::Mse,
            },
            optimizer: match args.optimizer {
                OptimizerArg::Sgd => Optimizer::Sgd,
                OptimizerArg::Momentum => Optimizer::Momentum,
            },
            lr: args.lr,
            batch: args.batch as usize,
            momentum: 0.9,
        },
        epochs: args.epochs as usize,
        seed: args.seed,
        mode: args.mode.with(args.protocol),
        report_loss: !args.no_loss,
        share: args.share,
    };
    let trainer = Trainer::new(&args.model, &args.freeze)?;
    let tp = trainer.plan(&options.hyper, options.report_loss)?;
    for weight in trainer.untrained() {
        eprintln!("note: weight {weight}");
    }
    let (bar, progress) = epoch_bar(args.epochs);
    let outcome = trainer.train(&owners, &options, &progress);
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let Outcome { weights, report } = outcome?;
    let written = match &weights {
        TrainedWeights::Revealed(w) => {
            trainer.write_onnx(&tp, w, &args.output)?;
            vec![args.output.display().to_string()]
        }
        TrainedWeights::Shared(protocol, shares) => {
            let stem = args.output.with_extension("");
            let mut names = vec![];
            for file in trainer.share_files(*protocol, shares)? {
                let path = stem.with_extension(format!("{}.plan", file.holder.name()));
                file.write(&path)?;
                names.push(path.display().to_string());
            }
            names
        }
    };
    let estimate = Trainer::step_cost(&tp, args.protocol)?;
    let seconds = report.time.as_secs_f64();
    let trained: usize = tp
        .trained
        .iter()
        .map(|&i| trainer.forward.weights[i].data.len())
        .sum();
    if args.json {
        let json = serde_json::json!({
            "mode": options.mode.name(),
            "protocol": match options.mode {
                Mode::Mpc(protocol) => Some(protocol.name()),
                _ => None,
            },
            "steps": report.steps,
            "epochs": args.epochs,
            "batch": args.batch,
            "trained_parameters": trained,
            "seconds": seconds,
            "bytes_sent": report.traffic.bytes_sent,
            "rounds": report.traffic.rounds,
            "loss": report.losses,
            "setup_bytes_sent": report.setup.bytes_sent,
            "estimate_per_step": {
                "bytes_sent": estimate.bytes_sent,
                "rounds": estimate.rounds,
            },
            "output": written,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    let steps = report.steps.max(1);
    println!(
        "trained {trained} parameters in {} steps ({} epochs of batch {}), {} mode: {seconds:.3} s, {:.2} ms per step",
        report.steps,
        args.epochs,
        args.batch,
        options.mode,
        1e3 * seconds / steps as f64
    );
    if matches!(options.mode, Mode::Mpc(_)) {
        println!(
            "sent {} in {} rounds ({} and {} rounds per step); sharing the weights and rows first: {}",
            human_bytes(report.traffic.bytes_sent),
            report.traffic.rounds,
            human_bytes(report.traffic.bytes_sent / steps as u64),
            report.traffic.rounds / steps as u64,
            human_bytes(report.setup.bytes_sent)
        );
    }
    if !report.losses.is_empty() {
        let losses: Vec<String> = report.losses.iter().map(|l| format!("{l:.4}")).collect();
        println!("loss per epoch: {}", losses.join(", "));
    }
    println!("wrote {}", written.join(", "));
    Ok(())
}
