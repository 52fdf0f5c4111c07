//! tfe-predict: runs a plan on .npy inputs under three-party secret sharing (or one of the
//! plaintext reference modes).

use anyhow::{Result, bail};
use clap::{CommandFactory, Parser, error::ErrorKind};
use std::path::PathBuf;
use std::sync::Arc;
use tfe::cli::{self, ModeArg};
use tfe::exec::{estimate_request, human_bytes};
use tfe::mpc::Protocol;
use tfe::net::config::Config;
use tfe::plan::{Plan, SharedPlan};
use tfe::serve::{self, EmbeddedSession, InputError, Mode, NetworkedSession, Progress, Session};

#[derive(Parser)]
#[command(
    name = "tfe-predict",
    version,
    about = "Run a tfe plan on .npy inputs under three-party secret sharing",
    long_about = "Runs a plan written by tfe-convert. By default the three compute parties run \
embedded in this process: the model owner secret-shares the weights, the client secret-shares \
the inputs, the parties compute on shares, and only the client reconstructs the outputs.\n\n\
Exit status: 0 on success, 1 on a bad plan or input (the message names the file or input), \
2 for command-line mistakes.",
    after_help = "Examples:\n  tfe-predict model.plan input.npy -o logits.npy\n  tfe-predict --config parties.json model.client.plan input.npy -o logits.npy\n  tfe-predict model.plan input.npy --mode float\n  tfe-predict model.plan input.npy --profile\n  tfe-predict model.plan input.npy --repeat 10"
)]
struct Args {
    /// The plan written by tfe-convert.
    plan: PathBuf,
    /// One float32 .npy file per model input, in the model's input order.
    #[arg(required = true)]
    inputs: Vec<PathBuf>,
    /// Output file, once per model output in order (float32 .npy). Without -o the outputs are printed.
    #[arg(short, long = "output", value_name = "OUT.npy")]
    outputs: Vec<PathBuf>,
    /// Which interpreter runs the plan.
    #[arg(long, value_enum, default_value = "mpc")]
    mode: ModeArg,
    /// The secure protocol of --mode mpc: aby3 (three computing parties, replicated
    /// shares) or pond (two servers and a crypto producer) [default: aby3 embedded; with
    /// --config, the protocol the client plan was dealt for].
    #[arg(long, value_enum)]
    protocol: Option<Protocol>,
    /// Print time, bytes sent and rounds per step, and totals; in mpc mode (embedded or
    /// networked) beside the estimate that tfe-convert --check prints, then the bytes each
    /// party sent beside its estimate.
    #[arg(long)]
    profile: bool,
    /// Serve the inputs N times on one mpc session, as a deployment does: the weights are
    /// shared once, and each request's online latency is printed. The last request's outputs
    /// and figures are reported.
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    repeat: u64,
    /// Networked mode: connect to the three tfe-party servers of this configuration, as the
    /// client (PLAN is then the .client.plan written by tfe-convert --share).
    #[arg(long, value_name = "parties.json")]
    config: Option<PathBuf>,
    /// Networked mode: how many times to retry when the parties are busy, waiting what they
    /// suggest, doubled at each attempt.
    #[arg(long, value_name = "N", default_value_t = 5, requires = "config")]
    retries: u32,
}

fn main() {
    let args = Args::parse();
    if args.repeat > 1 && !matches!(args.mode, ModeArg::Mpc) {
        Args::command()
            .error(
                ErrorKind::ArgumentConflict,
                "--repeat serves requests on an mpc session; use it with --mode mpc",
            )
            .exit();
    }
    if args.config.is_some() && !matches!(args.mode, ModeArg::Mpc) {
        Args::command()
            .error(
                ErrorKind::ArgumentConflict,
                "--config runs the networked mpc mode; use it with --mode mpc",
            )
            .exit();
    }
    cli::run(|| run(&args))
}

fn run(args: &Args) -> Result<()> {
    let shared = match &args.config {
        Some(_) => Some(SharedPlan::read(&args.plan)?),
        None => None,
    };
    let plan = Arc::new(match &shared {
        Some(file) => file.plan.clone(),
        None => Plan::read(&args.plan)?,
    });
    if !args.outputs.is_empty() && args.outputs.len() != plan.outputs.len() {
        bail!(
            "the model has {} output(s) ({}) but -o was given {} time(s); give -o once per output, or not at all to print them",
            plan.outputs.len(),
            plan.outputs
                .iter()
                .map(|&id| plan.value(id).name.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            args.outputs.len()
        );
    }
    let inputs = args
        .inputs
        .iter()
        .map(|p| cli::read_npy(p))
        .collect::<Result<Vec<_>>>()?;
    let protocol = match (&shared, args.protocol) {
        (Some(file), Some(asked)) if asked != file.protocol => bail!(
            "{} was dealt for --protocol {}, not {}; drop --protocol, or deal the plan again with tfe-convert --share --protocol {}",
            args.plan.display(),
            file.protocol.name(),
            asked.name(),
            asked.name()
        ),
        (Some(file), _) => file.protocol,
        (None, asked) => asked.unwrap_or_default(),
    };
    let mode = args.mode.with(protocol);
    let (bar, steps) = match progress(mode, args.config.is_some()) {
        Some((bar, steps)) => (Some(bar), steps),
        None => (None, None),
    };
    let prediction = start(args, &plan, shared.as_ref(), mode, steps).and_then(|session| {
        let mut request = 0;
        serve::run_requests(session, &inputs, args.repeat, |p| {
            request += 1;
            if args.repeat > 1 {
                eprintln!(
                    "request {request}: {:.2} ms online",
                    p.time.as_secs_f64() * 1e3
                );
            }
        })
    });
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    let prediction = prediction.map_err(|e| {
        match e
            .downcast_ref::<InputError>()
            .and_then(InputError::input_index)
        {
            Some(i) => anyhow::anyhow!("{}: {e}", args.inputs[i].display()),
            None => e,
        }
    })?;
    if args.outputs.is_empty() {
        for (&id, out) in plan.outputs.iter().zip(&prediction.outputs) {
            println!(
                "{} (shape {:?}):\n{out:.6}",
                plan.value(id).name,
                out.shape()
            );
        }
    } else {
        for (path, out) in args.outputs.iter().zip(&prediction.outputs) {
            cli::write_npy(path, out)?;
        }
    }
    if args.profile {
        if let Mode::Mpc(protocol) = mode {
            // The last request's: dealers rotate on from the earlier requests'.
            let estimate = estimate_request(&plan, prediction.batch, protocol, args.repeat - 1)?;
            eprint!("{}", estimate.compare(&prediction.profile));
            eprint!("{}", estimate.compare_parties(&prediction.by_party));
        } else {
            eprint!("{}", prediction.profile.table());
        }
    }
    let setup_ms = prediction.setup.time.as_secs_f64() * 1e3;
    let setup = if args.config.is_some() {
        Some(format!(
            "networked; one-time setup: {setup_ms:.1} ms connecting to the parties over TLS"
        ))
    } else {
        matches!(mode, Mode::Mpc(_)).then(|| {
            format!(
                "one-time setup: {setup_ms:.1} ms, {} sharing keys and weights",
                human_bytes(prediction.setup.traffic.bytes_sent)
            )
        })
    };
    let traffic = setup.map_or(String::new(), |setup| {
        format!(
            ", {} sent in {} rounds ({setup})",
            human_bytes(prediction.online.bytes_sent),
            prediction.online.rounds
        )
    });
    eprintln!(
        "{mode}: batch {}, {:.1} ms{traffic}",
        prediction.batch,
        prediction.time.as_secs_f64() * 1e3
    );
    Ok(())
}

/// The session the arguments ask for: the client of the networked parties of `--config`,
/// or one in this process (telling `steps` its progress, when given).
fn start(
    args: &Args,
    plan: &Arc<Plan>,
    shared: Option<&SharedPlan>,
    mode: Mode,
    steps: Option<Progress>,
) -> Result<Box<dyn Session>> {
    match (&args.config, shared, steps) {
        (Some(config), Some(file), _) => {
            let config = Config::load(config)?;
            let name = args.plan.display().to_string();
            Ok(Box::new(NetworkedSession::connect(
                &config,
                file,
                &name,
                args.retries,
            )?))
        }
        (None, _, Some(steps)) => match mode {
            Mode::Mpc(protocol) => Ok(Box::new(EmbeddedSession::start_with_progress(
                plan.clone(),
                protocol,
                steps,
            )?)),
            _ => serve::start(plan.clone(), mode),
        },
        _ => serve::start(plan.clone(), mode),
    }
}

/// What stderr shows on an interactive terminal while the secure computation runs: the
/// steps done out of the plan's total when the parties run in this process, a spinner when
/// they are networked (each tfe-party shows its own steps), with what moves the bar.
fn progress(mode: Mode, networked: bool) -> Option<(indicatif::ProgressBar, Option<Progress>)> {
    use std::io::IsTerminal;
    if !matches!(mode, Mode::Mpc(_)) || !std::io::stderr().is_terminal() {
        return None;
    }
    if networked {
        let bar = indicatif::ProgressBar::new_spinner()
            .with_message("computing under three-party secret sharing");
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        return Some((bar, None));
    }
    let (bar, steps) = cli::step_bar("starting the parties and sharing the weights")?;
    Some((bar, Some(steps)))
}
