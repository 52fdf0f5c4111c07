//! The connected endpoint of the networked mode.
//!
//! Each link (`link.rs`) runs a reader and a writer task on a small tokio runtime owned by
//! the transport. `send` only queues (like the in-process channels), so parties that send to
//! each other before receiving cannot deadlock on full socket buffers; the reader drains the
//! socket into a queue that `recv` takes from. Idle links carry heartbeats, so a peer that
//! dies or a network that drops shows up as an error within the read time-out, while a peer
//! that is merely busy computing does not.

use super::gate::Gate;
use super::link::{Ended, Link, Out, close_links};
use super::mesh::{Door, Late, Setup};
use crate::net::config::{Config, field_name};
use crate::net::frame::{MAX_WORDS, Refusal, SessionId};
use crate::net::{Meter, Role, Stats, Transport};
use anyhow::{Context, Result, anyhow, ensure};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::sync::mpsc::WeakUnboundedSender;

/// A connected endpoint of the networked mode. Dropping it flushes what was sent and closes
/// every link.
pub struct TlsTransport {
    me: Role,
    links: BTreeMap<Role, Link>,
    meter: Meter,
    read_timeout: Duration,
    /// How long `recv` waits for a message, in ms (0: as long as the link is up).
    wait: Wait,
    /// Shared with the [`Gate`] of a role that admits late joiners, or with the
    /// [`Node`](super::Node) that made the links.
    runtime: Option<Arc<Runtime>>,
}

/// How long a transport's `recv` waits for a message on a live link, set from outside
/// while the transport is in use (between a client's requests, a party waits longer).
#[derive(Clone, Default)]
pub struct Wait(Arc<AtomicU64>);

impl Wait {
    /// `None`: as long as the link is up (its peer's heartbeats arrive).
    pub fn set(&self, wait: Option<Duration>) {
        let ms = wait.map_or(0, |d| (d.as_millis() as u64).max(1));
        self.0.store(ms, Ordering::Relaxed);
    }

    fn get(&self) -> Option<Duration> {
        let ms = self.0.load(Ordering::Relaxed);
        (ms > 0).then(|| Duration::from_millis(ms))
    }
}

/// A peer ended the session on purpose ([`Refusal`]); callers can look for it with
/// `downcast_ref` (a busy party, say, to retry later).
#[derive(Debug)]
pub struct Refused {
    pub me: Role,
    pub by: Role,
    pub refusal: Refusal,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} refused {}: {}", self.by, self.me, self.refusal)
    }
}

impl std::error::Error for Refused {}

/// Ends a transport's links with a refusal, from wherever the transport went (a
/// [`Party`](crate::mpc::Party) owns it), without keeping them open.
pub struct Ender(Vec<WeakUnboundedSender<Out>>);

impl Ender {
    /// Sends `refusal` as the last frame of every link still open.
    pub fn refuse(&self, refusal: &Refusal) {
        for outbox in self.0.iter().filter_map(WeakUnboundedSender::upgrade) {
            let _ = outbox.send(Out::Refusal(refusal.clone()));
        }
    }
}

/// Connects `me` to every role of `config` it talks to, and returns once the whole mesh is
/// up, or fails after the connect time-out. Compute parties talk to everyone; the others
/// only to the compute parties. An aggregation's inputters and receiver take no part: they
/// join their rounds ([`serve`]). Between two roles that both listen, the lower index
/// dials; otherwise the role without an address dials the other. Every role must be given
/// the same `session`.
pub fn connect(config: &Config, me: Role, session: SessionId) -> Result<TlsTransport> {
    let peers: Vec<Role> = (config.roles())
        .filter(|r| !matches!(r, Role::Inputter(_) | Role::Receiver))
        .collect();
    connect_to(config, me, session, &peers)
}

/// [`connect`] to `peers` only (an inputter to the two parties that take its pieces).
pub fn connect_to(
    config: &Config,
    me: Role,
    session: SessionId,
    peers: &[Role],
) -> Result<TlsTransport> {
    let (transport, door) = open(config, me, session, peers, None)?;
    if let Some(door) = door {
        transport.runtime()?.block_on(door.close());
    }
    Ok(transport)
}

/// [`connect_to`] `peers`, for a compute party that then keeps listening for `late`'s
/// roles: they come and go through the returned [`Gate`].
pub fn serve(
    config: &Config,
    me: Role,
    session: SessionId,
    peers: &[Role],
    late: Late,
) -> Result<(TlsTransport, Gate)> {
    let (transport, door) = open(config, me, session, peers, Some(late))?;
    let door = door.ok_or_else(|| anyhow!("{me} has no address to listen on"))?;
    let gate = Gate::open(transport.runtime()?.clone(), door, transport.read_timeout);
    Ok((transport, gate))
}

/// The runtime of `me`'s network tasks, on `workers` threads.
pub(super) fn runtime(me: Role, workers: usize) -> Result<Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name(format!("tfe-net-{}", field_name(me)))
        .enable_all()
        .build()
        .context("cannot start the network runtime")
}

fn open(
    config: &Config,
    me: Role,
    session: SessionId,
    peers: &[Role],
    late: Option<Late>,
) -> Result<(TlsTransport, Option<Door>)> {
    let runtime = runtime(me, 1)?;
    let setup = Setup::new(config, me, session, peers, late)?;
    let timeouts = config.timeouts();
    let (streams, door) = runtime.block_on(setup.establish(timeouts.connect))?;
    let mut links = BTreeMap::new();
    for (peer, (stream, sealer, opener)) in streams {
        let _guard = runtime.enter();
        links.insert(peer, Link::spawn(stream, sealer, opener, timeouts.read));
    }
    let transport = TlsTransport::assemble(me, links, timeouts.read, Arc::new(runtime));
    Ok((transport, door))
}

impl TlsTransport {
    pub(super) fn assemble(
        me: Role,
        links: BTreeMap<Role, Link>,
        read_timeout: Duration,
        runtime: Arc<Runtime>,
    ) -> TlsTransport {
        TlsTransport {
            me,
            links,
            meter: Meter::default(),
            read_timeout,
            wait: Wait::default(),
            runtime: Some(runtime),
        }
    }

    /// Adds the link to a peer that connected (or was dialed) after the others.
    pub(super) fn join(&mut self, peer: Role, link: Link) -> Result<()> {
        ensure!(
            !self.links.contains_key(&peer),
            "{} already has a link to {peer}",
            self.me
        );
        self.links.insert(peer, link);
        Ok(())
    }

    pub fn has_link(&self, peer: Role) -> bool {
        self.links.contains_key(&peer)
    }

    /// Sets how long `recv` waits for a message (see [`Wait`]).
    pub fn wait(&self) -> Wait {
        self.wait.clone()
    }

    /// Can end every link of this transport with a refusal later.
    pub fn ender(&self) -> Ender {
        Ender(self.links.values().filter_map(Link::ender).collect())
    }

    /// The peers whose links have failed so far, with why. After one error, this says which
    /// peer went first (a party that fails because another died closes its links too).
    pub fn lost_peers(&self) -> Vec<(Role, String)> {
        (self.links.iter())
            .filter_map(|(peer, link)| Some((*peer, link.failure()?)))
            .collect()
    }

    fn link(&self, peer: Role) -> Result<&Link> {
        (self.links.get(&peer)).ok_or_else(|| anyhow!("{} has no link to {peer}", self.me))
    }

    fn runtime(&self) -> Result<&Arc<Runtime>> {
        self.runtime
            .as_ref()
            .context("the network runtime has stopped")
    }
}

/// Why `me`'s link to `peer` took or gave no message, as an error: a refusal stays a
/// [`Refused`], so that callers can find a busy peer's hint whether they were sending or
/// receiving when it came.
fn ended_error(me: Role, peer: Role, ended: Ended) -> anyhow::Error {
    match ended {
        Ended::Refused(refusal) => anyhow::Error::new(Refused {
            me,
            by: peer,
            refusal,
        }),
        Ended::Waited(wait) => anyhow!(
            "{me} waited {:.1} s for a message from {peer}, the longest it waits",
            wait.as_secs_f64()
        ),
        Ended::Failed(why) => anyhow!("{me} lost {peer}: {why}"),
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
        (self.link(to)?.send(words)).map_err(|ended| ended_error(me, to, ended))?;
        self.meter.on_send(words.len());
        Ok(())
    }

    fn recv(&mut self, from: Role) -> Result<Vec<u64>> {
        let me = self.me;
        let wait = self.wait.get();
        let link =
            (self.links.get_mut(&from)).ok_or_else(|| anyhow!("{me} has no link to {from}"))?;
        let words = link
            .recv(wait)
            .map_err(|ended| ended_error(me, from, ended))?;
        self.meter.on_recv();
        Ok(words)
    }

    fn stats(&self) -> Stats {
        self.meter.stats()
    }
}

impl Drop for TlsTransport {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            let writers = std::mem::take(&mut self.links)
                .into_values()
                .map(Link::hang_up);
            close_links(runtime, writers.collect(), self.read_timeout);
        }
    }
}
