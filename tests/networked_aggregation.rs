//! Networked secure aggregation end to end: three `tfe-party --aggregate` processes, three
//! inputters (`tfe-aggregate submit`) and a result receiver (`tfe-aggregate receive`), each
//! its own process, over mutual TLS on loopback. The mean against the plaintext one, a
//! refused duplicate submission, an impostor and stray connections that do not disturb the
//! round, a missing inputter (and her weight) left out at the deadline, the minimum the
//! parties enforce, and a round under Pond (pieces on the two servers only).

mod common;

use common::children::{Children, free_ports, run};
use common::{max_abs_diff, random, read_npy, temp_dir};
use ndarray::ArrayD;
use ndarray_npy::WriteNpyExt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

const PARTY: &str = env!("CARGO_BIN_EXE_tfe-party");
const AGGREGATE: &str = env!("CARGO_BIN_EXE_tfe-aggregate");
const PKI: &str = env!("CARGO_BIN_EXE_tfe-pki");

const INPUTTERS: [&str; 3] = ["alice", "bob", "carol"];
const SHAPE: [usize; 2] = [4, 25];
/// Values are drawn in ±SCALE and clipped to ±CLIP (so none is clipped).
const SCALE: f32 = 8.0;
const CLIP: &str = "10";
/// Fixed point with 16 fractional bits: each value is off by at most 2^-17 per input.
const TOLERANCE: f32 = 1e-4;
/// Generous bound on any one process; the rounds' deadlines are a few seconds.
const WAIT: Duration = Duration::from_secs(60);

fn s(p: &Path) -> String {
    p.display().to_string()
}

/// A deployment with the three inputters and a receiver, and each inputter's vector as
/// `<name>.npy` in `dir`; returns the config and the vectors.
fn deployment(dir: &Path) -> (PathBuf, Vec<ArrayD<f32>>) {
    let pki = dir.join("pki");
    let args = [
        &s(&pki),
        "--ports",
        &free_ports(),
        "--read-ms",
        "2000",
        "--inputters",
        &INPUTTERS.join(","),
        "--receiver",
    ];
    let (status, err) = run(PKI, &args, dir, "pki.log");
    assert!(status.success(), "{err}");
    let xs: Vec<ArrayD<f32>> = (0..INPUTTERS.len())
        .map(|k| random(&SHAPE, 40 + k as u64, SCALE))
        .collect();
    for (name, x) in INPUTTERS.iter().zip(&xs) {
        x.write_npy(std::fs::File::create(dir.join(format!("{name}.npy"))).unwrap())
            .unwrap();
    }
    (pki.join("parties.json"), xs)
}

/// Starts the three parties on `round`; returns their indices.
fn parties(children: &mut Children, config: &Path, round: &str, rules: &[&str]) -> Vec<usize> {
    let config = s(config);
    (0..3)
        .map(|i| {
            let id = format!("party{i}");
            let shape = SHAPE.map(|d| d.to_string()).join(",");
            let mut args = vec!["--config", &config, "--id", &id, "--aggregate", round];
            args.extend(["--shape", &shape, "--clip", CLIP]);
            args.extend_from_slice(rules);
            children.spawn(&format!("{id}.log"), PARTY, &args)
        })
        .collect()
}

/// Submits `<name>.npy` from `dir` to `round`, to completion; returns the exit code and
/// stderr.
fn submit(dir: &Path, config: &Path, name: &str, round: &str) -> (Option<i32>, String) {
    submit_under(dir, config, name, round, "aby3")
}

/// [`submit`] under `protocol`.
fn submit_under(
    dir: &Path,
    config: &Path,
    name: &str,
    round: &str,
    protocol: &str,
) -> (Option<i32>, String) {
    let input = s(&dir.join(format!("{name}.npy")));
    let args = [
        "submit",
        "--config",
        &s(config),
        "--as",
        name,
        "--round",
        round,
        "--protocol",
        protocol,
        &input,
    ];
    let mut children = Children::new(dir);
    children.spawn(&format!("submit-{name}.log"), AGGREGATE, &args);
    let (status, err) = children.wait(0, WAIT);
    (status.code(), err)
}

/// Starts the result receiver on `round`, writing the mean to `out`; returns its index.
fn receiver(children: &mut Children, config: &Path, round: &str, out: &Path) -> usize {
    let args = [
        "receive",
        "--config",
        &s(config),
        "--round",
        round,
        "-o",
        &s(out),
        "--json",
    ];
    children.spawn("receiver.log", AGGREGATE, &args)
}

fn mean(xs: &[&ArrayD<f32>]) -> ArrayD<f32> {
    let sum = xs
        .iter()
        .fold(ArrayD::zeros(xs[0].shape()), |acc, x| acc + *x);
    sum / xs.len() as f32
}

/// The receiver's --json report.
fn report(children: &Children, i: usize) -> serde_json::Value {
    let out = children.stdout(i);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

#[test]
fn three_inputters_give_the_receiver_the_mean_and_a_second_submission_is_refused() {
    let dir = temp_dir("netagg-mean");
    let (config, xs) = deployment(&dir);
    let mut children = Children::new(&dir);
    let ps = parties(
        &mut children,
        &config,
        "week-1",
        &["--deadline-ms", "30000"],
    );
    let out = dir.join("mean.npy");
    // The receiver may come first: it waits for the round to close.
    let r = receiver(&mut children, &config, "week-1", &out);

    // Stray connections a party must shrug off: one that never says a word, one that sends
    // garbage instead of a TLS handshake.
    let port = |i: usize| {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
        json["roles"][format!("party{i}")]["address"]
            .as_str()
            .unwrap()
            .to_string()
    };
    children.await_log(ps[0], "opened round", WAIT);
    let _silent = std::net::TcpStream::connect(port(0)).unwrap();
    let mut garbage = std::net::TcpStream::connect(port(1)).unwrap();
    garbage.write_all(&[0x16; 4096]).unwrap();

    for name in ["alice", "bob"] {
        let (code, err) = submit(&dir, &config, name, "week-1");
        assert_eq!(code, Some(0), "{err}");
        assert!(err.contains("submitted to round \"week-1\" as"), "{err}");
    }
    let (code, err) = submit(&dir, &config, "alice", "week-1");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("refused alice's submission to round \"week-1\"")
            && err.contains("alice already submitted to round \"week-1\""),
        "{err}"
    );

    // An impostor: an inputter whose certificate no party pins.
    let other = dir.join("other");
    let args = [
        &s(&other),
        "--ports",
        &free_ports(),
        "--inputters",
        "mallory",
    ];
    let (status, err) = run(PKI, &args, &dir, "other.log");
    assert!(status.success(), "{err}");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    json["roles"]["inputters"]["mallory"] = serde_json::json!({
        "cert": s(&other.join("inputter-mallory.pem")),
        "key": s(&other.join("inputter-mallory.key")),
    });
    let impostor = dir.join("pki").join("impostor.json");
    std::fs::write(&impostor, json.to_string()).unwrap();
    std::fs::copy(dir.join("alice.npy"), dir.join("mallory.npy")).unwrap();
    let (code, err) = submit(&dir, &impostor, "mallory", "week-1");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot connect to party"), "{err}");

    let (code, err) = submit(&dir, &config, "carol", "week-1");
    assert_eq!(code, Some(0), "{err}");

    let (status, err) = children.wait(r, WAIT);
    assert!(status.success(), "{err}");
    let got = read_npy(&out);
    let want = mean(&xs.iter().collect::<Vec<_>>());
    assert_eq!(got.shape(), &SHAPE);
    let diff = max_abs_diff(&got, &want);
    assert!(diff <= TOLERANCE, "mean off by {diff}");
    let json = report(&children, r);
    assert_eq!(json["included"], serde_json::json!(INPUTTERS));
    assert_eq!(json["missing"], serde_json::json!([]));
    assert_eq!(json["values"], 100);

    for &p in &ps {
        let (status, err) = children.wait(p, WAIT);
        assert!(status.success(), "{err}");
        assert!(
            err.contains("revealed the sum of 3 inputter(s) (alice, bob, carol)"),
            "{err}"
        );
    }
    // Alice's pieces are at parties 0 and 1: both refused her second submission; the
    // impostor was refused at the handshake, without key material in the log.
    for p in [0, 1] {
        let log = children.stderr(ps[p]);
        assert!(
            log.contains("refused alice: alice already submitted"),
            "{log}"
        );
    }
    let log = children.stderr(ps[0]);
    assert!(log.contains("refused a peer's certificate"), "{log}");
    assert!(!log.contains("BEGIN"), "key material in a log");
}

#[test]
fn an_inputter_missing_at_the_deadline_is_left_out_of_the_weighted_mean() {
    let dir = temp_dir("netagg-missing");
    let (config, xs) = deployment(&dir);
    let mut children = Children::new(&dir);
    let rules = [
        "--deadline-ms",
        "3000",
        "--min-inputs",
        "2",
        "--weights",
        "alice=3,carol=5",
    ];
    let ps = parties(&mut children, &config, "week-2", &rules);
    for name in ["alice", "bob"] {
        let (code, err) = submit(&dir, &config, name, "week-2");
        assert_eq!(code, Some(0), "{err}");
    }
    // A submission to a round the parties do not run is refused, and does not count.
    let (code, err) = submit(&dir, &config, "carol", "week-3");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("runs round \"week-2\", not \"week-3\""),
        "{err}"
    );

    let out = dir.join("mean.npy");
    let r = receiver(&mut children, &config, "week-2", &out);
    let (status, err) = children.wait(r, WAIT);
    assert!(status.success(), "{err}");
    assert!(err.contains("missing carol"), "{err}");
    let json = report(&children, r);
    assert_eq!(json["included"], serde_json::json!(["alice", "bob"]));
    assert_eq!(json["missing"], serde_json::json!(["carol"]));
    // Carol's weight leaves with her: (3 alice + 1 bob) / 4.
    let want = (&xs[0] * 3.0 + &xs[1]) / 4.0;
    let diff = max_abs_diff(&read_npy(&out), &want);
    assert!(diff <= TOLERANCE, "mean off by {diff}");
    // Carol's pieces go to parties 2 and 0, which waited for her until the deadline.
    for (p, closed) in [
        (0, "at its deadline; missing: carol"),
        (1, "every inputter it takes pieces from has submitted"),
        (2, "at its deadline; missing: carol"),
    ] {
        let (status, err) = children.wait(ps[p], WAIT);
        assert!(status.success(), "{err}");
        assert!(err.contains(closed), "party {p}: {err}");
        assert!(err.contains("revealed the sum of 2 inputter(s)"), "{err}");
    }
}

#[test]
fn the_parties_reveal_nothing_below_the_minimum() {
    let dir = temp_dir("netagg-minimum");
    let (config, _) = deployment(&dir);
    let mut children = Children::new(&dir);
    let rules = ["--deadline-ms", "2000", "--min-inputs", "3"];
    let ps = parties(&mut children, &config, "week-4", &rules);
    let out = dir.join("mean.npy");
    let r = receiver(&mut children, &config, "week-4", &out);
    for name in ["alice", "bob"] {
        let (code, err) = submit(&dir, &config, name, "week-4");
        assert_eq!(code, Some(0), "{err}");
    }
    let (status, err) = children.wait(r, WAIT);
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("the parties revealed no result for round \"week-4\"")
            && err.contains(
                "only 2 of the round's 3 inputters submitted, fewer than its minimum of 3"
            ),
        "{err}"
    );
    assert!(!out.exists());
    for &p in &ps {
        let (status, err) = children.wait(p, WAIT);
        assert_eq!(status.code(), Some(1), "{err}");
        assert!(
            err.contains("revealed nothing for round \"week-4\""),
            "{err}"
        );
    }
}

#[test]
fn under_pond_the_servers_take_the_pieces_and_the_producer_none() {
    let dir = temp_dir("netagg-pond");
    let (config, xs) = deployment(&dir);
    let mut children = Children::new(&dir);
    let rules = ["--deadline-ms", "30000", "--protocol", "pond"];
    let ps = parties(&mut children, &config, "week-5", &rules);
    let out = dir.join("mean.npy");
    let r = receiver(&mut children, &config, "week-5", &out);
    // An inputter that does not know the round's protocol is told before sending anything:
    // alice's aby3 pair is the two servers, which tell her the rules; bob's takes in the
    // producer, which holds no pieces.
    let (code, err) = submit(&dir, &config, "alice", "week-5");
    assert_eq!(code, Some(1), "{err}");
    assert!(
        err.contains("runs under pond, not aby3: submit with --protocol pond"),
        "{err}"
    );
    let (code, err) = submit(&dir, &config, "bob", "week-5");
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("party 2 takes none of bob's pieces"), "{err}");
    for name in INPUTTERS {
        let (code, err) = submit_under(&dir, &config, name, "week-5", "pond");
        assert_eq!(code, Some(0), "{err}");
        assert!(
            err.contains("party 0 and party 1 each hold one piece")
                || err.contains("party 1 and party 0 each hold one piece"),
            "{err}"
        );
    }
    let (status, err) = children.wait(r, WAIT);
    assert!(status.success(), "{err}");
    let diff = max_abs_diff(&read_npy(&out), &mean(&xs.iter().collect::<Vec<_>>()));
    assert!(diff <= TOLERANCE, "mean off by {diff}");
    assert_eq!(
        report(&children, r)["included"],
        serde_json::json!(INPUTTERS)
    );
    for (p, closed) in [
        (0, "every inputter it takes pieces from has submitted"),
        (1, "every inputter it takes pieces from has submitted"),
        (2, "takes no pieces (the crypto producer, under pond)"),
    ] {
        let (status, err) = children.wait(ps[p], WAIT);
        assert!(status.success(), "{err}");
        assert!(err.contains(closed), "party {p}: {err}");
        assert!(err.contains("revealed the sum of 3 inputter(s)"), "{err}");
    }
}
