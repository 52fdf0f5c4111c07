//! tfe-pki: a throw-away PKI and parties.json for trying the networked mode on one machine.

use anyhow::Result;
use clap::Parser;
use std::path::PathBuf;
use std::time::Duration;
use tfe::cli;
use tfe::net::Role;
use tfe::net::config::Timeouts;
use tfe::net::pki::write_test_pki;

#[derive(Parser)]
#[command(
    name = "tfe-pki",
    version,
    about = "Write a test CA, a certificate and key per role, and parties.json for loopback",
    long_about = "Writes ca.pem, <role>.pem and <role>.key for party0, party1, party2 and the \
client (with --inputters, inputter-<name>.pem and .key for each inputter of a secure \
aggregation; with --receiver, receiver.pem and .key for its result receiver), and a \
parties.json where party i listens on 127.0.0.1:<port i>. For local trials and tests only: the \
CA's key is discarded, so the set can never be extended or revoked.",
    after_help = "Examples:\n  tfe-pki pki --ports 7000,7001,7002\n  tfe-pki pki --inputters hospital-a,hospital-b,hospital-c --receiver"
)]
struct Args {
    /// The directory to write (created if missing).
    dir: PathBuf,
    /// The three parties' ports on 127.0.0.1.
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 1,
        default_value = "7000,7001,7002"
    )]
    ports: Vec<u16>,
    /// Name the inputters of a secure aggregation (comma-separated), each with its certificate.
    #[arg(
        long,
        value_delimiter = ',',
        num_args = 1,
        value_name = "NAME,NAME,..."
    )]
    inputters: Vec<String>,
    /// Also write the result receiver of a secure aggregation.
    #[arg(long)]
    receiver: bool,
    /// Time to set up the mesh, retries included.
    #[arg(long, value_name = "MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    connect_ms: u64,
    /// Silence after which a peer counts as lost.
    #[arg(long, value_name = "MS", default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..))]
    read_ms: u64,
}

fn main() {
    let args = Args::parse();
    cli::run(|| run(&args))
}

fn run(args: &Args) -> Result<()> {
    let ports: [u16; 3] = args
        .ports
        .clone()
        .try_into()
        .map_err(|_| anyhow::anyhow!("--ports takes three ports, one per party"))?;
    let timeouts = Timeouts {
        connect: Duration::from_millis(args.connect_ms),
        read: Duration::from_millis(args.read_ms),
    };
    let mut roles = vec![Role::Party(0), Role::Party(1), Role::Party(2), Role::Client];
    if args.receiver {
        roles.push(Role::Receiver);
    }
    let config = write_test_pki(&args.dir, &roles, &args.inputters, ports, timeouts)?;
    // Names the configuration would refuse are refused here, before anyone uses the files.
    tfe::net::config::Config::load(&config)?;
    println!("wrote {}", config.display());
    Ok(())
}
