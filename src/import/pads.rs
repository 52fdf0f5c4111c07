//! Pad with an `axes` input (opset 18) for tract's shape inference.
//!
//! tract constrains only the listed axes of such a Pad's output, so the others (the batch
//! among them) stay unknown, and so does every shape after it. For analysis only, each such
//! Pad whose pads and axes are known gets pads over every axis (zeros for the unlisted ones)
//! and no axes input; the lowering reads the original node.

use super::{Fact, int64_initializer, ints};
use std::collections::HashMap;
use tract_onnx::pb;

/// A copy of `proto` with full-rank pads wherever a Pad's output shape is unknown because of
/// its axes input, or `None` when there is no such Pad.
pub fn with_full_rank_pads(
    proto: &pb::ModelProto,
    facts: &HashMap<String, Fact>,
) -> Option<pb::ModelProto> {
    let mut proto = proto.clone();
    let graph = proto.graph.as_mut()?;
    let mut added = vec![];
    for (index, node) in graph.node.iter_mut().enumerate() {
        let open = |name: &String| facts.get(name).is_none_or(|f| f.shape.is_none());
        if node.op_type != "Pad"
            || node.input.len() < 4
            || node.input[3].is_empty()
            || !node.output.first().is_some_and(open)
        {
            continue;
        }
        let Some(pads) = full_rank(facts, &node.input) else {
            continue;
        };
        let name = format!("tfe_full_rank_pads_{index}");
        added.push(int64_initializer(name.clone(), pads));
        node.input[1] = name;
        node.input.truncate(3);
    }
    if added.is_empty() {
        return None;
    }
    graph.initializer.extend(added);
    Some(proto)
}

/// Begins then ends over every axis of the data input, from the known pads and axes.
fn full_rank(facts: &HashMap<String, Fact>, inputs: &[String]) -> Option<Vec<i64>> {
    let fact = |i: usize| facts.get(&inputs[i]);
    let rank = fact(0)?.shape.as_ref()?.rank() as i64;
    let konst = |i: usize| ints(fact(i)?.konst.as_ref()?).ok();
    let (pads, axes) = (konst(1)?, konst(3)?);
    if pads.len() != 2 * axes.len() {
        return None;
    }
    let mut full = vec![0; 2 * rank as usize];
    for (i, &axis) in axes.iter().enumerate() {
        let axis = if axis < 0 { axis + rank } else { axis };
        if !(0..rank).contains(&axis) {
            return None;
        }
        full[axis as usize] = pads[i];
        full[(axis + rank) as usize] = pads[i + axes.len()];
    }
    Some(full)
}
