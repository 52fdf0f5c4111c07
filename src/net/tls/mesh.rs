//! Setting up the mesh of links: who dials whom, listening and accepting, TCP retries until
//! the connect time-out, the TLS handshakes, and the hello that opens every link.

use super::pin::Pins;
use super::wire::{Stream, describe_io, read_frame, write_frame};
use crate::net::Role;
use crate::net::config::{Config, field_name, host_name};
use crate::net::frame::{Kind, Opener, Sealer, SessionId};
use anyhow::{Context, Result, anyhow, bail, ensure};
use rustls::{ClientConfig, ServerConfig};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, sleep, sleep_until, timeout_at};
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};

/// Bumped when the frame layout or the hello changes, so mismatched builds refuse each other.
const WIRE_VERSION: u64 = 1;

/// Everything needed to open this role's links.
pub(super) struct Setup {
    me: Role,
    session: SessionId,
    /// Peers this role dials, in index order, with their addresses.
    dials: Vec<(Role, String)>,
    /// Where this role listens, and who dials it there.
    listens: Option<Listening>,
    pins: Arc<Pins>,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

struct Listening {
    address: String,
    /// The config field and file that gave the address, for errors.
    field: String,
    peers: Vec<Role>,
}

type Established = (Role, (Stream, Sealer, Opener));

/// Who opens the connection between `a` and `b`, or `None` when the two never talk (the
/// client and the model owner only talk to the compute parties).
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

impl Setup {
    pub(super) fn new(config: &Config, me: Role, session: SessionId) -> Result<Setup> {
        let mine = config.endpoint(me)?;
        let mut dials = vec![];
        let mut accepts = vec![];
        for peer in config.roles().filter(|&r| r != me) {
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
        let listens = match (&mine.address, accepts.is_empty()) {
            (Some(address), false) => Some(Listening {
                address: address.clone(),
                field: format!(
                    "roles.{}.address in {}",
                    field_name(me),
                    config.source().display()
                ),
                peers: accepts,
            }),
            _ => None,
        };
        let pins = Arc::new(Pins::new(config, me)?);
        Ok(Setup {
            me,
            session,
            dials,
            listens,
            pins,
            cert: mine.cert.clone(),
            key: config.private_key(me)?,
        })
    }

    pub(super) async fn establish(
        self,
        within: Duration,
    ) -> Result<BTreeMap<Role, (Stream, Sealer, Opener)>> {
        let deadline = Instant::now() + within;
        let (accepted, dialed) =
            tokio::try_join!(self.accept_all(deadline), self.dial_all(deadline))?;
        Ok(accepted.into_iter().chain(dialed).collect())
    }

    async fn dial_all(&self, deadline: Instant) -> Result<Vec<Established>> {
        let mut links = vec![];
        for (peer, address) in &self.dials {
            let link = self
                .dial(*peer, address, deadline)
                .await
                .with_context(|| format!("{} cannot connect to {peer} at {address}", self.me))?;
            links.push((*peer, link));
        }
        Ok(links)
    }

    /// Retries the TCP connection until the deadline (the peer may not listen yet), but not
    /// a failed TLS handshake: a refused certificate will not become acceptable.
    async fn dial(
        &self,
        peer: Role,
        address: &str,
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
        hello(
            TlsStream::Client(tls),
            self.me,
            peer,
            self.session,
            deadline,
        )
        .await
    }

    /// Accepts until every expected peer is connected. Refused connections (a wrong
    /// certificate, another session) are logged and do not stop the wait.
    async fn accept_all(&self, deadline: Instant) -> Result<Vec<Established>> {
        let Some(listening) = &self.listens else {
            return Ok(vec![]);
        };
        let me = self.me;
        let address = &listening.address;
        let listener = TcpListener::bind(address)
            .await
            .with_context(|| format!("{me} cannot listen on {address} ({})", listening.field))?;
        let config = ServerConfig::builder_with_provider(self.pins.provider())
            .with_protocol_versions(TLS_VERSIONS)?
            .with_client_cert_verifier(Arc::new(self.pins.expecting(listening.peers.clone())))
            .with_single_cert(vec![self.cert.clone()], self.key.clone_key())
            .with_context(|| format!("the key of {me} does not fit its certificate"))?;
        let acceptor = TlsAcceptor::from(Arc::new(config));
        let mut links: Vec<Established> = vec![];
        let mut refused = 0;
        let mut pending = tokio::task::JoinSet::new();
        while links.len() < listening.peers.len() {
            tokio::select! {
                accepted = listener.accept() => {
                    let (tcp, from) =
                        accepted.with_context(|| format!("{me} cannot accept on {address}"))?;
                    let (acceptor, pins, session) = (acceptor.clone(), self.pins.clone(), self.session);
                    pending.spawn(async move {
                        let link = async {
                            tcp.set_nodelay(true)?;
                            let tls = timeout_at(deadline, acceptor.accept(tcp))
                                .await
                                .map_err(|_| anyhow!("the TLS handshake timed out"))??;
                            let peer = pins.identify(&tls)?;
                            let link = hello(TlsStream::Server(tls), me, peer, session, deadline).await?;
                            anyhow::Ok((peer, link))
                        };
                        link.await.with_context(|| format!("{me} refused a connection from {from}"))
                    });
                }
                Some(done) = pending.join_next() => {
                    match done.map_err(anyhow::Error::from).and_then(|r| r) {
                        Ok((peer, _)) if links.iter().any(|(l, _)| *l == peer) => {
                            eprintln!("tfe-net: {me} ignored a second connection from {peer}");
                        }
                        Ok(link) => links.push(link),
                        Err(e) => {
                            refused += 1;
                            eprintln!("tfe-net: {e:#}");
                        }
                    }
                }
                () = sleep_until(deadline) => {
                    let missing: Vec<String> = listening.peers.iter()
                        .filter(|r| !links.iter().any(|(l, _)| l == *r))
                        .map(|r| r.to_string())
                        .collect();
                    bail!(
                        "{me} waited the whole connect time-out on {address} for {} \
                         ({refused} connection(s) refused; see the log)",
                        missing.join(", ")
                    )
                }
            }
        }
        Ok(links)
    }
}

const TLS_VERSIONS: &[&rustls::SupportedProtocolVersion] = &[&rustls::version::TLS13];

/// Each side sends its role and wire version as the link's first frame and checks the
/// other's, so a peer from another session or build is refused before any data flows.
async fn hello(
    mut stream: Stream,
    me: Role,
    peer: Role,
    session: SessionId,
    deadline: Instant,
) -> Result<(Stream, Sealer, Opener)> {
    let mut sealer = Sealer::new(session);
    let mut opener = Opener::new(session, peer);
    let hello = sealer.seal(Kind::Hello, &[WIRE_VERSION, me.index() as u64])?;
    let exchange = async {
        write_frame(&mut stream, &hello)
            .await
            .map_err(describe_io)?;
        let silence = deadline.saturating_duration_since(Instant::now());
        read_frame(&mut stream, &mut opener, silence).await
    };
    let (kind, words) = timeout_at(deadline, exchange)
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
