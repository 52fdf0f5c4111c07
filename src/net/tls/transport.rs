//! The connected endpoint of the networked mode and its links.
//!
//! Each link runs a reader and a writer task on a small tokio runtime owned by the
//! transport. `send` only queues (like the in-process channels), so parties that send to
//! each other before receiving cannot deadlock on full socket buffers; the reader drains the
//! socket into a queue that `recv` takes from. Idle links carry heartbeats, so a peer that
//! dies or a network that drops shows up as an error within the read time-out, while a peer
//! that is merely busy computing does not.

use super::mesh::Setup;
use super::wire::{Stream, patiently, read_frame, write_frame};
use crate::net::config::{Config, field_name};
use crate::net::frame::{Kind, MAX_WORDS, Opener, Sealer, SessionId};
use crate::net::{Meter, Role, Stats, Transport};
use anyhow::{Context, Result, anyhow, bail, ensure};
use std::sync::{Arc, OnceLock, mpsc as std_mpsc};
use std::time::Duration;
use tokio::io::{AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::time::timeout;

/// A connected endpoint of the networked mode. Dropping it flushes what was sent and closes
/// every link.
pub struct TlsTransport {
    me: Role,
    links: [Option<Link>; 5],
    meter: Meter,
    read_timeout: Duration,
    runtime: Option<tokio::runtime::Runtime>,
}

struct Link {
    outbox: Option<mpsc::UnboundedSender<Vec<u64>>>,
    inbox: std_mpsc::Receiver<Result<Vec<u64>, String>>,
    /// Why the link died, as first seen by its reader or writer.
    failure: Arc<OnceLock<String>>,
    writer: tokio::task::JoinHandle<()>,
}

/// Connects `me` to every role of `config` it talks to, and returns once the whole mesh is
/// up, or fails after the connect time-out. Compute parties talk to everyone; the client
/// and the model owner only to the compute parties. Between two roles that both listen, the
/// lower index dials; otherwise the role without an address dials the other. Every role must
/// be given the same `session`.
pub fn connect(config: &Config, me: Role, session: SessionId) -> Result<TlsTransport> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(format!("tfe-net-{}", field_name(me)))
        .enable_all()
        .build()
        .context("cannot start the network runtime")?;
    let setup = Setup::new(config, me, session)?;
    let timeouts = config.timeouts();
    let streams = runtime.block_on(setup.establish(timeouts.connect))?;
    let mut links: [Option<Link>; 5] = Default::default();
    for (peer, (stream, sealer, opener)) in streams {
        let _guard = runtime.enter();
        links[peer.index()] = Some(Link::spawn(stream, sealer, opener, timeouts.read));
    }
    Ok(TlsTransport {
        me,
        links,
        meter: Meter::default(),
        read_timeout: timeouts.read,
        runtime: Some(runtime),
    })
}

impl TlsTransport {
    /// The peers whose links have failed so far, with why. After one error, this says which
    /// peer went first (a party that fails because another died closes its links too).
    pub fn lost_peers(&self) -> Vec<(Role, String)> {
        Role::ALL
            .into_iter()
            .filter_map(|peer| {
                let link = self.links[peer.index()].as_ref()?;
                Some((peer, link.failure.get()?.clone()))
            })
            .collect()
    }

    fn link(&self, peer: Role) -> Result<&Link> {
        self.links
            .get(peer.index())
            .and_then(Option::as_ref)
            .ok_or_else(|| anyhow!("{} has no link to {peer}", self.me))
    }
}

impl Transport for TlsTransport {
    fn me(&self) -> Role {
        self.me
    }

    fn send(&mut self, to: Role, words: &[u64]) -> Result<()> {
        let me = self.me;
        ensure!(
            words.len() <= MAX_WORDS,
            "{me} cannot send {} words to {to}: the frame limit is {MAX_WORDS}",
            words.len()
        );
        let link = self.link(to)?;
        let lost = || anyhow!("{me} lost {to}: {}", link.failure_reason());
        if link.failure.get().is_some() {
            return Err(lost());
        }
        let outbox = link.outbox.as_ref().ok_or_else(lost)?;
        outbox.send(words.to_vec()).map_err(|_| lost())?;
        self.meter.on_send(words.len());
        Ok(())
    }

    fn recv(&mut self, from: Role) -> Result<Vec<u64>> {
        let me = self.me;
        let link = self.link(from)?;
        match link.inbox.recv() {
            Ok(Ok(words)) => {
                self.meter.on_recv();
                Ok(words)
            }
            Ok(Err(reason)) => bail!("{me} lost {from}: {reason}"),
            Err(_) => bail!("{me} lost {from}: {}", link.failure_reason()),
        }
    }

    fn stats(&self) -> Stats {
        self.meter.stats()
    }
}

impl Drop for TlsTransport {
    /// Lets every writer flush its queue and close its link (bounded by the read time-out,
    /// in case a peer is gone), then stops the runtime.
    fn drop(&mut self) {
        let Some(runtime) = self.runtime.take() else {
            return;
        };
        let writers: Vec<_> = self
            .links
            .iter_mut()
            .flatten()
            .map(|link| {
                link.outbox = None;
                &mut link.writer
            })
            .collect();
        let patience = self.read_timeout;
        runtime.block_on(async {
            for writer in writers {
                let _ = timeout(patience, writer).await;
            }
        });
        runtime.shutdown_background();
    }
}

impl Link {
    fn spawn(stream: Stream, sealer: Sealer, opener: Opener, silence: Duration) -> Link {
        let (rd, wr) = tokio::io::split(stream);
        let (outbox, queued) = mpsc::unbounded_channel();
        let (delivered, inbox) = std_mpsc::channel();
        let failure = Arc::new(OnceLock::new());
        tokio::spawn(read_loop(rd, opener, delivered, silence, failure.clone()));
        let writer = tokio::spawn(write_loop(wr, sealer, queued, silence, failure.clone()));
        Link {
            outbox: Some(outbox),
            inbox,
            failure,
            writer,
        }
    }

    fn failure_reason(&self) -> &str {
        self.failure
            .get()
            .map_or("the link is closed", String::as_str)
    }
}

/// Sends queued messages as data frames, and a heartbeat whenever the link has been idle for
/// a quarter of the read time-out. Ends with a TLS close when the transport is dropped.
async fn write_loop(
    mut wr: WriteHalf<Stream>,
    mut sealer: Sealer,
    mut queued: mpsc::UnboundedReceiver<Vec<u64>>,
    silence: Duration,
    failure: Arc<OnceLock<String>>,
) {
    let result: Result<()> = async {
        loop {
            let frame = match timeout(silence / 4, queued.recv()).await {
                Ok(Some(words)) => sealer.seal(Kind::Data, &words)?,
                Ok(None) => break,
                Err(_) => sealer.seal(Kind::Heartbeat, &[])?,
            };
            patiently(silence, write_frame(&mut wr, &frame)).await?;
        }
        patiently(silence, wr.shutdown()).await
    }
    .await;
    if let Err(e) = result {
        let _ = failure.set(format!("sending failed: {e:#}"));
    }
}

/// Delivers data frames in order until the link fails, then delivers the reason.
async fn read_loop(
    mut rd: ReadHalf<Stream>,
    mut opener: Opener,
    delivered: std_mpsc::Sender<Result<Vec<u64>, String>>,
    silence: Duration,
    failure: Arc<OnceLock<String>>,
) {
    let reason = loop {
        match read_frame(&mut rd, &mut opener, silence).await {
            Ok((Kind::Data, words)) => {
                if delivered.send(Ok(words)).is_err() {
                    return;
                }
            }
            Ok((Kind::Heartbeat, _)) => {}
            Ok((Kind::Hello, _)) => break "a second hello on an open link".to_string(),
            Err(e) => break format!("{e:#}"),
        }
    };
    let _ = failure.set(reason.clone());
    let _ = delivered.send(Err(reason));
}
