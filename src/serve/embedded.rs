//! A long-running embedded deployment: the three compute parties start once, agree on keys,
//! receive the model owner's weight shares once, and then serve any number of prediction
//! requests on those shares. Only the per-request (online) cost is paid per inference.

use super::encoding::prepare;
use super::model_owner::{secret_weights, share_weights};
use super::party::{Terms, receive_weights, serve_requests};
use super::{Prediction, Progress, Session, Setup, client};
use crate::exec::Profile;
use crate::mpc::share::Dealer;
use crate::mpc::{LocalParties, Party, Protocol, WrapTransport, spawn_local};
use crate::net::{Stats, Transport};
use crate::plan::Plan;
use anyhow::{Context, Result, anyhow, bail};
use ndarray::ArrayD;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Instant;

/// Three compute parties on their own threads, holding shares of one plan's weights and
/// waiting for requests. Dropping it stops the parties; [`Session::close`] also says whether
/// they all ended cleanly.
pub struct EmbeddedSession {
    plan: Arc<Plan>,
    protocol: Protocol,
    /// Until the session stops: the party threads and the outside endpoints.
    parties: Option<LocalParties<()>>,
    /// One per party, in party order: its setup report, then one per request.
    reports: Vec<Receiver<PartyReport>>,
    /// The client's dealer: the parties follow its nonce, so it lives as long as they do (its
    /// keys go out once, with the first request's inputs).
    client: Dealer,
    setup: Setup,
    /// Why the parties stopped, once a failure has stopped them.
    failure: Option<String>,
}

/// What a party reports after setup and after each request.
struct PartyReport {
    /// Empty for the setup report.
    profile: Profile,
    traffic: Stats,
}

impl EmbeddedSession {
    /// Starts the parties of `protocol` and shares the plan's secret weights with them.
    pub fn start(plan: Arc<Plan>, protocol: Protocol) -> Result<EmbeddedSession> {
        Self::launch(plan, protocol, &|end| Box::new(end), None)
    }

    /// [`EmbeddedSession::start`], telling `progress` the steps done as each request runs
    /// (party 0 counts them: the parties run the steps together).
    pub fn start_with_progress(
        plan: Arc<Plan>,
        protocol: Protocol,
        progress: Progress,
    ) -> Result<EmbeddedSession> {
        Self::launch(plan, protocol, &|end| Box::new(end), Some(progress))
    }

    /// [`EmbeddedSession::start`] with every party endpoint passed through `wrap` first (to observe a
    /// party's view, or to inject faults).
    pub fn start_wrapped(
        plan: Arc<Plan>,
        protocol: Protocol,
        wrap: &WrapTransport,
    ) -> Result<EmbeddedSession> {
        Self::launch(plan, protocol, wrap, None)
    }

    fn launch(
        plan: Arc<Plan>,
        protocol: Protocol,
        wrap: &WrapTransport,
        progress: Option<Progress>,
    ) -> Result<EmbeddedSession> {
        let started = Instant::now();
        let secret_weights = secret_weights(&plan)?;
        let client = Dealer::from_os(protocol)?;
        let (senders, reports): (Vec<_>, Vec<_>) = (0..3).map(|_| channel()).unzip();
        let mut parties = spawn_local(wrap, protocol, |id| {
            let plan = plan.clone();
            let reports = senders[id].clone();
            let progress = progress.clone().filter(|_| id == 0);
            move |party: &mut Party| serve(&plan, party, progress.as_ref(), &reports)
        });
        drop(senders);
        let mut session = EmbeddedSession {
            plan,
            protocol,
            parties: None,
            reports,
            client,
            setup: Setup::default(),
            failure: None,
        };
        let shared = share_weights(&mut parties.owner, protocol, &session.plan, &secret_weights)
            .and_then(|()| session.collect_reports());
        let owner = parties.owner.stats();
        session.parties = Some(parties);
        let reports = shared.map_err(|e| session.fail(e))?;
        session.setup = Setup {
            traffic: reports.iter().fold(owner, |t, r| t.alongside(r.traffic)),
            time: started.elapsed(),
        };
        Ok(session)
    }

    /// One request with inputs already checked and encoded for `batch`.
    fn request(&mut self, inputs: &[ArrayD<u64>], batch: usize) -> Result<Prediction> {
        if let Some(failure) = &self.failure {
            bail!("the session has stopped after a failure: {failure}");
        }
        let started = Instant::now();
        let result = self.exchange(inputs, batch);
        let (outputs, client, reports) = result.map_err(|e| self.fail(e))?;
        let reports = reports.into_iter().map(|r| (r.profile, r.traffic));
        Ok(client::prediction(outputs, batch, client, reports, started))
    }

    /// The client's side of a request: the batch size and the input shares out, the revealed
    /// outputs and every party's report back, with the client's own traffic.
    fn exchange(
        &mut self,
        inputs: &[ArrayD<u64>],
        batch: usize,
    ) -> Result<(Vec<ArrayD<f32>>, Stats, Vec<PartyReport>)> {
        let client = &mut self
            .parties
            .as_mut()
            .context("the session is closed")?
            .client;
        let (outputs, traffic) = client::request(
            client,
            self.protocol,
            &mut self.client,
            &self.plan,
            inputs,
            batch,
        )?;
        Ok((outputs, traffic, self.collect_reports()?))
    }

    /// One report from each party.
    fn collect_reports(&self) -> Result<Vec<PartyReport>> {
        self.reports
            .iter()
            .enumerate()
            .map(|(i, r)| {
                r.recv().map_err(|_| {
                    anyhow!("party {i} stopped before sending what the client waits for")
                })
            })
            .collect()
    }

    fn stop(&mut self) -> Result<()> {
        if let Some(failure) = &self.failure {
            bail!("the session had stopped after a failure: {failure}");
        }
        let Some(mut parties) = self.parties.take() else {
            return Ok(());
        };
        let sent = client::stop(&mut parties.client);
        parties.join(sent).map(|_| ())
    }

    /// Stops every side after `cause` and returns the root cause, which later calls repeat.
    fn fail(&mut self, cause: anyhow::Error) -> anyhow::Error {
        let error = match self.parties.take() {
            Some(parties) => parties.fail(cause),
            None => cause,
        };
        self.failure = Some(format!("{error:#}"));
        error
    }
}

impl Session for EmbeddedSession {
    fn setup(&self) -> Setup {
        self.setup
    }

    fn predict(&mut self, inputs: &[ArrayD<f32>]) -> Result<Prediction> {
        let (batch, encoded) = prepare(&self.plan, inputs)?;
        self.request(&encoded, batch)
    }

    fn close(mut self: Box<Self>) -> Result<()> {
        self.stop()
    }
}

impl Drop for EmbeddedSession {
    fn drop(&mut self) {
        // Whether the parties stopped cleanly only matters to `close`.
        let _ = self.stop();
    }
}

/// One compute party's life: its weight shares from the model owner, then requests from the
/// client until a stop request.
fn serve(
    plan: &Plan,
    party: &mut Party,
    progress: Option<&Progress>,
    reports: &Sender<PartyReport>,
) -> Result<()> {
    // Under Pond the masked weights replace the received ones, each dropped once masked.
    let weights = receive_weights(plan, party)?.into_masked(party)?;
    let id = party.id();
    let report = |profile, traffic| {
        reports
            .send(PartyReport { profile, traffic })
            .map_err(|_| anyhow!("the session stopped listening to party {id}"))
    };
    report(Profile::default(), party.stats())?;
    // The client is this process: no batch it sends can be larger than it could allocate.
    let terms = Terms {
        max_batch: usize::MAX,
        idle: &|_| (),
    };
    serve_requests(
        plan,
        party,
        &weights,
        progress,
        terms,
        |_, profile, traffic| report(profile, traffic),
    )
}
