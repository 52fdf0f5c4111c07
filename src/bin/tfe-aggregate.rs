//! tfe-aggregate: the sum or mean of many inputters' .npy vectors under secret sharing (ABY3
//! or Pond): every role embedded in this process (`mean`, `sum`), or an inputter's and the
//! result receiver's side of a networked round (`submit`, `receive`).

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand, ValueEnum};
use ndarray::ArrayD;
use std::path::{Path, PathBuf};
use tfe::cli;
use tfe::exec::human_bytes;
use tfe::mpc::Protocol;
use tfe::net::config::Config;
use tfe::serve::{AggregateOp, Aggregation, AggregationError};

#[derive(Clone, Copy, ValueEnum)]
enum OpArg {
    /// the (weighted) sum of the inputs
    Sum,
    /// the (weighted) mean of the inputs
    Mean,
}

impl OpArg {
    fn op(self) -> (AggregateOp, &'static str) {
        match self {
            OpArg::Sum => (AggregateOp::Sum, "sum"),
            OpArg::Mean => (AggregateOp::Mean, "mean"),
        }
    }
}

#[derive(Parser)]
#[command(
    name = "tfe-aggregate",
    version,
    about = "Aggregate private vectors: many inputters, three compute parties, one result receiver",
    long_about = "Secure aggregation: the sum or mean of many inputters' vectors, computed by three \
compute parties on secret shares and revealed to one result receiver only. Each inputter sends \
one ring element per value (a mask from a key given to one party, the masked vector to another).\n\n\
`mean` and `sum` run every role in this process, each .npy file playing one inputter (for \
development and tests). `submit` and `receive` are the networked roles: an inputter submits its \
vector to a named round held open by three `tfe-party --aggregate` processes, and the result \
receiver fetches the result (see docs/AGGREGATION.md).\n\n\
Overflow bound: every value is clipped to ±C (--clip), and inputs x C x 2^16 (with integer \
weights: the weights' sum in place of the number of inputs) must stay below 2^63; below 2^31 the \
parties use a 32-bit ring (4 bytes per value).\n\n\
Protocols (--protocol): aby3 (the default) puts each inputter's two pieces on a pair of the three \
parties, rotating with the inputter; pond puts them on its two servers (party0 and party1), the \
crypto producer (party2) only agreeing on who submitted. The bytes are the same; under pond a \
server may be any one party, never the producer, and no server may collude with the producer.\n\n\
Exit status: 0 on success, 1 on a refused input or submission (the message says why), 2 for \
command-line mistakes.",
    after_help = "Examples:\n  tfe-aggregate mean a.npy b.npy c.npy -o mean.npy\n  tfe-aggregate sum a.npy b.npy c.npy --weights 1,2,1 --min-inputs 3 --clip 10 --json\n  tfe-aggregate submit --config pki/parties.json --as hospital-a --round week-12 x.npy\n  tfe-aggregate receive --config pki/parties.json --round week-12 -o mean.npy"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// The mean of the .npy files, each one inputter, every role in this process.
    Mean(Embedded),
    /// The sum of the .npy files, each one inputter, every role in this process.
    Sum(Embedded),
    /// Submit one vector to a round of a networked deployment, as one of its inputters.
    #[command(
        long_about = "Submits IN.npy to the named round as the inputter --as of the configuration: \
dials the two compute parties that take its pieces, learns the round's public rules from them \
(shape, clip), and sends each only its piece. Nothing is sent unless both accept; a second \
submission to the same round, a round the parties do not run, or a closed round is refused with \
the parties' reason. The inputter learns nothing about the others' vectors or the result.",
        after_help = "Example:\n  tfe-aggregate submit --config pki/parties.json --as hospital-a --round week-12 x.npy"
    )]
    Submit(Submit),
    /// Fetch a round's sum or mean from the parties, as the result receiver.
    #[command(
        long_about = "Connects to the three compute parties as the configuration's result \
receiver (roles.receiver), names the round, and waits until the parties close it (every inputter \
submitted, or their deadline passed); then reconstructs the sum of the inputters that submitted, \
or their mean. If fewer than the round's minimum submitted, the parties reveal nothing and this \
fails with their reason.",
        after_help = "Example:\n  tfe-aggregate receive --config pki/parties.json --round week-12 -o mean.npy --json"
    )]
    Receive(Receive),
}

#[derive(Args)]
struct Embedded {
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
    /// Print {"op", "protocol", "inputs", "values", "seconds", "bytes_sent", "rounds"} on stdout.
    #[arg(long)]
    json: bool,
    /// Which parties take the pieces: pairs of the three (aby3) or Pond's two servers.
    #[arg(long, value_enum, default_value = "aby3")]
    protocol: Protocol,
}

#[derive(Args)]
struct Submit {
    /// The deployment's configuration (see docs/NETWORK.md).
    #[arg(long, value_name = "parties.json")]
    config: PathBuf,
    /// Which inputter of the configuration this is (a name under roles.inputters).
    #[arg(long = "as", value_name = "NAME")]
    name: String,
    /// The round to submit to, as the parties were started with (--aggregate).
    #[arg(long, value_name = "ROUND")]
    round: String,
    /// This inputter's vector, of the round's shape.
    #[arg(value_name = "IN.npy")]
    input: PathBuf,
    /// The protocol the parties run the round under (their --protocol): it decides which
    /// two parties take this inputter's pieces.
    #[arg(long, value_enum, default_value = "aby3")]
    protocol: Protocol,
}

#[derive(Args)]
struct Receive {
    /// The deployment's configuration (see docs/NETWORK.md).
    #[arg(long, value_name = "parties.json")]
    config: PathBuf,
    /// The round whose result to fetch.
    #[arg(long, value_name = "ROUND")]
    round: String,
    /// The mean of the inputters that submitted, or their sum.
    #[arg(long, value_enum, default_value = "mean")]
    op: OpArg,
    /// Write the result here (float32 .npy). Without -o (and without --json) it is printed.
    #[arg(short, long = "output", value_name = "OUT.npy")]
    output: Option<PathBuf>,
    /// Print {"op", "round", "inputs", "included", "missing", "values", "seconds", "bytes_sent"} on stdout.
    #[arg(long)]
    json: bool,
}

fn main() {
    let cli = Cli::parse();
    cli::run(|| match &cli.command {
        Command::Mean(args) => embedded(OpArg::Mean, args),
        Command::Sum(args) => embedded(OpArg::Sum, args),
        Command::Submit(args) => submit(args),
        Command::Receive(args) => receive(args),
    })
}

fn embedded(op: OpArg, args: &Embedded) -> Result<()> {
    let (op, name) = op.op();
    let aggregation = Aggregation {
        weights: args.weights.clone(),
        min_inputs: args.min_inputs as usize,
        clip: args.clip,
        protocol: args.protocol,
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
    show(&result.values, args.output.as_deref(), args.json, name)?;
    if args.json {
        let report = serde_json::json!({
            "op": name,
            "protocol": args.protocol.name(),
            "inputs": result.included,
            "values": result.values.len(),
            "seconds": result.time.as_secs_f64(),
            "bytes_sent": result.traffic.bytes_sent,
            "rounds": result.traffic.rounds,
        });
        println!("{report}");
    }
    eprintln!(
        "mpc ({}): {name} of {} inputs x {} values in a {}-bit ring, {:.1} ms, {} sent ({:.2} bytes per value per inputter in all) in {} round",
        args.protocol.name(),
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

/// Writes the result to `output`, or prints it when there is neither a file nor --json.
fn show(values: &ArrayD<f32>, output: Option<&Path>, json: bool, name: &str) -> Result<()> {
    match output {
        Some(path) => cli::write_npy(path, values),
        None if json => Ok(()),
        None => {
            println!("{name} (shape {:?}):\n{values:.6}", values.shape());
            Ok(())
        }
    }
}

fn submit(args: &Submit) -> Result<()> {
    let config = Config::load(&args.config)?;
    let x = cli::read_npy(&args.input)?;
    let file = args.input.display();
    let done = tfe::serve::submit(&config, &args.name, &args.round, args.protocol, &x)
        .with_context(|| format!("{file} was not submitted to round {:?}", args.round))?;
    eprintln!(
        "tfe-aggregate: {file} ({} values) submitted to round {:?} as {}: {} and {} each hold one piece; {} sent ({:.2} bytes per value)",
        x.len(),
        args.round,
        args.name,
        done.parties[0],
        done.parties[1],
        human_bytes(done.traffic.bytes_sent),
        done.traffic.bytes_sent as f64 / x.len() as f64
    );
    Ok(())
}

fn receive(args: &Receive) -> Result<()> {
    let config = Config::load(&args.config)?;
    let (op, name) = args.op.op();
    let got = tfe::serve::receive(&config, &args.round, op)?;
    show(&got.values, args.output.as_deref(), args.json, name)?;
    if args.json {
        let report = serde_json::json!({
            "op": name,
            "round": args.round,
            "inputs": got.included.len(),
            "included": got.included,
            "missing": got.missing,
            "values": got.values.len(),
            "seconds": got.time.as_secs_f64(),
            "bytes_sent": got.traffic.bytes_sent,
        });
        println!("{report}");
    }
    eprintln!(
        "tfe-aggregate: {name} of round {:?}: {} inputter(s) in it ({}){}, {} values in a {}-bit ring, {:.1} ms from connecting",
        args.round,
        got.included.len(),
        got.included.join(", "),
        match got.missing.is_empty() {
            true => String::new(),
            false => format!(", missing {}", got.missing.join(", ")),
        },
        got.values.len(),
        got.ring_bits,
        got.time.as_secs_f64() * 1e3
    );
    Ok(())
}
