//! Comparisons of one secret tensor with constants, batched into one gate: a k-NN's class
//! votes compare the neighbours' labels with each class (`Equal(labels, k)` for every k), a
//! threshold model one feature with several cut points. Each comparison alone costs the 9
//! rounds of a gate; lowered together at the first of them (`compare::comparison`), their
//! differences are stacked and go through one gate, so the group costs 4 rounds in all (at the default width).

use super::args::is_bool;
use crate::import::{Graph, Node};
use crate::plan::Shape;
use std::collections::HashMap;

const COMPARISONS: &[&str] = &["Greater", "Less", "GreaterOrEqual", "LessOrEqual", "Equal"];

#[derive(Default)]
pub struct ComparisonGroups {
    /// first member's node name -> every member, in graph order
    members: HashMap<String, Vec<Node>>,
    /// other member's node name -> the first member
    lowered_with: HashMap<String, String>,
}

impl ComparisonGroups {
    /// Groups the comparisons (of the default domain, computed at run time) that read the
    /// same secret tensor against a constant and have the same output shape. A comparison
    /// of two booleans is left out (it is an xor, not a gate).
    pub fn find(graph: &Graph) -> ComparisonGroups {
        let constant = |t: &str| !graph.is_secret(t) && graph.constant(t).is_some();
        let mut keys: Vec<(&str, Shape)> = vec![];
        let mut members: Vec<Vec<&Node>> = vec![];
        for node in graph.model.nodes.iter().filter(|n| {
            COMPARISONS.contains(&n.op_type.as_str())
                && (n.domain.is_empty() || n.domain == "ai.onnx")
                && graph.is_secret(n.output())
        }) {
            let (Some(a), Some(b)) = (node.input(0), node.input(1)) else {
                continue;
            };
            let shared = match (constant(a), constant(b)) {
                (false, true) => a,
                (true, false) => b,
                _ => continue,
            };
            let Ok(shape) = graph.shape(node.output()) else {
                continue;
            };
            if is_bool(graph, a) && is_bool(graph, b) {
                continue;
            }
            let key = (shared, shape.clone());
            match keys.iter().position(|k| *k == key) {
                Some(i) => members[i].push(node),
                None => {
                    keys.push(key);
                    members.push(vec![node]);
                }
            }
        }
        let mut groups = ComparisonGroups::default();
        for group in members.into_iter().filter(|m| m.len() > 1) {
            let first = group[0].name.clone();
            for other in &group[1..] {
                groups
                    .lowered_with
                    .insert(other.name.clone(), first.clone());
            }
            groups
                .members
                .insert(first, group.into_iter().cloned().collect());
        }
        groups
    }

    pub fn group_at(&self, node: &str) -> Option<&[Node]> {
        self.members.get(node).map(Vec::as_slice)
    }

    pub fn lowered_with(&self, node: &str) -> Option<&str> {
        self.lowered_with.get(node).map(String::as_str)
    }
}
