//! Setting up the mesh of links: who dials whom, listening and accepting (on a task that can
//! stay open for late joiners), TCP retries until the connect time-out, the TLS handshakes,
//! and the hello that opens every link.

use super::pin::Pins;
use super::wire::{Stream, describe_io, read_frame, write_frame};
use crate::net::Role;
use crate::net::config::{Config, host_name};
use crate::net::frame::{Kind, MAX_WORDS, Opener, Sealer, SessionId};
use anyhow::{Context, Result, anyhow, bail, ensure};
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::{Instant, sleep, sleep_until, timeout_at};
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};

/// Bumped when the frame layout or the hello changes, so mismatched builds refuse each other.
const WIRE_VERSION: u64 = 2;

/// Who this process is on the network: its role, certificate and key, and the pins it
/// checks peers against.
pub(super) struct Identity {
    pub(super) me: Role,
    pins: Arc<Pins>,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    /// The time a connection has for its handshake and hello.
    pub(super) patience: Duration,
}

/// Everything needed to open this role's links.
pub(super) struct Setup {
    id: Identity,
    session: SessionId,
    /// Peers this role dials, in index order, with their addresses.
    dials: Vec<(Role, String)>,
    /// Where this role listens, and who dials it there.
    listens: Option<Listening>,
}

struct Listening {
    address: String,
    /// The config field and file that gave the address, for errors.
    field: String,
    /// The mesh peers that dial this role.
    peers: Vec<Role>,
    /// Roles admitted after the mesh is up ([`Late`]).
    late: Option<Late>,
}

/// Who may join after the mesh, the largest message any of them may send, and how many
/// messages one connection may send.
#[derive(Clone, Debug, Default)]
pub struct Late {
    pub roles: Vec<Role>,
    pub max_words: usize,
    pub max_messages: usize,
}

pub(super) type Established = (Role, (Stream, Sealer, Opener));

/// The listener of a role that accepts connections, running on its own task: every
/// authenticated link, or why a connection was refused, arrives on `arrivals`.
pub(super) struct Door {
    task: JoinHandle<()>,
    pub(super) arrivals: mpsc::Receiver<Result<Established>>,
    /// Late joiners that arrived while the mesh was being set up.
    pub(super) early: Vec<Established>,
    pub(super) late: Late,
}

impl Door {
    /// Stops listening; the address is free again once this returns.
    pub(super) async fn close(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Door {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Handshakes in progress at once on a listener; connections beyond are dropped at once, so a
/// flood of connections that never finish their handshake cannot exhaust a party.
const MAX_PENDING: usize = 64;

/// Who opens the connection between `a` and `b`, or `None` when the two never talk (the
/// other roles only talk to the compute parties).
fn dialer(config: &Config, a: Role, b: Role) -> Result<Option<Role>> {
    if !matches!(a, Role::Party(_)) && !matches!(b, Role::Party(_)) {
        return Ok(None);
    }
    let listens = |r: Role| -> Result<bool> { Ok(config.endpoint(r)?.address.is_some()) };
    Ok(Some(match (listens(a)?, listens(b)?) {
        (true, true) => a.min(b),
        (false, _) => a,
        (true, false) => b,
    }))
}

impl Identity {
    pub(super) fn new(config: &Config, me: Role) -> Result<Identity> {
        Ok(Identity {
            me,
            pins: Arc::new(Pins::new(config, me)?),
            cert: config.endpoint(me)?.cert.clone(),
            key: config.private_key(me)?,
            patience: config.timeouts().connect,
        })
    }

    /// Dials `peer` at `address` for `session`. Retries the TCP connection until the
    /// deadline (the peer may not listen yet), but not a failed TLS handshake: a refused
    /// certificate will not become acceptable.
    pub(super) async fn dial(
        &self,
        peer: Role,
        address: &str,
        session: SessionId,
        deadline: Instant,
    ) -> Result<(Stream, Sealer, Opener)> {
        let mut pause = FIRST_RETRY;
        let tcp = loop {
            let error = match timeout_at(deadline, TcpStream::connect(address)).await {
                Ok(Ok(tcp)) => break tcp,
                Ok(Err(e)) => e.to_string(),
                Err(_) => "timed out".to_string(),
            };
            if Instant::now() + pause >= deadline {
                bail!("nothing answered within the connect time-out (last error: {error})");
            }
            sleep(pause).await;
            pause = (pause * 2).min(LAST_RETRY);
        };
        tcp.set_nodelay(true)?;
        let config = ClientConfig::builder_with_provider(self.pins.provider())
            .with_protocol_versions(TLS_VERSIONS)?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(self.pins.expecting(vec![peer])))
            .with_client_auth_cert(vec![self.cert.clone()], self.key.clone_key())
            .with_context(|| format!("the key of {} does not fit its certificate", self.me))?;
        let name = ServerName::try_from(host_name(peer))?;
        let tls = timeout_at(
            deadline,
            TlsConnector::from(Arc::new(config)).connect(name, tcp),
        )
        .await
        .map_err(|_| anyhow!("the TLS handshake timed out"))?
        .context("the TLS handshake failed")?;
        let opener = Opener::new(session, peer);
        let stream = TlsStream::Client(tls);
        hello(stream, self.me, opener, Some(session), deadline).await
    }

    /// Binds `address` (named by `field` in errors) and accepts there on a task, admitting
    /// the roles `limits` names, each with its largest frame; `session` fixes the session
    /// of every connection, or `None` takes each one's from its hello.
    pub(super) async fn listen(
        &self,
        address: &str,
        field: &str,
        session: Option<SessionId>,
        limits: BTreeMap<Role, usize>,
    ) -> Result<(JoinHandle<()>, mpsc::Receiver<Result<Established>>)> {
        let me = self.me;
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("{me} cannot listen on {address} ({field})"))?;
        let config = ServerConfig::builder_with_provider(self.pins.provider())
            .with_protocol_versions(TLS_VERSIONS)?
            .with_client_cert_verifier(Arc::new(
                self.pins.expecting(limits.keys().copied().collect()),
            ))
            .with_single_cert(vec![self.cert.clone()], self.key.clone_key())
            .with_context(|| format!("the key of {me} does not fit its certificate"))?;
        let (sender, arrivals) = mpsc::channel(MAX_PENDING);
        let accept = Accept {
            me,
            session,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            pins: self.pins.clone(),
            limits,
            patience: self.patience,
        };
        Ok((tokio::spawn(accept.run(listener, sender)), arrivals))
    }
}

impl Setup {
    /// The links of `me` to `peers` (those it talks to among them), and, with `late`, a
    /// listener that stays open for the late roles.
    pub(super) fn new(
        config: &Config,
        me: Role,
        session: SessionId,
        peers: &[Role],
        late: Option<Late>,
    ) -> Result<Setup> {
        let mine = config.endpoint(me)?;
        let mut dials = vec![];
        let mut accepts = vec![];
        for &peer in peers.iter().filter(|&&r| r != me) {
            match dialer(config, me, peer)? {
                None => {}
                Some(d) if d == me => {
                    let address = config.endpoint(peer)?.address.clone();
                    let address =
                        address.ok_or_else(|| anyhow!("neither {me} nor {peer} has an address"))?;
                    dials.push((peer, address));
                }
                Some(_) => accepts.push(peer),
            }
        }
        let listens = match &mine.address {
            Some(address) if !accepts.is_empty() || late.is_some() => Some(Listening {
                address: address.clone(),
                field: format!(
                    "{}.address in {}",
                    config.field(me),
                    config.source().display()
                ),
                peers: accepts,
                late,
            }),
            _ => None,
        };
        Ok(Setup {
            id: Identity::new(config, me)?,
            session,
            dials,
            listens,
        })
    }

    /// Opens the links within `within`; returns them with the listener when this role
    /// listens (closed by the caller, or kept open for late joiners).
    pub(super) async fn establish(
        self,
        within: Duration,
    ) -> Result<(BTreeMap<Role, (Stream, Sealer, Opener)>, Option<Door>)> {
        let deadline = Instant::now() + within;
        let mut door = self.listen().await?;
        let accepting = async {
            match &mut door {
                Some(door) => self.accept_all(door, deadline).await,
                None => Ok(vec![]),
            }
        };
        let (accepted, dialed) = tokio::try_join!(accepting, self.dial_all(deadline))?;
        Ok((accepted.into_iter().chain(dialed).collect(), door))
    }

    async fn dial_all(&self, deadline: Instant) -> Result<Vec<Established>> {
        let mut links = vec![];
        for (peer, address) in &self.dials {
            let link = (self.id.dial(*peer, address, self.session, deadline))
                .await
                .with_context(|| format!("{} cannot connect to {peer} at {address}", self.id.me))?;
            links.push((*peer, link));
        }
        Ok(links)
    }

    /// Binds this role's address and starts accepting there, when it listens.
    async fn listen(&self) -> Result<Option<Door>> {
        let Some(listening) = &self.listens else {
            return Ok(None);
        };
        let late = listening.late.clone().unwrap_or_default();
        let limits = (listening.peers.iter().map(|&r| (r, MAX_WORDS)))
            .chain(late.roles.iter().map(|&r| (r, late.max_words)))
            .collect();
        let (task, arrivals) = (self.id)
            .listen(
                &listening.address,
                &listening.field,
                Some(self.session),
                limits,
            )
            .await?;
        Ok(Some(Door {
            task,
            arrivals,
            early: vec![],
            late,
        }))
    }

    /// Takes arrivals until every expected mesh peer is connected, keeping late joiners for
    /// later. Refused connections (a wrong certificate, another session) are logged and do
    /// not stop the wait.
    async fn accept_all(&self, door: &mut Door, deadline: Instant) -> Result<Vec<Established>> {
        let Some(listening) = &self.listens else {
            return Ok(vec![]);
        };
        let me = self.id.me;
        let mut links: Vec<Established> = vec![];
        let mut refused = 0;
        while links.len() < listening.peers.len() {
            tokio::select! {
                Some(arrival) = door.arrivals.recv() => match arrival {
                    Ok((peer, link)) if door.late.roles.contains(&peer) => {
                        door.early.push((peer, link));
                    }
                    Ok((peer, _)) if links.iter().any(|(l, _)| *l == peer) => {
                        eprintln!("tfe-net: {me} ignored a second connection from {peer}");
                    }
                    Ok(link) => links.push(link),
                    Err(e) => {
                        refused += 1;
                        eprintln!("tfe-net: {e:#}");
                    }
                },
                () = sleep_until(deadline) => {
                    let missing: Vec<String> = listening.peers.iter()
                        .filter(|r| !links.iter().any(|(l, _)| l == *r))
                        .map(|r| r.to_string())
                        .collect();
                    bail!(
                        "{me} waited the whole connect time-out on {} for {} \
                         ({refused} connection(s) refused; see the log)",
                        listening.address,
                        missing.join(", ")
                    )
                }
            }
        }
        Ok(links)
    }
}

/// What the listening task needs to authenticate a connection.
struct Accept {
    me: Role,
    /// `None`: each connection's hello names its session.
    session: Option<SessionId>,
    acceptor: TlsAcceptor,
    pins: Arc<Pins>,
    /// The roles that may connect, each with the largest frame it may send.
    limits: BTreeMap<Role, usize>,
    patience: Duration,
}

impl Accept {
    /// Accepts for as long as the task runs, each connection's handshake and hello on its
    /// own task within the connect time-out.
    async fn run(self, listener: TcpListener, arrivals: mpsc::Sender<Result<Established>>) {
        let me = self.me;
        let this = Arc::new(self);
        let mut pending = JoinSet::new();
        loop {
            tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((tcp, from)) if pending.len() < MAX_PENDING => {
                        pending.spawn(this.clone().handshake(tcp, from));
                    }
                    Ok((_, from)) => eprintln!(
                        "tfe-net: {me} dropped a connection from {from}: \
                         {MAX_PENDING} handshakes already in progress"
                    ),
                    Err(e) => {
                        // Out of file descriptors, say: wait instead of spinning.
                        eprintln!("tfe-net: {me} cannot accept a connection: {e}");
                        sleep(LAST_RETRY).await;
                    }
                },
                Some(done) = pending.join_next() => {
                    let arrival = done.map_err(anyhow::Error::from).and_then(|r| r);
                    if arrivals.send(arrival).await.is_err() {
                        return;
                    }
                }
            }
        }
    }

    async fn handshake(self: Arc<Self>, tcp: TcpStream, from: SocketAddr) -> Result<Established> {
        let me = self.me;
        let deadline = Instant::now() + self.patience;
        let link = async {
            tcp.set_nodelay(true)?;
            let tls = timeout_at(deadline, self.acceptor.accept(tcp))
                .await
                .map_err(|_| anyhow!("the TLS handshake timed out"))??;
            let peer = self.pins.identify(&tls)?;
            let opener = match self.session {
                Some(session) => Opener::new(session, peer),
                None => Opener::learning(peer),
            };
            let limit = self.limits.get(&peer).copied().unwrap_or(0);
            let stream = TlsStream::Server(tls);
            let (opener, session) = (opener.with_limit(limit), self.session);
            let link = hello(stream, me, opener, session, deadline).await?;
            anyhow::Ok((peer, link))
        };
        link.await
            .with_context(|| format!("{me} refused a connection from {from}"))
    }
}

const TLS_VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// Each side sends its role and wire version as the link's first frame and checks the
/// other's, so a peer from another session or build is refused before any data flows. A
/// side that knows the session (`session` given) speaks first; a listener for many sessions
/// answers in the session the dialer's hello names, which its opener learns.
async fn hello(
    mut stream: Stream,
    me: Role,
    mut opener: Opener,
    session: Option<SessionId>,
    deadline: Instant,
) -> Result<(Stream, Sealer, Opener)> {
    let peer = opener.peer();
    let mine = [WIRE_VERSION, me.index() as u64];
    let exchange = async {
        let mut sealer = session.map(Sealer::new);
        if let Some(sealer) = &mut sealer {
            let hello = sealer.seal(Kind::Hello, &mine)?;
            write_frame(&mut stream, &hello)
                .await
                .map_err(describe_io)?;
        }
        let silence = deadline.saturating_duration_since(Instant::now());
        let theirs = read_frame(&mut stream, &mut opener, silence).await?;
        let sealer = match sealer {
            Some(sealer) => sealer,
            None => {
                let mut sealer = Sealer::new(opener.session().expect("a frame names its session"));
                let hello = sealer.seal(Kind::Hello, &mine)?;
                write_frame(&mut stream, &hello)
                    .await
                    .map_err(describe_io)?;
                sealer
            }
        };
        anyhow::Ok((theirs, sealer))
    };
    let ((kind, words), sealer) = timeout_at(deadline, exchange)
        .await
        .map_err(|_| anyhow!("{peer} sent no hello within the connect time-out"))?
        .with_context(|| format!("no hello from {peer}"))?;
    ensure!(
        kind == Kind::Hello && words.len() == 2,
        "{peer} did not start with a hello"
    );
    ensure!(
        words[0] == WIRE_VERSION,
        "{peer} speaks wire version {}, this build {WIRE_VERSION}",
        words[0]
    );
    ensure!(
        words[1] == peer.index() as u64,
        "the peer with {peer}'s certificate claims to be role {}",
        words[1]
    );
    Ok((stream, sealer, opener))
}

/// Pauses between attempts to reach a peer that does not listen yet: short at first, since
/// processes usually start together, then backing off.
const FIRST_RETRY: Duration = Duration::from_millis(5);
const LAST_RETRY: Duration = Duration::from_millis(250);
