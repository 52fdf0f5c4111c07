//! A process that takes part in many sessions over its life: a long-running compute party
//! serving clients one after another and side by side, or a client. One runtime and one
//! identity for all of them; each session has its own connections, each connection names
//! its session in its hello, and the listener hands every authenticated connection on with
//! the session it belongs to, so frames of two sessions never meet on one link.

use super::link::Link;
use super::mesh::Identity;
use super::transport::{TlsTransport, runtime};
use crate::net::Role;
use crate::net::config::Config;
use crate::net::frame::{Refusal, SessionId};
use anyhow::{Context, Result, anyhow};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// An authenticated connection of one session, its hello exchanged and its link running
/// (heartbeats flow while it waits to be used).
pub struct Connection {
    peer: Role,
    session: SessionId,
    link: Link,
}

impl Connection {
    pub fn peer(&self) -> Role {
        self.peer
    }

    pub fn session(&self) -> SessionId {
        self.session
    }

    /// Whether the link has failed already (the peer left while it waited).
    pub fn is_lost(&self) -> bool {
        self.link.failure().is_some()
    }

    /// Ends the connection with `refusal` as its last frame.
    pub fn refuse(self, refusal: Refusal) {
        if let Some(outbox) = self.link.ender().and_then(|weak| weak.upgrade()) {
            let _ = outbox.send(super::link::Out::Refusal(refusal));
        }
        drop(self.link.hang_up());
    }
}

/// This process's network side for many sessions.
pub struct Node {
    id: Arc<Identity>,
    config: Config,
    runtime: Arc<Runtime>,
    /// The accepting task and the one that hands its connections on.
    listener: Vec<JoinHandle<()>>,
}

impl Node {
    pub fn new(config: &Config, me: Role) -> Result<Node> {
        Ok(Node {
            id: Arc::new(Identity::new(config, me)?),
            config: config.clone(),
            // Two workers: TLS for many sessions at once.
            runtime: Arc::new(runtime(me, 2)?),
            listener: vec![],
        })
    }

    pub fn me(&self) -> Role {
        self.id.me
    }

    /// Listens on this role's address for the rest of the node's life. Every connection of
    /// a role `limits` names (with the largest frame it may send) that authenticates and
    /// says hello within the connect time-out reaches `arrived`, as does why any other was
    /// refused. At most 64 handshakes run at once; a silent connection costs a slot for the
    /// connect time-out, then is dropped.
    pub fn listen(
        &mut self,
        limits: BTreeMap<Role, usize>,
        arrived: impl Fn(Result<Connection>) + Send + 'static,
    ) -> Result<()> {
        let me = self.id.me;
        let address = (self.config.endpoint(me)?.address.clone())
            .ok_or_else(|| anyhow!("{me} has no address to listen on"))?;
        let field = format!(
            "{}.address in {}",
            self.config.field(me),
            self.config.source().display()
        );
        let id = self.id.clone();
        let (task, mut arrivals) =
            (self.runtime).block_on(async { id.listen(&address, &field, None, limits).await })?;
        let silence = self.config.timeouts().read;
        let forward = self.runtime.spawn(async move {
            while let Some(arrival) = arrivals.recv().await {
                arrived(arrival.map(|(peer, (stream, sealer, opener))| {
                    let session = opener.session().expect("the hello named the session");
                    let link = Link::spawn(stream, sealer, opener, silence);
                    Connection {
                        peer,
                        session,
                        link,
                    }
                }));
            }
        });
        self.listener = vec![task, forward];
        Ok(())
    }

    /// Dials `peer` (a compute party) for `session`, within the connect time-out.
    pub fn dial(&self, peer: Role, session: SessionId) -> Result<Connection> {
        let address = (self.config.endpoint(peer)?.address.clone())
            .ok_or_else(|| anyhow!("{peer} has no address to dial"))?;
        let me = self.id.me;
        let deadline = Instant::now() + self.id.patience;
        let silence = self.config.timeouts().read;
        let id = self.id.clone();
        let link = self.runtime.block_on(async {
            let (stream, sealer, opener) = (id.dial(peer, &address, session, deadline).await)
                .with_context(|| format!("{me} cannot connect to {peer} at {address}"))?;
            anyhow::Ok(Link::spawn(stream, sealer, opener, silence))
        })?;
        Ok(Connection {
            peer,
            session,
            link,
        })
    }

    /// The transport of one session over `connections` (more may join it later).
    pub fn transport(&self, connections: Vec<Connection>) -> Result<TlsTransport> {
        let read = self.config.timeouts().read;
        let mut transport =
            TlsTransport::assemble(self.id.me, BTreeMap::new(), read, self.runtime.clone());
        for connection in connections {
            join(&mut transport, connection)?;
        }
        Ok(transport)
    }

    /// The connect time-out: how long a session waits for its connections.
    pub fn patience(&self) -> Duration {
        self.id.patience
    }
}

/// Adds `connection` to the session's `transport`.
pub fn join(transport: &mut TlsTransport, connection: Connection) -> Result<()> {
    transport.join(connection.peer, connection.link)
}

impl Drop for Node {
    fn drop(&mut self) {
        for task in self.listener.drain(..) {
            task.abort();
        }
    }
}
