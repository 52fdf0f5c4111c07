//! Who reads each tensor, for the convert-time rewrites (`fuse.rs`, `reorder.rs`), which may
//! only change a tensor that no other node and no graph output sees, and for the mask
//! analysis (`saturate.rs`), which follows a constant to every node it reaches; and, for the
//! rewrites that fold a run of nodes into its last (`rms.rs`, `activation_patterns.rs`),
//! who writes each tensor and which node absorbs which.

use crate::import::{Graph, Model, Node};
use std::collections::HashMap;

/// The node computing each tensor.
pub fn producers(model: &Model) -> HashMap<&str, &Node> {
    model
        .nodes
        .iter()
        .flat_map(|n| n.outputs.iter().map(move |o| (o.as_str(), n)))
        .collect()
}

/// The single value of a constant tensor.
pub fn scalar(graph: &Graph, tensor: &str) -> Option<f32> {
    if graph.is_secret(tensor) {
        return None;
    }
    let values = crate::import::floats(graph.constant(tensor)?).ok()?;
    (values.len() == 1).then(|| values.iter().next().copied())?
}

/// Patterns anchored at their last node, which computes the whole pattern; the others fold
/// into it.
pub struct Anchored<P> {
    /// anchor node name -> its pattern
    anchored: HashMap<String, P>,
    /// absorbed node name -> the anchor
    absorbed_by: HashMap<String, String>,
}

impl<P> Default for Anchored<P> {
    fn default() -> Self {
        Anchored {
            anchored: HashMap::new(),
            absorbed_by: HashMap::new(),
        }
    }
}

impl<P> Anchored<P> {
    pub fn insert<'a>(
        &mut self,
        anchor: &str,
        absorbed: impl IntoIterator<Item = &'a str>,
        pattern: P,
    ) {
        for name in absorbed {
            self.absorbed_by
                .insert(name.to_string(), anchor.to_string());
        }
        self.anchored.insert(anchor.to_string(), pattern);
    }

    pub fn absorbed_by(&self, node: &str) -> Option<&str> {
        self.absorbed_by.get(node).map(String::as_str)
    }

    pub fn anchored_at(&self, node: &str) -> Option<&P> {
        self.anchored.get(node)
    }
}

pub struct Readers<'m> {
    /// tensor -> one entry per input slot that reads it
    readers: HashMap<&'m str, Vec<&'m Node>>,
    graph_outputs: &'m [String],
}

impl<'m> Readers<'m> {
    pub fn new(model: &'m Model) -> Readers<'m> {
        let mut readers: HashMap<&str, Vec<&Node>> = HashMap::new();
        for node in &model.nodes {
            for input in node.inputs.iter().filter(|i| !i.is_empty()) {
                readers.entry(input.as_str()).or_default().push(node);
            }
        }
        Readers {
            readers,
            graph_outputs: &model.outputs,
        }
    }

    /// Every node that reads `tensor`, once per input slot.
    pub fn of(&self, tensor: &str) -> &[&'m Node] {
        self.readers.get(tensor).map_or(&[], Vec::as_slice)
    }

    pub fn is_graph_output(&self, tensor: &str) -> bool {
        self.graph_outputs.iter().any(|o| o == tensor)
    }

    /// The node that reads `tensor` once and alone, when `tensor` is not a graph output.
    pub fn sole(&self, tensor: &str) -> Option<&'m Node> {
        match self.readers.get(tensor)?.as_slice() {
            [only] if !self.graph_outputs.iter().any(|o| o == tensor) => Some(only),
            _ => None,
        }
    }
}
