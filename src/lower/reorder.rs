//! A monotone activation moved after the max-pooling that alone reads it. A non-decreasing
//! element-wise f commutes with max and min (f(max(a, b)) = max(f(a), f(b))), and padding
//! never decides a max (a window wholly in padding is refused in either order).
//! Pooling first leaves the activation's comparisons to the pooled tensor: 4x fewer after a
//! 2x2 MaxPool. Both nodes keep their steps and names; only their order changes.

use super::Lowering;
use super::readers::Readers;
use super::registry::{Lower, rule_for};
use crate::import::{Graph, Node};
use anyhow::{Context, Result};
use std::collections::HashMap;

/// An activation lowered after the pooling, by its rule.
#[derive(Clone)]
pub struct MovedActivation {
    node: Node,
    rule: Lower,
}

#[derive(Default)]
pub struct Reorders {
    /// pooling node name -> the activation it now runs before
    activation_before: HashMap<String, MovedActivation>,
    /// activation node name -> the pooling node it now runs after
    moved_after: HashMap<String, String>,
}

impl Reorders {
    pub fn find(graph: &Graph, readers: &Readers) -> Reorders {
        let mut reorders = Reorders::default();
        for activation in &graph.model.nodes {
            let (Some(rule), Some(_), Some(output)) = (
                rule_for(activation).filter(|r| r.monotone.is_some_and(|m| m(graph, activation))),
                activation.input(0),
                activation.outputs.first(),
            ) else {
                continue;
            };
            let Some(pool) = readers.sole(output) else {
                continue;
            };
            let pools_it = rule_for(pool).is_some_and(|r| r.reduces_by_max)
                && pool.input(0) == Some(output.as_str())
                && pool.outputs.iter().skip(1).all(|o| o.is_empty());
            if pools_it {
                reorders
                    .moved_after
                    .insert(activation.name.clone(), pool.name.clone());
                let moved = MovedActivation {
                    node: activation.clone(),
                    rule: rule.lower,
                };
                reorders.activation_before.insert(pool.name.clone(), moved);
            }
        }
        reorders
    }

    pub fn moved_after(&self, activation: &str) -> Option<&str> {
        self.moved_after.get(activation).map(String::as_str)
    }

    pub fn activation_before(&self, pool: &str) -> Option<&MovedActivation> {
        self.activation_before.get(pool)
    }
}

/// Lowers `pool` by `pool_rule` on the activation's input, then the activation on the pooled
/// values; the activation's steps compute the pool's output.
pub fn lower_pool_then_activation(
    cx: &mut Lowering,
    pool: &Node,
    pool_rule: Lower,
    activation: &MovedActivation,
) -> Result<()> {
    let pooled = format!("{}/pooled", pool.name);
    let pooled_shape = cx.shape(pool.output())?;
    cx.introduce(&pooled, pooled_shape);
    let mut pool_first = pool.clone();
    pool_first.inputs[0] = activation.node.inputs[0].clone();
    pool_first.outputs[0] = pooled.clone();
    pool_rule(cx, &pool_first)?;
    let mut activation_after = activation.node.clone();
    activation_after.inputs[0] = pooled;
    activation_after.outputs[0] = pool.output().to_string();
    (activation.rule)(cx, &activation_after).with_context(|| {
        format!(
            "{} {} moved after this node",
            activation.node.op_type, activation.node.name
        )
    })
}
