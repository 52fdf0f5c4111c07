//! The connected endpoint of the networked mode.
//!
//! Each link (`link.rs`) runs a reader and a writer task on a small tokio runtime owned by
//! the transport. `send` only queues (like the in-process channels), so parties that send to
//! each other before receiving cannot deadlock on full socket buffers; the reader drains the
//! socket into a queue that `recv` takes from. Idle links carry heartbeats, so a peer that
//! dies or a network that drops shows up as an error within the read time-out, while a peer
//! that is merely busy computing does not.

use super::gate::Gate;
use super::link::{Link, close_links};
use super::mesh::{Door, Late, Setup};
use crate::net::config::{Config, field_name};
use crate::net::frame::{MAX_WORDS, SessionId};
use crate::net::{Meter, Role, Stats, Transport};
use anyhow::{Context, Result, anyhow, ensure};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Runtime;

/// A connected endpoint of the networked mode. Dropping it flushes what was sent and closes
/// every link.
pub struct TlsTransport {
    me: Role,
    links: BTreeMap<Role, Link>,
    meter: Meter,
    read_timeout: Duration,
    /// Shared with the [`Gate`] of a role that admits late joiners.
    runtime: Option<Arc<Runtime>>,
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

fn open(
    config: &Config,
    me: Role,
    session: SessionId,
    peers: &[Role],
    late: Option<Late>,
) -> Result<(TlsTransport, Option<Door>)> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .thread_name(format!("tfe-net-{}", field_name(me)))
        .enable_all()
        .build()
        .context("cannot start the network runtime")?;
    let setup = Setup::new(config, me, session, peers, late)?;
    let timeouts = config.timeouts();
    let (streams, door) = runtime.block_on(setup.establish(timeouts.connect))?;
    let mut links = BTreeMap::new();
    for (peer, (stream, sealer, opener)) in streams {
        let _guard = runtime.enter();
        links.insert(peer, Link::spawn(stream, sealer, opener, timeouts.read));
    }
    let transport = TlsTransport {
        me,
        links,
        meter: Meter::default(),
        read_timeout: timeouts.read,
        runtime: Some(Arc::new(runtime)),
    };
    Ok((transport, door))
}

impl TlsTransport {
    /// The peers whose links have failed so far, with why. After one error, this says which
    /// peer went first (a party that fails because another died closes its links too).
    pub fn lost_peers(&self) -> Vec<(Role, String)> {
        (self.links.iter())
            .filter_map(|(peer, link)| Some((*peer, link.failure()?.clone())))
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
        (self.link(to)?.send(words)).map_err(|why| anyhow!("{me} lost {to}: {why}"))?;
        self.meter.on_send(words.len());
        Ok(())
    }

    fn recv(&mut self, from: Role) -> Result<Vec<u64>> {
        let me = self.me;
        let words = (self.link(from)?.recv()).map_err(|why| anyhow!("{me} lost {from}: {why}"))?;
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
