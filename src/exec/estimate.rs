//! A plan's cost under the protocol before anything runs: the closed-form costs of its
//! secure calls, summed by the [`CostDomain`]. `tfe-convert --check` prints it;
//! `tfe-predict --profile` holds the measured traffic against it.

use super::domain_cost::{CostDomain, Costed};
use super::profile::human_bytes;
use super::{Profile, REVEAL_OP, REVEAL_STEP, run};
use crate::mpc::Protocol;
use crate::mpc::cost::Cost;
use crate::net::Stats;
use crate::plan::{Plan, Visibility};
use anyhow::Result;
use ndarray::{ArrayD, IxDyn};
use serde_json::json;
use std::fmt::Write;

/// Online cost of one inference.
#[derive(Clone, Debug)]
pub struct Estimate {
    pub batch: usize,
    pub protocol: Protocol,
    /// Per plan step, then the reveal of the outputs (no times).
    pub steps: Profile,
    /// The steps and the reveal together, by sending party.
    pub parties: Cost,
    /// The client sharing its inputs.
    pub input: Cost,
}

fn stats(cost: Cost) -> Stats {
    Stats {
        bytes_sent: cost.bytes(),
        messages_sent: 0,
        rounds: cost.rounds,
    }
}

/// The first request of a deployment serving `plan`: under Pond its secret weights were
/// masked when the session started.
pub fn estimate(plan: &Plan, batch: usize, protocol: Protocol) -> Result<Estimate> {
    estimate_request(plan, batch, protocol, 0)
}

/// A later request of the same session, after `earlier` ones: the same bytes and rounds,
/// but the dealers of truncations and comparisons have rotated on from where the earlier
/// requests left them, and with them who sends what.
pub fn estimate_request(
    plan: &Plan,
    batch: usize,
    protocol: Protocol,
    earlier: u64,
) -> Result<Estimate> {
    let masked = protocol == Protocol::Pond;
    let (first, dealt) = estimate_with(plan, batch, protocol, masked, [0; 2])?;
    if earlier.is_multiple_of(3) {
        return Ok(first);
    }
    let start = dealt.map(|calls| calls * (earlier % 3));
    Ok(estimate_with(plan, batch, protocol, masked, start)?.0)
}

/// One run of `plan` on weights that change between runs (a training step): under Pond
/// every product opens its weights.
pub fn estimate_step(plan: &Plan, batch: usize, protocol: Protocol) -> Result<Estimate> {
    Ok(estimate_with(plan, batch, protocol, false, [0; 2])?.0)
}

/// The estimate with the dealer-assisted calls counted from `dealt`, and the calls it made.
fn estimate_with(
    plan: &Plan,
    batch: usize,
    protocol: Protocol,
    weights_masked: bool,
    dealt: [u64; 2],
) -> Result<(Estimate, [u64; 2])> {
    let mut dom = CostDomain::new(plan.fixed_point, protocol);
    dom.dealt = dealt;
    let tagged = |shape: &[usize], secret: bool| Costed::new(ArrayD::zeros(IxDyn(shape)), secret);
    let input_shapes: Vec<Vec<usize>> = plan
        .inputs
        .iter()
        .map(|input| plan.value(input.value).shape.resolve(batch))
        .collect();
    let inputs = input_shapes.iter().map(|s| tagged(s, true)).collect();
    let weights: Vec<_> = plan
        .weights
        .iter()
        .map(|w| {
            let secret = w.visibility == Visibility::Secret;
            Costed {
                masked: secret && weights_masked,
                ..tagged(w.data.shape(), secret)
            }
        })
        .collect();
    let mut steps = Profile::default();
    let outputs = run(plan, &mut dom, inputs, &weights[..], batch, &mut steps)?;
    let revealed = outputs.iter().map(|o| o.zeros.len() as u64).sum();
    let reveal = match protocol {
        Protocol::Aby3 => Cost::reveal(revealed),
        Protocol::Pond => Cost::pond_reveal(revealed),
    };
    steps.record(REVEAL_STEP, REVEAL_OP, Default::default(), stats(reveal));
    let shared = input_shapes
        .iter()
        .map(|s| s.iter().product::<usize>() as u64)
        .sum();
    let made = [0, 1].map(|k| dom.dealt[k] - dealt[k]);
    let estimate = Estimate {
        batch,
        protocol,
        steps,
        parties: dom.total + reveal,
        input: match protocol {
            Protocol::Aby3 => Cost::input(shared),
            Protocol::Pond => Cost::pond_input(shared),
        },
    };
    Ok((estimate, made))
}

impl Estimate {
    /// Bytes and rounds of the whole inference.
    pub fn total(&self) -> Stats {
        let steps = self.steps.total().stats;
        Stats {
            bytes_sent: steps.bytes_sent + self.input.bytes(),
            ..steps
        }
    }

    /// Steps merged per source node, in plan order: what `--check` lists.
    pub fn by_node(&self) -> Vec<(&str, Stats)> {
        let mut nodes: Vec<(&str, Stats)> = vec![];
        for step in &self.steps.steps {
            match nodes.iter_mut().find(|(n, _)| *n == step.node) {
                Some((_, s)) => {
                    s.bytes_sent += step.stats.bytes_sent;
                    s.rounds += step.stats.rounds;
                }
                None => nodes.push((&step.node, step.stats)),
            }
        }
        nodes
    }

    pub fn text(&self) -> String {
        let nodes = self.by_node();
        let width = nodes.iter().map(|(n, _)| n.len()).max().unwrap_or(4).max(7);
        let mut out = format!(
            "estimated online cost per inference at batch {} under {} (protocol formulas: bytes grow with the batch, rounds do not)\n{:<width$}  {:>7}  {:>10}\n",
            self.batch,
            self.protocol.name(),
            "node",
            "rounds",
            "bytes"
        );
        let mut row = |name: &str, s: Stats| {
            writeln!(
                out,
                "{name:<width$}  {:>7}  {:>10}",
                s.rounds,
                human_bytes(s.bytes_sent)
            )
            .unwrap();
        };
        row("(input)", stats(self.input));
        for (node, s) in nodes {
            row(node, s);
        }
        row("total", self.total());
        let names = self.protocol.party_names();
        let parties: Vec<String> = (names.iter().zip(self.parties.party_bytes()))
            .map(|(role, bytes)| format!("{role} {}", human_bytes(bytes)))
            .collect();
        writeln!(
            out,
            "sent by {}; the client {} (its input shares)",
            parties.join(", "),
            human_bytes(self.input.bytes())
        )
        .unwrap();
        out
    }

    pub fn json(&self) -> serde_json::Value {
        let nodes: Vec<_> = self
            .by_node()
            .into_iter()
            .map(|(n, s)| json!({"node": n, "rounds": s.rounds, "bytes": s.bytes_sent}))
            .collect();
        let total = self.total();
        json!({
            "batch": self.batch,
            "protocol": self.protocol.name(),
            "input_bytes": self.input.bytes(),
            "party_roles": self.protocol.party_names(),
            "bytes_by_party": self.parties.party_bytes(),
            "nodes": nodes,
            "rounds": total.rounds,
            "bytes": total.bytes_sent,
        })
    }

    /// The measured profile of a run at this batch beside the estimate, step by step.
    pub fn compare(&self, measured: &Profile) -> String {
        let width = measured.node_width();
        let mut out = format!(
            "{:<width$}  {:<10} {:>10} {:>12} {:>12} {:>7} {:>7}\n",
            "node", "op", "time ms", "bytes", "estimated", "rounds", "est."
        );
        let total = (measured.total(), self.steps.total());
        let rows = measured.steps.iter().zip(&self.steps.steps);
        for (m, e) in rows.chain(std::iter::once((&total.0, &total.1))) {
            writeln!(
                out,
                "{:<width$}  {:<10} {:>10.3} {:>12} {:>12} {:>7} {:>7}",
                m.node,
                m.op,
                m.time.as_secs_f64() * 1e3,
                m.stats.bytes_sent,
                e.stats.bytes_sent,
                m.stats.rounds,
                e.stats.rounds
            )
            .unwrap();
        }
        out
    }

    /// What each party sent in a run at this batch (in party order) beside the estimate.
    pub fn compare_parties(&self, measured: &[Stats]) -> String {
        let names = self.protocol.party_names();
        let width = names.iter().map(|n| n.len()).max().unwrap_or(0).max(7);
        let mut out = format!(
            "{:<width$}  {:>12} {:>12}\n",
            "sent by", "bytes", "estimated"
        );
        for ((name, m), e) in names.iter().zip(measured).zip(self.parties.party_bytes()) {
            writeln!(out, "{name:<width$}  {:>12} {e:>12}", m.bytes_sent).unwrap();
        }
        out
    }
}
