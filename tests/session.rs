//! A session shares the weights once and then serves many requests: each gives what a fresh
//! prediction gives, costs only the online traffic, and a party failing mid-run ends the
//! request with the failure's cause instead of a hang.

mod common;

use anyhow::bail;
use common::{max_abs_diff, random, read_npy};
use ndarray::{ArrayD, Axis, Slice};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;
use tfe::exec::{FloatDomain, Observer, Profile, run};
use tfe::lower::{Options, convert};
use tfe::mpc::Protocol;
use tfe::net::local::LocalTransport;
use tfe::net::{Role, Stats, Transport};
use tfe::plan::Step;
use tfe::plan::{Plan, Visibility};
use tfe::serve::{self, EmbeddedSession, InputError, Mode, Session, predict};

/// Max |output error| allowed against the plaintext runtime, as tests/fixtures.rs allows.
const OUTPUT_TOLERANCE: f32 = 1e-2;

/// The client's two dealing keys (both to party 0, one each to parties 1 and 2), which go
/// out with its first request only.
const CLIENT_KEYS: u64 = 8 * 8;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn plan(name: &str) -> Arc<Plan> {
    let model = fixture(name).join("model.onnx");
    Arc::new(convert(&model, Options::default()).unwrap().plan)
}

fn mlp() -> Arc<Plan> {
    plan("mlp")
}

/// The first `batch` rows of a fixture's batch-32 `file` (its input or tract's outputs).
fn rows_of(name: &str, file: &str, batch: usize) -> ArrayD<f32> {
    let x = read_npy(&fixture(name).join(file));
    x.slice_axis(Axis(0), Slice::from(0..batch)).to_owned()
}

fn rows(batch: usize) -> ArrayD<f32> {
    rows_of("mlp", "input_b32.npy", batch)
}

/// Runs `f` on its own thread and fails the test if it takes longer than a minute: a
/// session must end every request, even a failing one.
fn within_a_minute<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || tx.send(f()));
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the session hung (or the test body panicked)")
}

#[test]
fn serves_requests_of_any_batch_size_like_fresh_predictions() {
    for (name, batches) in [("mlp", &[1, 7, 32, 2][..]), ("lenet", &[1, 3])] {
        let plan = plan(name);
        let mut session = serve::start(plan.clone(), Mode::Mpc(Protocol::Aby3)).unwrap();
        for (i, &batch) in batches.iter().enumerate() {
            let x = [rows_of(name, "input_b32.npy", batch)];
            let got = session.predict(&x).unwrap();
            assert_eq!(got.batch, batch);
            let expected = rows_of(name, "expected_b32.npy", batch);
            let err = max_abs_diff(&got.outputs[0], &expected);
            assert!(err <= OUTPUT_TOLERANCE, "{name} batch {batch}: {err}");
            // The same protocol as a one-shot prediction, without its setup.
            let fresh = predict(&plan, &x, Mode::Mpc(Protocol::Aby3)).unwrap();
            let keys = if i == 0 { 0 } else { CLIENT_KEYS };
            let (got_online, fresh_online) = (got.online, fresh.online);
            assert_eq!(got_online.bytes_sent + keys, fresh_online.bytes_sent);
            assert_eq!(got_online.rounds, fresh_online.rounds, "{name} {batch}");
            assert_eq!(got.profile.steps.len(), fresh.profile.steps.len());
            assert_eq!(got.setup.traffic, Stats::default());
            assert_eq!(got.setup.time, Duration::ZERO);
        }
        session.close().unwrap();
    }
}

#[test]
fn weights_are_shared_once_and_not_per_request() {
    let plan = mlp();
    // The model owner sends one component of every secret weight to parties 1 and 2.
    let weight_bytes: u64 = plan
        .weights
        .iter()
        .filter(|w| w.visibility == Visibility::Secret)
        .map(|w| 2 * 8 * w.data.len() as u64)
        .sum();
    let mut session = serve::start(plan.clone(), Mode::Mpc(Protocol::Aby3)).unwrap();
    let setup = session.setup();
    assert!(setup.traffic.bytes_sent >= weight_bytes, "{setup:?}");
    let x = [rows(1)];
    let online: Vec<Stats> = (0..3)
        .map(|_| session.predict(&x).unwrap().online)
        .collect();
    // Messages may differ: which party deals each comparison rotates from call to call.
    assert_eq!(
        (online[1].bytes_sent, online[1].rounds),
        (online[2].bytes_sent, online[2].rounds),
        "a request must not pay for earlier ones"
    );
    assert_eq!(online[0].bytes_sent, online[1].bytes_sent + CLIENT_KEYS);
    assert!(
        online[0].bytes_sent < weight_bytes,
        "online {:?} must not include the {weight_bytes} weight bytes",
        online[0]
    );
    assert_eq!(session.setup().traffic, setup.traffic);
    // A one-shot prediction is a session's setup and first request.
    let once = predict(&plan, &x, Mode::Mpc(Protocol::Aby3)).unwrap();
    assert_eq!(once.setup.traffic, setup.traffic);
    assert_eq!(once.online, online[0]);
    session.close().unwrap();
}

/// A party link that breaks after a number of sends, which the test can set at any time.
struct BreakingLink {
    inner: LocalTransport,
    sends_left: Arc<AtomicI64>,
}

impl Transport for BreakingLink {
    fn me(&self) -> Role {
        self.inner.me()
    }

    fn send(&mut self, to: Role, words: &[u64]) -> anyhow::Result<()> {
        if self.sends_left.fetch_sub(1, Ordering::SeqCst) <= 0 {
            bail!("injected failure: {}'s link to {to} broke", self.me());
        }
        self.inner.send(to, words)
    }

    fn recv(&mut self, from: Role) -> anyhow::Result<Vec<u64>> {
        self.inner.recv(from)
    }

    fn stats(&self) -> Stats {
        self.inner.stats()
    }
}

/// A session whose party 1 can send `sends_left` more messages.
fn breakable_session(sends_left: &Arc<AtomicI64>) -> anyhow::Result<Box<dyn Session>> {
    let sends_left = sends_left.clone();
    let wrap = move |end: LocalTransport| -> Box<dyn Transport> {
        if end.me() == Role::Party(1) {
            Box::new(BreakingLink {
                inner: end,
                sends_left: sends_left.clone(),
            })
        } else {
            Box::new(end)
        }
    };
    Ok(Box::new(EmbeddedSession::start_wrapped(
        mlp(),
        Protocol::Aby3,
        &wrap,
    )?))
}

#[test]
fn a_party_failing_mid_request_ends_it_with_the_cause() {
    within_a_minute(|| {
        let sends_left = Arc::new(AtomicI64::new(i64::MAX));
        let mut session = breakable_session(&sends_left).unwrap();
        let x = [rows(3)];
        session.predict(&x).unwrap();
        sends_left.store(3, Ordering::SeqCst);
        let e = format!("{:#}", session.predict(&x).err().unwrap());
        assert!(e.contains("injected failure: party 1's link"), "{e}");
        let again = format!("{:#}", session.predict(&x).err().unwrap());
        assert!(again.contains("stopped after a failure") && again.contains("injected"));
        let closed = format!("{:#}", session.close().err().unwrap());
        assert!(closed.contains("injected failure"), "{closed}");
    });
}

#[test]
fn a_party_failing_during_setup_fails_the_start() {
    within_a_minute(|| {
        let e = breakable_session(&Arc::new(AtomicI64::new(0)))
            .err()
            .unwrap();
        assert!(format!("{e:#}").contains("injected failure"), "{e:#}");
    });
}

#[test]
fn a_bad_input_is_refused_and_the_session_goes_on() {
    within_a_minute(|| {
        let mut session = serve::start(mlp(), Mode::Mpc(Protocol::Aby3)).unwrap();
        let x = rows(2);
        let wrong = x.slice_axis(Axis(1), Slice::from(1..)).to_owned();
        let e = session.predict(&[wrong]).err().unwrap();
        assert!(e.downcast_ref::<InputError>().is_some(), "{e:#}");
        assert!(session.predict(&[]).is_err());
        assert_eq!(session.predict(&[x]).unwrap().batch, 2);
        session.close().unwrap();
    });
}

#[test]
fn dropping_a_session_stops_its_parties() {
    within_a_minute(|| {
        let mut session = serve::start(mlp(), Mode::Mpc(Protocol::Aby3)).unwrap();
        session.predict(&[rows(1)]).unwrap();
        drop(session);
    });
}

/// Records the steps an interpreter run reports, with the profile's figures.
struct StepLog {
    steps: Vec<(usize, String)>,
    profile: Profile,
}

impl Observer for StepLog {
    fn step_done(&mut self, index: usize, step: &Step, time: Duration, traffic: Stats) {
        self.steps.push((index, step.node.clone()));
        self.profile.step_done(index, step, time, traffic);
    }
}

#[test]
fn the_interpreter_reports_every_step_once_in_order() {
    let plan = mlp();
    let weights: Vec<ArrayD<f32>> = plan.weights.iter().map(|w| w.data.clone()).collect();
    let mut log = StepLog {
        steps: vec![],
        profile: Profile::default(),
    };
    run(
        &plan,
        &mut FloatDomain,
        vec![rows(2)],
        &weights[..],
        2,
        &mut log,
    )
    .unwrap();
    let expected: Vec<(usize, String)> = plan
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (i, s.node.clone()))
        .collect();
    assert!(expected.len() > 1);
    assert_eq!(log.steps, expected);
    assert_eq!(log.profile.steps.len(), expected.len());
}

#[test]
fn a_session_tells_its_progress_every_step_once_in_order() {
    let plan = mlp();
    let seen = Arc::new(Mutex::new(vec![]));
    let log = seen.clone();
    let mut session = EmbeddedSession::start_with_progress(
        plan.clone(),
        Protocol::Aby3,
        Arc::new(move |done, total| log.lock().unwrap().push((done, total))),
    )
    .unwrap();
    let total = plan.steps.len();
    let every_step: Vec<(usize, usize)> = (1..=total).map(|done| (done, total)).collect();
    for batch in [1, 3] {
        session.predict(&[rows(batch)]).unwrap();
        assert_eq!(*seen.lock().unwrap(), every_step, "batch {batch}");
        seen.lock().unwrap().clear();
    }
    Box::new(session).close().unwrap();
    assert!(seen.lock().unwrap().is_empty());
}

/// A weight of more than 2^18 elements is kept as the model owner dealt it and its shares
/// are made again from the owner's keys at each request: every request's answer matches the
/// float interpreter's (made wrong, the shares would give garbage).
#[test]
fn large_weights_are_made_again_at_each_request() {
    use tfe::plan::{Dim, Op, PlanBuilder, Shape, Source};
    let mut b = PlanBuilder::new(
        tfe::tensor::FixedPoint::default(),
        Source {
            file_name: "large".into(),
            sha256: String::new(),
        },
    );
    let x = b.input("x", Shape(vec![Dim::Batch(1), Dim::Fixed(600)]));
    let w = b.weight("w", random(&[600, 512], 7, 0.05), Visibility::Secret);
    let out = Shape(vec![Dim::Batch(1), Dim::Fixed(512)]);
    let y = b.step("mm", Op::MatMul, &[x, w], "y", out);
    b.output(y);
    let plan = Arc::new(b.build().unwrap());
    let x = [random(&[2, 600], 8, 1.0)];
    let expected = predict(&plan, &x, Mode::Float).unwrap().outputs.remove(0);
    let mut session = serve::start(plan, Mode::Mpc(Protocol::Aby3)).unwrap();
    for request in 0..2 {
        let got = session.predict(&x).unwrap().outputs.remove(0);
        let err = max_abs_diff(&got, &expected);
        assert!(err <= OUTPUT_TOLERANCE, "request {request}: {err}");
    }
    session.close().unwrap();
}
