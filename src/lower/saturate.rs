//! Attention masks. Exporters mask attention scores with constants far outside any
//! fixed-point range (`-inf`, `finfo(float32).min` = -3.4e38, `-1e9`), added to the scores or
//! picked by `Where`, then fed to Softmax. Softmax subtracts each row's max before exp, and
//! exp is zero at the fixed-point resolution below -24, so a masked entry only has to sit
//! more than 24 below its row's max. Such a constant is therefore saturated to ±S, with S
//! ([`mask_bound`]) 1/64 of the fixed-point range: 2^24 = 16,777,216 at 16 fractional bits.
//! That still drives exp to zero unless the unmasked scores of a row spread over more than
//! S - 24, and leaves room for what follows: a product with a secret 0/1 bit (`Where` with a
//! secret condition computes `c (a - b)`, |a - b| <= S + |a|), and sums of up to 63 of them
//! with the scores, all below the range 2^(62-2f).
//!
//! Only constants whose every run-time path leads into a Softmax's input through ops that
//! carry a value unscaled (additions, `Where` branches, max/min, data movement) saturate;
//! anywhere else a constant beyond the range is still refused, since saturating it would
//! change the result. What it changes: a row whose entries are all masked gets the softmax
//! of its scores instead of a uniform row (finfo.min) or NaN (-inf); rows that the model's
//! own `Where(IsNaN(...))` guard zeroes in float keep those values.

use super::readers::Readers;
use crate::import::{Graph, Node};
use crate::tensor::FixedPoint;
use anyhow::{Result, bail};
use ndarray::ArrayD;
use std::collections::HashMap;

/// How much of the fixed-point range a saturated mask takes: 1/64, so that 63 of them summed
/// with the scores stay in range.
const MASK_HEADROOM: f64 = 64.0;
/// Below this bound masked entries could survive exp (e^-1000 is zero at any precision; at
/// 24 fractional bits and more the bound would be 2^8 or less).
const SMALLEST_BOUND: f64 = 1024.0;

/// For the error a constant beyond the range gets elsewhere.
pub const WHERE_SATURATED: &str =
    "constants beyond the range are only saturated where they mask the input of a Softmax";

/// The magnitude mask constants saturate to: 2^(56 - 2f).
pub fn mask_bound(fixed_point: FixedPoint) -> Result<f32> {
    let bound = fixed_point.max_abs() / MASK_HEADROOM;
    if bound < SMALLEST_BOUND {
        bail!(
            "an attention mask saturates to +-{bound} with {} fractional bits, too little for exp to reach zero; convert with --frac-bits 23 or fewer",
            fixed_point.frac_bits
        );
    }
    Ok(bound as f32)
}

/// `data` with every element beyond the mask bound (infinities included) set to the bound
/// with its sign, and how many elements changed.
pub fn saturate(data: &ArrayD<f32>, fixed_point: FixedPoint) -> Result<(ArrayD<f32>, usize)> {
    if data.iter().any(|v| v.is_nan()) {
        bail!("a NaN element cannot stand for a mask");
    }
    let bound = mask_bound(fixed_point)?;
    let count = data.iter().filter(|v| v.abs() > bound).count();
    Ok((data.mapv(|v| v.clamp(-bound, bound)), count))
}

/// Constants that only shift the inputs of a Softmax, with that Softmax.
pub struct Saturations {
    softmax_for: HashMap<String, String>,
}

impl Saturations {
    pub fn find(graph: &Graph, readers: &Readers) -> Saturations {
        let mut search = Search {
            graph,
            readers,
            reached: HashMap::new(),
        };
        let mut softmax_for = HashMap::new();
        for node in graph.model.nodes.iter().filter(|n| runs(graph, n)) {
            for input in node.inputs.iter().filter(|i| !i.is_empty()) {
                let constant = !graph.is_secret(input) && graph.constant(input).is_some();
                if !constant || softmax_for.contains_key(input) {
                    continue;
                }
                if let Some(softmax) = search.softmax_reached_from(input) {
                    softmax_for.insert(input.clone(), softmax);
                }
            }
        }
        Saturations { softmax_for }
    }

    /// The Softmax whose input `tensor` only shifts, if it does.
    pub fn softmax_shifted_by(&self, tensor: &str) -> Option<&str> {
        self.softmax_for.get(tensor).map(String::as_str)
    }
}

/// Whether a node runs at run time (it computes from the secret input); the others are
/// folded into constants, which are examined where they are read.
fn runs(graph: &Graph, node: &Node) -> bool {
    node.outputs.iter().any(|o| graph.is_secret(o))
}

/// What a node does with the value in one of its input slots.
enum Carry {
    /// Passes it on unscaled (possibly moved, selected or added to).
    Through,
    /// A Softmax over it.
    Softmax,
    /// Anything else: scales it, or computes something that saturation would change.
    Blocked,
}

fn carry(node: &Node, slot: usize) -> Carry {
    const ANY_SLOT: &[&str] = &["Add", "Sub", "Sum", "Max", "Min", "Concat"];
    const DATA_SLOT: &[&str] = &[
        "Identity",
        "Cast",
        "CastLike",
        "Expand",
        "Reshape",
        "Flatten",
        "Unsqueeze",
        "Squeeze",
        "Transpose",
        "Tile",
        "Slice",
        "Gather",
        "GatherElements",
        "GatherND",
    ];
    let op = node.op_type.as_str();
    if !node.domain.is_empty() && node.domain != "ai.onnx" {
        Carry::Blocked
    } else if op == "Softmax" && slot == 0 {
        Carry::Softmax
    } else if ANY_SLOT.contains(&op)
        || (DATA_SLOT.contains(&op) && slot == 0)
        || (op == "Where" && slot > 0)
    {
        Carry::Through
    } else {
        Carry::Blocked
    }
}

struct Search<'g, 'r> {
    graph: &'g Graph,
    readers: &'r Readers<'g>,
    /// tensor -> the Softmax that all its run-time uses reach, if they all reach one
    reached: HashMap<String, Option<String>>,
}

impl Search<'_, '_> {
    /// A Softmax that `tensor` reaches, when every run-time use of it ends in one through
    /// ops that carry it unscaled (and it is no graph output).
    fn softmax_reached_from(&mut self, tensor: &str) -> Option<String> {
        if let Some(known) = self.reached.get(tensor) {
            return known.clone();
        }
        let reached = self.search(tensor);
        self.reached.insert(tensor.to_string(), reached.clone());
        reached
    }

    fn search(&mut self, tensor: &str) -> Option<String> {
        if self.readers.is_graph_output(tensor) {
            return None;
        }
        let readers: Vec<&Node> = self.readers.of(tensor).to_vec();
        let mut softmax = None;
        for reader in readers.into_iter().filter(|r| runs(self.graph, r)) {
            let slots = reader
                .inputs
                .iter()
                .enumerate()
                .filter(|(_, i)| *i == tensor);
            for (slot, _) in slots {
                softmax = Some(match carry(reader, slot) {
                    Carry::Softmax => reader.name.clone(),
                    Carry::Through => self.softmax_reached_from(reader.outputs.first()?)?,
                    Carry::Blocked => return None,
                });
            }
        }
        softmax
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{IxDyn, arr1};

    #[test]
    fn masks_saturate_to_a_sixty_fourth_of_the_range() {
        let f16 = FixedPoint { frac_bits: 16 };
        assert_eq!(mask_bound(f16).unwrap(), 16_777_216.0);
        assert_eq!(mask_bound(FixedPoint { frac_bits: 23 }).unwrap(), 1024.0);
        assert!(mask_bound(FixedPoint { frac_bits: 24 }).is_err());
        let data = arr1(&[f32::NEG_INFINITY, f32::MIN, -1e4, 0.5, 3e7, f32::INFINITY]).into_dyn();
        let (saturated, count) = saturate(&data, f16).unwrap();
        let s = 16_777_216.0;
        assert_eq!(saturated.as_slice().unwrap(), &[-s, -s, -1e4, 0.5, s, s]);
        assert_eq!(count, 4);
        assert!(saturate(&ArrayD::from_elem(IxDyn(&[1]), f32::NAN), f16).is_err());
    }
}
