//! A TreeEnsembleClassifier of two classes whose leaves all score class 0, as skl2onnx
//! (forests) and onnxmltools (XGBoost, LightGBM) write binary models: one score column
//! s = (sum of the reached leaves' weights) + base_values[0], from which onnxruntime makes
//! both probabilities and the label. Its conventions (tree_ensemble_aggregator.h,
//! `FinalizeScores` and `_set_score_binary`; ml_common.h, `write_scores`; the LOGISTIC fix
//! of onnxruntime issue 27533, in since 1.26), checked against onnxruntime 1.31:
//!
//! - every class weight >= 0 (forests: s is the probability of class 1): the label is
//!   labels[1] when s > 0.5, and the probabilities are [1 - p, p] with p = sigmoid(s) under
//!   LOGISTIC, else p = s;
//! - some weight < 0 (boosting: s is a margin): the label is labels[1] when s > 0, and the
//!   probabilities are [sigmoid(-s), sigmoid(s)] under LOGISTIC, else [-s, s] (SOFTMAX and
//!   SOFTMAX_ZERO do nothing to one column).
//!
//! Both comparisons are strict, and exact in fixed point. Which convention applies depends
//! on the signs of the secret weights; the plan shows it (see docs/ARCHITECTURE.md).

use super::super::classes::PostTransform;
use super::super::{Lowering, Op, To};
use super::ensemble::{self, Ensemble};
use super::ensemble_scores;
use crate::import::Node;
use crate::plan::{Shape, ValueId};
use anyhow::{Result, bail, ensure};

/// The two classes' single score column, its label and probabilities as onnxruntime makes
/// them; `labels` are the two class labels.
pub fn binary_classifier(cx: &mut Lowering, node: &Node, labels: &[f32]) -> Result<()> {
    let ensemble = single_column(node)?;
    let post = PostTransform::of(node)?;
    let non_negative = ensemble.leaves.iter().flatten().all(|&(_, w)| w >= 0.0);
    let score = ensemble_scores(cx, node, &ensemble)?;
    let column = cx.shape_of(score).clone();
    if let Some(label) = node.outputs.first().filter(|o| !o.is_empty()) {
        let threshold = if non_negative { 0.5 } else { 0.0 };
        label_by_threshold(cx, node, score, threshold, labels, label)?;
    }
    if let Some(probabilities) = node.outputs.get(1).filter(|o| !o.is_empty()) {
        let p = match post {
            PostTransform::Logistic => {
                let function = cx.sigmoid_function();
                let op = Op::Function { function };
                cx.emit(node, op, &[score], To::shaped("positive", column.clone()))?
            }
            _ => score,
        };
        let negative = To::shaped("negative", column);
        let negative = if non_negative || post == PostTransform::Logistic {
            let one = cx.scalar(node, "one", 1.0)?;
            cx.emit(node, Op::Sub, &[one, p], negative)?
        } else {
            cx.emit(node, Op::Neg, &[p], negative)?
        };
        let concat = Op::Concat { axis: 1 };
        cx.emit(node, concat, &[negative, p], To::Tensor(probabilities))?;
    }
    Ok(())
}

/// The ensemble with its one score column, or why onnxruntime's output for the model is not
/// the single-column convention.
fn single_column(node: &Node) -> Result<Ensemble> {
    let ids = node.ints("class_ids")?.unwrap_or_default();
    if ids.iter().any(|&id| id != 0) {
        let which = if ids.contains(&0) {
            "both classes (onnxruntime then labels a row 1 or 0 by the sign of class 1's score, whatever classlabels_int64s says)"
        } else {
            "only class 1 (onnxruntime then leaves class 0's probability at 0)"
        };
        bail!(
            "TreeEnsembleClassifier {}: a binary classifier whose leaves score {which} is not supported; tfe takes the single score column (every class_id 0) that skl2onnx and onnxmltools write",
            node.name
        );
    }
    let ensemble = ensemble::from_node_lists(node, "class", 1)?;
    ensure!(
        ensemble.base_values.len() <= 1,
        "TreeEnsembleClassifier {}: two base_values for a single score column (onnxruntime then writes [s + base_values[0], 0]) are not supported",
        node.name
    );
    Ok(ensemble)
}

/// `labels[1]` where the score exceeds `threshold`, else `labels[0]`: one gate,
/// `[threshold - s >= 0] ? labels[0] : labels[1]`, exact in fixed point.
fn label_by_threshold(
    cx: &mut Lowering,
    node: &Node,
    score: ValueId,
    threshold: f32,
    labels: &[f32],
    output: &str,
) -> Result<()> {
    let column = cx.shape_of(score).clone();
    let t = cx.scalar(node, "threshold", threshold)?;
    let margin = cx.emit(
        node,
        Op::Sub,
        &[t, score],
        To::shaped("margin", column.clone()),
    )?;
    let below = cx.scalar(node, "label_0", labels[0])?;
    let above = cx.scalar(node, "label_1", labels[1])?;
    let select = Op::Select;
    let label = cx.emit(
        node,
        select,
        &[margin, below, above],
        To::shaped("labels", column.clone()),
    )?;
    let rows = Shape(vec![column.0[0]]);
    let result = cx.emit(
        node,
        Op::Reshape { shape: rows },
        &[label],
        To::Tensor(output),
    )?;
    cx.mark_integral(result);
    Ok(())
}
