//! Who reads each tensor, for the convert-time rewrites (`fuse.rs`, `reorder.rs`), which may
//! only change a tensor that no other node and no graph output sees, and for the mask
//! analysis (`saturate.rs`), which follows a constant to every node it reaches.

use crate::import::{Model, Node};
use std::collections::HashMap;

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
