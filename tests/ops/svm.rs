//! Support vector machines against a plaintext evaluator written here, as libsvm and
//! onnxruntime define them: the kernel of the row with each support vector, the one-vs-one
//! decisions (class i's vectors weighted by coefficient row j-1, class j's by row i, plus
//! rho), a vote per decision (positive: the first class), the label of the most votes (the
//! first on ties). Ties between votes are frequent with three classes, so the tie rule is
//! exercised; a decision within 2^-16 of zero may vote either way (none is, here).

use super::*;

const FEATURES: usize = 4;

fn values(count: usize, seed: u64) -> Vec<f32> {
    common::random(&[count], seed, 1.0)
        .iter()
        .copied()
        .collect()
}

fn kernel_value(kind: &str, params: &[f32], x: &[f32], v: &[f32]) -> f32 {
    let dot: f32 = x.iter().zip(v).map(|(a, b)| a * b).sum();
    match kind {
        "LINEAR" => dot,
        "POLY" => (params[0] * dot + params[1]).powi(params[2] as i32),
        "RBF" => (-params[0] * x.iter().zip(v).map(|(a, b)| (a - b) * (a - b)).sum::<f32>()).exp(),
        "SIGMOID" => (params[0] * dot + params[1]).tanh(),
        other => panic!("kernel {other}"),
    }
}

/// The decisions of every pair (i < j) for one row.
fn decisions(
    kind: &str,
    params: &[f32],
    per_class: &[i64],
    vectors: &[f32],
    coefficients: &[f32],
    rho: &[f32],
    row: &[f32],
) -> Vec<f32> {
    let count: usize = per_class.iter().sum::<i64>() as usize;
    let k: Vec<f32> = (0..count)
        .map(|v| {
            kernel_value(
                kind,
                params,
                row,
                &vectors[v * FEATURES..(v + 1) * FEATURES],
            )
        })
        .collect();
    let start = |c: usize| per_class[..c].iter().sum::<i64>() as usize;
    let classes = per_class.len();
    let mut out = vec![];
    for i in 0..classes {
        for j in i + 1..classes {
            let mut sum = rho[out.len()];
            for v in start(i)..start(i + 1) {
                sum += coefficients[(j - 1) * count + v] * k[v];
            }
            for v in start(j)..start(j + 1) {
                sum += coefficients[i * count + v] * k[v];
            }
            out.push(sum);
        }
    }
    out
}

fn winner(per_class: usize, decisions: &[f32]) -> usize {
    let mut votes = vec![0; per_class];
    let mut p = 0;
    for i in 0..per_class {
        for j in i + 1..per_class {
            votes[if decisions[p] > 0.0 { i } else { j }] += 1;
            p += 1;
        }
    }
    (0..per_class).fold(0, |b, c| if votes[c] > votes[b] { c } else { b })
}

const LABELS: [i64; 3] = [4, 9, 2];

fn svc(
    name: &str,
    kind: &'static str,
    params: Vec<f32>,
    per_class: Vec<i64>,
    post: &'static str,
) -> Case {
    let classes = per_class.len();
    let count = per_class.iter().sum::<i64>() as usize;
    let seed = name.len() as u64;
    let vectors = values(count * FEATURES, seed);
    let coefficients = values((classes - 1) * count, seed + 1);
    let rho = values(classes * (classes - 1) / 2, seed + 2);
    let labels = LABELS[..classes].to_vec();
    let attrs = vec![
        str_attr("kernel_type", kind),
        Attr::Floats("kernel_params", params.clone()),
        ints("vectors_per_class", &per_class),
        Attr::Floats("support_vectors", vectors.clone()),
        Attr::Floats("coefficients", coefficients.clone()),
        Attr::Floats("rho", rho.clone()),
        ints("classlabels_ints", &labels),
        str_attr("post_transform", post),
    ];
    case(name, 17)
        .input("x", &[N, Some(FEATURES as i64)])
        .ml_node(1, "SVMClassifier", &["x"], &["label", "scores"], attrs)
        .output("label")
        .output("scores")
        .relative_tolerance(1e-3)
        .expect(move |inputs| {
            row_by_row(inputs, |row| {
                let d = decisions(
                    kind,
                    &params,
                    &per_class,
                    &vectors,
                    &coefficients,
                    &rho,
                    row,
                );
                let label = labels[winner(per_class.len(), &d)] as f32;
                let scores = match (classes, post) {
                    (2, _) => vec![-d[0], d[0]],
                    (_, "LOGISTIC") => d.iter().map(|v| 1.0 / (1.0 + (-v).exp())).collect(),
                    _ => d,
                };
                vec![vec![label], scores]
            })
        })
}

#[test]
fn svm_classifier_every_kernel() {
    run_all(vec![
        svc(
            "svc-linear",
            "LINEAR",
            vec![0.0, 0.0, 0.0],
            vec![2, 3, 2],
            "NONE",
        ),
        svc(
            "svc-poly",
            "POLY",
            vec![0.5, 1.0, 3.0],
            vec![2, 3, 2],
            "NONE",
        ),
        svc(
            "svc-rbf",
            "RBF",
            vec![0.5, 0.0, 0.0],
            vec![3, 1, 2],
            "LOGISTIC",
        ),
        svc(
            "svc-sigmoid",
            "SIGMOID",
            vec![0.5, 0.1, 0.0],
            vec![2, 2, 2],
            "NONE",
        ),
        svc(
            "svc-rbf-binary",
            "RBF",
            vec![0.7, 0.0, 0.0],
            vec![2, 3],
            "NONE",
        ),
    ]);
}

/// The liblinear form: one coefficient row per class, rho[0] added to every score.
#[test]
fn svm_classifier_linear_form() {
    let coefficients = values(3 * FEATURES, 11);
    let rho = 0.25f32;
    let attrs = vec![
        Attr::Floats("coefficients", coefficients.clone()),
        Attr::Floats("rho", vec![rho]),
        ints("classlabels_ints", &LABELS),
    ];
    let c = case("svc-liblinear", 17)
        .input("x", &[N, Some(FEATURES as i64)])
        .ml_node(1, "SVMClassifier", &["x"], &["label", "scores"], attrs)
        .output("label")
        .output("scores")
        .expect(move |inputs| {
            row_by_row(inputs, |row| {
                let scores: Vec<f32> = (0..3)
                    .map(|c| {
                        rho + (0..FEATURES)
                            .map(|f| coefficients[c * FEATURES + f] * row[f])
                            .sum::<f32>()
                    })
                    .collect();
                let best = (0..3).fold(0, |b, c| if scores[c] > scores[b] { c } else { b });
                vec![vec![LABELS[best] as f32], scores]
            })
        });
    run_all(vec![c]);
}

fn regressor(name: &str, kind: &'static str, supports: usize, one_class: bool) -> Case {
    let params = vec![0.5f32, 0.25, 2.0];
    let vectors = values(supports * FEATURES, 21);
    let coefficients = values(
        supports.max(1) * if supports == 0 { FEATURES } else { 1 },
        22,
    );
    let rho = -0.125f32;
    let mut attrs = vec![
        str_attr("kernel_type", kind),
        Attr::Floats("kernel_params", params.clone()),
        int("n_supports", supports as i64),
        Attr::Floats("coefficients", coefficients.clone()),
        Attr::Floats("rho", vec![rho]),
        int("one_class", one_class as i64),
    ];
    if supports > 0 {
        attrs.push(Attr::Floats("support_vectors", vectors.clone()));
    }
    case(name, 17)
        .input("x", &[N, Some(FEATURES as i64)])
        .ml_node(1, "SVMRegressor", &["x"], &["y"], attrs)
        .output("y")
        .relative_tolerance(1e-3)
        .expect(move |inputs| {
            row_by_row(inputs, |row| {
                let score = rho
                    + if supports == 0 {
                        (0..FEATURES).map(|f| coefficients[f] * row[f]).sum::<f32>()
                    } else {
                        (0..supports)
                            .map(|v| {
                                coefficients[v]
                                    * kernel_value(
                                        kind,
                                        &params,
                                        row,
                                        &vectors[v * FEATURES..(v + 1) * FEATURES],
                                    )
                            })
                            .sum::<f32>()
                    };
                let y = if !one_class {
                    score
                } else if score > 0.0 {
                    1.0
                } else {
                    -1.0
                };
                vec![vec![y]]
            })
        })
}

#[test]
fn svm_regressor_kernels_linear_and_one_class() {
    run_all(vec![
        regressor("svr-rbf", "RBF", 5, false),
        regressor("svr-poly", "POLY", 4, false),
        regressor("svr-linear-form", "LINEAR", 0, false),
        regressor("svr-one-class", "RBF", 5, true),
    ]);
}

#[test]
fn svm_classifier_refuses_probabilities() {
    let attrs = vec![
        str_attr("kernel_type", "RBF"),
        Attr::Floats("kernel_params", vec![0.5, 0.0, 0.0]),
        ints("vectors_per_class", &[1, 1, 1]),
        Attr::Floats("support_vectors", values(3 * FEATURES, 3)),
        Attr::Floats("coefficients", values(6, 4)),
        Attr::Floats("rho", values(3, 5)),
        Attr::Floats("prob_a", vec![1.0; 3]),
        Attr::Floats("prob_b", vec![0.0; 3]),
        ints("classlabels_ints", &LABELS),
    ];
    let c = case("svc-probabilities", 17)
        .input("x", &[N, Some(FEATURES as i64)])
        .ml_node(1, "SVMClassifier", &["x"], &["label", "scores"], attrs)
        .output("label")
        .output("scores");
    refuse_all(vec![(c, &["probability=False", "prob_a"])]);
}
