//! A long-running deployment serving many clients: three tfe-party processes (the real
//! binaries, over mutual TLS on loopback) that must keep serving whatever one client
//! sends. One test per finding of issue 13: concurrent clients each get their own correct
//! answer, a huge batch word is refused, a frame header announcing 2 GiB is refused
//! without allocating it, silent and stalled clients cost only their own sessions, and a
//! client beyond the queue is told the parties are busy.

mod common;

use common::children::Children;
use common::deploy::{PREDICT, deployment, edit_config, fixture, party, s};
use common::{max_abs_diff, read_npy, temp_dir};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tfe::net::config::Config;
use tfe::net::frame::{Kind, Sealer, SessionId};
use tfe::net::tls::{Node, Refused, TlsTransport, join};
use tfe::net::{Role, Transport};
use tfe::plan::SharedPlan;
use tfe::serve::fingerprint;

/// Max |output error| against the expected outputs, as tests/fixtures.rs allows.
const TOLERANCE: f32 = 1e-2;

/// A deployment of the mlp fixture whose configuration has `serve` as its serving limits
/// and 2 s connect and read time-outs; the three parties serve until the test ends.
fn serving(name: &str, serve: serde_json::Value, extra: &[&str]) -> (PathBuf, PathBuf, Children) {
    let dir = temp_dir(&format!("serving-{name}"));
    let config = deployment(&dir, "mlp", "2000");
    edit_config(&config, |json| {
        json["serve"] = serve;
        json["timeouts"]["connect_ms"] = 2000.into();
    });
    let mut children = Children::new(&dir);
    for i in 0..3 {
        party(
            &mut children,
            &config,
            i,
            &dir.join(format!("model.party{i}.plan")),
            extra,
        );
    }
    (dir, config, children)
}

/// Starts tfe-predict on the mlp fixture's batch of 32, writing `out`; returns its index.
fn predict(children: &mut Children, dir: &Path, config: &Path, out: &str, extra: &[&str]) -> usize {
    let plan = s(&dir.join("model.client.plan"));
    let input = s(&fixture("mlp", "input_b32.npy"));
    let out = s(&dir.join(out));
    let config = s(config);
    let mut args = vec!["--config", &config, &plan, &input, "-o", &out];
    args.extend_from_slice(extra);
    children.spawn(&format!("{out}.log"), PREDICT, &args)
}

/// Waits for client `i` and checks its answer against the fixture's expected outputs.
fn answered(children: &mut Children, dir: &Path, i: usize, out: &str) {
    let (status, err) = children.wait(i, Duration::from_secs(120));
    assert!(status.success(), "client {i}: {err}");
    let got = read_npy(&dir.join(out));
    let expected = read_npy(&fixture("mlp", "expected_b32.npy"));
    let diff = max_abs_diff(&got, &expected);
    assert!(diff <= TOLERANCE, "client {i}: max |error| {diff}");
}

/// The parties are all still running.
fn alive(children: &mut Children) {
    for i in 0..3 {
        let exited = children.procs[i].0.try_wait().unwrap();
        assert!(exited.is_none(), "party {i} exited: {}", children.stderr(i));
    }
}

/// A client that joins a session by hand (as `NetworkedSession::connect` does), so that
/// it can then send what no real client would.
fn join_by_hand(dir: &Path, config: &Path) -> TlsTransport {
    let config = Config::load(config).unwrap();
    let file = SharedPlan::read(&dir.join("model.client.plan")).unwrap();
    let mine = fingerprint(&file);
    let node = Node::new(&config, Role::Client).unwrap();
    let session = SessionId::random().unwrap();
    let first = Role::Party(0);
    let mut net = node
        .transport(vec![node.dial(first, session).unwrap()])
        .unwrap();
    net.send(first, &mine).unwrap();
    assert_eq!(net.recv(first).unwrap(), mine);
    for role in [Role::Party(1), Role::Party(2)] {
        join(&mut net, node.dial(role, session).unwrap()).unwrap();
        net.send(role, &mine).unwrap();
        assert_eq!(net.recv(role).unwrap(), mine);
    }
    net
}

#[test]
fn concurrent_clients_each_get_their_own_correct_answer() {
    // Two sessions at once, so that two of the four clients wait in party 0's queue.
    let serve = serde_json::json!({ "max_sessions": 2 });
    let (dir, config, mut children) = serving("concurrent", serve, &[]);
    let clients: Vec<usize> = (0..4)
        .map(|k| predict(&mut children, &dir, &config, &format!("out{k}.npy"), &[]))
        .collect();
    for (k, &i) in clients.iter().enumerate() {
        answered(&mut children, &dir, i, &format!("out{k}.npy"));
    }
    for i in 0..3 {
        children.await_log(i, "after 1 request(s)", Duration::from_secs(20));
        let log = children.stderr(i);
        assert_eq!(log.matches("after 1 request(s)").count(), 4, "{log}");
    }
    alive(&mut children);
}

#[test]
fn a_batch_of_2_pow_36_is_refused_and_the_party_serves_on() {
    let (dir, config, mut children) = serving("huge-batch", serde_json::json!({}), &[]);
    let mut net = join_by_hand(&dir, &config);
    for role in Role::PARTIES {
        net.send(role, &[1 << 36]).unwrap();
    }
    let error = net.recv(Role::Party(0)).unwrap_err();
    let refused = error.downcast_ref::<Refused>().expect("a refusal");
    let why = &refused.refusal.reason;
    assert!(
        why.contains("a batch of 68719476736 rows") && why.contains("at most 256"),
        "{why}"
    );
    assert!(why.contains("serve.max_batch"), "{why}");
    drop(net);
    children.await_log(0, "68719476736 rows", Duration::from_secs(20));
    let client = predict(&mut children, &dir, &config, "out.npy", &[]);
    answered(&mut children, &dir, client, "out.npy");
    alive(&mut children);
}

fn party0_address(config: &Path) -> String {
    let config = Config::load(config).unwrap();
    config
        .endpoint(Role::Party(0))
        .unwrap()
        .address
        .clone()
        .unwrap()
}

/// A TLS connection to `address` with the client's certificate of the test PKI in `pki`.
fn client_tls(
    pki: &Path,
    address: &str,
) -> rustls::StreamOwned<rustls::ClientConnection, TcpStream> {
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(CertificateDer::from_pem_file(pki.join("ca.pem")).unwrap())
        .unwrap();
    let cert = CertificateDer::from_pem_file(pki.join("client.pem")).unwrap();
    let key = PrivateKeyDer::from_pem_file(pki.join("client.key")).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .unwrap()
        .with_root_certificates(roots)
        .with_client_auth_cert(vec![cert], key)
        .unwrap();
    let name = "party0.tfe".try_into().unwrap();
    let connection = rustls::ClientConnection::new(Arc::new(tls), name).unwrap();
    rustls::StreamOwned::new(connection, TcpStream::connect(address).unwrap())
}

#[test]
fn a_frame_header_announcing_2_gib_is_refused_without_allocating_it() {
    // Under a 1 GiB address-space limit, a party that allocated what the header announces
    // would abort; the limit leaves room for everything a party needs to serve.
    let limit = ["prlimit", "--as=1073741824", "--"];
    let dir = temp_dir("serving-header");
    let config = deployment(&dir, "mlp", "2000");
    let mut children = Children::new(&dir);
    for i in 0..3 {
        let (id, plan) = (
            format!("party{i}"),
            s(&dir.join(format!("model.party{i}.plan"))),
        );
        let mut args = limit[1..].to_vec();
        let config = s(&config);
        let party_args = [
            common::deploy::PARTY,
            "--config",
            &config,
            "--id",
            &id,
            "--plan",
            &plan,
        ];
        args.extend_from_slice(&party_args);
        children.spawn(&format!("{id}.log"), limit[0], &args);
    }
    let address = party0_address(&config);
    let started = Instant::now();
    let mut tls = loop {
        match TcpStream::connect(&address) {
            Ok(_) => break client_tls(&dir.join("pki"), &address),
            Err(_) if started.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("party 0 does not listen: {e}"),
        }
    };
    let mut sealer = Sealer::new(SessionId::random().unwrap());
    // Wire version 2; the client is role 3.
    tls.write_all(&sealer.seal(Kind::Hello, &[2, 3]).unwrap())
        .unwrap();
    let mut hello = [0u8; 29 + 16];
    tls.read_exact(&mut hello).unwrap();
    let mut header = sealer.seal(Kind::Data, &[]).unwrap();
    header[25..29].copy_from_slice(&(1u32 << 28).to_le_bytes());
    tls.write_all(&header).unwrap();
    tls.flush().unwrap();
    // The party closes the link (after a refusal frame); nothing more is sent.
    let mut rest = vec![];
    let _ = tls.read_to_end(&mut rest);
    children.await_log(
        0,
        "claims 268435456 words, over the limit",
        Duration::from_secs(20),
    );
    let client = predict(&mut children, &dir, &config, "out.npy", &[]);
    answered(&mut children, &dir, client, "out.npy");
    alive(&mut children);
}

#[test]
fn silent_and_stalled_clients_cost_only_their_own_sessions() {
    // One session at a time, so that each of these would block every later client.
    let serve = serde_json::json!({ "max_sessions": 1, "wait_ms": 1500 });
    let (dir, config, mut children) = serving("silent", serve, &[]);
    let address = party0_address(&config);
    // A connection that never starts its TLS handshake.
    let started = Instant::now();
    let _silent_tcp = loop {
        match TcpStream::connect(&address) {
            Ok(tcp) => break tcp,
            Err(_) if started.elapsed() < Duration::from_secs(30) => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("party 0 does not listen: {e}"),
        }
    };
    // A client that says its hello and never sends its plan's fingerprint: it takes the
    // only session until the connect time-out.
    let loaded = Config::load(&config).unwrap();
    let node = Node::new(&loaded, Role::Client).unwrap();
    let _silent = node
        .dial(Role::Party(0), SessionId::random().unwrap())
        .unwrap();
    // A client that asks for a request and never sends its inputs: queued behind the
    // silent one, then served until the parties' wait limit.
    let stalled = std::thread::spawn({
        let (dir, config) = (dir.clone(), config.clone());
        move || {
            let mut net = join_by_hand(&dir, &config);
            for role in Role::PARTIES {
                net.send(role, &[1]).unwrap();
            }
            net.recv(Role::Party(0)).unwrap_err().to_string()
        }
    });
    std::thread::sleep(Duration::from_millis(300));
    let client = predict(&mut children, &dir, &config, "out.npy", &[]);
    answered(&mut children, &dir, client, "out.npy");
    let stalled = stalled.join().unwrap();
    assert!(stalled.contains("refused the client"), "{stalled}");
    children.await_log(0, "waiting for the client's hello", Duration::from_secs(20));
    // Parties 1 and 2 wait for the inputs, party 0 for them: whichever gives up first
    // ends the session at the others.
    let deadline = Instant::now() + Duration::from_secs(20);
    let logs = || (0..3).map(|i| children.stderr(i)).collect::<String>();
    while !logs().contains("waited 1.5 s for a message from") {
        assert!(Instant::now() < deadline, "{}", logs());
        std::thread::sleep(Duration::from_millis(20));
    }
    alive(&mut children);
}

#[test]
fn a_client_beyond_the_queue_is_told_the_parties_are_busy_and_retries() {
    let serve = serde_json::json!({ "max_sessions": 1, "max_queue": 0 });
    let (dir, config, mut children) = serving("busy", serve, &[]);
    let holder = join_by_hand(&dir, &config);
    let refused = predict(
        &mut children,
        &dir,
        &config,
        "refused.npy",
        &["--retries", "0"],
    );
    let (status, err) = children.wait(refused, Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("party 0 is busy") && err.contains("retry after"),
        "{err}"
    );
    // With retries, the client gets its turn once the holder leaves.
    let patient = predict(&mut children, &dir, &config, "out.npy", &["--retries", "8"]);
    std::thread::sleep(Duration::from_millis(500));
    drop(holder);
    answered(&mut children, &dir, patient, "out.npy");
    alive(&mut children);
}
