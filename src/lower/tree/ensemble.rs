//! The three attribute layouts of tree ensembles (TreeEnsembleClassifier and
//! TreeEnsembleRegressor of ai.onnx.ml 1-3, TreeEnsemble of ai.onnx.ml 5) read into one
//! model: branch nodes, leaves with their weights per target, the roots of the trees.

use crate::import::Node;
use anyhow::{Result, anyhow, bail, ensure};
use std::collections::HashMap;

/// How a branch node compares its feature x with its value(s) t: true when ...
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// x <= t
    Leq,
    /// x < t
    Lt,
    /// x >= t
    Gte,
    /// x > t
    Gt,
    /// x == t
    Eq,
    /// x != t
    Neq,
    /// x is one of a set of values (ai.onnx.ml 5's BRANCH_MEMBER)
    Member,
}

impl Mode {
    fn named(name: &str) -> Option<Mode> {
        Some(match name {
            "BRANCH_LEQ" => Mode::Leq,
            "BRANCH_LT" => Mode::Lt,
            "BRANCH_GTE" => Mode::Gte,
            "BRANCH_GT" => Mode::Gt,
            "BRANCH_EQ" => Mode::Eq,
            "BRANCH_NEQ" => Mode::Neq,
            "BRANCH_MEMBER" => Mode::Member,
            _ => return None,
        })
    }
}

/// Where a branch leads: another branch node or a leaf (indices into the ensemble's lists).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Child {
    Branch(usize),
    Leaf(usize),
}

#[derive(Clone, Debug)]
pub struct Branch {
    pub feature: usize,
    pub mode: Mode,
    /// The threshold, or the set for `Member`.
    pub values: Vec<f32>,
    /// Where the comparison sends a row when it holds, and when it does not.
    pub if_true: Child,
    pub if_false: Child,
}

/// How the trees' outputs combine for each target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregate {
    Sum,
    Average,
    Min,
    Max,
}

#[derive(Clone, Debug)]
pub struct Ensemble {
    pub branches: Vec<Branch>,
    /// Each leaf's weights as (target, weight), in the order the model lists them.
    pub leaves: Vec<Vec<(usize, f32)>>,
    pub roots: Vec<Child>,
    pub targets: usize,
    /// Added to each target's score (empty: none).
    pub base_values: Vec<f32>,
    pub aggregate: Aggregate,
}

/// A float list given as floats or as `{name}_as_tensor` (doubles).
fn floats(node: &Node, name: &str) -> Result<Option<Vec<f32>>> {
    if let Some(v) = node.floats(name)? {
        return Ok(Some(v));
    }
    let as_tensor = node.tensor_numbers(&format!("{name}_as_tensor"))?;
    Ok(as_tensor.map(|v| v.into_iter().map(|x| x as f32).collect()))
}

fn required<T>(node: &Node, name: &str, v: Option<T>) -> Result<T> {
    v.ok_or_else(|| anyhow!("{} {} lacks the {name} attribute", node.op_type, node.name))
}

fn index(node: &Node, what: &str, v: i64, bound: usize) -> Result<usize> {
    usize::try_from(v)
        .ok()
        .filter(|&i| i < bound)
        .ok_or_else(|| {
            anyhow!(
                "{} {}: {what} {v} is out of range (0..{bound})",
                node.op_type,
                node.name
            )
        })
}

fn same_length(node: &Node, lists: &[(&str, usize)]) -> Result<()> {
    let (first, n) = lists[0];
    for &(name, len) in &lists[1..] {
        ensure!(
            len == n,
            "{} {}: {name} has {len} entries but {first} has {n}",
            node.op_type,
            node.name
        );
    }
    Ok(())
}

/// TreeEnsembleClassifier or TreeEnsembleRegressor (ai.onnx.ml 1-3): nodes keyed by (tree id,
/// node id), leaves being the nodes of mode LEAF, weights given per (tree id, node id).
/// `weights` is `class` or `target`; `targets` the number of classes or targets.
pub fn from_node_lists(node: &Node, weights: &str, targets: usize) -> Result<Ensemble> {
    let list = |name: &str| -> Result<Vec<i64>> { required(node, name, node.ints(name)?) };
    let tree_ids = list("nodes_treeids")?;
    let node_ids = list("nodes_nodeids")?;
    let feature_ids = list("nodes_featureids")?;
    let true_ids = list("nodes_truenodeids")?;
    let false_ids = list("nodes_falsenodeids")?;
    let modes = required(node, "nodes_modes", node.strings("nodes_modes")?)?;
    let values = required(node, "nodes_values", floats(node, "nodes_values")?)?;
    same_length(
        node,
        &[
            ("nodes_nodeids", node_ids.len()),
            ("nodes_treeids", tree_ids.len()),
            ("nodes_featureids", feature_ids.len()),
            ("nodes_truenodeids", true_ids.len()),
            ("nodes_falsenodeids", false_ids.len()),
            ("nodes_modes", modes.len()),
            ("nodes_values", values.len()),
        ],
    )?;
    let mut child_of: HashMap<(i64, i64), Child> = HashMap::new();
    let (mut branch_count, mut leaf_count) = (0, 0);
    for i in 0..node_ids.len() {
        let child = if modes[i] == "LEAF" {
            leaf_count += 1;
            Child::Leaf(leaf_count - 1)
        } else {
            branch_count += 1;
            Child::Branch(branch_count - 1)
        };
        ensure!(
            child_of.insert((tree_ids[i], node_ids[i]), child).is_none(),
            "{} {}: tree {} has two nodes with id {}",
            node.op_type,
            node.name,
            tree_ids[i],
            node_ids[i]
        );
    }
    let child = |tree: i64, id: i64| -> Result<Child> {
        child_of.get(&(tree, id)).copied().ok_or_else(|| {
            anyhow!(
                "{} {}: tree {tree} has no node {id}",
                node.op_type,
                node.name
            )
        })
    };
    let mut branches = Vec::with_capacity(branch_count);
    for i in 0..node_ids.len() {
        if modes[i] == "LEAF" {
            continue;
        }
        let mode = Mode::named(&modes[i]).filter(|m| *m != Mode::Member).ok_or_else(|| {
            anyhow!("{} {}: node mode {} is not one of BRANCH_LEQ, BRANCH_LT, BRANCH_GTE, BRANCH_GT, BRANCH_EQ, BRANCH_NEQ, LEAF", node.op_type, node.name, modes[i])
        })?;
        branches.push(Branch {
            feature: index(node, "feature id", feature_ids[i], usize::MAX)?,
            mode,
            values: vec![values[i]],
            if_true: child(tree_ids[i], true_ids[i])?,
            if_false: child(tree_ids[i], false_ids[i])?,
        });
    }
    let mut leaves = vec![vec![]; leaf_count];
    let w_trees = list(&format!("{weights}_treeids"))?;
    let w_nodes = list(&format!("{weights}_nodeids"))?;
    let w_ids = list(&format!("{weights}_ids"))?;
    let w_values = required(
        node,
        &format!("{weights}_weights"),
        floats(node, &format!("{weights}_weights"))?,
    )?;
    same_length(
        node,
        &[
            ("weight node ids", w_nodes.len()),
            ("weight tree ids", w_trees.len()),
            ("weight target ids", w_ids.len()),
            ("weights", w_values.len()),
        ],
    )?;
    for i in 0..w_nodes.len() {
        let Child::Leaf(leaf) = child(w_trees[i], w_nodes[i])? else {
            bail!(
                "{} {}: a weight is attached to node {} of tree {}, which is not a LEAF",
                node.op_type,
                node.name,
                w_nodes[i],
                w_trees[i]
            );
        };
        leaves[leaf].push((index(node, "target id", w_ids[i], targets)?, w_values[i]));
    }
    // Each tree's root is its node 0, in the order the trees first appear.
    let mut roots = vec![];
    for &tree in &tree_ids {
        let root = child(tree, 0)?;
        if !roots.contains(&root) {
            roots.push(root);
        }
    }
    Ok(Ensemble {
        branches,
        leaves,
        roots,
        targets,
        base_values: floats(node, "base_values")?.unwrap_or_default(),
        aggregate: aggregate_named(node, node.string("aggregate_function")?.as_deref())?,
    })
}

fn aggregate_named(node: &Node, name: Option<&str>) -> Result<Aggregate> {
    Ok(match name.unwrap_or("SUM") {
        "SUM" => Aggregate::Sum,
        "AVERAGE" => Aggregate::Average,
        "MIN" => Aggregate::Min,
        "MAX" => Aggregate::Max,
        other => bail!(
            "{} {}: aggregate_function {other} is not one of SUM, AVERAGE, MIN, MAX",
            node.op_type,
            node.name
        ),
    })
}

/// TreeEnsemble (ai.onnx.ml 5): branch nodes indexed by position, children flagged as leaves
/// by `nodes_trueleafs` / `nodes_falseleafs`, leaves with one weight each.
pub fn from_ensemble(node: &Node) -> Result<Ensemble> {
    let list = |name: &str| -> Result<Vec<i64>> { required(node, name, node.ints(name)?) };
    let tensor =
        |name: &str| -> Result<Vec<f64>> { required(node, name, node.tensor_numbers(name)?) };
    let feature_ids = list("nodes_featureids")?;
    let true_ids = list("nodes_truenodeids")?;
    let false_ids = list("nodes_falsenodeids")?;
    let true_leafs = list("nodes_trueleafs")?;
    let false_leafs = list("nodes_falseleafs")?;
    let modes = tensor("nodes_modes")?;
    let splits = tensor("nodes_splits")?;
    let leaf_targets = list("leaf_targetids")?;
    let leaf_weights = tensor("leaf_weights")?;
    let targets = usize::try_from(node.int("n_targets", 1)?)
        .map_err(|_| anyhow!("{} {}: negative n_targets", node.op_type, node.name))?;
    same_length(
        node,
        &[
            ("nodes_featureids", feature_ids.len()),
            ("nodes_truenodeids", true_ids.len()),
            ("nodes_falsenodeids", false_ids.len()),
            ("nodes_trueleafs", true_leafs.len()),
            ("nodes_falseleafs", false_leafs.len()),
            ("nodes_modes", modes.len()),
            ("nodes_splits", splits.len()),
        ],
    )?;
    same_length(
        node,
        &[
            ("leaf_targetids", leaf_targets.len()),
            ("leaf_weights", leaf_weights.len()),
        ],
    )?;
    let (n, leaves) = (feature_ids.len(), leaf_targets.len());
    let child = |id: i64, is_leaf: i64| -> Result<Child> {
        Ok(if is_leaf != 0 {
            Child::Leaf(index(node, "leaf index", id, leaves)?)
        } else {
            Child::Branch(index(node, "node index", id, n)?)
        })
    };
    let mut sets = membership_sets(node)?.into_iter();
    let names = [
        "BRANCH_LEQ",
        "BRANCH_LT",
        "BRANCH_GTE",
        "BRANCH_GT",
        "BRANCH_EQ",
        "BRANCH_NEQ",
        "BRANCH_MEMBER",
    ];
    let mut branches = Vec::with_capacity(n);
    for i in 0..n {
        let mode = names
            .get(modes[i] as usize)
            .and_then(|name| Mode::named(name))
            .ok_or_else(|| {
                anyhow!(
                    "{} {}: node mode {} is not a code from 0 to 6",
                    node.op_type,
                    node.name,
                    modes[i]
                )
            })?;
        let values = if mode == Mode::Member {
            sets.next().ok_or_else(|| {
                anyhow!(
                    "{} {}: membership_values has fewer sets than BRANCH_MEMBER nodes",
                    node.op_type,
                    node.name
                )
            })?
        } else {
            vec![splits[i] as f32]
        };
        branches.push(Branch {
            feature: index(node, "feature id", feature_ids[i], usize::MAX)?,
            mode,
            values,
            if_true: child(true_ids[i], true_leafs[i])?,
            if_false: child(false_ids[i], false_leafs[i])?,
        });
    }
    let roots = list("tree_roots")?
        .into_iter()
        .map(|r| child(r, 0))
        .collect::<Result<Vec<_>>>()?;
    let leaves = (0..leaves)
        .map(|i| {
            Ok(vec![(
                index(node, "leaf target id", leaf_targets[i], targets)?,
                leaf_weights[i] as f32,
            )])
        })
        .collect::<Result<Vec<_>>>()?;
    let aggregate = match node.int("aggregate_function", 1)? {
        0 => "AVERAGE",
        1 => "SUM",
        2 => "MIN",
        3 => "MAX",
        other => bail!(
            "{} {}: aggregate_function {other} is not a code from 0 to 3",
            node.op_type,
            node.name
        ),
    };
    Ok(Ensemble {
        branches,
        leaves,
        roots,
        targets,
        base_values: vec![],
        aggregate: aggregate_named(node, Some(aggregate))?,
    })
}

/// The sets of BRANCH_MEMBER nodes, in node order: `membership_values` lists them one after
/// the other, each ended by a NaN.
fn membership_sets(node: &Node) -> Result<Vec<Vec<f32>>> {
    let Some(values) = node.tensor_numbers("membership_values")? else {
        return Ok(vec![]);
    };
    let mut sets = vec![vec![]];
    for v in values {
        if v.is_nan() {
            sets.push(vec![]);
        } else if !sets.last().expect("never empty").contains(&(v as f32)) {
            sets.last_mut().expect("never empty").push(v as f32);
        }
    }
    if sets.last().is_some_and(Vec::is_empty) {
        sets.pop();
    }
    Ok(sets)
}
