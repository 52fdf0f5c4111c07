//! `tfe-convert --calibrate`: the float interpreter run on sample inputs, and per node the
//! largest magnitude it reaches against the fixed-point range, so that a model whose values
//! would overflow is caught at convert time, with the fractional bits that fit.
//!
//! Every secure step needs |x| < 2^(62 - 2f) for every value: a product of two values is
//! held at scale 2^(2f) before its truncation, which is exact only below 2^62, and a
//! comparison reads 64 - f bits, twice that range for the difference of two values.

use crate::exec::approx;
use crate::plan::{Op, Plan, ValueId};
use crate::serve::{PlaintextSession, Session};
use crate::tensor::FixedPoint;
use anyhow::Result;
use ndarray::ArrayD;
use std::collections::HashMap;
use std::sync::Arc;

/// Factor between the largest magnitude the samples reach and the limit below which the
/// recommendation keeps it: inputs beyond the samples' have room.
pub const HEADROOM: f64 = 16.0;

/// One ONNX node's steps over all samples.
#[derive(Clone, Debug)]
pub struct NodeRange {
    pub node: String,
    /// The plan ops the node became, in order.
    pub ops: Vec<&'static str>,
    /// Largest |value| any of its steps produced.
    pub max_abs: f64,
    /// Functions whose input left the domain their documented error holds on, with the
    /// input range seen.
    pub outside_domain: Vec<(String, f64, f64)>,
}

#[derive(Clone, Debug)]
pub struct Calibration {
    pub frac_bits: u32,
    pub samples: usize,
    pub nodes: Vec<NodeRange>,
}

/// The largest |x| every value must stay below at `frac_bits`.
pub fn limit(frac_bits: u32) -> f64 {
    2f64.powi(62 - 2 * frac_bits as i32)
}

impl Calibration {
    /// Runs `plan` in float on `inputs` (one array per graph input, the samples along the
    /// batch axis) and records every node's range.
    pub fn run(plan: &Plan, inputs: &[ArrayD<f32>]) -> Result<Calibration> {
        // Every step's output becomes an output, so one run shows them all.
        let mut probe = plan.clone();
        probe.outputs = plan.steps.iter().map(|s| s.output).collect();
        let outputs = PlaintextSession::float(Arc::new(probe))
            .predict(inputs)?
            .outputs;
        // Every value's (min, max): graph inputs from the samples, weights, step outputs.
        let mut ranges: HashMap<ValueId, (f64, f64)> = HashMap::new();
        for (input, x) in plan.inputs.iter().zip(inputs) {
            ranges.insert(input.value, min_max(x));
        }
        for w in &plan.weights {
            ranges.insert(w.value, min_max(&w.data));
        }
        for (step, out) in plan.steps.iter().zip(&outputs) {
            ranges.insert(step.output, min_max(out));
        }
        let mut nodes: Vec<NodeRange> = vec![];
        for (step, out) in plan.steps.iter().zip(&outputs) {
            let at = match nodes.iter().position(|n| n.node == step.node) {
                Some(at) => at,
                None => {
                    nodes.push(NodeRange {
                        node: step.node.clone(),
                        ops: vec![],
                        max_abs: 0.0,
                        outside_domain: vec![],
                    });
                    nodes.len() - 1
                }
            };
            let node = &mut nodes[at];
            node.ops.push(step.op.name());
            let (lo, hi) = min_max(out);
            node.max_abs = node.max_abs.max(lo.abs()).max(hi.abs());
            if let Op::Function { function } = &step.op {
                let (from, to) = approx::domain(*function);
                if let Some(&(lo, hi)) = ranges.get(&step.inputs[0])
                    && (lo < from || hi > to)
                {
                    node.outside_domain
                        .push((function.name().to_string(), from, to));
                }
            }
        }
        Ok(Calibration {
            frac_bits: plan.fixed_point.frac_bits,
            samples: inputs
                .first()
                .map_or(0, |x| x.shape().first().copied().unwrap_or(1)),
            nodes,
        })
    }

    /// The largest magnitude over every node.
    pub fn max_abs(&self) -> f64 {
        self.nodes.iter().map(|n| n.max_abs).fold(0.0, f64::max)
    }

    /// Nodes whose values leave the range at the plan's fractional bits.
    pub fn overflowing(&self) -> Vec<&NodeRange> {
        let limit = limit(self.frac_bits);
        self.nodes.iter().filter(|n| n.max_abs >= limit).collect()
    }

    /// The most fractional bits that keep [`HEADROOM`] times the largest magnitude in
    /// range, or `None` when even one bit does not.
    pub fn largest_fitting(&self) -> Option<u32> {
        let need = self.max_abs() * HEADROOM;
        (1..=FixedPoint::MAX_FRAC_BITS)
            .rev()
            .find(|&f| need < limit(f))
    }

    /// The bits to use: the default when it fits, else the most that fit.
    pub fn recommended(&self) -> Option<u32> {
        self.largest_fitting()
            .map(|f| f.min(FixedPoint::DEFAULT_FRAC_BITS))
    }

    pub fn text(&self) -> String {
        let f = self.frac_bits;
        let limit = limit(f);
        let mut out = format!(
            "calibration on {} sample(s) at {f} fractional bits: every value must stay below {limit:.4e}\n",
            self.samples
        );
        let width = self
            .nodes
            .iter()
            .map(|n| n.node.len())
            .max()
            .unwrap_or(4)
            .max(4);
        out += &format!(
            "{:width$}  {:>12}  {:>9}  status\n",
            "node", "max |x|", "headroom"
        );
        for n in &self.nodes {
            let status = if n.max_abs >= limit {
                "OVERFLOWS".to_string()
            } else if n.max_abs * HEADROOM >= limit {
                format!("within {HEADROOM}x of the limit")
            } else {
                "ok".to_string()
            };
            out += &format!(
                "{:width$}  {:>12.4e}  {:>9}  {status}\n",
                n.node,
                n.max_abs,
                headroom_bits(n.max_abs, limit),
            );
            for (function, lo, hi) in &n.outside_domain {
                out += &format!(
                    "{:width$}  note: the {function} input leaves [{lo}, {hi}], where its approximation's error is documented (it saturates there)\n",
                    ""
                );
            }
        }
        out += &match (self.largest_fitting(), self.recommended()) {
            (Some(fits), Some(rec)) => format!(
                "largest magnitude {:.4e}; up to {fits} fractional bits keep {HEADROOM}x headroom: use --frac-bits {rec}\n",
                self.max_abs()
            ),
            _ => format!(
                "largest magnitude {:.4e} exceeds the fixed-point range at any number of fractional bits: scale the model's inputs or weights\n",
                self.max_abs()
            ),
        };
        out
    }

    pub fn json(&self) -> serde_json::Value {
        let limit = limit(self.frac_bits);
        serde_json::json!({
            "frac_bits": self.frac_bits,
            "limit": limit,
            "samples": self.samples,
            "max_abs": self.max_abs(),
            "largest_fitting_frac_bits": self.largest_fitting(),
            "recommended_frac_bits": self.recommended(),
            "overflow": !self.overflowing().is_empty(),
            "nodes": self.nodes.iter().map(|n| serde_json::json!({
                "node": n.node,
                "ops": n.ops,
                "max_abs": n.max_abs,
                "overflows": n.max_abs >= limit,
                "outside_domain": n.outside_domain.iter().map(|(f, lo, hi)| serde_json::json!({
                    "function": f, "domain": [lo, hi],
                })).collect::<Vec<_>>(),
            })).collect::<Vec<_>>(),
        })
    }
}

/// Bits between `value` and `limit`, for the report (negative past it).
fn headroom_bits(value: f64, limit: f64) -> String {
    if value == 0.0 {
        "-".to_string()
    } else {
        format!("{:.1} b", (limit / value).log2())
    }
}

/// The smallest and largest element (0, 0 when empty).
fn min_max(x: &ArrayD<f32>) -> (f64, f64) {
    let (lo, hi) = x
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
            (lo.min(v as f64), hi.max(v as f64))
        });
    if lo > hi { (0.0, 0.0) } else { (lo, hi) }
}
