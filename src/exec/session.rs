//! A long-running embedded deployment: the three compute parties start once, agree on keys,
//! receive the model owner's weight shares once, and then serve any number of prediction
//! requests on those shares. Only the per-request (online) cost is paid per inference.

use super::predict::{Traffic, check_inputs, encode_inputs, encode_weight};
use super::{Domain, MpcDomain, MpcValue, Prediction, Profile, run};
use crate::mpc::share::{Dealer, recv_revealed, recv_secret, reveal_to};
use crate::mpc::{ArithShare, LocalParties, Party, WrapTransport, spawn_local};
use crate::net::{Role, Stats, Transport};
use crate::plan::{Plan, Visibility, Weight};
use anyhow::{Context, Result, anyhow, bail};
use ndarray::ArrayD;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant};

/// The batch size a stop request carries: real requests have at least one row.
const STOP: u64 = 0;

/// What a deployment pays once: key agreement and sharing the weights.
#[derive(Clone, Copy, Debug, Default)]
pub struct Setup {
    /// Bytes sent by the parties and the model owner.
    pub traffic: Stats,
    /// From starting the parties until all of them hold their weight shares.
    pub time: Duration,
}

/// Three compute parties on their own threads, holding shares of one plan's weights and
/// waiting for requests. Dropping it stops the parties; [`Session::close`] also says whether
/// they all ended cleanly.
pub struct Session {
    plan: Arc<Plan>,
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

impl Session {
    /// Starts the parties and shares the plan's secret weights with them.
    pub fn start(plan: Arc<Plan>) -> Result<Session> {
        Self::start_wrapped(plan, &|end| Box::new(end))
    }

    /// [`Session::start`] with every party endpoint passed through `wrap` first (to observe a
    /// party's view, or to inject faults).
    pub fn start_wrapped(plan: Arc<Plan>, wrap: &WrapTransport) -> Result<Session> {
        let started = Instant::now();
        let secret_weights: Vec<ArrayD<u64>> = plan
            .weights
            .iter()
            .enumerate()
            .filter(|(_, w)| w.visibility == Visibility::Secret)
            .map(|(i, _)| encode_weight(&plan, i))
            .collect::<Result<_>>()?;
        let client = Dealer::from_os()?;
        let (senders, reports): (Vec<_>, Vec<_>) = (0..3).map(|_| channel()).unzip();
        let mut parties = spawn_local(wrap, |id| {
            let plan = plan.clone();
            let reports = senders[id].clone();
            move |party: &mut Party| serve(&plan, party, &reports)
        });
        drop(senders);
        let mut session = Session {
            plan,
            parties: None,
            reports,
            client,
            setup: Setup::default(),
            failure: None,
        };
        let shared = share_weights(&mut parties.owner, &secret_weights)
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

    /// The one-time cost of this session.
    pub fn setup(&self) -> Setup {
        self.setup
    }

    /// Serves one prediction on the shared weights, with the same input checks as
    /// [`super::predict`]. The result's traffic and time are this request's alone (its setup
    /// figures are zero; see [`Session::setup`]); the first request also carries the client's
    /// dealing keys. An input the plan refuses leaves the session serving; any other error
    /// stops it, and later calls repeat the cause.
    pub fn predict(&mut self, inputs: &[ArrayD<f32>]) -> Result<Prediction> {
        let batch = check_inputs(&self.plan, inputs)?;
        let encoded = encode_inputs(&self.plan, inputs)?;
        self.request(&encoded, batch)
    }

    /// One request with inputs already checked and encoded for `batch`.
    pub(super) fn request(&mut self, inputs: &[ArrayD<u64>], batch: usize) -> Result<Prediction> {
        if let Some(failure) = &self.failure {
            bail!("the session has stopped after a failure: {failure}");
        }
        let started = Instant::now();
        let result = self.exchange(inputs, batch);
        let (outputs, client, reports) = result.map_err(|e| self.fail(e))?;
        let reports = reports.into_iter().map(|r| (r.profile, r.traffic));
        Ok(prediction(outputs, batch, client, reports, started))
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
        let (outputs, traffic) =
            client_request(client, &mut self.client, &self.plan, inputs, batch)?;
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

    /// Stops the parties and says whether every one of them ended cleanly.
    pub fn close(mut self) -> Result<()> {
        self.stop()
    }

    fn stop(&mut self) -> Result<()> {
        if let Some(failure) = &self.failure {
            bail!("the session had stopped after a failure: {failure}");
        }
        let Some(mut parties) = self.parties.take() else {
            return Ok(());
        };
        let sent = client_stop(&mut parties.client);
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

impl Drop for Session {
    fn drop(&mut self) {
        // Whether the parties stopped cleanly only matters to `close`.
        let _ = self.stop();
    }
}

/// The model owner deals every secret weight, once per session.
fn share_weights(owner: &mut dyn Transport, weights: &[ArrayD<u64>]) -> Result<()> {
    let mut dealer = Dealer::from_os()?;
    weights
        .iter()
        .try_for_each(|w| dealer.send_secret(owner, w))
}

/// One compute party's life: its weight shares from the model owner, then requests from the
/// client until a stop request.
fn serve(plan: &Plan, party: &mut Party, reports: &Sender<PartyReport>) -> Result<()> {
    let weights = receive_weights(plan, party)?;
    let id = party.id();
    let report = |profile, traffic| {
        reports
            .send(PartyReport { profile, traffic })
            .map_err(|_| anyhow!("the session stopped listening to party {id}"))
    };
    report(Profile::default(), party.stats())?;
    serve_requests(plan, party, &weights, |_, profile, traffic| {
        report(profile, traffic)
    })
}

/// The client's side of one request, in the embedded and the networked mode alike: the batch
/// size and the input shares out, the revealed outputs back, with the client's traffic.
pub(super) fn client_request(
    net: &mut dyn Transport,
    dealer: &mut Dealer,
    plan: &Plan,
    inputs: &[ArrayD<u64>],
    batch: usize,
) -> Result<(Vec<ArrayD<f32>>, Stats)> {
    let before = net.stats();
    for role in Role::PARTIES {
        net.send(role, &[batch as u64])?;
    }
    for x in inputs {
        dealer.send_secret(net, x)?;
    }
    let outputs = plan
        .outputs
        .iter()
        .map(|&id| {
            let revealed = recv_revealed(net, &plan.value(id).shape.resolve(batch))?;
            Ok(plan.fixed_point.decode_array(revealed.view()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((outputs, net.stats() - before))
}

/// A request's outputs with its figures: every role's traffic, the parties' profiles merged,
/// and the rounds on the critical path (per step, the party that waited most), in the
/// embedded and the networked mode alike.
pub(super) fn prediction(
    outputs: Vec<ArrayD<f32>>,
    batch: usize,
    client: Stats,
    reports: impl IntoIterator<Item = (Profile, Stats)>,
    started: Instant,
) -> Prediction {
    let (profiles, traffic): (Vec<Profile>, Vec<Stats>) = reports.into_iter().unzip();
    let mut online = traffic.into_iter().fold(client, Stats::alongside);
    let profile = Profile::merge_parties(&profiles);
    online.rounds = profile.total().stats.rounds;
    Prediction {
        outputs,
        batch,
        profile,
        traffic: Traffic {
            setup: Stats::default(),
            online,
        },
        setup_time: Duration::ZERO,
        total_time: started.elapsed(),
    }
}

/// Tells every party that the client has no more requests.
pub(super) fn client_stop(net: &mut dyn Transport) -> Result<()> {
    Role::PARTIES
        .into_iter()
        .try_for_each(|role| net.send(role, &[STOP]))
}

/// A compute party's request loop, in the embedded and the networked mode alike: requests
/// from the client on `weights` until a stop request. After each, `report` gets the
/// request's profile and this party's traffic for it.
pub(super) fn serve_requests(
    plan: &Plan,
    party: &mut Party,
    weights: &[MpcValue],
    mut report: impl FnMut(&mut Party, Profile, Stats) -> Result<()>,
) -> Result<()> {
    loop {
        let before = party.stats();
        let header = party.recv_role(Role::Client)?;
        let batch = *header.first().context("empty request from the client")?;
        if batch == STOP {
            return Ok(());
        }
        let profile = serve_request(plan, party, weights, batch as usize)?;
        let traffic = party.stats() - before;
        report(party, profile, traffic)?;
    }
}

/// The plan's weights as this party holds them: shares of the secret ones from the model
/// owner, the public ones in the clear.
fn receive_weights(plan: &Plan, party: &mut Party) -> Result<Vec<MpcValue>> {
    weight_values(plan, |w| {
        recv_secret(party, Role::ModelOwner, w.data.shape())
    })
}

/// The plan's weights in plan order: this party's share of each secret one from `secret`,
/// the public ones encoded in the clear.
pub(super) fn weight_values(
    plan: &Plan,
    mut secret: impl FnMut(&Weight) -> Result<ArithShare>,
) -> Result<Vec<MpcValue>> {
    plan.weights
        .iter()
        .map(|w| {
            Ok(match w.visibility {
                Visibility::Secret => MpcValue::Secret(secret(w)?),
                Visibility::Public => {
                    MpcValue::Public(plan.fixed_point.encode_array(w.data.view())?)
                }
            })
        })
        .collect()
}

/// One request at a party: the input shares from the client, the plan, and this party's
/// share of each output back to the client.
fn serve_request(
    plan: &Plan,
    party: &mut Party,
    weights: &[MpcValue],
    batch: usize,
) -> Result<Profile> {
    let inputs = plan
        .inputs
        .iter()
        .map(|&id| {
            let shape = plan.value(id).shape.resolve(batch);
            Ok(MpcValue::Secret(recv_secret(party, Role::Client, &shape)?))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut profile = Profile::default();
    let mut dom = MpcDomain {
        party,
        fixed: plan.fixed_point,
    };
    let outputs = run(plan, &mut dom, inputs, weights, batch, Some(&mut profile))?;
    let reveal_start = Instant::now();
    let before_reveal = dom.stats();
    let id = dom.party.id();
    for out in &outputs {
        reveal_to(dom.party, Role::Client, &out.to_share(id))?;
    }
    profile.record(
        super::REVEAL_STEP,
        super::REVEAL_OP,
        reveal_start.elapsed(),
        dom.stats() - before_reveal,
    );
    Ok(profile)
}
