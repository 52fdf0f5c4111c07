//! Support vector machines (SVMClassifier, SVMRegressor) on the secret input with secret
//! support vectors and coefficients: the kernel of every row with every support vector
//! (one matrix product, then the kernel's function), the decision values as a product with
//! the secret coefficients, and the one-vs-one votes from one gate over the decision
//! values. The kernel's type and parameters (gamma, coef0, degree) are public.

use super::classes::{PostTransform, int_labels, label_of_scores, post_transform};
use super::power::integer_power;
use super::{Lowering, Op, To};
use crate::import::Node;
use crate::plan::{Dim, Function, Shape, ValueId, Visibility};
use anyhow::{Result, anyhow, bail, ensure};
use ndarray::{Array1, Array2, ArrayD, IxDyn};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kernel {
    Linear,
    /// (gamma x.v + coef0)^degree
    Poly {
        gamma: f32,
        coef0: f32,
        degree: u32,
    },
    /// exp(-gamma |x - v|^2)
    Rbf {
        gamma: f32,
    },
    /// tanh(gamma x.v + coef0)
    Sigmoid {
        gamma: f32,
        coef0: f32,
    },
}

fn kernel(node: &Node) -> Result<Kernel> {
    let params = node.floats("kernel_params")?.unwrap_or_default();
    let param = |i: usize| params.get(i).copied().unwrap_or(0.0);
    let (gamma, coef0, degree) = (param(0), param(1), param(2));
    Ok(
        match node.string("kernel_type")?.as_deref().unwrap_or("LINEAR") {
            "LINEAR" => Kernel::Linear,
            "POLY" => {
                ensure!(
                    degree.fract() == 0.0 && (1.0..=16.0).contains(&degree),
                    "{} {}: a polynomial kernel of degree {degree} is not supported (integer degrees from 1 to 16 are)",
                    node.op_type,
                    node.name
                );
                Kernel::Poly {
                    gamma,
                    coef0,
                    degree: degree as u32,
                }
            }
            "RBF" => Kernel::Rbf { gamma },
            "SIGMOID" => Kernel::Sigmoid { gamma, coef0 },
            other => bail!(
                "{} {}: kernel_type {other} is not one of LINEAR, POLY, RBF, SIGMOID",
                node.op_type,
                node.name
            ),
        },
    )
}

fn required_floats(node: &Node, name: &str) -> Result<Vec<f32>> {
    node.floats(name)?
        .ok_or_else(|| anyhow!("{} {} lacks the {name} attribute", node.op_type, node.name))
}

/// The node's input as `[N, features]`.
fn input(cx: &mut Lowering, node: &Node) -> Result<(ValueId, Dim, usize)> {
    let name = node
        .input(0)
        .ok_or_else(|| anyhow!("{} {} has no input", node.op_type, node.name))?;
    let shape = cx.shape(name)?;
    match shape.0.as_slice() {
        [n, Dim::Fixed(f)] => Ok((cx.value(name)?, *n, *f)),
        _ => bail!(
            "{} {}: the input must be [N, features], got {shape}",
            node.op_type,
            node.name
        ),
    }
}

/// Rows of `values` as a `[rows, width]` matrix.
fn matrix(node: &Node, what: &str, values: Vec<f32>, width: usize) -> Result<Array2<f32>> {
    ensure!(
        width > 0 && values.len().is_multiple_of(width),
        "{} {}: {} {what} do not make rows of {width}",
        node.op_type,
        node.name,
        values.len()
    );
    Ok(Array2::from_shape_vec(
        (values.len() / width, width),
        values,
    )?)
}

/// `[N, columns]` products of the input with the columns of a secret matrix.
fn product(
    cx: &mut Lowering,
    node: &Node,
    x: ValueId,
    n: Dim,
    columns: Array2<f32>,
    tag: &str,
) -> Result<ValueId> {
    let width = columns.ncols();
    let w = cx.weight(
        &format!("{}/{tag}", node.name),
        columns.into_dyn(),
        Visibility::Secret,
    )?;
    cx.emit(
        node,
        Op::MatMul,
        &[x, w],
        To::shaped(tag, Shape(vec![n, Dim::Fixed(width)])),
    )
}

/// K(x, v) for every row of x and every support vector (rows of `vectors`): `[N, V]`.
fn kernel_matrix(
    cx: &mut Lowering,
    node: &Node,
    (x, n): (ValueId, Dim),
    vectors: Array2<f32>,
    kernel: Kernel,
) -> Result<ValueId> {
    let count = vectors.nrows();
    let shape = Shape(vec![n, Dim::Fixed(count)]);
    let squares = vectors
        .rows()
        .into_iter()
        .map(|v| v.dot(&v))
        .collect::<Array1<f32>>();
    let dot = product(
        cx,
        node,
        x,
        n,
        vectors.reversed_axes().as_standard_layout().into_owned(),
        "dot",
    )?;
    let to = |tag: &str| To::shaped(tag, shape.clone());
    // gamma x.v + coef0
    let affine = |cx: &mut Lowering, gamma: f32, coef0: f32| -> Result<ValueId> {
        let gamma = cx.scalar(node, "gamma", gamma)?;
        let scaled = cx.emit(node, Op::Mul, &[dot, gamma], to("scaled_dot"))?;
        let coef0 = cx.scalar(node, "coef0", coef0)?;
        cx.emit(node, Op::Add, &[scaled, coef0], to("shifted_dot"))
    };
    let function = |f| Op::Function { function: f };
    match kernel {
        Kernel::Linear => Ok(dot),
        Kernel::Poly {
            gamma,
            coef0,
            degree,
        } => {
            let base = affine(cx, gamma, coef0)?;
            integer_power(cx, node, base, degree, &shape, to("kernel"))
        }
        Kernel::Sigmoid { gamma, coef0 } => {
            let base = affine(cx, gamma, coef0)?;
            cx.emit(node, function(cx.tanh_function()), &[base], to("kernel"))
        }
        // |x - v|^2 = |x|^2 - 2 x.v + |v|^2, with |v|^2 computed at convert time.
        Kernel::Rbf { gamma } => {
            let rows = Shape(vec![n, Dim::Fixed(1)]);
            let x_shape = cx.shape_of(x).clone();
            let x_squared = cx.emit(node, Op::Mul, &[x, x], To::shaped("x_squared", x_shape))?;
            let sum = Op::ReduceSum {
                axes: vec![1],
                keep_dims: true,
            };
            let x_norm = cx.emit(node, sum, &[x_squared], To::shaped("x_norm", rows))?;
            let twice = cx.emit(node, Op::Add, &[dot, dot], to("twice_dot"))?;
            let partial = cx.emit(node, Op::Sub, &[x_norm, twice], to("partial_distance"))?;
            let squares = cx.weight(
                &format!("{}/vector_norms", node.name),
                squares.into_dyn(),
                Visibility::Secret,
            )?;
            let distance = cx.emit(node, Op::Add, &[partial, squares], to("distance"))?;
            let minus_gamma = cx.scalar(node, "minus_gamma", -gamma)?;
            let exponent = cx.emit(node, Op::Mul, &[distance, minus_gamma], to("exponent"))?;
            cx.emit(node, function(Function::Exp), &[exponent], to("kernel"))
        }
    }
}

/// A secret vector added to `[N, width]` values.
fn plus_vector(
    cx: &mut Lowering,
    node: &Node,
    values: ValueId,
    vector: Vec<f32>,
    tag: &str,
) -> Result<ValueId> {
    let shape = cx.shape_of(values).clone();
    let v = ArrayD::from_shape_vec(IxDyn(&[vector.len()]), vector)?;
    let v = cx.weight(&format!("{}/{tag}", node.name), v, Visibility::Secret)?;
    cx.emit(
        node,
        Op::Add,
        &[values, v],
        To::shaped(format!("{tag}_added"), shape),
    )
}

pub fn svm_classifier(cx: &mut Lowering, node: &Node) -> Result<()> {
    let labels = int_labels(node, "classlabels_ints")?;
    let classes = labels.len();
    ensure!(
        node.floats("prob_a")?.unwrap_or_default().is_empty(),
        "SVMClassifier {}: probabilities from prob_a and prob_b (scikit-learn's probability=True) need libsvm's iterative pairwise coupling, which tfe does not compute; export the SVC with probability=False",
        node.name
    );
    let post = PostTransform::of(node)?;
    let coefficients = required_floats(node, "coefficients")?;
    let rho = required_floats(node, "rho")?;
    let (x, n, features) = input(cx, node)?;
    let per_class = node.ints("vectors_per_class")?.unwrap_or_default();
    if per_class.is_empty() {
        // liblinear's form: one row of coefficients per class, rho[0] added to each score.
        ensure!(
            classes > 2,
            "SVMClassifier {}: the binary linear form (one score column) is not supported",
            node.name
        );
        let rows = matrix(node, "coefficients", coefficients, features)?;
        ensure!(
            rows.nrows() == classes && !rho.is_empty(),
            "SVMClassifier {}: {} coefficient rows and {} rho for {classes} classes",
            node.name,
            rows.nrows(),
            rho.len()
        );
        let dot = product(
            cx,
            node,
            x,
            n,
            rows.reversed_axes().as_standard_layout().into_owned(),
            "dot",
        )?;
        let scores = plus_vector(cx, node, dot, vec![rho[0]; classes], "rho")?;
        return classifier_outputs(cx, node, scores, scores, &labels, post);
    }
    ensure!(
        per_class.len() == classes,
        "SVMClassifier {}: vectors_per_class has {} entries for {classes} classes",
        node.name,
        per_class.len()
    );
    let starts: Vec<usize> = per_class
        .iter()
        .scan(0usize, |start, &c| {
            let begin = *start;
            *start += c.max(0) as usize;
            Some(begin)
        })
        .collect();
    let count: usize = per_class.iter().map(|&c| c.max(0) as usize).sum();
    let vectors = matrix(
        node,
        "support_vectors",
        required_floats(node, "support_vectors")?,
        features,
    )?;
    let pairs = classes * (classes - 1) / 2;
    ensure!(
        vectors.nrows() == count
            && coefficients.len() >= (classes - 1) * count
            && rho.len() >= pairs,
        "SVMClassifier {}: {} support vectors, {} coefficients and {} rho do not fit {count} vectors in {classes} classes",
        node.name,
        vectors.nrows(),
        coefficients.len(),
        rho.len()
    );
    let kernel_values = kernel_matrix(cx, node, (x, n), vectors, kernel(node)?)?;
    // libsvm's one-vs-one decision for classes i < j: the coefficients of row j-1 on class
    // i's vectors plus those of row i on class j's vectors.
    let mut weights = Array2::<f32>::zeros((count, pairs));
    let mut p = 0;
    for i in 0..classes {
        for j in i + 1..classes {
            for (class, row) in [(i, j - 1), (j, i)] {
                for v in starts[class]..starts[class] + per_class[class] as usize {
                    weights[[v, p]] = coefficients[row * count + v];
                }
            }
            p += 1;
        }
    }
    let sums = product(cx, node, kernel_values, n, weights, "pair_coefficients")?;
    let decisions = plus_vector(cx, node, sums, rho[..pairs].to_vec(), "rho")?;
    let votes = one_vs_one_votes(cx, node, decisions, n, classes)?;
    if classes > 2 {
        return classifier_outputs(cx, node, votes, decisions, &labels, post);
    }
    // Two classes: onnxruntime writes the decision d as the scores [-d, d].
    ensure!(
        post == PostTransform::None,
        "SVMClassifier {}: a binary SVC with a post_transform is not supported",
        node.name
    );
    if let Some(label) = node.outputs.first().filter(|o| !o.is_empty()) {
        label_of_scores(cx, node, votes, &labels, label)?;
    }
    if let Some(scores) = node.outputs.get(1).filter(|o| !o.is_empty()) {
        let negated = cx.emit(
            node,
            Op::Neg,
            &[decisions],
            To::shaped("negated", Shape(vec![n, Dim::Fixed(1)])),
        )?;
        cx.emit(
            node,
            Op::Concat { axis: 1 },
            &[negated, decisions],
            To::Tensor(scores),
        )?;
    }
    Ok(())
}

/// The label (arg max of `ranking`) and the scores (`scores` after the post transform).
fn classifier_outputs(
    cx: &mut Lowering,
    node: &Node,
    ranking: ValueId,
    scores: ValueId,
    labels: &[f32],
    post: PostTransform,
) -> Result<()> {
    if let Some(label) = node.outputs.first().filter(|o| !o.is_empty()) {
        label_of_scores(cx, node, ranking, labels, label)?;
    }
    if let Some(output) = node.outputs.get(1).filter(|o| !o.is_empty()) {
        post_transform(cx, node, scores, post, To::Tensor(output))?;
    }
    Ok(())
}

/// Each class's votes `[N, classes]`: the pair (i, j) votes for i when its decision is
/// positive, else for j. One gate gives [d <= 0] for every pair; the counts are sums of
/// those bits and their complements (no products), exact integers.
fn one_vs_one_votes(
    cx: &mut Lowering,
    node: &Node,
    decisions: ValueId,
    n: Dim,
    classes: usize,
) -> Result<ValueId> {
    let pairs = classes * (classes - 1) / 2;
    let wide = |tag: &str, width: usize| To::shaped(tag, Shape(vec![n, Dim::Fixed(width)]));
    let negated = cx.emit(
        node,
        Op::Neg,
        &[decisions],
        wide("negated_decisions", pairs),
    )?;
    let one = cx.scalar(node, "one", 1.0)?;
    let zero = cx.scalar(node, "zero", 0.0)?;
    let second_wins = cx.emit(
        node,
        Op::Select,
        &[negated, one, zero],
        wide("second_wins", pairs),
    )?;
    let first_wins = cx.emit(
        node,
        Op::Sub,
        &[one, second_wins],
        wide("first_wins", pairs),
    )?;
    let both = cx.emit(
        node,
        Op::Concat { axis: 1 },
        &[first_wins, second_wins],
        wide("wins", 2 * pairs),
    )?;
    // Class c's classes - 1 columns: its pairs as the first class, then as the second.
    let mut columns = vec![vec![]; classes];
    let mut p = 0;
    for i in 0..classes {
        for j in i + 1..classes {
            columns[i].push(p);
            columns[j].push(pairs + p);
            p += 1;
        }
    }
    let gather = Op::Gather {
        axis: 1,
        indices: columns.concat(),
    };
    let per_class = cx.emit(
        node,
        gather,
        &[both],
        wide("votes_by_class", classes * (classes - 1)),
    )?;
    let grouped = Shape(vec![n, Dim::Fixed(classes), Dim::Fixed(classes - 1)]);
    let reshape = Op::Reshape {
        shape: grouped.clone(),
    };
    let grouped = cx.emit(
        node,
        reshape,
        &[per_class],
        To::shaped("votes_grouped", grouped),
    )?;
    let sum = Op::ReduceSum {
        axes: vec![2],
        keep_dims: false,
    };
    let votes = cx.emit(node, sum, &[grouped], wide("votes", classes))?;
    cx.mark_integral(votes);
    Ok(votes)
}

pub fn svm_regressor(cx: &mut Lowering, node: &Node) -> Result<()> {
    // onnxruntime transforms a regression score only by PROBIT, which tfe refuses.
    PostTransform::of(node)?;
    let coefficients = required_floats(node, "coefficients")?;
    let rho = required_floats(node, "rho")?;
    let (x, n, features) = input(cx, node)?;
    let supports = node.int("n_supports", 0)?;
    let sums = if supports > 0 {
        let vectors = matrix(
            node,
            "support_vectors",
            required_floats(node, "support_vectors")?,
            features,
        )?;
        ensure!(
            vectors.nrows() == supports as usize && coefficients.len() == vectors.nrows(),
            "SVMRegressor {}: {} support vectors and {} coefficients for n_supports {supports}",
            node.name,
            vectors.nrows(),
            coefficients.len()
        );
        let kernel_values = kernel_matrix(cx, node, (x, n), vectors, kernel(node)?)?;
        let column = Array2::from_shape_vec((coefficients.len(), 1), coefficients)?;
        product(cx, node, kernel_values, n, column, "coefficients")?
    } else {
        ensure!(
            coefficients.len() == features,
            "SVMRegressor {}: {} coefficients for {features} features",
            node.name,
            coefficients.len()
        );
        let column = Array2::from_shape_vec((features, 1), coefficients)?;
        product(cx, node, x, n, column, "coefficients")?
    };
    let first = *rho
        .first()
        .ok_or_else(|| anyhow!("SVMRegressor {} has no rho", node.name))?;
    let score = plus_vector(cx, node, sums, vec![first], "rho")?;
    if node.int("one_class", 0)? == 0 {
        cx.alias(node.output(), score);
        return Ok(());
    }
    // One-class: +1 when the score is positive, else -1.
    let negated = cx.emit(node, Op::Neg, &[score], To::temp("negated"))?;
    let minus_one = cx.scalar(node, "minus_one", -1.0)?;
    let one = cx.scalar(node, "one", 1.0)?;
    cx.emit(node, Op::Select, &[negated, minus_one, one], To::Output)?;
    Ok(())
}
