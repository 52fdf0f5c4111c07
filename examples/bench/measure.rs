//! One row of the benchmark, in the child process that runs it: the model's plan, its inputs
//! at the row's batch size, tract's plaintext outputs and latency, and the session's requests
//! under the row's protocol and network (embedded, emulated LAN or WAN links between the
//! parties, or three party processes over TLS on loopback), with the bytes each party sent.

use anyhow::{Context, Result, ensure};
use clap::ValueEnum;
use ndarray::{ArrayD, Axis};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tfe::lower::{Options, convert};
use tfe::mpc::Protocol;
use tfe::net::config::Config;
use tfe::net::pki::write_test_pki;
use tfe::net::shaped::{Link, Shaped};
use tfe::net::{Role, Stats, Transport};
use tfe::plan::{Holder, Plan, SharedPlan};
use tfe::serve::{EmbeddedSession, NetworkedSession, PartyServer, Session, deal};
use tract_onnx::prelude::*;
use tract_onnx::tract_hir::infer::Factoid;

/// How a row's three parties reach each other.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
pub enum Network {
    /// Threads of one process, in-process channels.
    Embedded,
    /// Embedded, through emulated links of 1 Gbit/s and 0.5 ms round trip.
    Lan,
    /// Embedded, through emulated links of 100 Mbit/s and 40 ms round trip.
    Wan,
    /// Three party processes over mutual TLS on loopback.
    Loopback,
}

impl Network {
    pub fn label(self) -> &'static str {
        match self {
            Network::Embedded => "",
            Network::Lan => " (LAN 1 Gbit/s, 0.5 ms)",
            Network::Wan => " (WAN 100 Mbit/s, 40 ms)",
            Network::Loopback => " (networked, loopback)",
        }
    }
}

/// What one row measured (a child's answer to the parent).
#[derive(Serialize, Deserialize)]
pub struct Measured {
    pub online_min: Duration,
    pub online_median: Duration,
    /// Per request (the whole batch).
    pub online_bytes: u64,
    pub rounds: u64,
    /// Of `online_bytes`, what each party sent (embedded rows; zeros for networked ones). The
    /// rest is the client's.
    pub party_bytes: [u64; 3],
    pub setup_time: Duration,
    pub setup_bytes: u64,
    /// Resident set high-water mark of the whole process, where the OS reports it.
    pub peak_memory: Option<u64>,
    pub plaintext_median: Duration,
    /// Worst over the measured requests.
    pub max_abs_err: f32,
    pub top1_agree: usize,
}

/// A model's folder: `fixtures/NAME`, or `target/large-models/NAME` (written by
/// scripts/make_large_models.py).
pub fn model_dir(name: &str) -> Result<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    [root.join("fixtures").join(name), root.join("target/large-models").join(name)]
        .into_iter()
        .find(|d| d.join("model.onnx").exists())
        .with_context(|| {
            format!("no model {name} in fixtures/ or target/large-models/ (scripts/make_large_models.py writes the large ones)")
        })
}

/// The row's inputs in the plan's order: the folder's `input_bB.npy` (or `input_bB_NAME.npy`
/// for several inputs) at the batch size, else `batch` rows taken cyclically from the largest
/// batch it has.
pub fn inputs(dir: &Path, plan: &Plan, batch: usize) -> Result<Vec<ArrayD<f32>>> {
    let single = plan.inputs.len() == 1;
    plan.inputs
        .iter()
        .map(|input| {
            let name = &plan.value(input.value).name;
            let file = |b: usize| {
                let suffix = if single {
                    String::new()
                } else {
                    format!("_{name}")
                };
                dir.join(format!("input_b{b}{suffix}.npy"))
            };
            let largest = [batch, 64, 32, 8, 4, 2, 1]
                .into_iter()
                .find(|&b| file(b).exists())
                .with_context(|| format!("{} has no input file for {name}", dir.display()))?;
            let x = tfe::cli::read_npy(&file(largest))?;
            let rows: Vec<_> = (0..batch)
                .map(|i| x.index_axis(Axis(0), i % x.shape()[0]).insert_axis(Axis(0)))
                .collect();
            Ok(ndarray::concatenate(Axis(0), &rows)?)
        })
        .collect()
}

/// tract's first output for `inputs` and its median latency over `runs` runs.
fn plaintext(onnx: &Path, inputs: &[ArrayD<f32>], runs: usize) -> Result<(ArrayD<f32>, Duration)> {
    let mut model = tract_onnx::onnx().model_for_path(onnx)?;
    let mut types = vec![];
    for (i, x) in inputs.iter().enumerate() {
        let declared = model.input_fact(i)?.datum_type.concretize();
        let datum_type = declared.unwrap_or(f32::datum_type());
        model.set_input_fact(i, InferenceFact::dt_shape(datum_type, x.shape()))?;
        types.push(datum_type);
    }
    let runner = model.into_optimized()?.into_runnable()?;
    let tv: TVec<TValue> = inputs
        .iter()
        .zip(types)
        .map(|(x, t)| Ok(Tensor::from(x.clone()).cast_to_dt(t)?.into_owned().into()))
        .collect::<Result<_>>()?;
    let expected = runner.run(tv.clone())?[0]
        .cast_to::<f32>()?
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

/// Counts the bytes each party endpoint sends, into one counter per party.
struct Counted {
    inner: Box<dyn Transport>,
    sent: Arc<[AtomicU64; 3]>,
}

impl Transport for Counted {
    fn me(&self) -> Role {
        self.inner.me()
    }

    fn send(&mut self, to: Role, words: &[u64]) -> Result<()> {
        let bytes = 8 * words.len() as u64;
        self.sent[self.me().index()].fetch_add(bytes, Ordering::Relaxed);
        self.inner.send(to, words)
    }

    fn recv(&mut self, from: Role) -> Result<Vec<u64>> {
        self.inner.recv(from)
    }

    fn stats(&self) -> Stats {
        self.inner.stats()
    }

    fn observe_opened(&mut self, words: &[u64]) {
        self.inner.observe_opened(words)
    }
}

fn snapshot(sent: &[AtomicU64; 3]) -> [u64; 3] {
    sent.each_ref().map(|c| c.load(Ordering::Relaxed))
}

/// One row, in this process.
pub fn measure(
    model: &str,
    batch: usize,
    runs: usize,
    network: Network,
    protocol: Protocol,
) -> Result<Measured> {
    let onnx = model_dir(model)?.join("model.onnx");
    let plan = convert(&onnx, Options::default())
        .with_context(|| format!("converting {}", onnx.display()))?
        .plan;
    let inputs = inputs(&model_dir(model)?, &plan, batch)?;
    let (expected, plaintext_median) = plaintext(&onnx, &inputs, runs.max(5))?;
    let sent: Arc<[AtomicU64; 3]> = Arc::default();
    let link = match network {
        Network::Lan => Some(Link::LAN),
        Network::Wan => Some(Link::WAN),
        Network::Embedded | Network::Loopback => None,
    };
    let (mut session, parties): (Box<dyn Session>, _) = match network {
        Network::Loopback => {
            let (session, parties) = start_networked(&plan, protocol)?;
            (Box::new(session), Some(parties))
        }
        Network::Embedded | Network::Lan | Network::Wan => {
            let sent = sent.clone();
            let wrap = move |end| -> Box<dyn Transport> {
                let inner: Box<dyn Transport> = match link {
                    Some(link) => Box::new(Shaped::new(end, link)),
                    None => Box::new(end),
                };
                let sent = sent.clone();
                Box::new(Counted { inner, sent })
            };
            let session = EmbeddedSession::start_wrapped(Arc::new(plan), protocol, &wrap)?;
            (Box::new(session), None)
        }
    };
    session.predict(&inputs)?;
    let mut times = vec![];
    let (mut max_abs_err, mut top1_agree) = (0.0f32, batch);
    let mut traffic = Default::default();
    let mut party_bytes = [0; 3];
    for _ in 0..runs {
        let before = snapshot(&sent);
        let started = Instant::now();
        let p = session.predict(&inputs)?;
        times.push(started.elapsed());
        party_bytes = snapshot(&sent);
        for (after, before) in party_bytes.iter_mut().zip(before) {
            *after -= before;
        }
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
        party_bytes,
        setup_time: setup.time,
        setup_bytes: setup.traffic.bytes_sent,
        peak_memory: peak_memory(),
        plaintext_median,
        max_abs_err,
        top1_agree,
    })
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
fn start_networked(plan: &Plan, protocol: Protocol) -> Result<(NetworkedSession, Parties)> {
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
        &[],
        [ports[0], ports[1], ports[2]],
        Default::default(),
    )?;
    let mut client_file = None;
    for file in deal(plan, protocol)? {
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
    let session = NetworkedSession::connect(&Config::load(&config)?, &file, "client.plan", 0);
    // Every party has read its files by the time the client is connected.
    let _ = std::fs::remove_dir_all(&dir);
    Ok((session?, parties))
}

/// A networked row's party: one session on its file in `dir`.
pub fn serve_party(dir: &Path, id: u8) -> Result<()> {
    let name = dir.join(format!("party{id}.plan"));
    let file = SharedPlan::read(&name)?;
    let server = PartyServer::load(file, id, &name.display().to_string())?;
    let config = Config::load(&dir.join("parties.json"))?;
    tfe::serve::serve_party(&server, &config, true, &|_| ())
}
