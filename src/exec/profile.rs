//! Per-step time and traffic, for `tfe-predict --profile` and the benchmarks.

use crate::net::Stats;
use std::fmt::Write;
use std::time::Duration;

#[derive(Clone, Debug, Default)]
pub struct StepCost {
    pub node: String,
    pub op: String,
    pub time: Duration,
    /// Bytes sent by all parties together; rounds as seen by the slowest party.
    pub stats: Stats,
}

#[derive(Clone, Debug, Default)]
pub struct Profile {
    pub steps: Vec<StepCost>,
}

impl Profile {
    pub fn record(&mut self, node: &str, op: &str, time: Duration, stats: Stats) {
        self.steps.push(StepCost {
            node: node.to_string(),
            op: op.to_string(),
            time,
            stats,
        });
    }

    /// One profile from the three parties' own: the slowest time and most rounds, the sum
    /// of the bytes. The parties run the same steps in the same order.
    pub fn merge_parties(parts: &[Profile]) -> Profile {
        let mut merged = parts[0].clone();
        for part in &parts[1..] {
            for (m, s) in merged.steps.iter_mut().zip(&part.steps) {
                m.time = m.time.max(s.time);
                m.stats = m.stats.alongside(s.stats);
            }
        }
        merged
    }

    pub fn total(&self) -> StepCost {
        let mut total = StepCost {
            node: "total".into(),
            op: String::new(),
            ..Default::default()
        };
        for s in &self.steps {
            total.time += s.time;
            total.stats = total.stats + s.stats;
        }
        total
    }

    /// Width of the node column in tables of this profile (fits "total").
    pub fn node_width(&self) -> usize {
        self.steps
            .iter()
            .map(|s| s.node.len())
            .max()
            .unwrap_or(4)
            .max(5)
    }

    pub fn table(&self) -> String {
        let width = self.node_width();
        let mut out = String::new();
        writeln!(
            out,
            "{:<width$}  {:<10} {:>10} {:>12} {:>7}",
            "node", "op", "time ms", "bytes", "rounds"
        )
        .unwrap();
        for s in self.steps.iter().chain(std::iter::once(&self.total())) {
            writeln!(
                out,
                "{:<width$}  {:<10} {:>10.3} {:>12} {:>7}",
                s.node,
                s.op,
                s.time.as_secs_f64() * 1e3,
                s.stats.bytes_sent,
                s.stats.rounds
            )
            .unwrap();
        }
        out
    }
}
