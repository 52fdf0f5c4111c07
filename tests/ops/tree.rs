//! Tree ensembles against a plaintext evaluator written here: it walks each tree from its
//! root, node by node, as the ONNX spec describes, independent of the lowering's batched
//! comparisons and path products.
//!
//! Inputs are multiples of 1/4 in [-1, 1] and so are the thresholds, so many inputs equal a
//! threshold exactly: BRANCH_LT and BRANCH_LEQ (GT and GTE, EQ and NEQ) then send the row
//! different ways, and fixed point represents both sides exactly. An input within 2^-16 of a
//! threshold that fixed point cannot represent may compare either way; none is used here.
//! Leaf weights are in [-2, 2], so a wrong leaf moves a score by far more than the tolerance.

use super::*;

const MODES: [&str; 6] = [
    "BRANCH_LEQ",
    "BRANCH_LT",
    "BRANCH_GTE",
    "BRANCH_GT",
    "BRANCH_EQ",
    "BRANCH_NEQ",
];
const FEATURES: usize = 5;

/// A deterministic stream of numbers for building trees.
struct Draw(u64);

impl Draw {
    fn next(&mut self, bound: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) % bound as u64) as usize
    }

    /// A multiple of 1/4 in [-0.75, 0.75].
    fn threshold(&mut self) -> f32 {
        (self.next(7) as f32 - 3.0) / 4.0
    }

    fn weight(&mut self) -> f32 {
        (self.next(801) as f32 - 400.0) / 200.0
    }
}

/// The node and weight lists of ai.onnx.ml 1-3 (weights as `class_*` or `target_*`).
#[derive(Default)]
struct Lists {
    tree: Vec<i64>,
    id: Vec<i64>,
    feature: Vec<i64>,
    mode: Vec<&'static str>,
    value: Vec<f32>,
    yes: Vec<i64>,
    no: Vec<i64>,
    vote_tree: Vec<i64>,
    vote_node: Vec<i64>,
    vote_target: Vec<i64>,
    vote_weight: Vec<f32>,
}

impl Lists {
    /// The rest of a node's entries, after its tree and node ids.
    fn node(&mut self, feature: i64, mode: &'static str, value: f32, (yes, no): (i64, i64)) {
        self.feature.push(feature);
        self.mode.push(mode);
        self.value.push(value);
        self.yes.push(yes);
        self.no.push(no);
    }
}

/// `trees` trees up to `depth` deep (some paths end early), modes drawn from `modes`, every
/// leaf voting for every target (with `zero_target`'s weights all 0).
fn forest(
    trees: usize,
    depth: usize,
    targets: usize,
    modes: &[&'static str],
    zero_target: Option<usize>,
    seed: u64,
) -> Lists {
    let mut draw = Draw(seed);
    let mut l = Lists::default();
    for tree in 0..trees as i64 {
        // (node id, level), breadth first; ids in order of creation.
        let mut queue = std::collections::VecDeque::from([(0i64, 0usize)]);
        let mut next_id = 1;
        while let Some((id, level)) = queue.pop_front() {
            l.tree.push(tree);
            l.id.push(id);
            let leaf = level == depth || (level > 0 && draw.next(4) == 0);
            if leaf {
                for k in 0..targets {
                    l.vote_tree.push(tree);
                    l.vote_node.push(id);
                    l.vote_target.push(k as i64);
                    l.vote_weight.push(if Some(k) == zero_target {
                        0.0
                    } else {
                        draw.weight()
                    });
                }
                l.node(0, "LEAF", 0.0, (0, 0));
                continue;
            }
            let (feature, mode) = (draw.next(FEATURES) as i64, modes[draw.next(modes.len())]);
            l.node(feature, mode, draw.threshold(), (next_id, next_id + 1));
            queue.push_back((next_id, level + 1));
            queue.push_back((next_id + 1, level + 1));
            next_id += 2;
        }
    }
    l
}

fn holds(mode: &str, x: f32, t: f32) -> bool {
    match mode {
        "BRANCH_LEQ" => x <= t,
        "BRANCH_LT" => x < t,
        "BRANCH_GTE" => x >= t,
        "BRANCH_GT" => x > t,
        "BRANCH_EQ" => x == t,
        "BRANCH_NEQ" => x != t,
        other => panic!("mode {other}"),
    }
}

/// Each tree's votes for one row: walk from node 0 to a leaf, then its (target, weight)s.
fn votes(l: &Lists, row: &[f32]) -> Vec<Vec<(usize, f32)>> {
    let mut trees: Vec<i64> = l.tree.clone();
    trees.dedup();
    trees
        .iter()
        .map(|&tree| {
            let mut id = 0;
            loop {
                let i = (0..l.id.len())
                    .find(|&i| l.tree[i] == tree && l.id[i] == id)
                    .unwrap();
                if l.mode[i] == "LEAF" {
                    break;
                }
                let x = row[l.feature[i] as usize];
                id = if holds(l.mode[i], x, l.value[i]) {
                    l.yes[i]
                } else {
                    l.no[i]
                };
            }
            (0..l.vote_node.len())
                .filter(|&v| l.vote_tree[v] == tree && l.vote_node[v] == id)
                .map(|v| (l.vote_target[v] as usize, l.vote_weight[v]))
                .collect()
        })
        .collect()
}

/// onnxruntime's aggregation: SUM and AVERAGE add (AVERAGE then divides by the number of
/// trees), MIN and MAX keep the extreme vote; a target without votes scores 0.
fn aggregate(votes: &[Vec<(usize, f32)>], targets: usize, how: &str, base: &[f32]) -> Vec<f32> {
    let mut scores: Vec<Option<f32>> = vec![None; targets];
    for (k, w) in votes.iter().flatten().copied() {
        scores[k] = Some(match (scores[k], how) {
            (None, _) => w,
            (Some(s), "MIN") => s.min(w),
            (Some(s), "MAX") => s.max(w),
            (Some(s), _) => s + w,
        });
    }
    let trees = votes.len() as f32;
    (0..targets)
        .map(|k| {
            let s = scores[k].unwrap_or(0.0);
            let s = if how == "AVERAGE" { s / trees } else { s };
            s + base.get(k).copied().unwrap_or(0.0)
        })
        .collect()
}

fn transform(scores: &[f32], post: &str) -> Vec<f32> {
    let max = scores.iter().copied().fold(f32::MIN, f32::max);
    match post {
        "NONE" => scores.to_vec(),
        "LOGISTIC" => scores.iter().map(|s| 1.0 / (1.0 + (-s).exp())).collect(),
        "SOFTMAX" => {
            let e: Vec<f32> = scores.iter().map(|s| (s - max).exp()).collect();
            let sum: f32 = e.iter().sum();
            e.iter().map(|v| v / sum).collect()
        }
        "SOFTMAX_ZERO" => {
            let e: Vec<f32> = scores
                .iter()
                .map(|&s| if s == 0.0 { 0.0 } else { (s - max).exp() })
                .collect();
            let sum: f32 = e.iter().sum();
            e.iter().map(|v| v / sum).collect()
        }
        other => panic!("post_transform {other}"),
    }
}

fn node_attrs(l: &Lists, weights: &str) -> Vec<Attr> {
    let (trees, nodes, ids, values) = match weights {
        "class" => (
            "class_treeids",
            "class_nodeids",
            "class_ids",
            "class_weights",
        ),
        _ => (
            "target_treeids",
            "target_nodeids",
            "target_ids",
            "target_weights",
        ),
    };
    vec![
        ints("nodes_treeids", &l.tree),
        ints("nodes_nodeids", &l.id),
        ints("nodes_featureids", &l.feature),
        Attr::Strs("nodes_modes", l.mode.clone()),
        Attr::Floats("nodes_values", l.value.clone()),
        ints("nodes_truenodeids", &l.yes),
        ints("nodes_falsenodeids", &l.no),
        ints(trees, &l.vote_tree),
        ints(nodes, &l.vote_node),
        ints(ids, &l.vote_target),
        Attr::Floats(values, l.vote_weight.clone()),
    ]
}

const LABELS: [i64; 4] = [3, 7, 11, 20];
const BASE: [f32; 4] = [0.25, -0.5, 0.0, 1.0];

fn classifier(name: &str, post: &'static str, zero_target: Option<usize>, base: bool) -> Case {
    let l = forest(4, 4, LABELS.len(), &MODES, zero_target, name.len() as u64);
    let mut attrs = node_attrs(&l, "class");
    attrs.push(ints("classlabels_int64s", &LABELS));
    attrs.push(str_attr("post_transform", post));
    let base_values: Vec<f32> = if base { BASE.to_vec() } else { vec![] };
    if base {
        attrs.push(Attr::Floats("base_values", base_values.clone()));
    }
    case(name, 17)
        .input("x", &[N, Some(FEATURES as i64)])
        .input_step(0.25)
        .ml_node(
            3,
            "TreeEnsembleClassifier",
            &["x"],
            &["label", "probabilities"],
            attrs,
        )
        .output("label")
        .output("probabilities")
        .expect(move |inputs| {
            row_by_row(inputs, |row| {
                let scores = aggregate(&votes(&l, row), LABELS.len(), "SUM", &base_values);
                let best =
                    (0..scores.len()).fold(0, |b, k| if scores[k] > scores[b] { k } else { b });
                vec![vec![LABELS[best] as f32], transform(&scores, post)]
            })
        })
}

fn regressor(name: &str, targets: usize, how: &'static str, post: &'static str) -> Case {
    let l = forest(5, 5, targets, &MODES, None, name.len() as u64 * 7);
    let base: Vec<f32> = BASE[..targets].to_vec();
    let mut attrs = node_attrs(&l, "target");
    attrs.push(int("n_targets", targets as i64));
    attrs.push(str_attr("aggregate_function", how));
    attrs.push(str_attr("post_transform", post));
    attrs.push(Attr::Floats("base_values", base.clone()));
    case(name, 17)
        .input("x", &[N, Some(FEATURES as i64)])
        .input_step(0.25)
        .ml_node(1, "TreeEnsembleRegressor", &["x"], &["y"], attrs)
        .output("y")
        .expect(move |inputs| {
            row_by_row(inputs, |row| {
                let scores = aggregate(&votes(&l, row), targets, how, &base);
                // onnxruntime transforms no single target.
                vec![if targets == 1 {
                    scores
                } else {
                    transform(&scores, post)
                }]
            })
        })
}

#[test]
fn tree_ensemble_classifier_every_mode_and_post_transform() {
    run_all(vec![
        classifier("tree-classifier-none", "NONE", None, true),
        classifier("tree-classifier-softmax", "SOFTMAX", None, true),
        classifier("tree-classifier-logistic", "LOGISTIC", None, false),
        classifier(
            "tree-classifier-softmax-zero",
            "SOFTMAX_ZERO",
            Some(1),
            false,
        ),
    ]);
}

#[test]
fn tree_ensemble_regressor_every_aggregate() {
    run_all(vec![
        regressor("tree-regressor-sum", 2, "SUM", "NONE"),
        regressor("tree-regressor-average", 2, "AVERAGE", "NONE"),
        regressor("tree-regressor-min", 2, "MIN", "NONE"),
        regressor("tree-regressor-max", 3, "MAX", "NONE"),
        regressor("tree-regressor-softmax", 3, "SUM", "SOFTMAX"),
        regressor("tree-regressor-single-logistic", 1, "SUM", "LOGISTIC"),
    ]);
}

/// TreeEnsemble (ai.onnx.ml 5): two trees, one with a set-membership root. Tree 0: x0 in
/// {-0.5, 0, 0.75} ? leaf 0 : (x1 <= 0.25 ? leaf 1 : (x2 > -0.25 ? leaf 2 : leaf 3)); tree 1:
/// x0 != 0 ? (x3 < 0.5 ? leaf 4 : leaf 5) : leaf 6.
fn tree_ensemble_v5(name: &str, aggregate_code: i64, how: &'static str) -> Case {
    let set = [-0.5f32, 0.0, 0.75];
    let weights = [1.5f32, -1.0, 0.5, 2.0, -0.75, 1.25, -2.0];
    let targets = [0i64, 1, 0, 1, 0, 0, 1];
    let walk = move |row: &[f32]| -> Vec<usize> {
        let first = if set.contains(&row[0]) {
            0
        } else if row[1] <= 0.25 {
            1
        } else if row[2] > -0.25 {
            2
        } else {
            3
        };
        let second = if row[0] != 0.0 {
            if row[3] < 0.5 { 4 } else { 5 }
        } else {
            6
        };
        vec![first, second]
    };
    let attrs = vec![
        ints("nodes_featureids", &[0, 1, 2, 0, 3]),
        Attr::BytesTensor("nodes_modes", vec![6, 0, 3, 5, 1]),
        Attr::FloatsTensor("nodes_splits", vec![f32::NAN, 0.25, -0.25, 0.0, 0.5]),
        ints("nodes_truenodeids", &[0, 1, 2, 4, 4]),
        ints("nodes_trueleafs", &[1, 1, 1, 0, 1]),
        ints("nodes_falsenodeids", &[1, 2, 3, 6, 5]),
        ints("nodes_falseleafs", &[0, 0, 1, 1, 1]),
        Attr::FloatsTensor("membership_values", vec![-0.5, 0.0, 0.75, f32::NAN]),
        ints("tree_roots", &[0, 3]),
        ints("leaf_targetids", &targets),
        Attr::FloatsTensor("leaf_weights", weights.to_vec()),
        int("n_targets", 2),
        int("aggregate_function", aggregate_code),
        int("post_transform", 0),
    ];
    case(name, 21)
        .input("x", &[N, Some(4)])
        .input_step(0.25)
        .ml_node(5, "TreeEnsemble", &["x"], &["y"], attrs)
        .output("y")
        .expect(move |inputs| {
            row_by_row(inputs, |row| {
                let votes: Vec<Vec<(usize, f32)>> = walk(row)
                    .into_iter()
                    .map(|leaf| vec![(targets[leaf] as usize, weights[leaf])])
                    .collect();
                vec![aggregate(&votes, 2, how, &[])]
            })
        })
}

#[test]
fn tree_ensemble_opset5_with_set_membership() {
    run_all(vec![
        tree_ensemble_v5("tree-ensemble5-sum", 1, "SUM"),
        tree_ensemble_v5("tree-ensemble5-average", 0, "AVERAGE"),
    ]);
}

#[test]
fn tree_ensembles_refuse_what_they_cannot_compute() {
    let with = |name: &str, post: &'static str, labels: Attr| {
        let l = forest(2, 2, 3, &MODES[..1], None, 5);
        let mut attrs = node_attrs(&l, "class");
        attrs.push(labels);
        attrs.push(str_attr("post_transform", post));
        case(name, 17)
            .input("x", &[N, Some(FEATURES as i64)])
            .ml_node(
                3,
                "TreeEnsembleClassifier",
                &["x"],
                &["label", "probabilities"],
                attrs,
            )
            .output("label")
            .output("probabilities")
    };
    let labels = || ints("classlabels_int64s", &[0, 1, 2]);
    refuse_all(vec![
        (
            with("tree-probit", "PROBIT", labels()),
            &["PROBIT", "inverse of the normal CDF"],
        ),
        (
            with(
                "tree-string-labels",
                "NONE",
                Attr::Strs("classlabels_strings", vec!["a", "b", "c"]),
            ),
            &["string class labels", "integer labels"],
        ),
        (
            // Leaves that score both classes: onnxruntime's label then ignores the labels.
            with("tree-binary", "NONE", ints("classlabels_int64s", &[0, 1])),
            &["leaves score both classes", "single score column"],
        ),
    ]);
}
