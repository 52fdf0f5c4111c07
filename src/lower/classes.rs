//! What the `ai.onnx.ml` predictors share: the post transform of their scores (`NONE`,
//! `SOFTMAX`, `LOGISTIC`, `SOFTMAX_ZERO`; `PROBIT` refused), integer class labels, and each
//! row's label as the arg max of its scores looked up in the public label table.

use super::{Lowering, Op, To};
use crate::import::Node;
use crate::plan::{Dim, Function, Shape, ValueId};
use anyhow::{Result, bail};
use ndarray::{ArrayD, IxDyn};

/// The post transforms of the `ai.onnx.ml` predictors that tfe computes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostTransform {
    None,
    Softmax,
    Logistic,
    /// Softmax over the non-zero scores of a row; zero scores stay zero.
    SoftmaxZero,
}

impl PostTransform {
    /// From its name (the `post_transform` string of ai.onnx.ml 1-3).
    pub fn named(node: &Node, name: &str) -> Result<PostTransform> {
        Ok(match name {
            "NONE" => PostTransform::None,
            "SOFTMAX" => PostTransform::Softmax,
            "LOGISTIC" => PostTransform::Logistic,
            "SOFTMAX_ZERO" => PostTransform::SoftmaxZero,
            "PROBIT" => bail!(
                "{} {}: post_transform PROBIT (the inverse of the normal CDF) has no fixed-point approximation in tfe; export the model with post_transform NONE and apply probit to the revealed scores",
                node.op_type,
                node.name
            ),
            other => bail!(
                "{} {}: post_transform {other} is not one of NONE, SOFTMAX, LOGISTIC, SOFTMAX_ZERO, PROBIT",
                node.op_type,
                node.name
            ),
        })
    }

    /// The node's `post_transform` string attribute (NONE when absent).
    pub fn of(node: &Node) -> Result<PostTransform> {
        let name = node.string("post_transform")?;
        PostTransform::named(node, name.as_deref().unwrap_or("NONE"))
    }

    /// From ai.onnx.ml 5's integer code.
    pub fn coded(node: &Node, code: i64) -> Result<PostTransform> {
        let names = ["NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT"];
        match usize::try_from(code).ok().and_then(|c| names.get(c)) {
            Some(name) => PostTransform::named(node, name),
            None => bail!(
                "{} {}: post_transform {code} is not a code from 0 to 4",
                node.op_type,
                node.name
            ),
        }
    }
}

/// The transform of `[N, K]` scores along axis 1; `NONE` only names the scores `to`.
pub fn post_transform(
    cx: &mut Lowering,
    node: &Node,
    scores: ValueId,
    transform: PostTransform,
    to: To,
) -> Result<ValueId> {
    let shape = cx.shape_of(scores).clone();
    match transform {
        PostTransform::None => cx.emit(node, Op::Reshape { shape }, &[scores], to),
        PostTransform::Softmax => {
            let softmax = Op::Softmax {
                axis: 1,
                log: false,
            };
            cx.emit(node, softmax, &[scores], to)
        }
        PostTransform::Logistic => {
            let function = cx.sigmoid_function();
            cx.emit(node, Op::Function { function }, &[scores], to)
        }
        PostTransform::SoftmaxZero => softmax_zero(cx, node, scores, shape, to),
    }
}

/// e^(s - max) / sum, over the non-zero scores only: a score is zero when both s >= 0 and
/// -s >= 0 (both comparisons in one gate), and then its exponential is masked out. onnxruntime
/// calls |s| <= 1e-7 zero; in fixed point that is s = 0, scores under 2^-17 rounding to it. A
/// row of zeros divides by zero (onnxruntime gives NaN).
fn softmax_zero(
    cx: &mut Lowering,
    node: &Node,
    scores: ValueId,
    shape: Shape,
    to: To,
) -> Result<ValueId> {
    let classes = match shape.0.get(1) {
        Some(Dim::Fixed(k)) if shape.rank() == 2 => *k,
        _ => bail!(
            "{}: SOFTMAX_ZERO needs [N, classes] scores, got {shape}",
            node.name
        ),
    };
    let temp =
        |tag: &str, width: usize| To::shaped(tag, Shape(vec![shape.0[0], Dim::Fixed(width)]));
    let negated = cx.emit(node, Op::Neg, &[scores], temp("negated", classes))?;
    let both = cx.emit(
        node,
        Op::Concat { axis: 1 },
        &[scores, negated],
        temp("signs", 2 * classes),
    )?;
    let one = cx.scalar(node, "one", 1.0)?;
    let zero = cx.scalar(node, "zero", 0.0)?;
    let signs = cx.emit(
        node,
        Op::Select,
        &[both, one, zero],
        temp("sign_bits", 2 * classes),
    )?;
    let half = |cx: &mut Lowering, tag: &str, start: usize| {
        let gather = Op::Gather {
            axis: 1,
            indices: (start..start + classes).collect(),
        };
        cx.emit(node, gather, &[signs], temp(tag, classes))
    };
    let non_negative = half(cx, "non_negative", 0)?;
    let non_positive = half(cx, "non_positive", classes)?;
    // Exactly one of the two holds for a non-zero score, both for zero: 2 - a - b.
    let two = cx.scalar(node, "two", 2.0)?;
    let either = cx.emit(
        node,
        Op::Add,
        &[non_negative, non_positive],
        temp("either", classes),
    )?;
    let non_zero = cx.emit(node, Op::Sub, &[two, either], temp("non_zero", classes))?;
    let row = Shape(vec![shape.0[0], Dim::Fixed(1)]);
    let max = Op::ReduceMax {
        axes: vec![1],
        keep_dims: true,
        min: false,
    };
    let max = cx.emit(node, max, &[scores], To::shaped("row_max", row.clone()))?;
    let shifted = cx.emit(node, Op::Sub, &[scores, max], temp("shifted", classes))?;
    let exp = Op::Function {
        function: Function::Exp,
    };
    let exp = cx.emit(node, exp, &[shifted], temp("exp", classes))?;
    let kept = cx.emit(node, Op::Mul, &[exp, non_zero], temp("kept", classes))?;
    let sum = Op::ReduceSum {
        axes: vec![1],
        keep_dims: true,
    };
    let total = cx.emit(node, sum, &[kept], To::shaped("total", row.clone()))?;
    let reciprocal = Op::Function {
        function: Function::Reciprocal,
    };
    let inverse = cx.emit(node, reciprocal, &[total], To::shaped("inverse", row))?;
    cx.emit(node, Op::Mul, &[kept, inverse], to)
}

/// The integer class labels `classlabels_{ints_name}`; string labels are refused.
pub fn int_labels(node: &Node, ints_name: &str) -> Result<Vec<f32>> {
    if let Some(ints) = node.ints(ints_name)? {
        return Ok(ints.iter().map(|&v| v as f32).collect());
    }
    if node.has_attr("classlabels_strings") {
        bail!(
            "{} {} has string class labels, which tfe cannot output as a tensor of numbers; export with integer labels (encode the classes as 0..k-1, e.g. scikit-learn's LabelEncoder) and map them back at the client",
            node.op_type,
            node.name
        );
    }
    bail!(
        "{} {} has no class labels ({ints_name})",
        node.op_type,
        node.name
    )
}

/// Each row's label: the arg max of `[N, K]` scores (first on ties, as onnxruntime) looked
/// up in `labels`, written to `output`.
pub fn label_of_scores(
    cx: &mut Lowering,
    node: &Node,
    scores: ValueId,
    labels: &[f32],
    output: &str,
) -> Result<()> {
    let n = cx.shape_of(scores).0[0];
    let arg_max = Op::ArgMax {
        axis: 1,
        keep_dims: false,
        min: false,
        last_index: false,
    };
    let index = To::shaped("index", Shape(vec![n]));
    let index = cx.emit(node, arg_max, &[scores], index)?;
    cx.mark_integral(index);
    lookup(cx, node, index, labels, output)
}

/// `table[index]` for a secret integral index: table_0 + Σ_{k>=1} [index >= k - 1/2]
/// (table_k - table_(k-1)), all comparisons in one round; the identity when table[k] = k.
pub fn lookup(
    cx: &mut Lowering,
    node: &Node,
    index: ValueId,
    table: &[f32],
    output: &str,
) -> Result<()> {
    let identity = table.iter().enumerate().all(|(k, &v)| v == k as f32);
    let shape = cx.shape(output)?;
    if identity || table.len() < 2 {
        let result = if table.len() == 1 {
            let value = cx.scalar(node, "label", table[0])?;
            let zero = cx.scalar(node, "zero", 0.0)?;
            let zeros = To::shaped("zeros", shape.clone());
            let zeros = cx.emit(node, Op::Mul, &[index, zero], zeros)?;
            cx.emit(node, Op::Add, &[zeros, value], To::Tensor(output))?
        } else {
            let reshape = Op::Reshape {
                shape: shape.clone(),
            };
            cx.emit(node, reshape, &[index], To::Tensor(output))?
        };
        cx.mark_integral(result);
        return Ok(());
    }
    let index_shape = cx.shape_of(index).clone();
    let k = table.len() - 1;
    let column = |values: Vec<f32>| {
        let mut dims = vec![k];
        dims.extend(std::iter::repeat_n(1, index_shape.rank()));
        ArrayD::from_shape_vec(IxDyn(&dims), values).expect("one value per threshold")
    };
    let thresholds = cx.public(
        &format!("{}/thresholds", node.name),
        column((1..=k).map(|i| i as f32 - 0.5).collect()),
    )?;
    let steps = cx.public(
        &format!("{}/steps", node.name),
        column((1..=k).map(|i| table[i] - table[i - 1]).collect()),
    )?;
    let zero = cx.scalar(node, "zero", 0.0)?;
    let stacked = Shape(
        std::iter::once(Dim::Fixed(k))
            .chain(index_shape.0.iter().copied())
            .collect(),
    );
    let above = To::shaped("above", stacked.clone());
    let above = cx.emit(node, Op::Sub, &[index, thresholds], above)?;
    let increments = To::shaped("increments", stacked);
    let increments = cx.emit(node, Op::Select, &[above, steps, zero], increments)?;
    let sum = Op::ReduceSum {
        axes: vec![0],
        keep_dims: false,
    };
    let total = cx.emit(
        node,
        sum,
        &[increments],
        To::shaped("total", index_shape.clone()),
    )?;
    let first = cx.scalar(node, "first", table[0])?;
    let label = To::shaped("label", index_shape);
    let label = cx.emit(node, Op::Add, &[total, first], label)?;
    let result = cx.emit(node, Op::Reshape { shape }, &[label], To::Tensor(output))?;
    cx.mark_integral(result);
    Ok(())
}
