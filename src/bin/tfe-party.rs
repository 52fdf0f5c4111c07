//! tfe-party: one compute party of a networked deployment, as a long-lived server.

use anyhow::{Context, Result, bail};
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;
use tfe::cli;
use tfe::net::config::Config;
use tfe::plan::SharedPlan;
use tfe::serve::PartyServer;

#[derive(Parser)]
#[command(
    name = "tfe-party",
    version,
    about = "Run one compute party of a networked tfe deployment",
    long_about = "Runs one of the three compute parties in its own process. It loads its weight \
shares (the .partyN.plan file written by tfe-convert --share), then for each client: connects \
the mesh over mutual TLS, agrees on keys with the other parties and serves prediction requests \
until the client is done. It never sees the weights, the inputs or the outputs in the clear.\n\n\
Exit status: 0 after a clean --once session, 1 on an error (a lost peer is named), 2 for \
command-line mistakes.",
    after_help = "Example:\n  tfe-party --config pki/parties.json --id party0 --plan model.party0.plan"
)]
struct Args {
    /// The deployment's configuration (see docs/NETWORK.md).
    #[arg(long, value_name = "parties.json")]
    config: PathBuf,
    /// Which compute party this process is.
    #[arg(long, value_parser = ["party0", "party1", "party2"])]
    id: String,
    /// This party's share file, written by tfe-convert --share.
    #[arg(long, value_name = "MODEL.partyN.plan")]
    plan: PathBuf,
    /// Serve one client session, then exit; without it, wait for the next client.
    #[arg(long)]
    once: bool,
}

fn main() {
    let args = Args::parse();
    cli::run(|| run(&args))
}

fn run(args: &Args) -> Result<()> {
    let id: u8 = args.id["party".len()..].parse()?;
    let config = Config::load(&args.config)?;
    let name = args.plan.display().to_string();
    let mut server = PartyServer::load(SharedPlan::read(&args.plan)?, id, &name)?;
    // Kept for the process's life: the bar clears itself after each request.
    let _bar = match cli::step_bar(&format!("{} serving", args.id)) {
        Some((bar, steps)) => {
            server = server.with_progress(steps);
            Some(bar)
        }
        None => None,
    };
    eprintln!(
        "tfe-party: {} loaded {name} ({})",
        args.id,
        server.describe()
    );
    loop {
        let session = match server.await_client(&config) {
            Ok(session) => session,
            Err(e) if !args.once => {
                eprintln!(
                    "tfe-party: {}: no client yet ({e:#}); waiting again",
                    args.id
                );
                std::thread::sleep(Duration::from_secs(1));
                continue;
            }
            Err(e) => bail!("{e:#}"),
        };
        eprintln!("tfe-party: {} joined session {session}", args.id);
        let served = server
            .serve(&config, session)
            .with_context(|| format!("{} stopped in session {session}", args.id))?;
        eprintln!(
            "tfe-party: {} ended session {session} after {served} request(s)",
            args.id
        );
        if args.once {
            return Ok(());
        }
    }
}
