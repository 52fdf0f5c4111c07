//! End-to-end benchmark: for each fixture model and batch size, the online latency of private
//! inference (min and median over several requests on one session, whose one-time setup of
//! keys and weight shares is reported apart), online bytes and rounds, the peak memory of the
//! whole run, tract's plaintext latency measured in the same run, and accuracy against tract;
//! then a second table against the published figures of other frameworks and this project's
//! targets.
//!
//!     cargo run --release --example bench [-- --runs 10 --rows mlp_a,lenet --batch 1,64]
//!
//! With `--networked`, each model also gets a row for the networked mode: three parties as
//! child processes (this binary again) over mutual TLS on loopback, and the row's process as
//! the client.
//!
//! Each row runs in a fresh child process (this binary again, with a hidden flag), so that
//! the peak resident memory read from /proc/self/status is that row's own.

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use ndarray::{ArrayD, Axis};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tfe::exec::human_bytes;
use tfe::lower::{Options, convert};
use tfe::net::Role;
use tfe::net::config::Config;
use tfe::net::pki::write_test_pki;
use tfe::plan::{Holder, SharedPlan};
use tfe::serve::{self, Mode, NetworkedSession, PartyServer, Session, deal};
use tract_onnx::prelude::*;

#[derive(Parser)]
#[command(about = "End-to-end benchmark of private inference on the fixture models")]
struct Args {
    /// Requests measured per row, after one warm-up request.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// Fixture models to measure, in this order (folders of fixtures/ with model.onnx and
    /// input_b32.npy).
    #[arg(
        long,
        alias = "models",
        value_delimiter = ',',
        default_value = "mlp_a,lenet,cnn_bn,mlp"
    )]
    rows: Vec<String>,
    /// Batch sizes for every model [default: 1 and 64 for mlp_a and lenet, 1 for the others].
    #[arg(
        long,
        alias = "batches",
        value_delimiter = ',',
        value_parser = clap::value_parser!(u64).range(1..)
    )]
    batch: Vec<u64>,
    /// Add a row per model and batch for the networked mode on loopback.
    #[arg(long)]
    networked: bool,
    /// Measure the one model and batch given in this process and print the result as JSON.
    #[arg(long, hide = true)]
    child: bool,
    /// Serve one session as this party of the deployment in DIR (a networked row's child).
    #[arg(long, hide = true, value_name = "DIR", requires = "id")]
    party_in: Option<std::path::PathBuf>,
    #[arg(long, hide = true)]
    id: Option<u8>,
}

/// How the tables name a fixture.
fn title(fixture: &str) -> &str {
    match fixture {
        "mlp_a" => "Network-A MLP 784-128-128-10",
        "lenet" => "LeNet",
        "cnn_bn" => "digits CNN",
        "mlp" => "small mlp",
        other => other,
    }
}

fn default_batches(fixture: &str) -> &'static [u64] {
    match fixture {
        "mlp_a" | "lenet" => &[1, 64],
        _ => &[1],
    }
}

/// What one row measured (a child's answer to the parent).
#[derive(Serialize, Deserialize)]
struct Measured {
    online_min: Duration,
    online_median: Duration,
    /// Per request (the whole batch).
    online_bytes: u64,
    rounds: u64,
    setup_time: Duration,
    setup_bytes: u64,
    /// Resident set high-water mark of the whole process, where the OS reports it.
    peak_memory: Option<u64>,
    plaintext_median: Duration,
    /// Worst over the measured requests.
    max_abs_err: f32,
    top1_agree: usize,
}

const PEERS: [&str; 3] = ["SecretFlow SPU", "TF Encrypted", "CrypTen"];

/// Per row (model, batch): the [`PEERS`]' published figures (three parties in one process on
/// this machine kind, weights and input both secret; KB and MB are decimal), and this
/// project's latency target in ms.
#[rustfmt::skip]
const REFERENCES: [(&str, u64, [&str; 3], f64); 5] = [
    ("mlp_a", 1, ["51 ms, 58 KB", "164 ms", "430 ms, 6.4 MB"], 5.0),
    ("mlp_a", 64, ["624 ms, 3.7 MB", "350 ms", "482 ms"], 60.0),
    ("lenet", 1, ["0.86 s, 5.3 MB, 110 rounds", "1.15 s", "3.3 s, 239 MB"], 80.0),
    ("lenet", 64, ["14.5 s, 340 MB", "11.8 s", "67 s, 14 GB"], 1200.0),
    ("cnn_bn", 1, ["108 ms, 480 KB, 66 rounds", "0.83 s", "1.5 s"], 10.0),
];

const MS: &[(&str, f64)] = &[("ms", 1.0), ("s", 1e3)];
const BYTES: &[(&str, f64)] = &[("KB", 1e3), ("MB", 1e6), ("GB", 1e9)];

/// The part of a published figure in one of `units` ("0.86 s" of "0.86 s, 5.3 MB"), scaled.
fn quantity(figure: &str, units: &[(&str, f64)]) -> Option<f64> {
    figure.split(", ").find_map(|part| {
        let (number, unit) = part.split_once(' ')?;
        let scale = units.iter().find(|(u, _)| *u == unit)?.1;
        Some(number.parse::<f64>().ok()? * scale)
    })
}

/// LeNet's peak memory target.
const LENET_MAX_MEMORY: u64 = 1 << 30;

fn main() -> Result<()> {
    let args = Args::parse();
    if let (Some(dir), Some(id)) = (&args.party_in, args.id) {
        return serve_party(dir, id);
    }
    if args.child {
        let ([model], [batch]) = (args.rows.as_slice(), args.batch.as_slice()) else {
            bail!("--child measures exactly one model and one batch size");
        };
        let measured = measure(model, *batch as usize, args.runs as usize, args.networked)?;
        println!("{}", serde_json::to_string(&measured)?);
        return Ok(());
    }
    let mut rows = vec![];
    for model in &args.rows {
        let batches = match args.batch.as_slice() {
            [] => default_batches(model),
            given => given,
        };
        for &batch in batches {
            eprintln!("measuring {model} at batch {batch}");
            let m = measure_in_child(model, batch, args.runs, false)?;
            rows.push((model, batch, false, m));
            if args.networked {
                eprintln!("measuring {model} at batch {batch}, networked");
                let m = measure_in_child(model, batch, args.runs, true)?;
                rows.push((model, batch, true, m));
            }
        }
    }
    println!(
        "| model | batch | online min | online median | online sent | rounds | peak memory | tract | mpc / tract | max abs err | top-1 agree | setup time | setup sent |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (model, batch, networked, m) in &rows {
        println!("{}", row(model, *batch, *networked, m));
    }
    let compared: Vec<String> = rows
        .iter()
        .filter(|(_, _, networked, _)| !networked)
        .filter_map(|(model, batch, _, m)| {
            let &(_, _, figures, target_ms) =
                REFERENCES.iter().find(|r| r.0 == *model && r.1 == *batch)?;
            Some(comparison(model, *batch, figures, target_ms, m))
        })
        .collect();
    if !compared.is_empty() {
        println!();
        println!(
            "| model | batch | tfe | {} | speed-up vs best peer | targets |",
            PEERS.join(" | ")
        );
        println!("|---|---|---|---|---|---|---|---|");
        println!("{}", compared.join("\n"));
    }
    Ok(())
}

/// Runs this benchmark again as a child process for one row.
fn measure_in_child(name: &str, batch: u64, runs: u64, networked: bool) -> Result<Measured> {
    let me = std::env::current_exe().context("cannot find the benchmark's own executable")?;
    let out = Command::new(me)
        .args(["--child", "--rows", name])
        .args(networked.then_some("--networked"))
        .args(["--batch", &batch.to_string(), "--runs", &runs.to_string()])
        .output()
        .context("cannot run the benchmark's child process")?;
    ensure!(
        out.status.success(),
        "measuring {name} at batch {batch} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .with_context(|| format!("the child measuring {name} at batch {batch} answered badly"))
}

/// The three party processes of a networked row, killed if the row fails.
struct Parties(Vec<std::process::Child>);

impl Parties {
    fn wait(&mut self) -> Result<()> {
        for mut child in self.0.drain(..) {
            ensure!(child.wait()?.success(), "a party process failed");
        }
        Ok(())
    }
}

impl Drop for Parties {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Deals `plan` into a fresh directory with a test PKI, starts the three parties as child
/// processes and connects to them.
fn start_networked(plan: &tfe::plan::Plan) -> Result<(NetworkedSession, Parties)> {
    let dir = std::env::temp_dir().join(format!("tfe-bench-{}", std::process::id()));
    // Free ports: bound, read, and released before the parties bind them.
    let listeners: Vec<std::net::TcpListener> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<_>>()?;
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<std::io::Result<_>>()?;
    drop(listeners);
    let roles = [Role::Party(0), Role::Party(1), Role::Party(2), Role::Client];
    let config = write_test_pki(
        &dir,
        &roles,
        [ports[0], ports[1], ports[2]],
        Default::default(),
    )?;
    let mut client_file = None;
    for file in deal(plan)? {
        file.write(&dir.join(format!("{}.plan", file.holder.name())))?;
        if file.holder == Holder::Client {
            client_file = Some(file);
        }
    }
    let me = std::env::current_exe().context("cannot find the benchmark's own executable")?;
    let parties = (0..3)
        .map(|id| {
            Command::new(&me)
                .arg("--party-in")
                .arg(&dir)
                .args(["--id", &id.to_string()])
                .spawn()
        })
        .collect::<std::io::Result<_>>()?;
    let parties = Parties(parties);
    let file = client_file.context("a dealing has a client file")?;
    let session = NetworkedSession::connect(&Config::load(&config)?, &file, "client.plan");
    // Every party has read its files by the time the client is connected.
    let _ = std::fs::remove_dir_all(&dir);
    Ok((session?, parties))
}

/// A networked row's party: one session on its file in `dir`.
fn serve_party(dir: &Path, id: u8) -> Result<()> {
    let name = dir.join(format!("party{id}.plan"));
    let file = SharedPlan::read(&name)?;
    let server = PartyServer::load(file, id, &name.display().to_string())?;
    let config = Config::load(&dir.join("parties.json"))?;
    let session = server.await_client(&config)?;
    server.serve(&config, session).map(|_| ())
}

/// One row, in this process.
fn measure(model: &str, batch: usize, runs: usize, networked: bool) -> Result<Measured> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(model);
    let onnx = dir.join("model.onnx");
    let plan = convert(&onnx, Options::default())
        .with_context(|| format!("converting {}", onnx.display()))?
        .plan;
    let x = input(&dir, batch)?;
    let (expected, plaintext_median) = plaintext(&onnx, &x, runs.max(20))?;
    let inputs = std::slice::from_ref(&x);
    let (mut session, parties): (Box<dyn Session>, _) = if networked {
        let (session, parties) = start_networked(&plan)?;
        (Box::new(session), Some(parties))
    } else {
        (serve::start(Arc::new(plan), Mode::Mpc)?, None)
    };
    session.predict(inputs)?;
    let mut times = vec![];
    let (mut max_abs_err, mut top1_agree) = (0.0f32, batch);
    let mut traffic = Default::default();
    for _ in 0..runs {
        let started = Instant::now();
        let p = session.predict(inputs)?;
        times.push(started.elapsed());
        let got = &p.outputs[0];
        max_abs_err = got
            .iter()
            .zip(expected.iter())
            .map(|(a, b)| (a - b).abs())
            .fold(max_abs_err, f32::max);
        top1_agree = top1_agree.min(top1_agreement(got, &expected));
        traffic = p.online;
    }
    let setup = session.setup();
    session.close()?;
    if let Some(mut parties) = parties {
        parties.wait()?;
    }
    times.sort();
    Ok(Measured {
        online_min: times[0],
        online_median: times[times.len() / 2],
        online_bytes: traffic.bytes_sent,
        rounds: traffic.rounds,
        setup_time: setup.time,
        setup_bytes: setup.traffic.bytes_sent,
        peak_memory: peak_memory(),
        plaintext_median,
        max_abs_err,
        top1_agree,
    })
}

/// `batch` rows taken cyclically from the fixture's batch-32 input.
fn input(dir: &Path, batch: usize) -> Result<ArrayD<f32>> {
    let path = dir.join("input_b32.npy");
    let x = tfe::cli::read_npy(&path)?;
    let rows: Vec<_> = (0..batch)
        .map(|i| x.index_axis(Axis(0), i % x.shape()[0]).insert_axis(Axis(0)))
        .collect();
    Ok(ndarray::concatenate(Axis(0), &rows)?)
}

/// tract's output for `x` and its median latency over `runs` runs.
fn plaintext(onnx: &Path, x: &ArrayD<f32>, runs: usize) -> Result<(ArrayD<f32>, Duration)> {
    let mut model = tract_onnx::onnx().model_for_path(onnx)?;
    model.set_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), x.shape()))?;
    let runner = model.into_optimized()?.into_runnable()?;
    let tv: TVec<TValue> = tvec![Tensor::from(x.clone()).into()];
    let expected = runner.run(tv.clone())?[0]
        .to_plain_array_view::<f32>()?
        .to_owned();
    let mut times = (0..runs)
        .map(|_| {
            let started = Instant::now();
            runner.run(tv.clone())?;
            Ok(started.elapsed())
        })
        .collect::<Result<Vec<_>>>()?;
    times.sort();
    Ok((expected, times[times.len() / 2]))
}

/// How many rows of `got` have their largest value where `expected` has it.
fn top1_agreement(got: &ArrayD<f32>, expected: &ArrayD<f32>) -> usize {
    let top1 = |a: &ArrayD<f32>| {
        a.map_axis(Axis(a.ndim() - 1), |r| {
            r.iter()
                .enumerate()
                .max_by(|x, y| x.1.total_cmp(y.1))
                .map(|(i, _)| i)
        })
    };
    let (got, expected) = (top1(got), top1(expected));
    got.iter().zip(&expected).filter(|(a, b)| a == b).count()
}

/// This process's peak resident memory (`VmHWM`), on Linux.
fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

fn row(model: &str, batch: u64, networked: bool, m: &Measured) -> String {
    let mode = if networked {
        " (networked, loopback)"
    } else {
        ""
    };
    format!(
        "| {}{mode} | {batch} | {} | {} | {} | {} | {} | {:.3} ms | {:.0}x | {:.1e} | {}/{batch} | {} | {} |",
        title(model),
        ms(m.online_min),
        ms(m.online_median),
        human_bytes(m.online_bytes),
        m.rounds,
        m.peak_memory.map_or("–".into(), human_bytes),
        m.plaintext_median.as_secs_f64() * 1e3,
        m.online_median.as_secs_f64() / m.plaintext_median.as_secs_f64(),
        m.max_abs_err,
        m.top1_agree,
        ms(m.setup_time),
        human_bytes(m.setup_bytes),
    )
}

/// Our median and the peers' figures, the speed-up over the fastest peer, and which targets
/// are met: latency, bytes no more than SPU's, and LeNet's peak memory.
fn comparison(model: &str, batch: u64, figures: [&str; 3], target_ms: f64, m: &Measured) -> String {
    let ours_ms = m.online_median.as_secs_f64() * 1e3;
    let published = |f: &str| quantity(f, MS).expect("every figure starts with a latency");
    let (best, best_ms) = PEERS
        .iter()
        .zip(figures.map(published))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .expect("three peers");
    let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
    let spu_bytes = quantity(figures[0], BYTES).expect("SPU's figures give bytes");
    let mut targets = vec![
        format!("≤ {target_ms} ms {}", verdict(ours_ms <= target_ms)),
        format!(
            "bytes ≤ SPU's {}",
            verdict(m.online_bytes as f64 <= spu_bytes)
        ),
    ];
    if model == "lenet" {
        let ok = m.peak_memory.is_some_and(|p| p <= LENET_MAX_MEMORY);
        targets.push(format!(
            "peak ≤ {} {}",
            human_bytes(LENET_MAX_MEMORY),
            verdict(ok)
        ));
    }
    format!(
        "| {} | {batch} | {}, {} | {} | {:.1}x ({best}) | {} |",
        title(model),
        ms(m.online_median),
        human_bytes(m.online_bytes),
        figures.join(" | "),
        best_ms / ours_ms,
        targets.join(", "),
    )
}
