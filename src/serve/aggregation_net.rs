//! Secure aggregation as a networked deployment, the callers' side: the public rules of a
//! named round (which the parties set and every caller is told), the messages that open a
//! submission or a receipt, an inputter submitting its vector from its own process, and the
//! result receiver fetching the result. The parties' side is `aggregation_server.rs`.
//!
//! Every caller dials the parties it needs (an inputter only the two that take its pieces),
//! names the round, and hears back the round's rules or why it is refused. An inputter
//! then sends its pieces and waits for both parties to confirm; the receiver waits for the
//! parties' status and terms.

use super::aggregation::{AggregateOp, Aggregation, Prepared, checked_clip};
use super::networked::Explained;
use super::{inputter, receiver};
use crate::aggregate;
use crate::mpc::Protocol;
use crate::net::config::Config;
use crate::net::frame::{SessionId, text_words, words_text};
use crate::net::tls::connect_to;
use crate::net::{Role, Stats, Transport};
use crate::tensor::FixedPoint;
use anyhow::{Context, Result, anyhow, bail, ensure};
use ndarray::ArrayD;
use serde::{Deserialize, Serialize};
use std::time::{Duration, Instant};

/// The session id of every aggregation link; the round is named in the first message.
pub(super) const SESSION: SessionId = SessionId(*b"tfe-aggregate-v1");

/// The longest round name, in bytes.
pub const MAX_ROUND_NAME: usize = 128;

/// A request or reply's text is at most this many words (the rules, a refusal's reason).
pub(super) const MAX_TEXT_WORDS: usize = 1 << 12;

/// The public rules of one round: set by the parties, checked among them, and sent to every
/// caller. Values are clipped to ±clip, encoded with `frac_bits` fractional bits.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoundRules {
    pub round: String,
    /// Who may submit, in role order: the configuration's inputters.
    pub inputters: Vec<String>,
    pub shape: Vec<usize>,
    pub clip: f32,
    pub min_inputs: usize,
    /// One public weight per inputter, in role order (a weighted sum or mean); `None`
    /// weighs every inputter 1.
    #[serde(default)]
    pub weights: Option<Vec<f64>>,
    /// How long the parties wait for submissions once their mesh is up.
    pub deadline_ms: u64,
    pub frac_bits: u32,
    /// Which parties take an inputter's pieces (rules written before Pond read as ABY3).
    #[serde(default)]
    pub protocol: Protocol,
}

impl RoundRules {
    /// Checks the rules against `config` and fixes the round's public parameters (the ring
    /// follows from the clip and the number of inputters).
    pub(super) fn prepare(&self, op: AggregateOp) -> Result<Prepared> {
        check_round_name(&self.round)?;
        let n = self.inputters.len();
        ensure!(
            n >= 1,
            "the configuration names no inputters (roles.inputters), so round {:?} has nobody to aggregate",
            self.round
        );
        ensure!(
            (1..=n).contains(&self.min_inputs),
            "the minimum of {} inputs is not between 1 and the {n} inputter(s) the configuration names",
            self.min_inputs
        );
        ensure!(
            !self.shape.is_empty() && self.shape.iter().all(|&d| d > 0),
            "a round's vectors need a shape of positive sizes, not {:?}",
            self.shape
        );
        let aggregation = Aggregation {
            weights: self.weights.clone(),
            min_inputs: self.min_inputs,
            fixed_point: FixedPoint {
                frac_bits: self.frac_bits,
            },
            protocol: self.protocol,
            ..Aggregation::new(op)
        };
        Ok(aggregation.fix(n, self.shape.clone(), checked_clip(self.clip)?)?)
    }

    pub(super) fn to_words(&self) -> Vec<u64> {
        text_words(&serde_json::to_string(self).expect("rules serialise"))
    }

    fn from_words(words: &[u64]) -> Result<RoundRules> {
        Ok(serde_json::from_str(&words_text(words)?)?)
    }

    /// One line for logs: what the round takes.
    pub fn describe(&self) -> String {
        let weights = match &self.weights {
            Some(w) => format!(", weights {w:?}"),
            None => String::new(),
        };
        format!(
            "round {:?} under {}: {} inputter(s), vectors of shape {:?} clipped to ±{}, at least {} to reveal, {:.1} s deadline{weights}",
            self.round,
            self.protocol.name(),
            self.inputters.len(),
            self.shape,
            self.clip,
            self.min_inputs,
            self.deadline_ms as f64 / 1e3
        )
    }

    /// The weights as `name=w` pairs give them (inputters not named weigh 1), in role order.
    pub fn weights_by_name(inputters: &[String], pairs: &[String]) -> Result<Vec<f64>> {
        let mut weights = vec![1.0; inputters.len()];
        for pair in pairs {
            let (name, w) = (pair.split_once('='))
                .ok_or_else(|| anyhow!("weight {pair:?} is not NAME=WEIGHT"))?;
            let k = (inputters.iter().position(|n| n == name)).ok_or_else(|| {
                anyhow!(
                    "weight {pair:?} names no inputter of the configuration (it names {})",
                    inputters.join(", ")
                )
            })?;
            weights[k] = w
                .parse()
                .map_err(|_| anyhow!("weight {pair:?}: {w:?} is not a number"))?;
        }
        Ok(weights)
    }
}

/// A round name: what every role gives on its command line, so printable and short.
pub fn check_round_name(name: &str) -> Result<()> {
    ensure!(
        (1..=MAX_ROUND_NAME).contains(&name.len()) && name.chars().all(|c| c.is_ascii_graphic()),
        "a round name must be 1 to {MAX_ROUND_NAME} printable characters without spaces, not {name:?}"
    );
    Ok(())
}

/// A reply's first word.
pub(super) const ACCEPTED: u64 = 0;
pub(super) const REFUSED: u64 = 1;

/// A refusal: [`REFUSED`], then why.
pub(super) fn refusal(why: &str) -> Vec<u64> {
    [vec![REFUSED], text_words(why)].concat()
}

/// The text after an [`ACCEPTED`] reply's status (empty for a bare acceptance), or the
/// refusal's reason as the error.
fn accepted(reply: &[u64]) -> Result<std::result::Result<&[u64], String>> {
    match reply.split_first() {
        Some((&ACCEPTED, rest)) => Ok(Ok(rest)),
        Some((&REFUSED, why)) => Ok(Err(words_text(why)?)),
        _ => bail!("a malformed reply"),
    }
}

/// Names `round` to each of `parties` and returns the rules they all answered with.
fn open(net: &mut Explained, parties: &[Role], round: &str, what: &str) -> Result<RoundRules> {
    check_round_name(round)?;
    for &party in parties {
        net.send(party, &text_words(round))?;
    }
    let mut agreed: Option<(Role, RoundRules)> = None;
    for &party in parties {
        let reply = net.recv(party)?;
        let rules = match accepted(&reply).with_context(|| format!("from {party}"))? {
            Ok(rules) => RoundRules::from_words(rules)
                .with_context(|| format!("{party} sent unreadable rules"))?,
            Err(why) => bail!("{party} refused {what}: {why}"),
        };
        if let Some((first, theirs)) = &agreed {
            ensure!(
                *theirs == rules,
                "{first} and {party} give round {round:?} different rules ({} / {}); the parties must be started with the same rules",
                theirs.describe(),
                rules.describe()
            );
        }
        agreed.get_or_insert((party, rules));
    }
    Ok(agreed.expect("at least one party").1)
}

/// What an inputter's submission did.
pub struct Submitted {
    pub rules: RoundRules,
    /// The two parties that hold its pieces.
    pub parties: [Role; 2],
    /// Sent by the inputter (its pieces and the requests).
    pub traffic: Stats,
}

/// Submits `x` to `round`, run under `protocol`, as the inputter `name` of `config`: dials
/// the two parties that take its pieces, and sends them only once both have accepted, so
/// that a refusal by either leaves neither holding a piece.
pub fn submit(
    config: &Config,
    name: &str,
    round: &str,
    protocol: Protocol,
    x: &ArrayD<f32>,
) -> Result<Submitted> {
    let me = config.inputter(name)?;
    inputter::check(x, 0)?;
    let Role::Inputter(k) = me else {
        unreachable!("config.inputter gives inputters")
    };
    let (mask_at, value_at) = aggregate::holders(protocol, k as usize);
    let parties = [Role::Party(mask_at as u8), Role::Party(value_at as u8)];
    let mut net = Explained(connect_to(config, me, SESSION, &parties)?);
    let what = format!("{name}'s submission to round {round:?}");
    let rules = open(&mut net, &parties, round, &what)?;
    ensure!(
        rules.protocol == protocol,
        "round {round:?} runs under {}, not {}: submit with --protocol {0}; nothing was submitted",
        rules.protocol.name(),
        protocol.name()
    );
    ensure!(
        x.shape() == rules.shape,
        "round {round:?} takes vectors of shape {:?}, not {:?}; nothing was submitted",
        rules.shape,
        x.shape()
    );
    let prepared = rules.prepare(AggregateOp::Sum)?;
    inputter::submit(&mut net, &prepared, k as usize, x)?;
    for party in parties {
        let ack = net.recv(party)?;
        if let Err(why) = accepted(&ack).with_context(|| format!("from {party}"))? {
            bail!("{party} did not take {what}: {why}");
        }
    }
    Ok(Submitted {
        rules,
        parties,
        traffic: net.stats(),
    })
}

/// What the result receiver learns.
pub struct Received {
    pub rules: RoundRules,
    /// The sum or mean, in the round's shape.
    pub values: ArrayD<f32>,
    /// The inputters in the result, by name.
    pub included: Vec<String>,
    /// Those that did not submit in time.
    pub missing: Vec<String>,
    pub ring_bits: u32,
    /// From connecting to the result.
    pub time: Duration,
    /// Sent by the receiver.
    pub traffic: Stats,
}

/// Fetches `round`'s sum or mean from the three parties as the result receiver of `config`
/// (the round's rules say which of them send a term). Waits for as long as the parties hold
/// the round open.
pub fn receive(config: &Config, round: &str, op: AggregateOp) -> Result<Received> {
    let started = Instant::now();
    let mut net = Explained(connect_to(config, Role::Receiver, SESSION, &Role::PARTIES)?);
    let rules = open(&mut net, &Role::PARTIES, round, "the result receiver")?;
    let prepared = rules.prepare(op)?;
    for party in Role::PARTIES {
        let status = net.recv(party)?;
        if let Err(why) = accepted(&status).with_context(|| format!("from {party}"))? {
            return Err(anyhow!(
                "the parties revealed no result for round {round:?}: {why}"
            ));
        }
    }
    let (values, included) = receiver::receive(&mut net, &prepared)?;
    let (included, missing) = (rules.inputters.iter()).zip(&included).fold(
        (vec![], vec![]),
        |(mut yes, mut no), (name, &i)| {
            if i { &mut yes } else { &mut no }.push(name.clone());
            (yes, no)
        },
    );
    Ok(Received {
        ring_bits: prepared.round.ring.bits(),
        rules,
        values,
        included,
        missing,
        time: started.elapsed(),
        traffic: net.stats(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_round_trip_and_refusals_read_back() {
        for text in [
            "",
            "a",
            "round-7",
            "exactly8",
            "ünïcode and more than eight bytes",
        ] {
            assert_eq!(words_text(&text_words(text)).unwrap(), text);
        }
        assert!(words_text(&[9, 0]).is_err());
        let refused = refusal("too late");
        assert_eq!(accepted(&refused).unwrap(), Err("too late".to_string()));
        assert_eq!(accepted(&[ACCEPTED, 5]).unwrap(), Ok(&[5u64][..]));
        assert!(accepted(&[]).is_err());
        assert!(check_round_name("step-17").is_ok());
        assert!(check_round_name("two words").is_err());
        assert!(check_round_name("").is_err());
    }

    #[test]
    fn weights_by_name_default_to_one_and_name_the_bad_pair() {
        let names = ["a", "b", "c"].map(String::from);
        let pairs = ["c=2.5", "a=0"].map(String::from);
        let w = RoundRules::weights_by_name(&names, &pairs).unwrap();
        assert_eq!(w, [0.0, 1.0, 2.5]);
        for (bad, says) in [
            ("d=1", "names no inputter"),
            ("a", "NAME=WEIGHT"),
            ("a=x", "not a number"),
        ] {
            let e = RoundRules::weights_by_name(&names, &[bad.to_string()]).unwrap_err();
            assert!(e.to_string().contains(says), "{e}");
        }
    }
}
