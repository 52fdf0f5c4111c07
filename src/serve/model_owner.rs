//! The model owner's role: it secret-shares the plan's secret weights, online to the parties
//! of an embedded session, or once into the share files of a networked deployment. It never
//! learns anything back.

use super::encoding::{check_weight, encode_weight};
use crate::mpc::Protocol;
use crate::mpc::prf::os_key;
use crate::mpc::share::Dealer;
use crate::net::Transport;
use crate::plan::{Holder, Plan, SharedPlan, Visibility, hex};
use anyhow::Result;
use ndarray::ArrayD;

/// The positions of the plan's secret weights, each checked to encode in fixed point (before
/// any party starts).
pub(super) fn secret_weights(plan: &Plan) -> Result<Vec<usize>> {
    let secret: Vec<usize> = (0..plan.weights.len())
        .filter(|&i| plan.weights[i].visibility == Visibility::Secret)
        .collect();
    secret.iter().try_for_each(|&i| check_weight(plan, i))?;
    Ok(secret)
}

/// Deals the `secret` weights to the parties, once per session, each encoded as it goes out:
/// the model owner never holds them all in the ring at once.
pub(super) fn share_weights(
    owner: &mut dyn Transport,
    protocol: Protocol,
    plan: &Plan,
    secret: &[usize],
) -> Result<()> {
    let mut dealer = Dealer::from_os(protocol)?;
    secret
        .iter()
        .try_for_each(|&i| dealer.send_secret(owner, &encode_weight(plan, i)?))
}

/// Deals `plan`'s secret weights into the four files of a networked deployment under
/// `protocol`: parties 0, 1 and 2, then the client. The components come from a fresh
/// [`Dealer`], whose keys are dropped with it; each party's file holds its own share only
/// (under Pond, server 0 the sum of the components it would derive, server 1 the third,
/// the producer nothing).
pub fn deal(plan: &Plan, protocol: Protocol) -> Result<Vec<SharedPlan>> {
    let mut dealer = Dealer::from_os(protocol)?;
    let mut held: [Vec<Vec<ArrayD<u64>>>; 3] = Default::default();
    for (i, w) in plan.weights.iter().enumerate() {
        if w.visibility != Visibility::Secret {
            continue;
        }
        let x = encode_weight(plan, i)?;
        let shaped = |v: Vec<u64>| ArrayD::from_shape_vec(x.raw_dim(), v);
        let [x0, x1, x2] = dealer.components(&x).map(shaped);
        let c = [x0?, x1?, x2?];
        for (party, kept) in held.iter_mut().enumerate() {
            kept.push(match protocol {
                Protocol::Aby3 => vec![c[party].clone(), c[(party + 1) % 3].clone()],
                Protocol::Pond => match party {
                    0 => vec![
                        ndarray::Zip::from(&c[0])
                            .and(&c[1])
                            .map_collect(|a, b| a.wrapping_add(*b)),
                    ],
                    1 => vec![c[2].clone()],
                    _ => vec![],
                },
            });
        }
    }
    share_files(plan, protocol, held)
}

/// The four files of a networked deployment of `plan` whose secret weights the parties
/// hold as `held` under `protocol` (per party, per secret weight in plan order, the
/// components [`SharedPlan::components`] says): a fresh dealing of the model owner's, or
/// weights trained under the protocol and never reconstructed. The files hold `plan` with
/// its secret weights zeroed.
pub fn share_files(
    plan: &Plan,
    protocol: Protocol,
    held: [Vec<Vec<ArrayD<u64>>>; 3],
) -> Result<Vec<SharedPlan>> {
    let mut public = plan.clone();
    for w in &mut public.weights {
        if w.visibility == Visibility::Secret {
            w.data.fill(0.0);
        }
    }
    let plan_sha256 = SharedPlan::plan_hash(&public);
    let dealing = hex(&os_key()?);
    let [p0, p1, p2] = held;
    Ok(Holder::ALL
        .into_iter()
        .zip([p0, p1, p2, vec![]])
        .map(|(holder, shares)| SharedPlan {
            holder,
            plan: public.clone(),
            plan_sha256: plan_sha256.clone(),
            dealing: dealing.clone(),
            protocol,
            shares: match SharedPlan::components(holder, protocol) {
                0 => vec![],
                _ => shares,
            },
        })
        .collect())
}
