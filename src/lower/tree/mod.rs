//! Tree ensembles (TreeEnsembleClassifier, TreeEnsembleRegressor, TreeEnsemble) evaluated
//! obliviously, every branch of every tree at once:
//!
//! 1. every node's comparison with its secret threshold, all in ONE gate over an `[N, C]`
//!    tensor (`x - t >= 0` or `t - x >= 0` per comparison; equality and set membership take
//!    both);
//! 2. each node's outcome on either side as a linear form in those bits (`x < t` is
//!    `1 - [x - t >= 0]`, `x == t` is `[x - t >= 0] + [t - x >= 0] - 1`), which costs nothing;
//! 3. each leaf's indicator as the product of the outcomes along its path, by a tree of
//!    products: a path of d nodes takes ceil(log2 d) product rounds, every path at once, and
//!    a product shared by several paths (the nodes near a root) computed once;
//! 4. the scores as the indicators times the secret leaf weights (one matrix product), then
//!    the base values; MIN and MAX take the max over the trees' outputs instead.
//!
//! Every product has a 0/1 factor, so its low fractional bits are zero and the truncation
//! drops nothing: the scores are exact in fixed point, up to the encoding of the weights.
//! Ties (an input within 2^-16 of a threshold) go by the fixed-point values, so they may
//! go either way; inputs exactly equal to a representable threshold compare exactly.
//! Inputs are finite fixed-point numbers, so `nodes_missing_value_tracks_true` (where a NaN
//! goes) never applies.

mod binary;
mod ensemble;
mod paths;

use super::classes::{PostTransform, int_labels, label_of_scores, post_transform};
use super::{Lowering, Op, To};
use crate::import::Node;
use crate::plan::{Dim, Shape, ValueId, Visibility};
use anyhow::{Result, anyhow, bail, ensure};
use ensemble::{Aggregate, Ensemble};
use ndarray::{Array2, ArrayD, IxDyn};
use paths::{Route, Routes};

pub fn tree_ensemble_classifier(cx: &mut Lowering, node: &Node) -> Result<()> {
    let labels = int_labels(node, "classlabels_int64s")?;
    match labels.len() {
        2 => return binary::binary_classifier(cx, node, &labels),
        0 | 1 => bail!(
            "TreeEnsembleClassifier {} has {} class label(s); a classifier needs two or more",
            node.name,
            labels.len()
        ),
        _ => {}
    }
    let ensemble = ensemble::from_node_lists(node, "class", labels.len())?;
    check_base_values(node, &ensemble)?;
    if ensemble.base_values.is_empty() {
        // onnxruntime leaves a class that no reached leaf voted for out of the arg max.
        if let Some(k) = (0..labels.len()).find(|&k| !always_voted(&ensemble, k)) {
            bail!(
                "TreeEnsembleClassifier {}: class {k} gets no weight from some leaves and there are no base_values, so whether it takes part in the arg max depends on the input (onnxruntime skips it); not supported",
                node.name
            );
        }
    }
    let post = PostTransform::of(node)?;
    let scores = ensemble_scores(cx, node, &ensemble)?;
    if let Some(label) = node.outputs.first().filter(|o| !o.is_empty()) {
        label_of_scores(cx, node, scores, &labels, label)?;
    }
    if let Some(probabilities) = node.outputs.get(1).filter(|o| !o.is_empty()) {
        post_transform(cx, node, scores, post, To::Tensor(probabilities))?;
    }
    Ok(())
}

pub fn tree_ensemble_regressor(cx: &mut Lowering, node: &Node) -> Result<()> {
    let targets = usize::try_from(node.int("n_targets", 1)?)
        .map_err(|_| anyhow!("TreeEnsembleRegressor {}: negative n_targets", node.name))?;
    let ensemble = ensemble::from_node_lists(node, "target", targets)?;
    let post = PostTransform::of(node)?;
    regression(cx, node, &ensemble, post)
}

/// TreeEnsemble (ai.onnx.ml 5).
pub fn tree_ensemble(cx: &mut Lowering, node: &Node) -> Result<()> {
    let ensemble = ensemble::from_ensemble(node)?;
    let post = PostTransform::coded(node, node.int("post_transform", 0)?)?;
    regression(cx, node, &ensemble, post)
}

fn regression(
    cx: &mut Lowering,
    node: &Node,
    ensemble: &Ensemble,
    post: PostTransform,
) -> Result<()> {
    check_base_values(node, ensemble)?;
    let scores = ensemble_scores(cx, node, ensemble)?;
    // onnxruntime applies only PROBIT to a single target.
    let post = if ensemble.targets == 1 {
        PostTransform::None
    } else {
        post
    };
    post_transform(cx, node, scores, post, To::Output)?;
    Ok(())
}

fn check_base_values(node: &Node, ensemble: &Ensemble) -> Result<()> {
    let n = ensemble.base_values.len();
    ensure!(
        n == 0 || n == ensemble.targets,
        "{} {}: base_values has {n} entries for {} targets or classes",
        node.op_type,
        node.name,
        ensemble.targets
    );
    Ok(())
}

/// Whether every leaf of some tree gives target `k` a weight, so every row scores it.
fn always_voted(ensemble: &Ensemble, k: usize) -> bool {
    let routes = Routes::of(ensemble);
    routes.as_ref().is_ok_and(|routes| {
        (0..ensemble.roots.len()).any(|tree| {
            routes
                .of_tree(tree)
                .all(|r| ensemble.leaves[r.leaf].iter().any(|&(t, _)| t == k))
        })
    })
}

/// The `[N, targets]` scores of the ensemble on the node's input, base values included.
fn ensemble_scores(cx: &mut Lowering, node: &Node, ensemble: &Ensemble) -> Result<ValueId> {
    let x_name = node
        .input(0)
        .ok_or_else(|| anyhow!("{} {} has no input", node.op_type, node.name))?;
    let shape = cx.shape(x_name)?;
    let (n, features) = match shape.0.as_slice() {
        [n, Dim::Fixed(f)] => (*n, *f),
        _ => bail!(
            "{} {}: the input must be [N, features], got {shape}",
            node.op_type,
            node.name
        ),
    };
    if let Some(b) = ensemble.branches.iter().find(|b| b.feature >= features) {
        bail!(
            "{} {}: a node tests feature {} of an input with {features} features",
            node.op_type,
            node.name,
            b.feature
        );
    }
    let routes =
        Routes::of(ensemble).map_err(|e| anyhow!("{} {}: {e}", node.op_type, node.name))?;
    let x = cx.value(x_name)?;
    let indicators = paths::leaf_indicators(cx, node, x, n, ensemble, &routes)?;
    let targets = ensemble.targets;
    let scores_shape = Shape(vec![n, Dim::Fixed(targets)]);
    let mut bias = ensemble.base_values.clone();
    bias.resize(targets, 0.0);
    let scores = match ensemble.aggregate {
        Aggregate::Sum | Aggregate::Average => {
            let scale = if ensemble.aggregate == Aggregate::Average {
                1.0 / ensemble.roots.len() as f32
            } else {
                1.0
            };
            for route in routes.constant() {
                for &(k, w) in &ensemble.leaves[route.leaf] {
                    bias[k] += w * scale;
                }
            }
            let mut weights = Array2::<f32>::zeros((routes.secret().len(), targets));
            for (r, route) in routes.secret().iter().enumerate() {
                for &(k, w) in &ensemble.leaves[route.leaf] {
                    weights[[r, k]] += w * scale;
                }
            }
            weighted_sum(
                cx,
                node,
                indicators,
                weights,
                "leaf_weights",
                scores_shape.clone(),
            )?
        }
        Aggregate::Min | Aggregate::Max => {
            extreme_over_trees(cx, node, ensemble, &routes, indicators, n)?
        }
    };
    if bias.iter().all(|&b| b == 0.0) {
        return Ok(scores);
    }
    let bias = ArrayD::from_shape_vec(IxDyn(&[targets]), bias)?;
    let bias = cx.weight(
        &format!("{}/base_values", node.name),
        bias,
        Visibility::Secret,
    )?;
    cx.emit(
        node,
        Op::Add,
        &[scores, bias],
        To::shaped("scores", scores_shape),
    )
}

/// The leaf indicators `[N, routes]` times secret weights `[routes, columns]`.
fn weighted_sum(
    cx: &mut Lowering,
    node: &Node,
    indicators: Option<ValueId>,
    weights: Array2<f32>,
    tag: &str,
    shape: Shape,
) -> Result<ValueId> {
    let Some(indicators) = indicators else {
        bail!(
            "{} {}: every tree is a single leaf, so the output does not depend on the input",
            node.op_type,
            node.name
        );
    };
    let weights = cx.weight(
        &format!("{}/{tag}", node.name),
        weights.into_dyn(),
        Visibility::Secret,
    )?;
    cx.emit(
        node,
        Op::MatMul,
        &[indicators, weights],
        To::shaped(tag, shape),
    )
}

/// MIN or MAX: each tree's output for each target it votes for (one matrix product), then
/// the extreme over the trees by a tree of comparisons. A target no tree votes for scores 0.
fn extreme_over_trees(
    cx: &mut Lowering,
    node: &Node,
    ensemble: &Ensemble,
    routes: &Routes,
    indicators: Option<ValueId>,
    n: Dim,
) -> Result<ValueId> {
    ensure!(
        routes.constant().is_empty(),
        "{} {}: a tree that is a single leaf under aggregate_function MIN or MAX is not supported",
        node.op_type,
        node.name
    );
    let max = ensemble.aggregate == Aggregate::Max;
    let combine = |a: f32, b: f32| if max { a.max(b) } else { a.min(b) };
    // One column per (tree, target) vote, plus a zero column for targets without votes.
    let mut columns: Vec<Vec<usize>> = vec![vec![]; ensemble.targets];
    let mut entries: Vec<Vec<(usize, f32)>> = vec![];
    for tree in 0..ensemble.roots.len() {
        for (k, target_columns) in columns.iter_mut().enumerate() {
            let votes: Vec<Option<f32>> = routes
                .secret_of_tree(tree)
                .map(|(_, route)| leaf_vote(ensemble, route, k, combine))
                .collect();
            if votes.iter().all(Option::is_none) {
                continue;
            }
            ensure!(
                votes.iter().all(Option::is_some),
                "{} {}: under aggregate_function {}, tree {tree} gives target {k} a weight at some leaves but not at others, so whether it takes part depends on the input; not supported",
                node.op_type,
                node.name,
                if max { "MAX" } else { "MIN" }
            );
            let rows = routes.secret_of_tree(tree).map(|(r, _)| r);
            entries.push(
                rows.zip(votes)
                    .map(|(r, v)| (r, v.expect("checked")))
                    .collect(),
            );
            target_columns.push(entries.len() - 1);
        }
    }
    if columns.iter().any(Vec::is_empty) {
        entries.push(vec![]);
        let zero = entries.len() - 1;
        columns
            .iter_mut()
            .filter(|c| c.is_empty())
            .for_each(|c| c.push(zero));
    }
    let mut weights = Array2::<f32>::zeros((routes.secret().len(), entries.len()));
    for (column, entry) in entries.iter().enumerate() {
        for &(r, w) in entry {
            weights[[r, column]] = w;
        }
    }
    let votes_shape = Shape(vec![n, Dim::Fixed(entries.len())]);
    let votes = weighted_sum(cx, node, indicators, weights, "tree_outputs", votes_shape)?;
    // Every target gets as many columns as the target with the most votes, repeating one of
    // its own (a repeat changes no max or min).
    let width = columns
        .iter()
        .map(Vec::len)
        .max()
        .expect("at least one target");
    let order: Vec<usize> = columns
        .iter()
        .flat_map(|c| (0..width).map(move |i| c[i.min(c.len() - 1)]))
        .collect();
    let targets = ensemble.targets;
    let gathered = Shape(vec![n, Dim::Fixed(targets * width)]);
    let gather = Op::Gather {
        axis: 1,
        indices: order,
    };
    let per_target = cx.emit(node, gather, &[votes], To::shaped("votes", gathered))?;
    let scores_shape = Shape(vec![n, Dim::Fixed(targets)]);
    if width == 1 {
        return Ok(per_target);
    }
    let grouped = Shape(vec![n, Dim::Fixed(targets), Dim::Fixed(width)]);
    let reshape = Op::Reshape {
        shape: grouped.clone(),
    };
    let grouped = cx.emit(
        node,
        reshape,
        &[per_target],
        To::shaped("votes_by_target", grouped),
    )?;
    let reduce = Op::ReduceMax {
        axes: vec![2],
        keep_dims: false,
        min: !max,
    };
    cx.emit(
        node,
        reduce,
        &[grouped],
        To::shaped("extreme", scores_shape),
    )
}

/// A leaf's weight for target `k` (several combined by the aggregate), if it has one.
fn leaf_vote(
    ensemble: &Ensemble,
    route: &Route,
    k: usize,
    combine: impl Fn(f32, f32) -> f32,
) -> Option<f32> {
    ensemble.leaves[route.leaf]
        .iter()
        .filter(|&&(t, _)| t == k)
        .map(|&(_, w)| w)
        .reduce(combine)
}
