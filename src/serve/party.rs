//! A compute party's role, in the embedded and the networked deployment alike: it holds its
//! shares of the weights and serves the client's requests on them, computing the plan with
//! the other two parties and revealing the outputs to the client alone.

use super::{Progress, STOP};
use crate::exec::{
    Domain, MpcDomain, MpcValue, Observer, Profile, REVEAL_OP, REVEAL_STEP, Weights, run,
};
use crate::mpc::pond::SessionMasked;
use crate::mpc::share::{DealtShare, recv_dealt, recv_secret, reveal_to};
use crate::mpc::{ArithShare, Party, Protocol};
use crate::net::{Role, Stats};
use crate::plan::{Plan, Step, Visibility, Weight};
use anyhow::{Context, Result, bail};
use std::borrow::{Borrow, Cow};
use std::time::{Duration, Instant};

/// What a party checks of the requests it serves, and whom it tells that it waits for the
/// client's next request (`idle(true)`) or works on one (`idle(false)`).
pub(super) struct Terms<'a> {
    /// Rows in one request; a larger batch is refused before anything is allocated.
    pub max_batch: usize,
    pub idle: &'a dyn Fn(bool),
}

/// The request loop: requests from the client on `weights` until a stop request. After
/// each, `report` gets the request's profile and this party's traffic for it. `progress`,
/// when given, is told the steps done as each request runs.
pub(super) fn serve_requests(
    plan: &Plan,
    party: &mut Party,
    weights: &PartyWeights,
    progress: Option<&Progress>,
    terms: Terms,
    mut report: impl FnMut(&mut Party, Profile, Stats) -> Result<()>,
) -> Result<()> {
    loop {
        let before = party.stats();
        (terms.idle)(true);
        let header = party.recv_role(Role::Client)?;
        (terms.idle)(false);
        let batch = *header.first().context("empty request from the client")?;
        if batch == STOP {
            return Ok(());
        }
        let max = terms.max_batch;
        let batch = (usize::try_from(batch).ok())
            .filter(|&b| b <= max)
            .with_context(|| {
                format!(
                    "the client asked for a batch of {batch} rows; this party serves at most \
                     {max} (serve.max_batch in the configuration, or tfe-party --max-batch)"
                )
            })?;
        let profile = serve_request(plan, party, weights, batch, progress)?;
        let traffic = party.stats() - before;
        report(party, profile, traffic)?;
    }
}

/// In a large model ([`LARGE_MODEL_ABOVE`]), weights of more elements than this are kept
/// as the model owner dealt them (one component at parties 1 and 2, none at party 0) and
/// their shares made again from the owner's keys at each request: a third of the memory,
/// for a few nanoseconds of AES-CTR per element and request. Under Pond their
/// session-masked forms are kept alike: the opened value at each server, the mask made
/// again from the producer's keys ([`SessionMasked`]).
const KEPT_AS_DEALT_ABOVE: usize = 1 << 18;

/// Secret weight values above which a model is large. A smaller model holds every weight
/// ready (48 bytes per value for the three parties: 200 MB at this size), since making
/// shares again is most of its request: LeNet's 400,000-element weight took 16 of ABY3's
/// 17 ms at batch 1 embedded kept as dealt, 6 ms held.
const LARGE_MODEL_ABOVE: usize = 1 << 22;

/// The size above which a weight of `plan` is kept compact: none in a small model.
fn compact_above(plan: &Plan) -> usize {
    let secret = (plan.weights.iter()).filter(|w| w.visibility == Visibility::Secret);
    if secret.map(|w| w.data.len()).sum::<usize>() > LARGE_MODEL_ABOVE {
        KEPT_AS_DEALT_ABOVE
    } else {
        usize::MAX
    }
}

/// A party's weights, in plan order.
pub(super) struct PartyWeights {
    weights: Vec<PartyWeight>,
    /// The size above which a weight is kept compact ([`compact_above`]).
    compact: usize,
}

pub(super) enum PartyWeight {
    Held(MpcValue),
    Dealt(DealtShare),
    /// Under Pond, a large weight masked for the session.
    SessionMasked(SessionMasked),
}

impl<'p> Weights<MpcDomain<'p>> for PartyWeights {
    fn weight(&self, dom: &mut MpcDomain<'p>, index: usize) -> Result<Cow<'_, MpcValue>> {
        Ok(match &self.weights[index] {
            PartyWeight::Held(value) => Cow::Borrowed(value),
            PartyWeight::Dealt(dealt) => Cow::Owned(MpcValue::Secret(dealt.share(dom.party)?)),
            PartyWeight::SessionMasked(masked) => {
                Cow::Owned(MpcValue::Masked(dom.party.session_masked(masked)))
            }
        })
    }
}

/// How many words of weights one round of a session's masking opens, at most (8 MiB, or
/// one weight if larger): a model's weights take a round trip or a few, not one each, in
/// messages well inside the links' backlog ([`crate::net::backlog`]). Larger rounds raised
/// the peak (MobileNetV2 at 32 MiB: 1.48 GiB against 1.34), as glibc then keeps more freed
/// memory.
const MASKED_PER_ROUND: usize = 1 << 20;

impl PartyWeights {
    /// Under Pond, every secret weight opened once for this session under a mask fixed for
    /// it ([`Party::mask_for_session`]), so that no request opens the weights again; `None`
    /// under ABY3, whose products open nothing. The weights stay for later sessions.
    pub(super) fn masked_for(&self, party: &mut Party) -> Result<Option<PartyWeights>> {
        if party.protocol() != Protocol::Pond {
            return Ok(None);
        }
        mask_weights(&self.weights, party, MASKED_PER_ROUND, self.compact).map(Some)
    }

    /// [`PartyWeights::masked_for`] for the only session: each round's weights are dropped
    /// once masked, so that the two forms of all of them are never held at once.
    pub(super) fn into_masked(self, party: &mut Party) -> Result<PartyWeights> {
        if party.protocol() != Protocol::Pond {
            return Ok(self);
        }
        mask_weights(self.weights, party, MASKED_PER_ROUND, self.compact)
    }
}

/// The masked forms of `weights`, in order, a round of at most `per_round` words at a time
/// (and fewer than 256 weights); each round's weights are dropped after it, and those of
/// more than `compact` elements kept compact ([`SessionMasked`]).
fn mask_weights<W: Borrow<PartyWeight>>(
    weights: impl IntoIterator<Item = W>,
    party: &mut Party,
    per_round: usize,
    compact: usize,
) -> Result<PartyWeights> {
    let mut masked: Vec<Option<PartyWeight>> = vec![];
    let mut round: Vec<(usize, W)> = vec![];
    let mut words = 0;
    for weight in weights {
        let len = match weight.borrow() {
            PartyWeight::Held(MpcValue::Public(public)) => {
                masked.push(Some(PartyWeight::Held(MpcValue::Public(public.clone()))));
                continue;
            }
            secret => secret.share_len()?,
        };
        if !round.is_empty() && (words + len > per_round || round.len() == 255) {
            mask_round(std::mem::take(&mut round), &mut masked, party, compact)?;
            words = 0;
        }
        masked.push(None);
        round.push((masked.len() - 1, weight));
        words += len;
    }
    if !round.is_empty() {
        mask_round(round, &mut masked, party, compact)?;
    }
    Ok(PartyWeights {
        weights: masked.into_iter().flatten().collect(),
        compact,
    })
}

/// One round of [`mask_weights`]: `round`'s secret weights masked into their slots.
fn mask_round<W: Borrow<PartyWeight>>(
    round: Vec<(usize, W)>,
    masked: &mut [Option<PartyWeight>],
    party: &mut Party,
    compact: usize,
) -> Result<()> {
    let shares = (round.iter())
        .map(|(_, weight)| weight.borrow().share(party))
        .collect::<Result<Vec<_>>>()?;
    let refs: Vec<&ArithShare> = shares.iter().map(|s| s.as_ref()).collect();
    let sessions = party.mask_for_session(&refs)?;
    for ((slot, _), session) in round.iter().zip(sessions) {
        masked[*slot] = Some(if session.values() > compact {
            PartyWeight::SessionMasked(session)
        } else {
            PartyWeight::Held(MpcValue::Masked(party.session_masked(&session)))
        });
    }
    Ok(())
}

/// Why a weight cannot be masked for a session.
const NOT_MASKABLE: &str = "only a secret weight not yet masked for a session can be masked";

impl PartyWeight {
    /// How many values a secret weight, not yet masked for a session, holds.
    fn share_len(&self) -> Result<usize> {
        match self {
            PartyWeight::Held(MpcValue::Secret(share)) => Ok(share.cur.len()),
            PartyWeight::Dealt(dealt) => Ok(dealt.len()),
            _ => bail!(NOT_MASKABLE),
        }
    }

    /// This party's share of a secret weight not yet masked for a session.
    fn share(&self, party: &Party) -> Result<Cow<'_, ArithShare>> {
        match self {
            PartyWeight::Held(MpcValue::Secret(share)) => Ok(Cow::Borrowed(share)),
            PartyWeight::Dealt(dealt) => Ok(Cow::Owned(dealt.share(party)?)),
            _ => bail!(NOT_MASKABLE),
        }
    }
}

/// The plan's weights as this party holds them, shared online by the model owner.
pub(super) fn receive_weights(plan: &Plan, party: &mut Party) -> Result<PartyWeights> {
    weight_values(plan, |w, compact| {
        let dealt = recv_dealt(party, Role::ModelOwner, w.data.shape())?;
        Ok(if dealt.len() > compact {
            PartyWeight::Dealt(dealt)
        } else {
            PartyWeight::Held(MpcValue::Secret(dealt.share(party)?))
        })
    })
}

/// The plan's weights in plan order: each secret one as `secret` gives it (told the size
/// above which the model keeps a weight compact), the public ones encoded in the clear.
pub(super) fn weight_values(
    plan: &Plan,
    mut secret: impl FnMut(&Weight, usize) -> Result<PartyWeight>,
) -> Result<PartyWeights> {
    let compact = compact_above(plan);
    let weights = (plan.weights.iter())
        .map(|w| {
            Ok(match w.visibility {
                Visibility::Secret => secret(w, compact)?,
                Visibility::Public => PartyWeight::Held(MpcValue::Public(
                    plan.fixed_point.encode_array(w.data.view())?,
                )),
            })
        })
        .collect::<Result<_>>()?;
    Ok(PartyWeights { weights, compact })
}

/// One request: the input shares from the client, the plan, and this party's share of each
/// output back to the client.
fn serve_request(
    plan: &Plan,
    party: &mut Party,
    weights: &PartyWeights,
    batch: usize,
    progress: Option<&Progress>,
) -> Result<Profile> {
    let inputs = plan
        .inputs
        .iter()
        .map(|input| {
            let value = plan.value(input.value);
            let (shape, _) = (value.shape.checked_resolve(batch)).with_context(|| {
                format!("a batch of {batch} rows overflows input {}", value.name)
            })?;
            Ok(MpcValue::Secret(recv_secret(party, Role::Client, &shape)?))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut watch = Watch {
        profile: Profile::default(),
        progress,
        total: plan.steps.len(),
    };
    let mut dom = MpcDomain {
        party,
        fixed: plan.fixed_point,
        defer: false,
    };
    let outputs = run(plan, &mut dom, inputs, weights, batch, &mut watch)?;
    let mut profile = watch.profile;
    let reveal_start = Instant::now();
    let before_reveal = dom.stats();
    let id = dom.party.id();
    for out in &outputs {
        let out = dom.settled(out)?.to_share(id);
        reveal_to(dom.party, Role::Client, &out)?;
    }
    profile.record(
        REVEAL_STEP,
        REVEAL_OP,
        reveal_start.elapsed(),
        dom.stats() - before_reveal,
    );
    Ok(profile)
}

/// A request's profile, and its progress told to whoever watches.
struct Watch<'p> {
    profile: Profile,
    progress: Option<&'p Progress>,
    total: usize,
}

impl Observer for Watch<'_> {
    fn step_done(&mut self, index: usize, step: &Step, time: Duration, traffic: Stats) {
        self.profile.step_done(index, step, time, traffic);
        if let Some(progress) = self.progress {
            progress(index + 1, self.total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mpc::run_local_roles;
    use ndarray::{ArrayD, IxDyn};

    fn words(values: &[u64]) -> ArrayD<u64> {
        ArrayD::from_shape_vec(IxDyn(&[values.len()]), values.to_vec()).unwrap()
    }

    /// Weights of 5, 7 and 4 words with a public one among them, 12 words a round and
    /// weights of more than 6 words compact: two rounds (5 + 7, then 4), the weights back in
    /// plan order, the 7-word one kept as its opened value alone, and each, made ready, the
    /// servers' sharing of its value.
    #[test]
    fn weights_are_masked_a_round_of_words_at_a_time_in_order() {
        let values: [Vec<u64>; 3] = [(1..=5).collect(), (10..17).collect(), (20..24).collect()];
        let public = words(&[7, 8, 9]);
        let ([w0, w1, _], ()) = run_local_roles(
            &|end| Box::new(end),
            Protocol::Pond,
            &[],
            |party| {
                // Server 0 holds each value, server 1 zeros: a sharing of the value.
                let secret = |v: &[u64]| {
                    let share = if party.id() == 0 {
                        words(v)
                    } else {
                        words(&vec![0; v.len()])
                    };
                    PartyWeight::Held(MpcValue::Secret(ArithShare::additive(share)))
                };
                let weights = vec![
                    secret(&values[0]),
                    PartyWeight::Held(MpcValue::Public(public.clone())),
                    secret(&values[1]),
                    secret(&values[2]),
                ];
                let before = party.stats().rounds;
                let masked = mask_weights(weights, party, 12, 6)?;
                assert_eq!(party.stats().rounds - before, 2);
                // Each weight as a step reads it, and whether it was kept compact.
                let ready = (masked.weights.iter())
                    .map(|w| match w {
                        PartyWeight::Held(MpcValue::Masked(m)) => Some((m.clone(), false)),
                        PartyWeight::SessionMasked(m) => Some((party.session_masked(m), true)),
                        _ => None,
                    })
                    .collect::<Vec<_>>();
                Ok(ready)
            },
            |_| Ok(()),
        )
        .unwrap();
        let value = |k: usize| -> (Vec<u64>, bool) {
            let ((a, compact), (b, _)) = (w0[k].clone().unwrap(), w1[k].clone().unwrap());
            assert_eq!(a.next, b.next, "both servers hold the same opened value");
            let sum = (a.cur.iter().zip(&b.cur)).map(|(a, b)| a.wrapping_add(*b));
            (sum.collect(), compact)
        };
        assert_eq!(value(0), (values[0].clone(), false));
        assert!(w0[1].is_none(), "the public weight stays public");
        assert_eq!(value(2), (values[1].clone(), true));
        assert_eq!(value(3), (values[2].clone(), false));
    }
}
