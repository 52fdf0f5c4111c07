//! The networked transport: one TCP connection with mutually authenticated TLS 1.3 per pair
//! of roles that talk, each peer's certificate pinned to its role.
//!
//! Each link runs a reader and a writer task on a small tokio runtime owned by the
//! transport. `send` only queues (like the in-process channels), so parties that send to
//! each other before receiving cannot deadlock on full socket buffers; the reader drains the
//! socket into a queue that `recv` takes from. Idle links carry heartbeats, so a peer that
//! dies or a network that drops shows up as an error within the read time-out, while a peer
//! that is merely busy computing does not.

use super::config::{Config, field_name, host_name};
use super::frame::{HEADER_LEN, Kind, MAX_WORDS, Opener, Sealer, SessionId};
use super::{Meter, Role, Stats, Transport};
use anyhow::{Context, Result, anyhow, bail, ensure};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    CryptoProvider, WebPkiSupportedAlgorithms, verify_tls12_signature, verify_tls13_signature,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, OtherError,
    RootCertStore, ServerConfig, SignatureScheme,
};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, mpsc as std_mpsc};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{Instant, sleep, sleep_until, timeout, timeout_at};
use tokio_rustls::{TlsAcceptor, TlsConnector, TlsStream};

/// Bumped when the frame layout or the hello changes, so mismatched builds refuse each other.
const WIRE_VERSION: u64 = 1;

type Stream = TlsStream<TcpStream>;

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

/// An I/O step that must make progress within `silence`.
async fn patiently<T>(
    silence: Duration,
    step: impl Future<Output = std::io::Result<T>>,
) -> Result<T> {
    match timeout(silence, step).await {
        Ok(r) => r.map_err(describe_io),
        Err(_) => bail!(
            "no progress for {:.1} s: the peer or the network is down",
            silence.as_secs_f64()
        ),
    }
}

fn describe_io(e: std::io::Error) -> anyhow::Error {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        anyhow!("the connection was closed (the peer stopped)")
    } else {
        anyhow!("connection error: {e}")
    }
}

/// Fills `buf`, allowing at most `silence` between pieces, so a long frame on a slow link is
/// not mistaken for a lost peer.
async fn read_full(
    rd: &mut (impl AsyncRead + Unpin),
    buf: &mut [u8],
    silence: Duration,
) -> Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = patiently(silence, rd.read(&mut buf[filled..])).await?;
        ensure!(n > 0, "the connection was closed (the peer stopped)");
        filled += n;
    }
    Ok(())
}

async fn read_frame(
    rd: &mut (impl AsyncRead + Unpin),
    opener: &mut Opener,
    silence: Duration,
) -> Result<(Kind, Vec<u64>)> {
    let mut header = [0; HEADER_LEN];
    read_full(rd, &mut header, silence).await?;
    let header = opener.open(&header)?;
    // Read straight into words: no byte buffer to copy from.
    let mut payload = vec![0u64; header.words];
    read_full(rd, bytemuck::cast_slice_mut(&mut payload), silence).await?;
    for w in &mut payload {
        *w = u64::from_le(*w);
    }
    Ok((header.kind, payload))
}

async fn write_frame(wr: &mut (impl AsyncWrite + Unpin), frame: &[u8]) -> std::io::Result<()> {
    wr.write_all(frame).await?;
    wr.flush().await
}

/// Everything needed to open this role's links.
struct Setup {
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
    fn new(config: &Config, me: Role, session: SessionId) -> Result<Setup> {
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
        let pins = config
            .roles()
            .map(|role| Pin::new(config, role))
            .collect::<Result<Vec<_>>>()?;
        Ok(Setup {
            me,
            session,
            dials,
            listens,
            pins: Arc::new(Pins {
                me,
                pins,
                provider: Arc::new(rustls::crypto::ring::default_provider()),
            }),
            cert: mine.cert.clone(),
            key: config.private_key(me)?,
        })
    }

    async fn establish(self, within: Duration) -> Result<BTreeMap<Role, (Stream, Sealer, Opener)>> {
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
        let config = ClientConfig::builder_with_provider(self.pins.provider.clone())
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
        let config = ServerConfig::builder_with_provider(self.pins.provider.clone())
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

struct Pin {
    role: Role,
    cert: CertificateDer<'static>,
    anchors: Option<RootCertStore>,
}

impl Pin {
    fn new(config: &Config, role: Role) -> Result<Pin> {
        let endpoint = config.endpoint(role)?;
        let anchors = match &endpoint.ca {
            None => None,
            Some(ca) => {
                let mut store = RootCertStore::empty();
                store.add(ca.clone()).with_context(|| {
                    format!(
                        "roles.{}.ca in {} is not a usable CA certificate",
                        field_name(role),
                        config.source().display()
                    )
                })?;
                Some(store)
            }
        };
        Ok(Pin {
            role,
            cert: endpoint.cert.clone(),
            anchors,
        })
    }
}

/// Every role's pinned certificate (and CA, when configured).
struct Pins {
    me: Role,
    pins: Vec<Pin>,
    provider: Arc<CryptoProvider>,
}

impl Pins {
    fn expecting(self: &Arc<Self>, roles: Vec<Role>) -> PinVerifier {
        PinVerifier {
            pins: self.clone(),
            expected: roles,
        }
    }

    /// The role whose pinned certificate the peer of an established connection presented.
    fn identify(&self, tls: &tokio_rustls::server::TlsStream<TcpStream>) -> Result<Role> {
        let presented = tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .ok_or_else(|| anyhow!("a peer presented no certificate"))?;
        self.pins
            .iter()
            .find(|p| p.cert == *presented)
            .map(|p| p.role)
            .ok_or_else(|| anyhow!("a peer's certificate matches no role"))
    }
}

/// Why a certificate was refused; rustls shows it with `Debug`, hence the plain text there.
struct Refusal(String);

impl std::fmt::Debug for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refusal {}

/// Accepts a peer only if it presents the pinned certificate of one of `expected`, chaining to
/// that role's CA when one is configured. Refusals are logged, without key material.
struct PinVerifier {
    pins: Arc<Pins>,
    expected: Vec<Role>,
}

impl std::fmt::Debug for PinVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PinVerifier(expecting {:?})", self.expected)
    }
}

impl PinVerifier {
    fn check(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<(), rustls::Error> {
        self.reason_to_refuse(end_entity, intermediates, now)
            .map_or(Ok(()), |reason| {
                let me = self.pins.me;
                eprintln!("tfe-net: {me} refused a peer's certificate: {reason}");
                Err(rustls::Error::InvalidCertificate(CertificateError::Other(
                    OtherError(Arc::new(Refusal(reason))),
                )))
            })
    }

    fn algorithms(&self) -> WebPkiSupportedAlgorithms {
        self.pins.provider.signature_verification_algorithms
    }

    fn reason_to_refuse(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Option<String> {
        let expected = self
            .expected
            .iter()
            .map(|r| r.to_string())
            .collect::<Vec<_>>()
            .join(" or ");
        let Some(pin) = self.pins.pins.iter().find(|p| p.cert == *end_entity) else {
            return Some(format!(
                "expected {expected}, got a certificate pinned for no role \
                 (another CA's, or an unknown one)"
            ));
        };
        if !self.expected.contains(&pin.role) {
            return Some(format!(
                "expected {expected}, got the certificate of {}",
                pin.role
            ));
        }
        let anchors = pin.anchors.as_ref()?;
        let parsed = match rustls::server::ParsedCertificate::try_from(end_entity) {
            Ok(p) => p,
            Err(e) => return Some(format!("{}'s certificate does not parse: {e}", pin.role)),
        };
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &parsed,
            anchors,
            intermediates,
            now,
            self.pins.provider.signature_verification_algorithms.all,
        )
        .err()
        .map(|e| format!("{}'s certificate fails against its CA: {e}", pin.role))
    }
}

/// The handshake-signature checks, the same whichever side of the handshake verifies. Each
/// method defers to the `rustls::crypto` function of the same name.
macro_rules! handshake_signatures {
    () => {
        handshake_signatures!(@check verify_tls12_signature);
        handshake_signatures!(@check verify_tls13_signature);

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms().supported_schemes()
        }
    };
    (@check $check:ident) => {
        fn $check(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            $check(message, cert, dss, &self.algorithms())
        }
    };
}

impl ServerCertVerifier for PinVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check(end_entity, intermediates, now)
            .map(|()| ServerCertVerified::assertion())
    }

    handshake_signatures!();
}

impl ClientCertVerifier for PinVerifier {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check(end_entity, intermediates, now)
            .map(|()| ClientCertVerified::assertion())
    }

    handshake_signatures!();
}
