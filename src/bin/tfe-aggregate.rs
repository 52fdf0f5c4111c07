//! tfe-aggregate: the sum or mean of many inputters' .npy vectors under three-party secret
//! sharing, every role embedded in this process; only the caller learns the result.

use anyhow::Result;
use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use tfe::cli;
use tfe::exec::human_bytes;
use tfe::serve::{AggregateOp, Aggregation, AggregationError};

#[derive(Clone, Copy, ValueEnum)]
enum OpArg {
    /// the (weighted) sum of the inputs
    Sum,
    /// the (weighted) mean of the inputs
    Mean,
}

#[derive(Parser)]
#[command(
    name = "tfe-aggregate",
    version,
    about = "Aggregate private .npy vectors: each file is one inputter, only the caller learns the sum or mean",
    long_about = "Each input file plays one inputter: it secret-shares its vector with the three \
compute parties (one ring element per value: a mask from a key given to one party, the masked \
vector sent to another), the parties add up what they hold and reveal the result to the caller \
only. With --weights the result is the weighted sum or mean, the weights being public factors \
the parties apply to the shares.\n\n\
Overflow bound: every value is clipped to ±C (--clip, by default the largest |value| given), and \
inputs x C x 2^16 (with integer weights: the weights' sum in place of the number of inputs) must \
stay below 2^63; below 2^31 the parties use a 32-bit ring (4 bytes per value).\n\n\
Exit status: 0 on success, 1 on a refused input (the message names the file), 2 for \
command-line mistakes.",
    after_help = "Examples:\n  tfe-aggregate mean a.npy b.npy c.npy -o mean.npy\n  tfe-aggregate sum a.npy b.npy c.npy --weights 1,2,1 --min-inputs 3 --clip 10 --json"
)]
struct Args {
    /// sum or mean
    #[arg(value_enum)]
    op: OpArg,
    /// One .npy file per inputter, all of the same shape.
    #[arg(required = true, value_name = "IN.npy")]
    inputs: Vec<PathBuf>,
    /// Write the result here (float32 .npy). Without -o (and without --json) it is printed.
    #[arg(short, long = "output", value_name = "OUT.npy")]
    output: Option<PathBuf>,
    /// One public weight per input, comma-separated, in the inputs' order.
    #[arg(long, value_delimiter = ',', num_args = 1, value_name = "w1,w2,...")]
    weights: Option<Vec<f64>>,
    /// Refuse (and have the parties refuse) to aggregate fewer inputs than this.
    #[arg(long, value_name = "K", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    min_inputs: u64,
    /// Clip every value to [-C, C]; C is the public bound that decides the ring.
    #[arg(long, value_name = "C")]
    clip: Option<f32>,
    /// Print {"op", "inputs", "values", "seconds", "bytes_sent", "rounds"} on stdout.
    #[arg(long)]
    json: bool,
}

fn main() {
    let args = Args::parse();
    cli::run(|| run(&args))
}

fn run(args: &Args) -> Result<()> {
    let (op, name) = match args.op {
        OpArg::Sum => (AggregateOp::Sum, "sum"),
        OpArg::Mean => (AggregateOp::Mean, "mean"),
    };
    let aggregation = Aggregation {
        weights: args.weights.clone(),
        min_inputs: args.min_inputs as usize,
        clip: args.clip,
        ..Aggregation::new(op)
    };
    if args.inputs.len() < aggregation.min_inputs {
        Err(AggregationError::TooFew {
            given: args.inputs.len(),
            min: aggregation.min_inputs,
        })?;
    }
    let inputs = args
        .inputs
        .iter()
        .map(|p| cli::read_npy(p))
        .collect::<Result<Vec<_>>>()?;
    let result = aggregation.run(&inputs).map_err(|e| {
        match e
            .downcast_ref::<AggregationError>()
            .and_then(AggregationError::input_index)
        {
            Some(i) => anyhow::anyhow!("{}: {e}", args.inputs[i].display()),
            None => e,
        }
    })?;
    if let Some(path) = &args.output {
        cli::write_npy(path, &result.values)?;
    }
    if args.json {
        let report = serde_json::json!({
            "op": name,
            "inputs": result.included,
            "values": result.values.len(),
            "seconds": result.time.as_secs_f64(),
            "bytes_sent": result.traffic.bytes_sent,
            "rounds": result.traffic.rounds,
        });
        println!("{report}");
    } else if args.output.is_none() {
        println!(
            "{name} (shape {:?}):\n{:.6}",
            result.values.shape(),
            result.values
        );
    }
    eprintln!(
        "mpc: {name} of {} inputs x {} values in a {}-bit ring, {:.1} ms, {} sent ({:.2} bytes per value per inputter in all) in {} round",
        result.included,
        result.values.len(),
        result.ring.bits(),
        result.time.as_secs_f64() * 1e3,
        human_bytes(result.traffic.bytes_sent),
        result.traffic.bytes_sent as f64 / (result.included * result.values.len()) as f64,
        result.traffic.rounds
    );
    Ok(())
}
