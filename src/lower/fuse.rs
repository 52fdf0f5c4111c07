//! BatchNormalization folded into the Conv or Gemm before it, at convert time: the
//! normalisation becomes a per-output-channel scale of the weights and a new bias, so it
//! costs nothing at run time and loses no precision.

use super::readers::Readers;
use super::registry::rule_for;
use crate::import::{Graph, Node};
use std::collections::HashMap;

#[derive(Default)]
pub struct Fusions {
    /// producer node name -> the BatchNormalization node it absorbs
    bn_after: HashMap<String, Node>,
    /// BatchNormalization node name -> the producer that absorbs it
    absorbed_by: HashMap<String, String>,
}

impl Fusions {
    pub fn find(graph: &Graph, readers: &Readers) -> Fusions {
        let model = &graph.model;
        let producer: HashMap<&str, &Node> = model
            .nodes
            .iter()
            .flat_map(|n| n.outputs.iter().map(move |o| (o.as_str(), n)))
            .collect();
        let mut fusions = Fusions::default();
        for bn in model
            .nodes
            .iter()
            .filter(|n| n.op_type == "BatchNormalization")
        {
            let Some(x) = bn.input(0) else { continue };
            let params_known = (1..5).all(|i| {
                bn.input(i)
                    .is_some_and(|t| !graph.is_secret(t) && graph.constant(t).is_some())
            });
            let training = bn.int("training_mode", 0).unwrap_or(1) != 0
                || bn.outputs.iter().skip(1).any(|o| !o.is_empty());
            let Some(p) = producer.get(x) else { continue };
            let foldable_producer = rule_for(p).is_some_and(|r| r.absorbs_batch_norm)
                && p.input(1)
                    .is_some_and(|w| !graph.is_secret(w) && graph.constant(w).is_some())
                && p.input(2)
                    .is_none_or(|b| !graph.is_secret(b) && graph.constant(b).is_some());
            let sole_reader = readers.sole(x).is_some();
            if params_known
                && !training
                && foldable_producer
                && sole_reader
                && !fusions.bn_after.contains_key(&p.name)
            {
                fusions.absorbed_by.insert(bn.name.clone(), p.name.clone());
                fusions.bn_after.insert(p.name.clone(), bn.clone());
            }
        }
        fusions
    }

    pub fn absorbed_by(&self, bn: &str) -> Option<&str> {
        self.absorbed_by.get(bn).map(String::as_str)
    }

    pub fn bn_after(&self, producer: &str) -> Option<&Node> {
        self.bn_after.get(producer)
    }
}
