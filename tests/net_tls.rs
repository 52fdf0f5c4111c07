//! The networked transport on loopback: a mesh that meters like the embedded one, the real
//! protocol over it, refused certificates, the framing's checks, lost peers, and a sender held
//! back by a receiver that takes nothing.

use anyhow::Result;
use ndarray::{ArrayD, IxDyn};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};
use tfe::mpc::Protocol;
use tfe::mpc::arith::product_term;
use tfe::mpc::share::{Dealer, recv_revealed, recv_secret, reveal_to};
use tfe::mpc::{ArithShare, Party};
use tfe::net::config::{Config, Timeouts};
use tfe::net::frame::{HEADER_LEN, Kind, Opener, Refusal, Sealer, SessionId};
use tfe::net::tls::{Refused, TlsTransport, connect};
use tfe::net::{Role, Stats, Transport, local, pki};
use tfe::tensor::{Elem, broadcast::zip_with};

const WITH_CLIENT: [Role; 4] = [Role::Party(0), Role::Party(1), Role::Party(2), Role::Client];

/// A fresh directory for one test's PKI.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("tfe-net-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// Three ports free right now (the OS picks them; the listeners are closed again).
fn free_ports() -> [u16; 3] {
    let listeners: Vec<_> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    ports.try_into().unwrap()
}

fn timeouts(connect_ms: u64, read_ms: u64) -> Timeouts {
    Timeouts {
        connect: Duration::from_millis(connect_ms),
        read: Duration::from_millis(read_ms),
    }
}

fn test_pki(name: &str, roles: &[Role], t: Timeouts) -> PathBuf {
    pki::write_test_pki(&scratch(name), roles, &[], free_ports(), t).unwrap()
}

/// Connects each `(config file, role)` on its own thread, all with one session id.
fn connect_all(who: &[(&Path, Role)]) -> Vec<Result<TlsTransport>> {
    let session = SessionId::random().unwrap();
    std::thread::scope(|s| {
        let handles: Vec<_> = who
            .iter()
            .map(|&(path, role)| s.spawn(move || connect(&Config::load(path)?, role, session)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

/// The three parties and the client connected over TLS with a fresh test PKI (10 s
/// time-outs), in that order.
fn mesh(name: &str) -> Vec<TlsTransport> {
    let path = test_pki(name, &WITH_CLIENT, timeouts(10_000, 10_000));
    let who: Vec<_> = WITH_CLIENT.iter().map(|&r| (path.as_path(), r)).collect();
    connect_all(&who)
        .into_iter()
        .collect::<Result<_>>()
        .unwrap()
}

fn peers_of(me: Role, roles: &[Role]) -> Vec<Role> {
    roles
        .iter()
        .copied()
        .filter(|&r| r != me && (matches!(me, Role::Party(_)) || matches!(r, Role::Party(_))))
        .collect()
}

fn message(from: Role, to: Role, round: u64) -> Vec<u64> {
    let len = 1 + (from.index() * 7 + to.index() * 3 + round as usize) % 11;
    (0..len as u64)
        .map(|i| (from.index() as u64) << 48 | (to.index() as u64) << 40 | round << 32 | i)
        .collect()
}

/// Three rounds in which every endpoint sends to all its peers, then receives from them.
fn exchange(end: &mut dyn Transport, roles: &[Role]) -> Result<Stats> {
    let me = end.me();
    let peers = peers_of(me, roles);
    for round in 0..3 {
        for &p in &peers {
            end.send(p, &message(me, p, round))?;
        }
        for &p in &peers {
            assert_eq!(end.recv(p)?, message(p, me, round), "{me} from {p}");
        }
    }
    Ok(end.stats())
}

/// Runs [`exchange`] on every endpoint, each on its own thread.
fn exchange_all<T: Transport>(ends: Vec<T>) -> Vec<Stats> {
    std::thread::scope(|s| {
        let handles: Vec<_> = ends
            .into_iter()
            .map(|mut end| s.spawn(move || exchange(&mut end, &WITH_CLIENT)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap().unwrap())
            .collect()
    })
}

#[test]
fn a_mesh_of_three_parties_and_a_client_meters_like_the_embedded_one() {
    let ends = mesh("mesh");
    let over_tls = exchange_all(ends);
    let embedded = exchange_all(local::network(&WITH_CLIENT));
    assert_eq!(over_tls, embedded);
    assert!(over_tls.iter().all(|s| s.rounds == 3 && s.bytes_sent > 0));
}

fn vector(values: Vec<u64>) -> ArrayD<u64> {
    ArrayD::from_shape_vec(IxDyn(&[values.len()]), values).unwrap()
}

#[test]
fn a_secure_multiplication_runs_over_tls() {
    let x = vector(vec![3, u64::MAX, 1 << 40, 0, 17]);
    let y = vector(vec![5, 2, 1 << 30, 9, u64::MAX - 3]);
    let expect: Vec<u64> = x.iter().zip(&y).map(|(a, b)| a.wrapping_mul(*b)).collect();
    let shape = x.shape().to_vec();
    let mut ends = mesh("multiply");
    let mut client = ends.pop().unwrap();
    let got = std::thread::scope(|s| {
        for end in ends {
            let shape = &shape;
            s.spawn(move || -> Result<()> {
                let mut party = Party::setup(Box::new(end), Protocol::Aby3)?;
                let x = recv_secret(&mut party, Role::Client, shape)?;
                let y = recv_secret(&mut party, Role::Client, shape)?;
                let term = product_term(&x, &y, |a, b| {
                    zip_with(&a.view(), &b.view(), |p, q| p.mul(q))
                })?;
                let xy: ArithShare = party.reshare(&term)?;
                reveal_to(&mut party, Role::Client, &xy)
            });
        }
        let mut dealer = Dealer::from_os(Protocol::Aby3).unwrap();
        dealer.send_secret(&mut client, &x).unwrap();
        dealer.send_secret(&mut client, &y).unwrap();
        recv_revealed(&mut client, Protocol::Aby3, &shape).unwrap()
    });
    assert_eq!(got, vector(expect));
}

/// Writes a copy of the config at `path` changed by `edit`, and returns its path.
fn edited(path: &Path, name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    edit(&mut json);
    let out = path.with_file_name(name);
    std::fs::write(&out, json.to_string()).unwrap();
    out
}

#[test]
fn another_roles_certificate_is_refused() {
    let path = test_pki("impostor", &Role::PARTIES, timeouts(2_000, 2_000));
    // Party 2, with its own certificate, answers at party 1's address.
    let impostor = edited(&path, "impostor.json", |j| {
        let roles = &mut j["roles"];
        let one = roles["party1"]["address"].take();
        roles["party1"]["address"] = roles["party2"]["address"].take();
        roles["party2"]["address"] = one;
    });
    let results = connect_all(&[(&path, Role::Party(0)), (&impostor, Role::Party(2))]);
    let e = format!("{:#}", results[0].as_ref().err().expect("party 0 refuses"));
    assert!(
        e.contains("party 1") && e.contains("got the certificate of party 2"),
        "{e}"
    );
    assert!(results[1].is_err());
}

#[test]
fn a_certificate_from_another_ca_is_refused() {
    let path = test_pki("honest-ca", &WITH_CLIENT, timeouts(2_000, 2_000));
    let other = pki::write_test_pki(
        &scratch("other-ca"),
        &WITH_CLIENT,
        &[],
        free_ports(),
        timeouts(2_000, 2_000),
    )
    .unwrap();
    // The client presents a certificate and key issued by another CA.
    let foreign = edited(&path, "foreign.json", |j| {
        let dir = other.parent().unwrap();
        j["roles"]["client"]["cert"] = dir.join("client.pem").to_str().unwrap().into();
        j["roles"]["client"]["key"] = dir.join("client.key").to_str().unwrap().into();
    });
    let mut who: Vec<_> = Role::PARTIES.iter().map(|&r| (path.as_path(), r)).collect();
    who.push((&foreign, Role::Client));
    let results = connect_all(&who);
    for r in &results[..3] {
        let e = format!(
            "{:#}",
            r.as_ref().err().expect("the parties refuse the client")
        );
        assert!(e.contains("for the client"), "{e}");
        assert!(e.contains("refused"), "{e}");
    }
    assert!(results[3].is_err());
}

#[test]
fn a_peer_in_another_session_is_refused() {
    let path = test_pki("session", &Role::PARTIES, timeouts(2_000, 2_000));
    let config = Config::load(&path).unwrap();
    let results: Vec<Result<TlsTransport>> = std::thread::scope(|s| {
        let handles: Vec<_> = Role::PARTIES
            .iter()
            .map(|&r| {
                let config = &config;
                s.spawn(move || connect(config, r, SessionId::random()?))
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let errors: Vec<String> = results
        .iter()
        .map(|r| format!("{:#}", r.as_ref().err().expect("no mesh across sessions")))
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("not to this session")),
        "{errors:?}"
    );
}

fn frames(session: SessionId, n: u64) -> Vec<Vec<u8>> {
    let mut sealer = Sealer::new(session);
    (0..n)
        .map(|i| sealer.seal(Kind::Data, &[i]).unwrap())
        .collect()
}

fn header(frame: &[u8]) -> [u8; HEADER_LEN] {
    frame[..HEADER_LEN].try_into().unwrap()
}

/// Seals frames 0..n on one link and opens them in `order`, as if they arrived so.
fn open_in(order: &[usize], from: Role) -> Result<()> {
    let session = SessionId::random()?;
    let sealed = frames(session, order.len() as u64);
    let mut opener = Opener::new(session, from);
    for &i in order {
        let h = opener.open(&header(&sealed[i]))?;
        assert_eq!((h.kind, h.words), (Kind::Data, 1));
        assert_eq!(sealed[i].len(), HEADER_LEN + 8);
    }
    Ok(())
}

#[test]
fn frames_open_in_order() {
    open_in(&[0, 1, 2], Role::Party(1)).unwrap();
}

#[test]
fn a_replayed_frame_is_rejected() {
    let e = open_in(&[0, 1, 1], Role::Party(1)).unwrap_err().to_string();
    assert!(e.contains("replayed") && e.contains("party 1"), "{e}");
}

#[test]
fn a_reordered_frame_is_rejected() {
    let e = open_in(&[0, 2, 1], Role::Party(2)).unwrap_err().to_string();
    assert!(e.contains("out of order") && e.contains("party 2"), "{e}");
}

#[test]
fn a_frame_from_another_session_is_rejected() {
    let (ours, theirs) = (SessionId::random().unwrap(), SessionId::random().unwrap());
    let mut opener = Opener::new(ours, Role::Client);
    let e = opener
        .open(&header(&frames(theirs, 1)[0]))
        .unwrap_err()
        .to_string();
    assert!(e.contains("session") && e.contains("the client"), "{e}");
}

#[test]
fn a_corrupt_header_is_rejected() {
    let session = SessionId::random().unwrap();
    let mut bad_kind = header(&frames(session, 1)[0]);
    bad_kind[0] = 9;
    assert!(
        Opener::new(session, Role::Party(0))
            .open(&bad_kind)
            .is_err()
    );
    let mut too_long = header(&frames(session, 1)[0]);
    too_long[25..29].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(
        Opener::new(session, Role::Party(0))
            .open(&too_long)
            .is_err()
    );
}

#[test]
fn a_peer_that_stops_makes_the_others_fail_naming_it() {
    let path = test_pki("drop", &Role::PARTIES, timeouts(10_000, 1_000));
    let who: Vec<_> = Role::PARTIES.iter().map(|&r| (path.as_path(), r)).collect();
    let mut ends: Vec<TlsTransport> = connect_all(&who)
        .into_iter()
        .collect::<Result<_>>()
        .unwrap();
    drop(ends.pop());
    for end in &mut ends {
        let start = Instant::now();
        let e = format!("{:#}", end.recv(Role::Party(2)).unwrap_err());
        assert!(e.contains("lost party 2"), "{e}");
        eprintln!("{} noticed in {:?}: {e}", end.me(), start.elapsed());
        let e = format!("{:#}", end.send(Role::Party(2), &[1]).unwrap_err());
        assert!(e.contains("party 2"), "{e}");
    }
    // The survivors still talk to each other.
    ends[0].send(Role::Party(1), &[7]).unwrap();
    assert_eq!(ends[1].recv(Role::Party(0)).unwrap(), vec![7]);
}

/// Relays TCP between `listen` and `target` until `cut` is set; from then on it keeps the
/// connections open but passes nothing, like a network that silently drops packets. The
/// relay accepts before `target` listens, so it retries reaching it as a dialer would.
fn relay(listen: std::net::TcpListener, target: String, cut: Arc<AtomicBool>) {
    std::thread::spawn(move || {
        for inbound in listen.incoming() {
            let Ok(inbound) = inbound else { return };
            let deadline = Instant::now() + Duration::from_secs(10);
            let outbound = loop {
                match std::net::TcpStream::connect(&target) {
                    Ok(stream) => break stream,
                    Err(_) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(_) => return,
                }
            };
            for (mut from, mut to) in [
                (inbound.try_clone().unwrap(), outbound.try_clone().unwrap()),
                (outbound, inbound),
            ] {
                let cut = cut.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 1 << 14];
                    while let Ok(n) = from.read(&mut buf) {
                        if n == 0 {
                            return;
                        }
                        if !cut.load(Ordering::SeqCst) && to.write_all(&buf[..n]).is_err() {
                            return;
                        }
                    }
                });
            }
        }
    });
}

#[test]
fn a_silent_network_makes_both_ends_fail_naming_the_peer() {
    let path = test_pki("silent", &Role::PARTIES, timeouts(10_000, 1_000));
    // Party 0 reaches party 1 through a relay that will go silent.
    let listen = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let relayed = format!("127.0.0.1:{}", listen.local_addr().unwrap().port());
    let via_relay = edited(&path, "relayed.json", |j| {
        j["roles"]["party1"]["address"] = relayed.into();
    });
    let config = Config::load(&path).unwrap();
    let cut = Arc::new(AtomicBool::new(false));
    relay(
        listen,
        config
            .endpoint(Role::Party(1))
            .unwrap()
            .address
            .clone()
            .unwrap(),
        cut.clone(),
    );
    let mut ends: Vec<TlsTransport> = connect_all(&[
        (&via_relay, Role::Party(0)),
        (&path, Role::Party(1)),
        (&path, Role::Party(2)),
    ])
    .into_iter()
    .collect::<Result<_>>()
    .unwrap();
    ends[0].send(Role::Party(1), &[1, 2]).unwrap();
    assert_eq!(ends[1].recv(Role::Party(0)).unwrap(), vec![1, 2]);
    cut.store(true, Ordering::SeqCst);
    for (me, peer) in [(0, Role::Party(1)), (1, Role::Party(0))] {
        let start = Instant::now();
        let e = format!("{:#}", ends[me].recv(peer).unwrap_err());
        assert!(
            e.contains(&format!("lost {peer}")) && e.contains("no progress"),
            "{e}"
        );
        eprintln!("{} noticed in {:?}: {e}", ends[me].me(), start.elapsed());
    }
    // The link that does not pass through the relay is unaffected.
    ends[2].send(Role::Party(0), &[3]).unwrap();
    assert_eq!(ends[0].recv(Role::Party(2)).unwrap(), vec![3]);
}

#[test]
fn a_peer_that_never_comes_makes_connect_fail_naming_it() {
    let path = test_pki("absent", &Role::PARTIES, timeouts(1_000, 1_000));
    let who: Vec<_> = [Role::Party(0), Role::Party(2)]
        .iter()
        .map(|&r| (path.as_path(), r))
        .collect();
    for r in connect_all(&who) {
        let e = format!("{:#}", r.err().expect("no mesh without party 1"));
        assert!(e.contains("party 1"), "{e}");
    }
}

/// A peer's refusal reaches the other end as a [`Refused`] carrying its retry hint whether
/// that end was receiving or sending when it came (a client that sends its hello to a busy
/// party must see the hint to retry).
#[test]
fn a_refusal_is_seen_with_its_hint_on_send_as_on_recv() {
    let mut ends = mesh("refusal");
    let mut client = ends.pop().unwrap();
    let busy = Refusal {
        retry_after: Some(Duration::from_millis(1500)),
        reason: "busy".into(),
    };
    ends[0].ender().refuse(&busy);
    let hint = |e: anyhow::Error| e.downcast_ref::<Refused>().map(|r| r.refusal.clone());
    let deadline = Instant::now() + Duration::from_secs(10);
    let on_send = loop {
        match client.send(Role::Party(0), &[1, 2, 3]) {
            Err(e) => break hint(e),
            Ok(()) => {
                assert!(Instant::now() < deadline, "the refusal never arrived");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    };
    assert_eq!(on_send, Some(busy.clone()));
    assert_eq!(hint(client.recv(Role::Party(0)).unwrap_err()), Some(busy));
}

/// A party that only sends (as Pond's crypto producer does) waits once its link holds
/// about 64 MiB queued and 64 MiB in the receiver's inbox, instead of queueing all it
/// has in memory; everything arrives, in order, once the receiver takes it.
#[test]
fn a_sender_that_runs_ahead_waits_for_its_receiver() {
    const MESSAGES: u64 = 16;
    const WORDS: usize = 2 << 20; // 16 MiB
    let mut ends = mesh("backlog");
    let mut producer = ends.remove(2);
    let mut server = ends.remove(0);
    let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = sent.clone();
    let sender = std::thread::spawn(move || -> Result<()> {
        for k in 0..MESSAGES {
            producer.send(Role::Party(0), &vec![k; WORDS])?;
            counter.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    });
    std::thread::sleep(Duration::from_millis(1500));
    let ahead = sent.load(Ordering::SeqCst);
    // 4 messages fill the queue and 4 the inbox; a few more fit in the sockets' buffers.
    assert!(
        ahead < MESSAGES - 4,
        "{ahead} of {MESSAGES} messages sent, none taken"
    );
    for k in 0..MESSAGES {
        let words = server.recv(Role::Party(2)).unwrap();
        assert!(
            words.len() == WORDS && words.iter().all(|&w| w == k),
            "message {k}"
        );
    }
    sender.join().unwrap().unwrap();
}
