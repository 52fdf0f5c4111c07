//! The networked mode end to end: three tfe-party processes and a tfe-predict client over
//! mutual TLS on loopback. Every child is killed on every exit path (see `common::children`), and
//! every wait has a deadline, so a failing test cannot hang.

mod common;

use common::children::{Children, free_ports, run};
use common::deploy::{
    CONVERT, PARTY, PKI, PREDICT, deployment, deployment_for, fixture, parties, s,
};
use common::{
    assert_parties_sent_what_was_estimated, max_abs_diff, profile_table, read_npy, temp_dir,
};
use ndarray::{ArrayD, Axis};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Max |output error| against the expected outputs, as tests/fixtures.rs allows.
const TOLERANCE: f32 = 1e-2;

/// Generous: the documented bound is the read time-out of the test configs (2 s).
const FAULT_DEADLINE: Duration = Duration::from_secs(20);

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    temp_dir(&format!("networked-{name}"))
}

/// Starts `tfe-predict` as the client of `config` on the deployment's client plan in
/// `dir`, with `extra` arguments after the input; returns its index.
fn client(
    children: &mut Children,
    config: &Path,
    dir: &Path,
    input: &Path,
    extra: &[&str],
) -> usize {
    let plan = s(&dir.join("model.client.plan"));
    let (config, input) = (s(config), s(input));
    let mut args = vec!["--config", &config, &plan, &input];
    args.extend_from_slice(extra);
    children.spawn("client.log", PREDICT, &args)
}

fn top1(x: &ArrayD<f32>) -> Vec<usize> {
    x.axis_iter(Axis(0))
        .map(|row| {
            row.iter()
                .enumerate()
                .max_by(|a, b| a.1.total_cmp(b.1))
                .unwrap()
                .0
        })
        .collect()
}

/// The three parties of `config` on the share files dealt in `dir`, each serving one
/// request.
fn parties_once(dir: &Path, config: &Path) -> Children {
    let mut children = Children::new(dir);
    parties(
        &mut children,
        config,
        |i| dir.join(format!("model.party{i}.plan")),
        &["--once"],
    );
    children
}

/// A client on cnn_bn's batch of 32 writing `out` with `--profile`; its stderr once it
/// succeeded.
fn profiled_client(children: &mut Children, config: &Path, dir: &Path, out: &Path) -> String {
    let input = fixture("cnn_bn", "input_b32.npy");
    let client = client(children, config, dir, &input, &["-o", &s(out), "--profile"]);
    let (status, err) = children.wait(client, Duration::from_secs(120));
    assert!(status.success(), "{err}");
    err
}

#[test]
fn three_party_processes_agree_with_the_expected_outputs_and_the_embedded_mode_and_profile() {
    let dir = scratch("agreement");
    let config = deployment(&dir, "cnn_bn", "10000");
    let mut children = parties_once(&dir, &config);
    let (input, out) = (fixture("cnn_bn", "input_b32.npy"), dir.join("out.npy"));
    let err = profiled_client(&mut children, &config, &dir, &out);
    assert!(
        err.contains("mpc: batch 32,") && err.contains("rounds (networked"),
        "{err}"
    );
    // The parties' per-step reports: the same table as the embedded mode prints.
    let table = profile_table(&err).unwrap_or_else(|| panic!("no profile table\n{err}"));
    assert!(
        table.steps.iter().any(|(l, _)| l.starts_with("(reveal)")),
        "{err}"
    );
    table.assert_measured_equals_estimated();
    assert_parties_sent_what_was_estimated(&err, &["party 0", "party 1", "party 2"]);
    for i in 0..3 {
        let (status, err) = children.wait(i, Duration::from_secs(30));
        assert!(status.success(), "party {i}: {err}");
        assert!(err.contains("after 1 request(s)"), "{err}");
    }

    let networked = read_npy(&out);
    let expected = read_npy(&fixture("cnn_bn", "expected_b32.npy"));
    assert!(max_abs_diff(&networked, &expected) <= TOLERANCE);
    assert_eq!(top1(&networked), top1(&expected));

    let plan = dir.join("model.plan");
    let embedded_out = dir.join("embedded.npy");
    let args = [&s(&plan), &s(&input), "-o", &s(&embedded_out)];
    let (status, err) = run(PREDICT, &args, &dir, "embedded.log");
    assert!(status.success(), "{err}");
    let embedded = read_npy(&embedded_out);
    assert!(max_abs_diff(&networked, &embedded) <= TOLERANCE);
    assert_eq!(top1(&networked), top1(&embedded));
}

/// Pond networked: server 0, server 1 and the crypto producer as three processes on the
/// files of a Pond dealing; the client takes the protocol from its plan file, and its
/// answers, measured traffic and estimate agree as under ABY3. A client or a party that
/// asks for another protocol than its file's is refused before connecting.
#[test]
fn pond_servers_and_producer_as_processes_agree_with_the_expected_outputs() {
    let dir = scratch("pond");
    let config = deployment_for(&dir, "cnn_bn", "10000", "pond");
    let mut children = parties_once(&dir, &config);
    let (input, out) = (fixture("cnn_bn", "input_b32.npy"), dir.join("out.npy"));
    let wrong = client(
        &mut children,
        &config,
        &dir,
        &input,
        &["--protocol", "aby3"],
    );
    let (status, err) = children.wait(wrong, Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("was dealt for --protocol pond"), "{err}");
    // So is a party asked for another protocol than its file's, before it listens.
    let party0 = dir.join("model.party0.plan");
    let args = [
        "--config",
        &s(&config),
        "--id",
        "party0",
        "--plan",
        &s(&party0),
        "--protocol",
        "aby3",
    ];
    let (status, err) = run(PARTY, &args, &dir, "wrong-party.log");
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("was dealt for pond, not aby3"), "{err}");
    let err = profiled_client(&mut children, &config, &dir, &out);
    assert!(err.contains("mpc (pond): batch 32,"), "{err}");
    let table = profile_table(&err).unwrap_or_else(|| panic!("no profile table\n{err}"));
    table.assert_measured_equals_estimated();
    assert_parties_sent_what_was_estimated(&err, &["server 0", "server 1", "crypto producer"]);
    for i in 0..3 {
        let (status, err) = children.wait(i, Duration::from_secs(30));
        assert!(status.success(), "party {i}: {err}");
    }
    let got = read_npy(&out);
    let expected = read_npy(&fixture("cnn_bn", "expected_b32.npy"));
    assert!(max_abs_diff(&got, &expected) <= TOLERANCE);
    assert_eq!(top1(&got), top1(&expected));
}

#[test]
fn a_server_that_dies_mid_run_is_named_by_the_others_and_the_client() {
    let dir = scratch("dies");
    let config = deployment(&dir, "cnn_bn", "2000");
    let mut children = Children::new(&dir);
    parties(
        &mut children,
        &config,
        |i| dir.join(format!("model.party{i}.plan")),
        &["--once"],
    );
    let input = fixture("cnn_bn", "input_b32.npy");
    let client = client(
        &mut children,
        &config,
        &dir,
        &input,
        &["--repeat", "100000"],
    );
    for i in 0..3 {
        children.await_log(i, "joined session", Duration::from_secs(60));
    }
    std::thread::sleep(Duration::from_millis(300));
    children.procs[1].0.kill().unwrap();
    let killed = Instant::now();
    for i in [0, 2, client] {
        let (status, err) = children.wait(i, FAULT_DEADLINE);
        assert!(!status.success(), "child {i} exited cleanly: {err}");
        assert!(
            err.contains("lost party 1") || err.contains("party 1: "),
            "child {i} does not name party 1:\n{err}"
        );
    }
    assert!(killed.elapsed() < FAULT_DEADLINE);
}

#[test]
fn a_client_with_a_wrong_certificate_is_refused_and_the_refusal_is_logged() {
    let dir = scratch("wrong_cert");
    let config = deployment(&dir, "cnn_bn", "2000");
    // A client certificate from another PKI: a valid certificate, but not the pinned one.
    let other = dir.join("other");
    let (status, err) = run(
        PKI,
        &[&other.display().to_string(), "--ports", &free_ports()],
        &dir,
        "other.log",
    );
    assert!(status.success(), "{err}");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    for (field, file) in [
        ("cert", "client.pem"),
        ("key", "client.key"),
        ("ca", "ca.pem"),
    ] {
        json["roles"]["client"][field] = other.join(file).display().to_string().into();
    }
    let impostor = dir.join("pki").join("impostor.json");
    std::fs::write(&impostor, json.to_string()).unwrap();

    let mut children = Children::new(&dir);
    parties(
        &mut children,
        &config,
        |i| dir.join(format!("model.party{i}.plan")),
        &["--once"],
    );
    let input = fixture("cnn_bn", "input_b1.npy");
    let client = client(&mut children, &impostor, &dir, &input, &[]);
    let (status, err) = children.wait(client, Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(err.contains("cannot connect to party"), "{err}");
    children.await_log(0, "refused a connection", Duration::from_secs(20));
    assert!(
        !children.stderr(0).contains("BEGIN"),
        "key material in a log"
    );
}

#[test]
fn a_party_refuses_the_share_file_of_another_role() {
    let dir = scratch("wrong_file");
    let config = deployment(&dir, "mlp", "2000");
    let party0 = dir.join("model.party0.plan");
    let args = [
        "--config",
        &s(&config),
        "--id",
        "party1",
        "--plan",
        &s(&party0),
        "--once",
    ];
    let (status, err) = run(PARTY, &args, &dir, "party1.log");
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("holds the shares of party0, not of party1"),
        "{err}"
    );
}

#[test]
fn parties_refuse_shares_of_two_different_dealings() {
    let dir = scratch("two_dealings");
    let config = deployment(&dir, "mlp", "2000");
    let (plan, again) = (dir.join("model.plan"), dir.join("again.plan"));
    let (status, err) = run(
        CONVERT,
        &[&s(&plan), "--share", "-o", &s(&again)],
        &dir,
        "again.log",
    );
    assert!(status.success(), "{err}");
    let mut children = Children::new(&dir);
    let plan_of = |i| match i {
        0 => dir.join("again.party0.plan"),
        _ => dir.join(format!("model.party{i}.plan")),
    };
    parties(&mut children, &config, plan_of, &["--once"]);
    let client = client(
        &mut children,
        &config,
        &dir,
        &fixture("mlp", "input_b1.npy"),
        &[],
    );
    let (status, err) = children.wait(client, Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("party 0 holds shares of another dealing"),
        "{err}"
    );
    let (status, err) = children.wait(0, Duration::from_secs(60));
    assert_eq!(status.code(), Some(1), "{err}");
    assert!(
        err.contains("not from the dealing of party 0's file"),
        "{err}"
    );
}
