//! Per-step time and traffic, for `tfe-predict --profile` and the benchmarks.

use crate::net::Stats;
use std::fmt::Write;
use std::time::Duration;

/// Words per step in [`Profile::to_words`].
const WORDS_PER_STEP: usize = 4;

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

    /// Each step's figures as words (time in ns, bytes, messages, rounds), for a party's
    /// report over the wire. The names stay behind: the client has them from its plan.
    pub fn to_words(&self) -> Vec<u64> {
        self.steps
            .iter()
            .flat_map(|s| {
                let time = u64::try_from(s.time.as_nanos()).unwrap_or(u64::MAX);
                [
                    time,
                    s.stats.bytes_sent,
                    s.stats.messages_sent,
                    s.stats.rounds,
                ]
            })
            .collect()
    }

    /// The inverse of [`Profile::to_words`] for steps with these (node, op) names; `None`
    /// when the word count does not match them.
    pub fn from_words(words: &[u64], names: &[(&str, &str)]) -> Option<Profile> {
        if words.len() != WORDS_PER_STEP * names.len() {
            return None;
        }
        let mut profile = Profile::default();
        for (&(node, op), w) in names.iter().zip(words.chunks_exact(WORDS_PER_STEP)) {
            let stats = Stats {
                bytes_sent: w[1],
                messages_sent: w[2],
                rounds: w[3],
            };
            profile.record(node, op, Duration::from_nanos(w[0]), stats);
        }
        Some(profile)
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

/// Bytes in a readable unit.
pub fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
        b if b >= 1 << 20 => format!("{:.2} MiB", b as f64 / (1u64 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}
