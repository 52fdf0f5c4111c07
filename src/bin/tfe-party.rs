//! tfe-party: one compute party of a networked deployment, as a long-lived server for
//! private prediction, or for one round of secure aggregation.

use anyhow::{Context, Result};
use clap::Parser;
use std::path::PathBuf;
use tfe::cli;
use tfe::exec::human_bytes;
use tfe::mpc::Protocol;
use tfe::net::config::Config;
use tfe::plan::SharedPlan;
use tfe::serve::{PartyServer, RoundRules, check_round_name, serve_party, serve_round};
use tfe::tensor::FixedPoint;

#[derive(Parser)]
#[command(
    name = "tfe-party",
    version,
    about = "Run one compute party of a networked tfe deployment",
    long_about = "Runs one of the three compute parties in its own process.\n\n\
Prediction (--plan): it loads its weight shares (the .partyN.plan file written by tfe-convert \
--share), then serves clients until it is stopped: each client session on its own connections \
over mutual TLS, up to --max-sessions at once (party 0 queues or refuses the others as busy), \
each with its own keys, requests until the client is done. A session that fails (a client \
that stalls, dies or sends a batch over --max-batch, a lost peer) ends with one line on stderr; \
the party serves on. It never sees the weights, the inputs or the outputs in the clear. It runs \
the protocol its file was dealt for: ABY3, or Pond (tfe-convert --share --protocol pond), where \
party0 and party1 are the two servers and party2 the crypto producer, which only deals \
correlated randomness and receives nothing.\n\n\
Secure aggregation (--aggregate ROUND): it holds the named round open for the inputters of the \
configuration (roles.inputters) until each has submitted or --deadline-ms passes, takes only \
shares of their vectors, refuses second submissions and callers of other rounds, then reveals \
the sum to the result receiver (roles.receiver) only if at least --min-inputs inputters \
submitted. The three parties must be given the same round and rules. The round's rules are \
public: every caller is told them. Under --protocol pond only party0 and party1 take pieces and \
send terms; party2 agrees with them on who submitted and tells the receiver the outcome.\n\n\
Exit status: 0 after a clean --once session or a revealed round, 1 on an error (a lost peer is \
named; a round below its minimum), 2 for command-line mistakes.",
    after_help = "Examples:\n  tfe-party --config pki/parties.json --id party0 --plan model.party0.plan\n  tfe-party --config pki/parties.json --id party0 --aggregate week-12 --shape 10 --clip 100 --min-inputs 2"
)]
struct Args {
    /// The deployment's configuration (see docs/NETWORK.md).
    #[arg(long, value_name = "parties.json")]
    config: PathBuf,
    /// Which compute party this process is.
    #[arg(long, value_parser = ["party0", "party1", "party2"])]
    id: String,
    /// This party's share file, written by tfe-convert --share.
    #[arg(
        long,
        value_name = "MODEL.partyN.plan",
        required_unless_present = "aggregate"
    )]
    plan: Option<PathBuf>,
    /// Serve one client session, then exit with its outcome; without it, serve until stopped.
    #[arg(long, conflicts_with = "aggregate")]
    once: bool,
    /// Sessions served at once (default: serve.max_sessions in the configuration, else 4).
    #[arg(long, value_name = "N", conflicts_with = "aggregate", value_parser = clap::value_parser!(u64).range(1..))]
    max_sessions: Option<u64>,
    /// Clients party 0 keeps waiting beyond them (default: serve.max_queue, else 16).
    #[arg(long, value_name = "N", conflicts_with = "aggregate")]
    max_queue: Option<u64>,
    /// Rows in one request (default: serve.max_batch, else 256).
    #[arg(long, value_name = "N", conflicts_with = "aggregate", value_parser = clap::value_parser!(u64).range(1..))]
    max_batch: Option<u64>,
    /// Run the secure aggregation round of this name, then exit.
    #[arg(long, value_name = "ROUND", conflicts_with = "plan", requires_all = ["shape", "clip"], help_heading = "Secure aggregation")]
    aggregate: Option<String>,
    /// The shape of every inputter's vector, comma-separated (10, or 10,65).
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 1,
        value_name = "D1,D2,...",
        requires = "aggregate",
        help_heading = "Secure aggregation"
    )]
    shape: Option<Vec<usize>>,
    /// Inputters' values are clipped to [-C, C]; decides the ring (see tfe-aggregate --help).
    #[arg(
        long,
        value_name = "C",
        requires = "aggregate",
        help_heading = "Secure aggregation"
    )]
    clip: Option<f32>,
    /// Reveal nothing unless at least K inputters submitted.
    #[arg(long, value_name = "K", default_value_t = 2, value_parser = clap::value_parser!(u64).range(1..), help_heading = "Secure aggregation")]
    min_inputs: u64,
    /// Public weights for a weighted sum or mean (NAME=W, comma-separated; others weigh 1).
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 1,
        value_name = "NAME=W,...",
        requires = "aggregate",
        help_heading = "Secure aggregation"
    )]
    weights: Vec<String>,
    /// How long to hold the round open for submissions once the parties have met.
    #[arg(long, value_name = "MS", default_value_t = 60_000, value_parser = clap::value_parser!(u64).range(1..), help_heading = "Secure aggregation")]
    deadline_ms: u64,
    /// The protocol: for a round (default aby3), aby3 puts an inputter's pieces on a pair
    /// of the three parties, pond on the servers party0 and party1 (party2, the crypto
    /// producer, only agrees on who submitted); inputters submit with the same --protocol.
    /// A share file (--plan) names the protocol it was dealt for: given, it must match.
    #[arg(long, value_enum)]
    protocol: Option<Protocol>,
}

fn main() {
    let args = Args::parse();
    cli::run(|| run(&args))
}

fn run(args: &Args) -> Result<()> {
    let id: u8 = args.id["party".len()..].parse()?;
    let config = Config::load(&args.config)?;
    let Some(plan) = &args.plan else {
        return aggregate(args, &config, id);
    };
    let name = plan.display().to_string();
    let shares = SharedPlan::read(plan)?;
    if let Some(asked) = args.protocol {
        anyhow::ensure!(
            asked == shares.protocol,
            "{name} was dealt for {}, not {}: deal the model with tfe-convert --share \
             --protocol {1}, or leave out --protocol (the file decides)",
            shares.protocol.name(),
            asked.name()
        );
    }
    let mut serving = config.serving();
    let pick = |flag: Option<u64>, default: usize| flag.map_or(default, |n| n as usize);
    serving.max_sessions = pick(args.max_sessions, serving.max_sessions);
    serving.max_queue = pick(args.max_queue, serving.max_queue);
    serving.max_batch = pick(args.max_batch, serving.max_batch);
    let mut server = PartyServer::load(shares, id, &name)?.with_serving(serving);
    // Kept for the process's life: the bar clears itself after each request.
    let _bar = match cli::step_bar(&format!("{} serving", args.id)) {
        Some((bar, steps)) => {
            server = server.with_progress(steps);
            Some(bar)
        }
        None => None,
    };
    eprintln!(
        "tfe-party: {} loaded {name} ({}); up to {} session(s) at once, {} queued, batches of \
         at most {}",
        args.id,
        server.describe(),
        serving.max_sessions,
        serving.max_queue,
        serving.max_batch
    );
    let log = |line: &str| eprintln!("tfe-party: {line}");
    serve_party(&server, &config, args.once, &log)
}

/// One round of secure aggregation under the rules given on the command line.
fn aggregate(args: &Args, config: &Config, id: u8) -> Result<()> {
    let round = args
        .aggregate
        .clone()
        .expect("clap requires --aggregate without --plan");
    check_round_name(&round)?;
    let rules = RoundRules {
        round,
        inputters: config.inputters().to_vec(),
        shape: args.shape.clone().unwrap_or_default(),
        clip: args.clip.unwrap_or_default(),
        min_inputs: args.min_inputs as usize,
        weights: match args.weights.is_empty() {
            true => None,
            false => Some(RoundRules::weights_by_name(
                config.inputters(),
                &args.weights,
            )?),
        },
        deadline_ms: args.deadline_ms,
        frac_bits: FixedPoint::default().frac_bits,
        protocol: args.protocol.unwrap_or_default(),
    };
    let log = |what: &str| eprintln!("tfe-party: {} {what}", args.id);
    let served = serve_round(config, id, &rules, &log)
        .with_context(|| format!("{} revealed nothing for round {:?}", args.id, rules.round))?;
    log(&format!(
        "round closed; the parties revealed the sum of {} inputter(s) ({}) to the result receiver after {:.1} ms; {} sent",
        served.included.len(),
        served.included.join(", "),
        served.time.as_secs_f64() * 1e3,
        human_bytes(served.traffic.bytes_sent)
    ));
    Ok(())
}
