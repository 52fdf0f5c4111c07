//! Training under the protocol, every role in this process: the model owner (as trainer)
//! deals the initial weights, each data owner (`Role::Inputter(k)`) deals its rows and
//! labels once, the three parties run the schedule with [`train_loop`] over their mpc
//! domains, and at the end either reveal the trained weights to the model owner alone or
//! keep their shares (for share files). The loss of each epoch, when asked for, is revealed
//! to the model owner only.

use super::derive::TrainingPlan;
use super::run::{stacked, train_loop};
use super::schedule::Schedule;
use super::{EpochProgress, TrainedWeights};
use crate::exec::{Domain, MpcDomain, MpcValue};
use crate::mpc::share::{Dealer, recv_revealed, recv_secret, reveal_to};
use crate::mpc::{ArithShare, Protocol, run_local_roles};
use crate::net::{Role, Stats, Transport};
use crate::plan::{Plan, Visibility};
use anyhow::{Context, Result};
use ndarray::ArrayD;
use std::time::{Duration, Instant};

/// What a training run under mpc reports.
pub struct MpcRun {
    pub weights: TrainedWeights,
    pub losses: Vec<f32>,
    /// Dealing the weights and the rows: every role's bytes, the parties' rounds.
    pub setup: Stats,
    /// The steps: the parties' bytes, and the rounds of the party that waited most.
    pub training: Stats,
    /// The steps' time (party 0's, from its first step to its last).
    pub time: Duration,
}

struct PartyResult {
    setup: Stats,
    training: Stats,
    time: Duration,
    /// Its shares of the forward plan's secret weights, when they stay shared.
    shares: Vec<ArithShare>,
}

/// Trains `tp` (derived from `forward`) on `owners`' rows under the protocol.
pub fn train_mpc(
    protocol: Protocol,
    forward: &Plan,
    tp: &TrainingPlan,
    owners: &[(ArrayD<f32>, ArrayD<f32>)],
    schedule: &Schedule,
    share: bool,
    progress: &EpochProgress<'_>,
) -> Result<MpcRun> {
    let fixed = tp.plan.fixed_point;
    let mut roles = vec![Role::ModelOwner];
    roles.extend((0..owners.len()).map(|k| Role::Inputter(k as u16)));
    let forward_secret: Vec<usize> = (0..forward.weights.len())
        .filter(|&i| forward.weights[i].visibility == Visibility::Secret)
        .collect();
    let party = |party: &mut crate::mpc::Party| -> Result<PartyResult> {
        let id = party.id();
        let mut weights = vec![];
        for w in &tp.plan.weights {
            weights.push(match w.visibility {
                Visibility::Secret => {
                    MpcValue::Secret(recv_secret(party, Role::ModelOwner, w.data.shape())?)
                }
                Visibility::Public => MpcValue::Public(fixed.encode_array(w.data.view())?),
            });
        }
        let (mut xs, mut ys) = (vec![], vec![]);
        for (k, (x, y)) in owners.iter().enumerate() {
            let owner = Role::Inputter(k as u16);
            xs.push(MpcValue::Secret(recv_secret(party, owner, x.shape())?));
            ys.push(MpcValue::Secret(recv_secret(party, owner, y.shape())?));
        }
        let setup = party.stats();
        let started = Instant::now();
        let mut dom = MpcDomain {
            party,
            fixed,
            defer: false,
        };
        let rows = stacked(&mut dom, &xs)?;
        let labels = stacked(&mut dom, &ys)?;
        drop((xs, ys));
        train_loop(
            &mut dom,
            tp,
            &rows,
            &labels,
            &mut weights,
            schedule,
            &mut |dom: &mut MpcDomain, epoch, loss| {
                match loss {
                    Some(loss) => {
                        let share = dom.settled(loss)?.to_share(id);
                        reveal_to(dom.party, Role::ModelOwner, &share)?;
                    }
                    None if id == 0 => progress(epoch, None),
                    None => {}
                }
                Ok(())
            },
        )?;
        let time = started.elapsed();
        let training = dom.stats() - setup;
        let mut shares = vec![];
        if share {
            for &i in &forward_secret {
                shares.push(dom.settled(&weights[i])?.to_share(id));
            }
        } else {
            for &i in &tp.trained {
                let share = dom.settled(&weights[i])?.to_share(id);
                reveal_to(dom.party, Role::ModelOwner, &share)?;
            }
        }
        Ok(PartyResult {
            setup,
            training,
            time,
            shares,
        })
    };
    let outside = |mut ends: Vec<crate::net::local::LocalTransport>| {
        let mut owner = ends.remove(0);
        let mut dealer = Dealer::from_os(protocol)?;
        for w in &tp.plan.weights {
            if w.visibility == Visibility::Secret {
                let encoded = fixed
                    .encode_array(w.data.view())
                    .with_context(|| format!("weight {}", tp.plan.value(w.value).name))?;
                dealer.send_secret(&mut owner, &encoded)?;
            }
        }
        for (end, (x, y)) in ends.iter_mut().zip(owners) {
            let mut dealer = Dealer::from_os(protocol)?;
            dealer.send_secret(end, &fixed.encode_array(x.view())?)?;
            dealer.send_secret(end, &fixed.encode_array(y.view())?)?;
        }
        let mut losses = vec![];
        if tp.reports_loss {
            for epoch in 0..schedule.epochs.len() {
                let sum = recv_revealed(&mut owner, protocol, &[])?;
                let loss = fixed.decode_array(sum.view()).sum();
                losses.push(loss);
                progress(epoch, Some(loss));
            }
        }
        let mut revealed = vec![];
        if !share {
            for &i in &tp.trained {
                let shape = tp.plan.weights[i].data.shape();
                revealed
                    .push(fixed.decode_array(recv_revealed(&mut owner, protocol, shape)?.view()));
            }
        }
        let traffic = ends
            .iter()
            .fold(owner.stats(), |t, end| t.alongside(end.stats()));
        Ok((losses, revealed, traffic))
    };
    let (results, (losses, revealed, owners_traffic)) =
        run_local_roles(&|end| Box::new(end), protocol, &roles, party, outside)?;
    let setup = results
        .iter()
        .fold(owners_traffic, |t, r| t.alongside(r.setup));
    let training = results
        .iter()
        .fold(Stats::default(), |t, r| t.alongside(r.training));
    let time = results[0].time;
    let weights = if share {
        let [a, b, c] = results;
        TrainedWeights::Shared(protocol, [a.shares, b.shares, c.shares])
    } else {
        TrainedWeights::Revealed(revealed)
    };
    Ok(MpcRun {
        weights,
        losses,
        setup,
        training,
        time,
    })
}
