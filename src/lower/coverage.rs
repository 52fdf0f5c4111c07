//! Per-node lowering status: what `tfe-convert --check` prints and CI pipelines gate on.

use crate::import::{Model, Node};
use serde_json::json;
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Clone, Debug, PartialEq)]
pub enum Status {
    /// Became plan steps, using these approximated functions (empty when exact).
    Lowered(Vec<String>),
    /// Became plan steps that follow those of the named later node, which now reads this
    /// node's input (an activation moved after the max-pooling that reads it).
    LoweredAfter(String),
    /// Needs no step: computed at convert time, or merged into another node.
    Folded(String),
    /// Stands in the way of conversion, with the reason.
    Unsupported(String),
}

#[derive(Clone, Debug)]
pub struct NodeReport {
    pub name: String,
    pub op_type: String,
    pub status: Status,
    /// What else the lowering did that a user should know (a saturated mask constant).
    pub notes: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct Coverage {
    pub model: String,
    pub nodes: Vec<NodeReport>,
    /// A failure that is not any one node's (shape inference, graph outputs).
    pub graph_error: Option<String>,
    /// A node failed because a constant is tied to the batch size the model was exported
    /// with ([`super::BatchTie`]): the model may still convert at its declared shapes.
    pub tied_to_batch: bool,
}

impl Coverage {
    pub fn new(model: &Model) -> Coverage {
        Coverage {
            model: model.path.display().to_string(),
            nodes: vec![],
            graph_error: None,
            tied_to_batch: false,
        }
    }

    pub fn record(&mut self, node: &Node, status: Status, notes: Vec<String>) {
        self.nodes.push(NodeReport {
            name: node.name.clone(),
            op_type: node.op_type.clone(),
            status,
            notes,
        });
    }

    pub fn is_supported(&self) -> bool {
        self.graph_error.is_none()
            && !self
                .nodes
                .iter()
                .any(|n| matches!(n.status, Status::Unsupported(_)))
    }

    /// Unsupported op types with how many nodes of each.
    pub fn unsupported_counts(&self) -> BTreeMap<&str, usize> {
        let mut counts = BTreeMap::new();
        for n in &self.nodes {
            if let Status::Unsupported(_) = n.status {
                *counts.entry(n.op_type.as_str()).or_insert(0) += 1;
            }
        }
        counts
    }

    /// Every problem at once, one per line, for a failed conversion.
    pub fn problems(&self) -> String {
        let mut out = String::new();
        for n in &self.nodes {
            if let Status::Unsupported(reason) = &n.status {
                writeln!(out, "  node {} ({}): {reason}", n.name, n.op_type).unwrap();
            }
        }
        if let Some(e) = &self.graph_error {
            writeln!(out, "  {e}").unwrap();
        }
        let counts = self.unsupported_counts();
        if !counts.is_empty() {
            let list: Vec<String> = counts
                .iter()
                .map(|(op, n)| format!("{op} (x{n})"))
                .collect();
            writeln!(out, "unsupported op types: {}", list.join(", ")).unwrap();
        }
        out
    }

    pub fn text(&self) -> String {
        let name_w = self
            .nodes
            .iter()
            .map(|n| n.name.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let op_w = self
            .nodes
            .iter()
            .map(|n| n.op_type.len())
            .max()
            .unwrap_or(7)
            .max(7);
        let mut out = String::new();
        writeln!(out, "{:<name_w$}  {:<op_w$}  status", "node", "op_type").unwrap();
        for n in &self.nodes {
            let status = match &n.status {
                Status::Lowered(approx) if approx.is_empty() => "lowered".to_string(),
                Status::Lowered(approx) => format!(
                    "lowered (approximates {}; see docs/APPROXIMATIONS.md)",
                    approx.join(", ")
                ),
                Status::LoweredAfter(node) => format!("lowered ({})", after(node)),
                Status::Folded(why) => format!("folded ({why})"),
                Status::Unsupported(why) => format!("UNSUPPORTED: {why}"),
            };
            let notes: String = n.notes.iter().map(|note| format!("; {note}")).collect();
            writeln!(
                out,
                "{:<name_w$}  {:<op_w$}  {status}{notes}",
                n.name, n.op_type
            )
            .unwrap();
        }
        let count = |f: fn(&Status) -> bool| self.nodes.iter().filter(|n| f(&n.status)).count();
        writeln!(
            out,
            "\n{} nodes: {} lowered, {} folded, {} unsupported",
            self.nodes.len(),
            count(|s| matches!(s, Status::Lowered(_) | Status::LoweredAfter(_))),
            count(|s| matches!(s, Status::Folded(_))),
            count(|s| matches!(s, Status::Unsupported(_)))
        )
        .unwrap();
        if self.is_supported() {
            writeln!(out, "{}: every operator is supported", self.model).unwrap();
        } else {
            write!(
                out,
                "{}: cannot be converted:\n{}",
                self.model,
                self.problems()
            )
            .unwrap();
        }
        out
    }

    pub fn json(&self) -> serde_json::Value {
        let nodes: Vec<_> = self
            .nodes
            .iter()
            .map(|n| {
                let (status, detail, approximations) = match &n.status {
                    Status::Lowered(a) => ("lowered", None, a.clone()),
                    Status::LoweredAfter(node) => ("lowered", Some(after(node)), vec![]),
                    Status::Folded(d) => ("folded", Some(d.clone()), vec![]),
                    Status::Unsupported(d) => ("unsupported", Some(d.clone()), vec![]),
                };
                json!({"name": n.name, "op_type": n.op_type, "status": status, "detail": detail, "approximations": approximations, "notes": n.notes})
            })
            .collect();
        json!({
            "model": self.model,
            "supported": self.is_supported(),
            "nodes": nodes,
            "unsupported_op_types": self.unsupported_counts(),
            "graph_error": self.graph_error,
        })
    }
}

fn after(node: &str) -> String {
    format!("after {node}, on its pooled values")
}
