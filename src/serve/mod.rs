//! Running deployments of a plan: which role holds what, who sends what to whom, and for how
//! long a session lives. The roles each have a file (`client.rs`, `party.rs`,
//! `model_owner.rs`, and for a secure aggregation `inputter.rs` and `receiver.rs`); the
//! deployments that put them together implement one [`Session`]
//! trait: every role in this process (`embedded.rs`), one process per role over TLS
//! (`networked.rs` the client, `party_server.rs` a party's sessions and `admission.rs`
//! which of them run), or the plaintext reference interpreters with no parties at all
//! (`plaintext.rs`). What a request's inputs must be, and how they and the weights enter the
//! ring, is `encoding.rs`. A secure aggregation (many inputters, one result receiver) is
//! `aggregation.rs` (its embedded run) with its networked roles in `aggregation_net.rs`
//! (inputters, receiver) and `aggregation_server.rs` (a party holding a round open).

mod admission;
mod aggregation;
mod aggregation_net;
mod aggregation_server;
mod client;
mod embedded;
mod encoding;
mod inputter;
mod model_owner;
mod networked;
mod party;
mod party_server;
mod plaintext;
mod receiver;

pub use admission::serve_party;
pub use aggregation::{Aggregate, AggregateOp, Aggregation, AggregationError};
pub use aggregation_net::{Received, RoundRules, Submitted, check_round_name, receive, submit};
pub use aggregation_server::{Served, serve_round};
pub use embedded::EmbeddedSession;
pub use encoding::InputError;
pub use model_owner::{deal, share_files};
pub use networked::{NetworkedSession, fingerprint};
pub use party_server::PartyServer;
pub use plaintext::PlaintextSession;

use crate::exec::Profile;
use crate::mpc::Protocol;
use crate::net::Stats;
use crate::plan::Plan;
use anyhow::Result;
use ndarray::ArrayD;
use std::sync::Arc;
use std::time::Duration;

/// Told how far a request has got, as it runs, from whichever thread runs it: steps done
/// out of the plan's total.
pub type Progress = Arc<dyn Fn(usize, usize) + Send + Sync>;

/// The batch size of a stop request: real requests have at least one row.
const STOP: u64 = 0;

/// Which interpreter runs a plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Secret sharing under the given protocol (the real thing).
    Mpc(Protocol),
    /// Plaintext fixed point, modelling the MPC arithmetic.
    Fixed,
    /// f32 reference.
    Float,
}

impl Mode {
    /// How the tools name it: `mpc`, `fixed` or `float`.
    pub fn name(self) -> &'static str {
        match self {
            Mode::Mpc(_) => "mpc",
            Mode::Fixed => "fixed",
            Mode::Float => "float",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        // The default protocol goes unsaid, as the tools' output always had it.
        match self {
            Mode::Mpc(Protocol::Pond) => f.write_str("mpc (pond)"),
            other => f.write_str(other.name()),
        }
    }
}

/// What a deployment pays once, before its first request: key agreement and sharing the
/// weights (embedded), or connecting to the parties (networked).
#[derive(Clone, Copy, Debug, Default)]
pub struct Setup {
    /// Bytes sent by the parties and the model owner.
    pub traffic: Stats,
    /// From starting the session until it can serve.
    pub time: Duration,
}

/// One request's outputs and figures.
pub struct Prediction {
    pub outputs: Vec<ArrayD<f32>>,
    pub batch: usize,
    /// Per step, merged over the three parties (timing only outside mpc).
    pub profile: Profile,
    /// Sent by every role for this request (input sharing, the computation, the reveal). Its
    /// rounds are the protocol's rounds on the critical path: per step, those of the party
    /// that waited most.
    pub online: Stats,
    /// What each compute party sent for this request, in party order (empty outside mpc):
    /// under Pond, server 0, server 1 and the crypto producer.
    pub by_party: Vec<Stats>,
    /// This request's latency, from sending the inputs to holding the outputs.
    pub time: Duration,
    /// The session's one-time cost, in what [`predict`] and [`run_requests`] return; zero for
    /// a request on a running session ([`Session::setup`] has it there).
    pub setup: Setup,
}

/// A deployment that serves predictions: started (or connected) once, then any number of
/// requests on the same weights, then closed.
pub trait Session {
    /// What starting the session cost.
    fn setup(&self) -> Setup;
    /// One prediction, after checking the inputs against the plan. An input the plan refuses
    /// leaves the session serving; any other error stops it, and later calls repeat the cause.
    fn predict(&mut self, inputs: &[ArrayD<f32>]) -> Result<Prediction>;
    /// Ends the session and says whether every role ended cleanly.
    fn close(self: Box<Self>) -> Result<()>;
}

/// Starts a session in this process: the three parties embedded for [`Mode::Mpc`], the
/// plaintext interpreter otherwise.
pub fn start(plan: Arc<Plan>, mode: Mode) -> Result<Box<dyn Session>> {
    Ok(match mode {
        Mode::Mpc(protocol) => Box::new(EmbeddedSession::start(plan, protocol)?),
        Mode::Fixed => Box::new(PlaintextSession::fixed(plan)?),
        Mode::Float => Box::new(PlaintextSession::float(plan)),
    })
}

/// Serves `inputs` `requests` times (at least once) on `session`, then closes it. `each`
/// sees every prediction as it arrives; the last one is returned with the session's setup.
pub fn run_requests(
    mut session: Box<dyn Session>,
    inputs: &[ArrayD<f32>],
    requests: u64,
    mut each: impl FnMut(&Prediction),
) -> Result<Prediction> {
    let mut last = session.predict(inputs)?;
    each(&last);
    for _ in 1..requests {
        last = session.predict(inputs)?;
        each(&last);
    }
    let setup = session.setup();
    session.close()?;
    Ok(Prediction { setup, ..last })
}

/// A one-shot prediction: a session of `mode` that serves one request.
pub fn predict(plan: &Plan, inputs: &[ArrayD<f32>], mode: Mode) -> Result<Prediction> {
    // Checked before any party starts, and in every mode alike, so modes agree on errors.
    encoding::prepare(plan, inputs)?;
    run_requests(start(Arc::new(plan.clone()), mode)?, inputs, 1, |_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Dim, Op, PlanBuilder, Shape, Source, Visibility};
    use crate::tensor::FixedPoint;
    use ndarray::IxDyn;

    fn tiny_plan() -> Plan {
        let mut b = PlanBuilder::new(
            FixedPoint::default(),
            Source {
                file_name: "t".into(),
                sha256: String::new(),
            },
        );
        let x = b.input("x", Shape(vec![Dim::Batch(1), Dim::Fixed(3)]));
        let w = b.weight(
            "w",
            ArrayD::from_shape_vec(IxDyn(&[3, 2]), vec![0.5, -1.0, 2.0, 0.25, -0.75, 1.5]).unwrap(),
            Visibility::Secret,
        );
        let y = b.step(
            "mm",
            Op::MatMul,
            &[x, w],
            "y",
            Shape(vec![Dim::Batch(1), Dim::Fixed(2)]),
        );
        let z = b.step(
            "relu",
            Op::Relu,
            &[y],
            "z",
            Shape(vec![Dim::Batch(1), Dim::Fixed(2)]),
        );
        b.output(z);
        b.build().unwrap()
    }

    #[test]
    fn modes_agree_on_a_tiny_plan() {
        let plan = tiny_plan();
        let x =
            ArrayD::from_shape_vec(IxDyn(&[2, 3]), vec![1.0, 2.0, 3.0, -1.0, 0.5, 4.0]).unwrap();
        let float = predict(&plan, std::slice::from_ref(&x), Mode::Float)
            .unwrap()
            .outputs;
        for mode in [
            Mode::Fixed,
            Mode::Mpc(Protocol::Aby3),
            Mode::Mpc(Protocol::Pond),
        ] {
            let got = predict(&plan, std::slice::from_ref(&x), mode)
                .unwrap()
                .outputs;
            for (a, b) in got[0].iter().zip(float[0].iter()) {
                assert!((a - b).abs() < 1e-3, "{mode:?}: {a} vs {b}");
            }
        }
        assert_eq!(
            float[0],
            ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![2.25, 4.0, 0.0, 7.125]).unwrap()
        );
    }

    #[test]
    fn rejects_bad_inputs_with_names() {
        let plan = tiny_plan();
        let bad_shape = ArrayD::<f32>::zeros(IxDyn(&[2, 4]));
        let e = predict(&plan, &[bad_shape], Mode::Float)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("input x must have shape [N, 3]"), "{e}");
        let nan = ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![1.0, f32::NAN, 0.0]).unwrap();
        let e = predict(&plan, &[nan], Mode::Mpc(Protocol::Aby3))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("input x") && e.contains("NaN"), "{e}");
        let big = ArrayD::from_shape_vec(IxDyn(&[1, 3]), vec![1.0, 3e9, 0.0]).unwrap();
        let e = predict(&plan, &[big], Mode::Mpc(Protocol::Aby3))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("outside the fixed-point range"), "{e}");
        let e = predict(&plan, &[], Mode::Mpc(Protocol::Aby3))
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("takes 1 input"), "{e}");
    }
}
