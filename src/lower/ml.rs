//! scikit-learn's operators (the `ai.onnx.ml` domain, as skl2onnx writes them): linear models
//! as a product with secret coefficients, scalers and normalisers as element-wise maps, and
//! class labels by a secret lookup into the public label table.

use super::classes::{PostTransform, label_of_scores, lookup, post_transform};
use super::{Lowering, Op, To};
use crate::import::Node;
use crate::plan::{Dim, Function, Shape, ValueId, Visibility};
use anyhow::{Result, anyhow, bail, ensure};
use ndarray::{Array2, ArrayD, IxDyn};

fn required_floats(node: &Node, name: &str) -> Result<Vec<f32>> {
    node.floats(name)?
        .ok_or_else(|| anyhow!("{} {} lacks the {name} attribute", node.op_type, node.name))
}

/// `x W^T + b` for coefficients given row by row (`rows` outputs of the input's width).
fn affine(
    cx: &mut Lowering,
    node: &Node,
    rows: usize,
    output: &str,
    post: PostTransform,
) -> Result<ValueId> {
    let coefficients = required_floats(node, "coefficients")?;
    let intercepts = node
        .floats("intercepts")?
        .unwrap_or_else(|| vec![0.0; rows]);
    ensure!(
        rows > 0 && coefficients.len() % rows == 0 && intercepts.len() == rows,
        "{}: {} coefficients and {} intercepts do not make {rows} rows",
        node.name,
        coefficients.len(),
        intercepts.len()
    );
    let features = coefficients.len() / rows;
    let w = Array2::from_shape_vec((rows, features), coefficients)?
        .reversed_axes()
        .as_standard_layout()
        .into_owned();
    let w = cx.weight(
        &format!("{}/coefficients", node.name),
        w.into_dyn(),
        Visibility::Secret,
    )?;
    let b = cx.weight(
        &format!("{}/intercepts", node.name),
        ArrayD::from_shape_vec(IxDyn(&[rows]), intercepts)?,
        Visibility::Secret,
    )?;
    let x = cx.input_value(node, 0)?;
    let n = cx.shape(node.input(0).expect("checked"))?.0[0];
    let shape = Shape(vec![n, Dim::Fixed(rows)]);
    let product = cx.emit(
        node,
        Op::MatMul,
        &[x, w],
        To::shaped("product", shape.clone()),
    )?;
    let raw = To::shaped("raw_scores", shape.clone());
    let scores = cx.emit(node, Op::Add, &[product, b], raw)?;
    if post == PostTransform::None {
        cx.alias(output, scores);
        return Ok(scores);
    }
    // A classifier whose scores no one reads still computes them, for its labels.
    let to = if output.is_empty() {
        To::shaped("scores", shape)
    } else {
        To::Tensor(output)
    };
    post_transform(cx, node, scores, post, to)
}

pub fn linear_classifier(cx: &mut Lowering, node: &Node) -> Result<()> {
    let labels: Vec<f32> = match (
        node.ints("classlabels_ints")?,
        node.strings("classlabels_strings")?,
    ) {
        (Some(ints), _) => ints.iter().map(|&v| v as f32).collect(),
        // String labels cannot be a tensor of reals: the class index stands for them.
        (None, Some(strings)) => (0..strings.len()).map(|i| i as f32).collect(),
        (None, None) => bail!("LinearClassifier {} has no class labels", node.name),
    };
    let rows = node.floats("intercepts")?.map_or(labels.len(), |i| i.len());
    ensure!(
        rows == labels.len(),
        "LinearClassifier {} with {rows} coefficient rows for {} classes (the binary form) is not supported",
        node.name,
        labels.len()
    );
    let post = PostTransform::of(node)?;
    let scores_name = node.outputs.get(1).cloned().unwrap_or_default();
    let scores = affine(cx, node, rows, &scores_name, post)?;
    if let Some(label) = node.outputs.first().filter(|o| !o.is_empty()) {
        label_of_scores(cx, node, scores, &labels, label)?;
    }
    Ok(())
}

pub fn linear_regressor(cx: &mut Lowering, node: &Node) -> Result<()> {
    let targets = node.int("targets", 1)? as usize;
    let post = PostTransform::of(node)?;
    affine(cx, node, targets, node.output(), post).map(|_| ())
}

/// (x - offset) * scale, per feature or for all.
pub fn scaler(cx: &mut Lowering, node: &Node) -> Result<()> {
    let vector = |name: &str| -> Result<ArrayD<f32>> {
        let v = node.floats(name)?.unwrap_or_default();
        Ok(ArrayD::from_shape_vec(IxDyn(&[v.len()]), v)?)
    };
    let x = cx.input_value(node, 0)?;
    let offset = cx.weight(
        &format!("{}/offset", node.name),
        vector("offset")?,
        Visibility::Secret,
    )?;
    let scale = cx.weight(
        &format!("{}/scale", node.name),
        vector("scale")?,
        Visibility::Secret,
    )?;
    let centered = cx.emit(node, Op::Sub, &[x, offset], To::temp("centered"))?;
    cx.emit(node, Op::Mul, &[centered, scale], To::Output)?;
    Ok(())
}

/// Each row divided by its max, L1 or L2 norm.
pub fn normalizer(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x_name = node
        .input(0)
        .ok_or_else(|| anyhow!("Normalizer without input"))?;
    let x = cx.value(x_name)?;
    let shape = cx.shape(x_name)?;
    ensure!(
        shape.rank() == 2,
        "Normalizer expects a [N, features] input, got {shape}"
    );
    let rows = shape.reduced(&[1], true);
    let per_row = |tag: &str| To::shaped(tag, rows.clone());
    let sum = |cx: &mut Lowering, v: ValueId, tag: &str| {
        let op = Op::ReduceSum {
            axes: vec![1],
            keep_dims: true,
        };
        cx.emit(node, op, &[v], per_row(tag))
    };
    let norm = match node.string("norm")?.as_deref().unwrap_or("MAX") {
        "MAX" => {
            let max = Op::ReduceMax {
                axes: vec![1],
                keep_dims: true,
                min: false,
            };
            cx.emit(node, max, &[x], per_row("max"))?
        }
        "L1" => {
            let magnitude = super::activation::abs_of(cx, node, x, shape.clone())?;
            sum(cx, magnitude, "l1")?
        }
        "L2" => {
            let squares = To::shaped("squares", shape.clone());
            let squares = cx.emit(node, Op::Mul, &[x, x], squares)?;
            let total = sum(cx, squares, "sum_of_squares")?;
            let sqrt = Op::Function {
                function: Function::Sqrt,
            };
            cx.emit(node, sqrt, &[total], per_row("l2"))?
        }
        other => bail!("Normalizer norm {other} is not one of MAX, L1 and L2"),
    };
    let reciprocal = Op::Function {
        function: Function::Reciprocal,
    };
    let inverse = cx.emit(node, reciprocal, &[norm], per_row("inverse"))?;
    cx.emit(node, Op::Mul, &[x, inverse], To::Output)?;
    Ok(())
}

/// ZipMap turns the probability matrix into a list of label-to-probability maps; tfe outputs
/// the matrix itself, columns in the order of the class labels.
pub fn zip_map(cx: &mut Lowering, node: &Node) -> Result<()> {
    let x = cx.input_value(node, 0)?;
    cx.alias(node.output(), x);
    Ok(())
}

/// Columns of the last axis: a gather for constant indices, a table lookup when a constant
/// table is indexed by a secret index.
pub fn array_feature_extractor(cx: &mut Lowering, node: &Node) -> Result<()> {
    let (data, indices) = (
        node.input(0).ok_or_else(|| anyhow!("no data"))?,
        node.input(1).ok_or_else(|| anyhow!("no indices"))?,
    );
    if cx.is_constant(data) && !cx.is_constant(indices) {
        let table: Vec<f32> = cx.constant(data)?.iter().copied().collect();
        let index = cx.value(indices)?;
        return lookup(cx, node, index, &table, node.output());
    }
    ensure!(
        cx.is_constant(indices),
        "ArrayFeatureExtractor with secret indices into secret data is not supported"
    );
    let rank = cx.shape(data)?.rank();
    let width = match cx.shape(data)?.0.last() {
        Some(Dim::Fixed(w)) => *w as i64,
        _ => bail!("ArrayFeatureExtractor needs a fixed last axis"),
    };
    let picked = cx
        .constant_ints(indices)?
        .iter()
        .map(|&i| {
            let index = if i < 0 { i + width } else { i };
            (0..width)
                .contains(&index)
                .then_some(index as usize)
                .ok_or_else(|| anyhow!("{}: index {i} out of range for {width} columns", node.name))
        })
        .collect::<Result<Vec<_>>>()?;
    let x = cx.value(data)?;
    let count = picked.len();
    let gather = Op::Gather {
        axis: rank - 1,
        indices: picked,
    };
    if rank > 1 {
        cx.emit(node, gather, &[x], To::Output)?;
        return Ok(());
    }
    // ONNX makes the columns of a rank-1 input a row: [1, k].
    let row = To::shaped("columns", Shape(vec![Dim::Fixed(count)]));
    let columns = cx.emit(node, gather, &[x], row)?;
    let shape = cx.shape(node.output())?;
    cx.emit(node, Op::Reshape { shape }, &[columns], To::Output)?;
    Ok(())
}
