//! Secure-aggregation benchmark: N inputters of n values each, all roles embedded, timed
//! from the first share sent to the result revealed (min and median over runs), with the
//! bytes every role sends per value per inputter. Beside it, the same sum with the
//! general-purpose replicated sharing of `tfe::mpc` (each inputter a `Dealer`: two ring
//! elements per value, a reveal of three), the way to do it without `tfe::aggregate`. Last,
//! one networked round: the three parties (`serve_round`), the inputters (`submit`) and the
//! receiver (`receive`) on threads of this process but over mutual TLS on loopback, timed
//! from the parties starting to the result received. The aggregation rows run under each
//! protocol given (ABY3's rotating pairs, Pond's two servers).
//!
//!     cargo run --release --example aggregate_bench [-- --inputs 20 --values 1000000 --runs 5 --protocols aby3,pond]

use anyhow::{Result, ensure};
use clap::Parser;
use ndarray::{ArrayD, IxDyn};
use std::time::{Duration, Instant};
use tfe::mpc::Protocol;
use tfe::mpc::run_local_roles;
use tfe::mpc::share::{Dealer, recv_revealed, recv_secret, reveal_to};
use tfe::net::config::{Config, Timeouts};
use tfe::net::pki::write_test_pki;
use tfe::net::{Role, Stats, Transport};
use tfe::serve::{AggregateOp, Aggregation, RoundRules, receive, serve_round, submit};
use tfe::tensor::FixedPoint;

#[derive(Parser)]
#[command(about = "Benchmark of secure aggregation")]
struct Args {
    #[arg(long, default_value_t = 20)]
    inputs: usize,
    #[arg(long, default_value_t = 1_000_000)]
    values: usize,
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// The protocols to run the aggregation rows under, comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "aby3,pond")]
    protocols: Vec<Protocol>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let (n, len) = (args.inputs, args.values);
    let inputs: Vec<ArrayD<f32>> = (0..n)
        .map(|k| {
            ArrayD::from_shape_fn(IxDyn(&[len]), |i| {
                ((i[0] * 7 + k * 13) % 201) as f32 / 100.0 - 1.0
            })
        })
        .collect();
    println!(
        "{n} inputters x {len} values, median (min) of {} runs, all roles in one process",
        args.runs
    );
    println!("| method | ring | time | sent | bytes per value per inputter |");
    println!("|---|---|---|---|---|");
    for (&protocol, clip) in args.protocols.iter().flat_map(|p| [(p, 1.0), (p, 1e9)]) {
        let agg = Aggregation {
            clip: Some(clip),
            protocol,
            ..Aggregation::new(AggregateOp::Sum)
        };
        let mut ring = 0;
        let (times, traffic) = repeat(args.runs, || {
            let r = agg.run(&inputs)?;
            ring = r.ring.bits();
            ensure!(r.traffic == r.estimate, "traffic off the closed form");
            Ok(r.traffic)
        })?;
        let method = format!("tfe::aggregate ({}), clip {clip:e}", protocol.name());
        row(&method, ring, &times, traffic, n * len);
    }
    let (times, traffic) = repeat(args.runs, || replicated_sum(&inputs))?;
    row(
        "replicated sharing (mpc::share::Dealer)",
        64,
        &times,
        traffic,
        n * len,
    );
    let (config, pki) = deployment(n)?;
    for (&protocol, clip) in args.protocols.iter().flat_map(|p| [(p, 1.0), (p, 1e9)]) {
        let mut ring = 0;
        let (times, traffic) = repeat(args.runs, || {
            let (bits, traffic) = networked(&config, &inputs, clip, protocol)?;
            ring = bits;
            Ok(traffic)
        })?;
        let method = format!(
            "networked round over TLS (loopback, {}), clip {clip:e}",
            protocol.name()
        );
        row(&method, ring, &times, traffic, n * len);
    }
    std::fs::remove_dir_all(pki)?;
    Ok(())
}

/// A throw-away PKI for three parties on free loopback ports, `n` inputters and a receiver:
/// its configuration and its folder.
fn deployment(n: usize) -> Result<(Config, std::path::PathBuf)> {
    let dir = std::env::temp_dir().join(format!("tfe-aggregate-bench-{}", std::process::id()));
    let listeners = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    let ports: Vec<u16> = (listeners.iter())
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<std::io::Result<_>>()?;
    drop(listeners);
    let roles = [
        Role::Party(0),
        Role::Party(1),
        Role::Party(2),
        Role::Receiver,
    ];
    let names: Vec<String> = (0..n).map(|k| format!("inputter{k:03}")).collect();
    let long = Duration::from_secs(60);
    let timeouts = Timeouts {
        connect: long,
        read: long,
    };
    let path = write_test_pki(
        &dir,
        &roles,
        &names,
        [ports[0], ports[1], ports[2]],
        timeouts,
    )?;
    Ok((Config::load(&path)?, dir))
}

/// One networked round summing `inputs` under `protocol`: the ring's bits and every role's
/// traffic.
fn networked(
    config: &Config,
    inputs: &[ArrayD<f32>],
    clip: f32,
    protocol: Protocol,
) -> Result<(u32, Stats)> {
    let rules = RoundRules {
        round: "bench".into(),
        inputters: config.inputters().to_vec(),
        shape: inputs[0].shape().to_vec(),
        clip,
        min_inputs: inputs.len(),
        weights: None,
        deadline_ms: 600_000,
        frac_bits: FixedPoint::default().frac_bits,
        protocol,
    };
    std::thread::scope(|scope| {
        let parties: Vec<_> = (0..3)
            .map(|id| {
                let rules = &rules;
                scope.spawn(move || serve_round(config, id, rules, &|_| {}))
            })
            .collect();
        let inputters: Vec<_> = (config.inputters().iter().zip(inputs))
            .map(|(name, x)| scope.spawn(move || submit(config, name, "bench", protocol, x)))
            .collect();
        let got = receive(config, "bench", AggregateOp::Sum)?;
        ensure!(got.included.len() == inputs.len(), "an inputter is missing");
        let mut traffic = got.traffic;
        for party in parties {
            traffic = traffic.alongside(party.join().expect("a party panicked")?.traffic);
        }
        for inputter in inputters {
            traffic = traffic.alongside(inputter.join().expect("an inputter panicked")?.traffic);
        }
        Ok((got.ring_bits, traffic))
    })
}

/// Runs `f` `runs` times: the times and the last run's traffic.
fn repeat(runs: u64, mut f: impl FnMut() -> Result<Stats>) -> Result<(Vec<Duration>, Stats)> {
    let mut times = vec![];
    let mut traffic = Stats::default();
    for _ in 0..runs {
        let started = Instant::now();
        traffic = f()?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok((times, traffic))
}

fn row(method: &str, ring: u32, times: &[Duration], traffic: Stats, values: usize) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "| {method} | Z_2^{ring} | {:.0} ms ({:.0} ms) | {:.1} MB | {:.2} |",
        ms(times[times.len() / 2]),
        ms(times[0]),
        traffic.bytes_sent as f64 / 1e6,
        traffic.bytes_sent as f64 / values as f64
    );
}

/// The baseline: every inputter deals a replicated sharing, the parties add the shares and
/// reveal the sum to the receiver.
fn replicated_sum(inputs: &[ArrayD<f32>]) -> Result<Stats> {
    let shape = inputs[0].shape().to_vec();
    let mut roles: Vec<Role> = (0..inputs.len())
        .map(|k| Role::Inputter(k as u16))
        .collect();
    roles.push(Role::Client);
    let party = |p: &mut tfe::mpc::Party| {
        let mut sum = recv_secret(p, Role::Inputter(0), &shape)?;
        for k in 1..inputs.len() {
            let x = recv_secret(p, Role::Inputter(k as u16), &shape)?;
            sum.cur.zip_mut_with(&x.cur, |a, b| *a = a.wrapping_add(*b));
            sum.next
                .zip_mut_with(&x.next, |a, b| *a = a.wrapping_add(*b));
        }
        reveal_to(p, Role::Client, &sum)?;
        Ok(p.stats())
    };
    let (parties, outside) = run_local_roles(
        &|e| Box::new(e),
        Protocol::Aby3,
        &roles,
        party,
        |mut ends| {
            let mut receiver = ends.pop().expect("receiver");
            let mut traffic = Stats::default();
            for (end, x) in ends.iter_mut().zip(inputs) {
                let encoded = x.mapv(|v| (v as f64 * 65536.0).round() as i64 as u64);
                Dealer::from_os(Protocol::Aby3)?.send_secret(end, &encoded)?;
                traffic = traffic.alongside(end.stats());
            }
            recv_revealed(&mut receiver, Protocol::Aby3, &shape)?;
            Ok(traffic.alongside(receiver.stats()))
        },
    )?;
    Ok(parties.into_iter().fold(outside, Stats::alongside))
}
