//! RMS normalisation as exporters decompose it (LLaMA's RMSNorm through torch.onnx):
//! `Pow(x, 2)` (or `Mul(x, x)`) → `ReduceMean(keepdims=1)` → `Add(eps)` → `Sqrt` →
//! `Reciprocal` or `Div(1, ·)` → `Mul` by x, or `Div(x, Sqrt(...))` directly. Lowered op by
//! op that is a sqrt approximation and then a reciprocal one; recognised, the last node
//! computes x · rsqrt(mean(x²) + eps) with one rsqrt (`normalization::rms_of_pattern`), and
//! the others fold into it. Each intermediate must be read by the next node alone (and be
//! no graph output), so that nothing else sees the values the rewrite skips.

use super::readers::{Anchored, Readers, producers, scalar};
use crate::import::{Graph, Node};
use std::collections::HashMap;

/// A recognised RMS normalisation, anchored at its last node.
#[derive(Clone)]
pub struct RmsPattern {
    /// The normalised tensor.
    pub x: String,
    /// The ReduceMean node, whose axes the normalisation takes.
    pub mean: Node,
    pub eps: f32,
    /// The nodes folded into the anchor, in graph order.
    pub absorbed: Vec<String>,
}

pub type RmsPatterns = Anchored<RmsPattern>;

impl RmsPatterns {
    pub fn find(graph: &Graph, readers: &Readers) -> RmsPatterns {
        let search = Search {
            graph,
            readers,
            producers: producers(&graph.model),
        };
        let mut patterns = RmsPatterns::default();
        for anchor in &graph.model.nodes {
            if let Some(pattern) = search.pattern_at(anchor) {
                let absorbed = pattern.absorbed.clone();
                patterns.insert(&anchor.name, absorbed.iter().map(String::as_str), pattern);
            }
        }
        patterns
    }
}

struct Search<'g, 'r> {
    graph: &'g Graph,
    readers: &'r Readers<'g>,
    producers: HashMap<&'g str, &'g Node>,
}

impl<'g> Search<'g, '_> {
    /// The node computing `tensor` when it is one of `ops` and `next` alone reads it.
    fn link(&self, tensor: &str, ops: &[&str], next: &Node) -> Option<&'g Node> {
        let producer = self.producers.get(tensor)?;
        let sole = self.readers.sole(tensor)?;
        (ops.contains(&producer.op_type.as_str()) && sole.name == next.name).then_some(producer)
    }

    fn scalar(&self, tensor: &str) -> Option<f32> {
        scalar(self.graph, tensor)
    }

    /// `(x, sqrt node)` for an anchor `Mul(x, 1/sqrt)` (either order) or `Div(x, sqrt)`.
    fn anchor_parts(&self, anchor: &'g Node) -> Option<(&'g str, &'g Node, Vec<&'g Node>)> {
        let (a, b) = (anchor.input(0)?, anchor.input(1)?);
        if anchor.op_type == "Div" {
            return Some((a, self.link(b, &["Sqrt"], anchor)?, vec![]));
        }
        if anchor.op_type != "Mul" {
            return None;
        }
        [(a, b), (b, a)].into_iter().find_map(|(x, inverse)| {
            let inverse = self.link(inverse, &["Reciprocal", "Div"], anchor)?;
            let root = match inverse.op_type.as_str() {
                "Div" if self.scalar(inverse.input(0)?) == Some(1.0) => inverse.input(1)?,
                "Reciprocal" => inverse.input(0)?,
                _ => return None,
            };
            Some((x, self.link(root, &["Sqrt"], inverse)?, vec![inverse]))
        })
    }

    fn pattern_at(&self, anchor: &'g Node) -> Option<RmsPattern> {
        let (x, sqrt, inverse) = self.anchor_parts(anchor)?;
        if !self.graph.is_secret(x) {
            return None;
        }
        let add = self.link(sqrt.input(0)?, &["Add"], sqrt)?;
        let (a, b) = (add.input(0)?, add.input(1)?);
        let (mean_square, eps) = match (self.scalar(a), self.scalar(b)) {
            (None, Some(eps)) => (a, eps),
            (Some(eps), None) => (b, eps),
            _ => return None,
        };
        let mean = self.link(mean_square, &["ReduceMean"], add)?;
        if mean.int("keepdims", 1).ok()? != 1 {
            return None;
        }
        let square = self.link(mean.input(0)?, &["Pow", "Mul"], mean)?;
        let squares_x = match square.op_type.as_str() {
            "Pow" => square.input(0)? == x && self.scalar(square.input(1)?) == Some(2.0),
            _ => square.input(0)? == x && square.input(1)? == x,
        };
        if !squares_x {
            return None;
        }
        let absorbed = [square, mean, add, sqrt]
            .into_iter()
            .chain(inverse)
            .map(|n| n.name.clone())
            .collect();
        Some(RmsPattern {
            x: x.to_string(),
            mean: mean.clone(),
            eps,
            absorbed,
        })
    }
}
