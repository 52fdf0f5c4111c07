//! End-to-end benchmark: for each model and batch size, under each protocol side by side
//! (ABY3 and Pond by default), the online latency of private inference (min and median over
//! several requests on one session, whose one-time setup of keys and weight shares is
//! reported apart), online bytes and rounds, the peak memory of the whole run and accuracy
//! against tract, with Pond's time and bytes over ABY3's; the plaintext latency of tract and
//! of onnxruntime on one thread measured in the same run; the bytes each party sent; then a
//! table beside the peers and this project's targets (ABY3's figures).
//!
//!     cargo run --release --example bench [-- --runs 10 --rows mlp_a,lenet --batch 1,64]
//!     cargo run --release --example bench -- --rows resnet50,bert_base --batch 1 --runs 3 --links lan,wan --protocols aby3
//!
//! Models are folders of fixtures/, or of target/large-models/ (written by
//! scripts/make_large_models.py). `--links lan,wan` adds rows whose parties talk through
//! emulated links (`tfe::net::shaped`: 1 Gbit/s and 0.5 ms round trip, 100 Mbit/s and 40 ms);
//! `--networked` adds rows with three party processes over mutual TLS on loopback (under
//! Pond, on share files dealt for it). `--peers
//! spu.jsonl` reads SecretFlow SPU's figures measured by scripts/peers/spu_bench.py. The
//! onnxruntime column needs the fixtures' Python environment (.venv, scripts/python-env.sh).
//!
//! Each row runs in a fresh child process (this binary again, with a hidden flag), so that
//! the peak resident memory read from /proc/self/status is that row's own.

mod measure;
mod peers;

use anyhow::{Context, Result, bail, ensure};
use clap::Parser;
use measure::{Measured, Network, measure, model_dir, serve_party};
use ndarray_npy::WriteNpyExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;
use tfe::exec::human_bytes;
use tfe::mpc::Protocol;

#[derive(Parser)]
#[command(about = "End-to-end benchmark of private inference")]
struct Args {
    /// Requests measured per row, after one warm-up request.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    runs: u64,
    /// Models to measure, in this order: folders of fixtures/ or of target/large-models/.
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
    /// Protocols measured side by side on every row.
    #[arg(long, value_delimiter = ',', value_enum, default_value = "aby3,pond")]
    protocols: Vec<Protocol>,
    /// Add a row per model and batch for the networked mode on loopback.
    #[arg(long)]
    networked: bool,
    /// Add rows whose parties talk through emulated links: lan, wan.
    #[arg(long, value_delimiter = ',', value_enum)]
    links: Vec<Network>,
    /// SecretFlow SPU's measurements (scripts/peers/spu_bench.py's output) for the comparison.
    #[arg(long, value_name = "spu.jsonl")]
    peers: Option<PathBuf>,
    /// Measure the one model and batch given in this process and print the result as JSON.
    #[arg(long, hide = true)]
    child: bool,
    #[arg(long, hide = true, value_enum, default_value = "embedded")]
    network: Network,
    #[arg(long, hide = true, value_enum, default_value = "aby3")]
    protocol: Protocol,
    /// Serve one session as this party of the deployment in DIR (a networked row's child).
    #[arg(long, hide = true, value_name = "DIR", requires = "id")]
    party_in: Option<PathBuf>,
    #[arg(long, hide = true)]
    id: Option<u8>,
}

/// How the tables name a model.
fn title(model: &str) -> &str {
    match model {
        "mlp_a" => "Network-A MLP 784-128-128-10",
        "lenet" => "LeNet",
        "cnn_bn" => "digits CNN",
        "mlp" => "small mlp",
        "resnet50" => "ResNet-50 224x224",
        "bert_base" => "BERT-base, sequence 128",
        other => other,
    }
}

fn default_batches(model: &str) -> &'static [u64] {
    match model {
        "mlp_a" | "lenet" => &[1, 64],
        _ => &[1],
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let (Some(dir), Some(id)) = (&args.party_in, args.id) {
        return serve_party(dir, id);
    }
    if args.child {
        let ([model], [batch]) = (args.rows.as_slice(), args.batch.as_slice()) else {
            bail!("--child measures exactly one model and one batch size");
        };
        let measured = measure(
            model,
            *batch as usize,
            args.runs as usize,
            args.network,
            args.protocol,
        )?;
        println!("{}", serde_json::to_string(&measured)?);
        return Ok(());
    }
    let spu = args.peers.as_deref().map(peers::Spu::read).transpose()?;
    let networks: Vec<Network> = [Network::Embedded]
        .into_iter()
        .chain(args.networked.then_some(Network::Loopback))
        .chain(args.links.iter().copied())
        .collect();
    let protocols = &args.protocols;
    let mut rows = vec![];
    for model in &args.rows {
        let batches = match args.batch.as_slice() {
            [] => default_batches(model),
            given => given,
        };
        for &batch in batches {
            let ort = onnxruntime(model, batch, args.runs)?;
            for &network in &networks {
                let mut measured = vec![];
                for &protocol in protocols {
                    eprintln!(
                        "measuring {model} at batch {batch}{} under {}",
                        network.label(),
                        protocol.name()
                    );
                    let m = measure_in_child(model, batch, args.runs, network, protocol)?;
                    measured.push(Some(m));
                }
                rows.push(Row {
                    model,
                    batch,
                    network,
                    ort,
                    measured,
                });
            }
        }
    }
    println!("{}", header(protocols));
    for r in &rows {
        println!("{}", r.line(protocols));
    }
    println!(
        "\nBytes sent per request by each role (embedded rows; under Pond party 2 is the crypto producer):\n"
    );
    println!(
        "| model | batch | protocol | party 0 | party 1 | party 2 | client |\n|---|---|---|---|---|---|---|"
    );
    for r in rows.iter().filter(|r| r.network == Network::Embedded) {
        for (protocol, m) in protocols.iter().zip(&r.measured) {
            let Some(m) = m else { continue };
            let [p0, p1, p2] = m.party_bytes.map(human_bytes);
            let client = m.online_bytes - m.party_bytes.iter().sum::<u64>();
            println!(
                "| {} | {} | {} | {p0} | {p1} | {p2} | {} |",
                title(r.model),
                r.batch,
                protocol.name(),
                human_bytes(client)
            );
        }
    }
    let aby3 = protocols.iter().position(|&p| p == Protocol::Aby3);
    let compared: Vec<String> = rows
        .iter()
        .filter(|r| r.network == Network::Embedded)
        .filter_map(|r| {
            let m = r.measured.get(aby3?)?.as_ref()?;
            peers::comparison(r.model, title(r.model), r.batch, m, spu.as_ref())
        })
        .collect();
    if !compared.is_empty() {
        println!("\n{}\n{}", peers::HEADER, compared.join("\n"));
    }
    Ok(())
}

/// Runs this benchmark again as a child process for one row.
fn measure_in_child(
    name: &str,
    batch: u64,
    runs: u64,
    network: Network,
    protocol: Protocol,
) -> Result<Measured> {
    let me = std::env::current_exe().context("cannot find the benchmark's own executable")?;
    let network_arg = format!("{network:?}").to_lowercase();
    let out = Command::new(me)
        .args(["--child", "--rows", name, "--network", &network_arg])
        .args(["--protocol", protocol.name()])
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

/// onnxruntime's median latency on one thread for the row's inputs (scripts/ort_time.py in
/// the fixtures' Python environment), or `None` without that environment.
fn onnxruntime(model: &str, batch: u64, runs: u64) -> Result<Option<Duration>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let python = root.join(".venv/bin/python");
    if !python.exists() {
        return Ok(None);
    }
    let dir = model_dir(model)?;
    let onnx = dir.join("model.onnx");
    let plan = tfe::lower::convert(&onnx, tfe::lower::Options::default())?.plan;
    let scratch = std::env::temp_dir().join(format!("tfe-bench-ort-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let mut files = vec![];
    for (i, x) in measure::inputs(&dir, &plan, batch as usize)?
        .iter()
        .enumerate()
    {
        let path = scratch.join(format!("input{i}.npy"));
        x.write_npy(std::fs::File::create(&path)?)?;
        files.push(path);
    }
    let out = Command::new(&python)
        .arg(root.join("scripts/ort_time.py"))
        .arg(&onnx)
        .args(&files)
        .args(["--runs", &runs.max(5).to_string()])
        .output()
        .context("cannot run scripts/ort_time.py")?;
    let _ = std::fs::remove_dir_all(&scratch);
    ensure!(
        out.status.success(),
        "onnxruntime on {model} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let timing: serde_json::Value = serde_json::from_slice(&out.stdout)?;
    let ms = timing["median_ms"]
        .as_f64()
        .context("scripts/ort_time.py printed no median")?;
    Ok(Some(Duration::from_secs_f64(ms / 1e3)))
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1e3)
}

/// One model and batch on one network, measured under each protocol (`None` where a
/// protocol does not run on that network).
struct Row<'a> {
    model: &'a str,
    batch: u64,
    network: Network,
    ort: Option<Duration>,
    measured: Vec<Option<Measured>>,
}

/// The main table's header: the plaintext columns, then a group per protocol, then Pond over
/// ABY3 when both are measured.
fn header(protocols: &[Protocol]) -> String {
    let mut columns: Vec<String> = ["model", "batch", "tract", "onnxruntime, 1 thread"]
        .map(String::from)
        .into();
    for p in protocols {
        let p = p.name();
        for c in [
            "online min / median",
            "online sent",
            "rounds",
            "/ onnxruntime",
            "peak memory",
            "max abs err, top-1 agree",
            "setup time, sent",
        ] {
            columns.push(format!("{p} {c}"));
        }
    }
    if pond_over_aby3(protocols).is_some() {
        columns.extend(["pond / aby3 time".into(), "pond / aby3 bytes".into()]);
    }
    let rule = vec!["---"; columns.len()].join("|");
    format!("| {} |\n|{rule}|", columns.join(" | "))
}

/// Where ABY3 and Pond are in `protocols`, when both are.
fn pond_over_aby3(protocols: &[Protocol]) -> Option<(usize, usize)> {
    let at = |p| protocols.iter().position(|&q| q == p);
    Some((at(Protocol::Aby3)?, at(Protocol::Pond)?))
}

impl Row<'_> {
    fn line(&self, protocols: &[Protocol]) -> String {
        let batch = self.batch;
        let mut cells = vec![
            format!("{}{}", title(self.model), self.network.label()),
            batch.to_string(),
            self.measured
                .iter()
                .flatten()
                .next()
                .map_or("–".into(), |m| ms(m.plaintext_median)),
            self.ort.map_or("–".into(), ms),
        ];
        for m in &self.measured {
            let Some(m) = m else {
                cells.extend(vec!["–".to_string(); 7]);
                continue;
            };
            let ratio = self.ort.map_or("–".into(), |o| {
                format!("{:.0}x", m.online_median.as_secs_f64() / o.as_secs_f64())
            });
            cells.extend([
                format!("{} / {}", ms(m.online_min), ms(m.online_median)),
                human_bytes(m.online_bytes),
                m.rounds.to_string(),
                ratio,
                m.peak_memory.map_or("–".into(), human_bytes),
                format!("{:.1e}, {}/{batch}", m.max_abs_err, m.top1_agree),
                format!("{}, {}", ms(m.setup_time), human_bytes(m.setup_bytes)),
            ]);
        }
        if let Some((a, p)) = pond_over_aby3(protocols) {
            match (&self.measured[a], &self.measured[p]) {
                (Some(a), Some(p)) => cells.extend([
                    format!(
                        "{:.2}",
                        p.online_median.as_secs_f64() / a.online_median.as_secs_f64()
                    ),
                    format!("{:.2}", p.online_bytes as f64 / a.online_bytes as f64),
                ]),
                _ => cells.extend(["–".into(), "–".into()]),
            }
        }
        format!("| {} |", cells.join(" | "))
    }
}
