//! The client's role, in the embedded and the networked deployment alike: it sends the batch
//! size and shares of its inputs to the parties, and alone reconstructs the outputs.

use super::{Prediction, STOP, Setup};
use crate::exec::Profile;
use crate::mpc::Protocol;
use crate::mpc::share::{Dealer, recv_revealed};
use crate::net::{Role, Stats, Transport};
use crate::plan::Plan;
use anyhow::Result;
use ndarray::ArrayD;
use std::time::Instant;

/// One request: the batch size and the input shares out, the revealed outputs back, with the
/// client's traffic.
pub(super) fn request(
    net: &mut dyn Transport,
    protocol: Protocol,
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
            let revealed = recv_revealed(net, protocol, &plan.value(id).shape.resolve(batch))?;
            Ok(plan.fixed_point.decode_array(revealed.view()))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok((outputs, net.stats() - before))
}

/// Tells every party that the client has no more requests.
pub(super) fn stop(net: &mut dyn Transport) -> Result<()> {
    Role::PARTIES
        .into_iter()
        .try_for_each(|role| net.send(role, &[STOP]))
}

/// A request's outputs with its figures: every role's traffic, the parties' profiles merged,
/// and the rounds on the critical path (per step, the party that waited most).
pub(super) fn prediction(
    outputs: Vec<ArrayD<f32>>,
    batch: usize,
    client: Stats,
    reports: impl IntoIterator<Item = (Profile, Stats)>,
    started: Instant,
) -> Prediction {
    let (profiles, by_party): (Vec<Profile>, Vec<Stats>) = reports.into_iter().unzip();
    let mut online = by_party.iter().copied().fold(client, Stats::alongside);
    let profile = Profile::merge_parties(&profiles);
    online.rounds = profile.total().stats.rounds;
    Prediction {
        outputs,
        batch,
        profile,
        online,
        by_party,
        time: started.elapsed(),
        setup: Setup::default(),
    }
}
