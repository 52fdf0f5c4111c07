//! The paths from the roots to the leaves, the comparisons their nodes need, and each
//! leaf's indicator as the product of the node outcomes along its path.

use super::ensemble::{Child, Ensemble, Mode};
use crate::import::Node;
use crate::lower::{Lowering, Op, To};
use crate::plan::{Dim, Shape, ValueId, Visibility};
use anyhow::Result;
use ndarray::{ArrayD, IxDyn};
use std::collections::{BTreeMap, HashMap};

/// A node's outcome on one side: the branch it takes when its comparison holds (`true`) or
/// when it does not.
type Outcome = (usize, bool);

/// One path from a tree's root to a leaf.
#[derive(Clone, Debug)]
pub struct Route {
    pub tree: usize,
    pub leaf: usize,
    /// The outcomes along the path, root first.
    outcomes: Vec<Outcome>,
}

/// Every path of the ensemble: those that depend on the input, and those that do not (a
/// tree that is a single leaf).
pub struct Routes {
    secret: Vec<Route>,
    constant: Vec<Route>,
}

impl Routes {
    /// Walks every tree from its root. A set-membership node with an empty set never holds:
    /// the paths through its true side are never taken and its false side needs no factor.
    pub fn of(ensemble: &Ensemble) -> Result<Routes, String> {
        let (mut secret, mut constant) = (vec![], vec![]);
        for (tree, &root) in ensemble.roots.iter().enumerate() {
            let mut stack = vec![(root, vec![])];
            while let Some((child, outcomes)) = stack.pop() {
                let branch = match child {
                    Child::Leaf(leaf) => {
                        let route = Route {
                            tree,
                            leaf,
                            outcomes,
                        };
                        let list = if route.outcomes.is_empty() {
                            &mut constant
                        } else {
                            &mut secret
                        };
                        list.push(route);
                        continue;
                    }
                    Child::Branch(b) => b,
                };
                if outcomes.len() >= ensemble.branches.len() {
                    return Err(format!("tree {tree} has a cycle"));
                }
                let node = &ensemble.branches[branch];
                let never_holds = node.mode == Mode::Member && node.values.is_empty();
                let with = |side: bool| {
                    let mut path: Vec<Outcome> = outcomes.clone();
                    path.push((branch, side));
                    path
                };
                if never_holds {
                    stack.push((node.if_false, outcomes.clone()));
                } else {
                    stack.push((node.if_false, with(false)));
                    stack.push((node.if_true, with(true)));
                }
            }
        }
        Ok(Routes { secret, constant })
    }

    /// The paths that depend on the input, in the order of the indicator columns.
    pub fn secret(&self) -> &[Route] {
        &self.secret
    }

    pub fn constant(&self) -> &[Route] {
        &self.constant
    }

    /// Every path of one tree.
    pub fn of_tree(&self, tree: usize) -> impl Iterator<Item = &Route> {
        self.secret
            .iter()
            .chain(&self.constant)
            .filter(move |r| r.tree == tree)
    }

    /// The paths of one tree that depend on the input, with their indicator column.
    pub fn secret_of_tree(&self, tree: usize) -> impl Iterator<Item = (usize, &Route)> {
        self.secret
            .iter()
            .enumerate()
            .filter(move |(_, r)| r.tree == tree)
    }
}

/// An outcome as a linear form in the comparison bits: offset + Σ sign · bit.
struct LinearForm {
    offset: f32,
    terms: Vec<(usize, f32)>,
}

/// A node's comparison columns per compared value: (forward, reverse), `None` for a
/// direction its mode does not need.
type Columns = Vec<(Option<usize>, Option<usize>)>;

/// The comparisons `x - t >= 0` (forward) and `t - x >= 0` (reverse) the nodes need, as
/// (feature, threshold) lists, and each node's columns among them (forward ones first).
#[derive(Default)]
struct Comparisons {
    forward: Vec<(usize, f32)>,
    reverse: Vec<(usize, f32)>,
    of_branch: HashMap<usize, Columns>,
}

impl Comparisons {
    fn of(ensemble: &Ensemble, routes: &Routes) -> Comparisons {
        let mut c = Comparisons::default();
        for route in &routes.secret {
            for &(branch, _) in &route.outcomes {
                if c.of_branch.contains_key(&branch) {
                    continue;
                }
                let node = &ensemble.branches[branch];
                let (fwd, rev) = match node.mode {
                    Mode::Gte | Mode::Lt => (true, false),
                    Mode::Leq | Mode::Gt => (false, true),
                    Mode::Eq | Mode::Neq | Mode::Member => (true, true),
                };
                let columns = node
                    .values
                    .iter()
                    .map(|&t| {
                        let add = |list: &mut Vec<(usize, f32)>| {
                            list.push((node.feature, t));
                            list.len() - 1
                        };
                        (
                            fwd.then(|| add(&mut c.forward)),
                            rev.then(|| add(&mut c.reverse)),
                        )
                    })
                    .collect();
                c.of_branch.insert(branch, columns);
            }
        }
        c
    }

    fn count(&self) -> usize {
        self.forward.len() + self.reverse.len()
    }

    /// The outcome as a linear form in the bits (forward columns, then reverse ones).
    fn outcome(&self, ensemble: &Ensemble, (branch, side): Outcome) -> LinearForm {
        let columns = &self.of_branch[&branch];
        let fwd = |i: usize| columns[i].0.expect("forward compared");
        let rev = |i: usize| self.forward.len() + columns[i].1.expect("reverse compared");
        let holds = match ensemble.branches[branch].mode {
            Mode::Gte => LinearForm {
                offset: 0.0,
                terms: vec![(fwd(0), 1.0)],
            },
            Mode::Lt => LinearForm {
                offset: 1.0,
                terms: vec![(fwd(0), -1.0)],
            },
            Mode::Leq => LinearForm {
                offset: 0.0,
                terms: vec![(rev(0), 1.0)],
            },
            Mode::Gt => LinearForm {
                offset: 1.0,
                terms: vec![(rev(0), -1.0)],
            },
            // [x >= t] + [t >= x] is 2 when x == t and 1 otherwise.
            Mode::Eq | Mode::Member => LinearForm {
                offset: -(columns.len() as f32),
                terms: (0..columns.len())
                    .flat_map(|i| [(fwd(i), 1.0), (rev(i), 1.0)])
                    .collect(),
            },
            Mode::Neq => LinearForm {
                offset: 2.0,
                terms: vec![(fwd(0), -1.0), (rev(0), -1.0)],
            },
        };
        if side {
            holds
        } else {
            LinearForm {
                offset: 1.0 - holds.offset,
                terms: holds.terms.into_iter().map(|(c, s)| (c, -s)).collect(),
            }
        }
    }
}

/// The `[N, routes]` 0/1 indicators of the paths that depend on the input (`None` when
/// none does).
pub fn leaf_indicators(
    cx: &mut Lowering,
    node: &Node,
    x: ValueId,
    n: Dim,
    ensemble: &Ensemble,
    routes: &Routes,
) -> Result<Option<ValueId>> {
    if routes.secret.is_empty() {
        return Ok(None);
    }
    let shaped = |tag: String, width: usize| To::Shaped(tag, Shape(vec![n, Dim::Fixed(width)]));
    let comparisons = Comparisons::of(ensemble, routes);
    let bits = comparison_bits(cx, node, x, &comparisons, &shaped)?;
    // The distinct outcomes the paths need, grouped by their number of terms.
    let mut position: HashMap<Outcome, usize> = HashMap::new();
    let mut groups: BTreeMap<usize, Vec<(Outcome, LinearForm)>> = BTreeMap::new();
    for route in &routes.secret {
        for &outcome in &route.outcomes {
            if let std::collections::hash_map::Entry::Vacant(slot) = position.entry(outcome) {
                slot.insert(0);
                let form = comparisons.outcome(ensemble, outcome);
                groups
                    .entry(form.terms.len())
                    .or_default()
                    .push((outcome, form));
            }
        }
    }
    let signed = if groups
        .values()
        .flatten()
        .any(|(_, f)| f.terms.iter().any(|t| t.1 < 0.0))
    {
        let c = comparisons.count();
        let negated = cx.emit(node, Op::Neg, &[bits], shaped("negated_bits".into(), c))?;
        cx.emit(
            node,
            Op::Concat { axis: 1 },
            &[bits, negated],
            shaped("signed_bits".into(), 2 * c),
        )?
    } else {
        bits
    };
    let c = comparisons.count();
    let mut parts = vec![];
    let mut next = 0;
    for (terms, forms) in &groups {
        let width = forms.len();
        let mut sum: Option<ValueId> = None;
        for j in 0..*terms {
            let indices = forms
                .iter()
                .map(|(_, f)| {
                    if f.terms[j].1 < 0.0 {
                        c + f.terms[j].0
                    } else {
                        f.terms[j].0
                    }
                })
                .collect();
            let gather = Op::Gather { axis: 1, indices };
            let term = cx.emit(
                node,
                gather,
                &[signed],
                shaped(format!("outcomes{terms}_term{j}"), width),
            )?;
            sum = Some(match sum {
                None => term,
                Some(s) => cx.emit(
                    node,
                    Op::Add,
                    &[s, term],
                    shaped(format!("outcomes{terms}_sum{j}"), width),
                )?,
            });
        }
        let mut part = sum.expect("every outcome has a term");
        if forms.iter().any(|(_, f)| f.offset != 0.0) {
            let offsets = forms.iter().map(|(_, f)| f.offset).collect();
            let offsets = ArrayD::from_shape_vec(IxDyn(&[width]), offsets)?;
            let offsets = cx.public(&format!("{}/outcome_offsets{terms}", node.name), offsets)?;
            part = cx.emit(
                node,
                Op::Add,
                &[part, offsets],
                shaped(format!("outcomes{terms}"), width),
            )?;
        }
        for (outcome, _) in forms {
            position.insert(*outcome, next);
            next += 1;
        }
        parts.push(part);
    }
    let mut current = if parts.len() == 1 {
        parts[0]
    } else {
        cx.emit(
            node,
            Op::Concat { axis: 1 },
            &parts,
            shaped("outcomes".into(), next),
        )?
    };
    let mut factors: Vec<Vec<usize>> = routes
        .secret
        .iter()
        .map(|r| r.outcomes.iter().map(|o| position[o]).collect())
        .collect();
    let mut level = 0;
    while factors.iter().any(|f| f.len() > 1) {
        (current, factors) = product_level(cx, node, current, &factors, level, &shaped)?;
        level += 1;
    }
    let finals: Vec<usize> = factors.iter().map(|f| f[0]).collect();
    let identity = match cx.shape_of(current).0[1] {
        Dim::Fixed(width) => finals.iter().copied().eq(0..width),
        Dim::Batch(_) => false,
    };
    if identity {
        return Ok(Some(current));
    }
    let gather = Op::Gather {
        axis: 1,
        indices: finals,
    };
    let indicators = shaped("leaf_indicators".into(), routes.secret.len());
    Ok(Some(cx.emit(node, gather, &[current], indicators)?))
}

/// `[N, C]` bits `[x_f - t >= 0]` and `[t - x_f >= 0]`, one gate for all, thresholds secret.
fn comparison_bits(
    cx: &mut Lowering,
    node: &Node,
    x: ValueId,
    comparisons: &Comparisons,
    shaped: &dyn Fn(String, usize) -> To<'static>,
) -> Result<ValueId> {
    let mut differences = vec![];
    for (forward, list) in [(true, &comparisons.forward), (false, &comparisons.reverse)] {
        if list.is_empty() {
            continue;
        }
        let tag = if forward { "forward" } else { "reverse" };
        let gather = Op::Gather {
            axis: 1,
            indices: list.iter().map(|&(f, _)| f).collect(),
        };
        let features = cx.emit(
            node,
            gather,
            &[x],
            shaped(format!("{tag}_features"), list.len()),
        )?;
        let thresholds =
            ArrayD::from_shape_vec(IxDyn(&[list.len()]), list.iter().map(|&(_, t)| t).collect())?;
        let thresholds = cx.weight(
            &format!("{}/{tag}_thresholds", node.name),
            thresholds,
            Visibility::Secret,
        )?;
        let operands = if forward {
            [features, thresholds]
        } else {
            [thresholds, features]
        };
        differences.push(cx.emit(
            node,
            Op::Sub,
            &operands,
            shaped(format!("{tag}_differences"), list.len()),
        )?);
    }
    let c = comparisons.count();
    let difference = if differences.len() == 1 {
        differences[0]
    } else {
        cx.emit(
            node,
            Op::Concat { axis: 1 },
            &differences,
            shaped("differences".into(), c),
        )?
    };
    let one = cx.scalar(node, "one", 1.0)?;
    let zero = cx.scalar(node, "zero", 0.0)?;
    cx.emit(
        node,
        Op::Select,
        &[difference, one, zero],
        shaped("bits".into(), c),
    )
}

/// One level of the product tree: each path's factors multiplied in pairs (an odd one
/// carried), every distinct pair once, all in one product.
fn product_level(
    cx: &mut Lowering,
    node: &Node,
    current: ValueId,
    factors: &[Vec<usize>],
    level: usize,
    shaped: &dyn Fn(String, usize) -> To<'static>,
) -> Result<(ValueId, Vec<Vec<usize>>)> {
    let mut pairs: Vec<(usize, usize)> = vec![];
    let mut carried: Vec<usize> = vec![];
    let mut pair_at: HashMap<(usize, usize), usize> = HashMap::new();
    let mut carried_at: HashMap<usize, usize> = HashMap::new();
    for f in factors {
        for chunk in f.chunks(2) {
            match *chunk {
                [a, b] => {
                    pair_at.entry((a, b)).or_insert_with(|| {
                        pairs.push((a, b));
                        pairs.len() - 1
                    });
                }
                [a] => {
                    carried_at.entry(a).or_insert_with(|| {
                        carried.push(a);
                        carried.len() - 1
                    });
                }
                _ => unreachable!("chunks of two"),
            }
        }
    }
    let p = pairs.len();
    let gather = |cx: &mut Lowering, indices: Vec<usize>, tag: &str| {
        let width = indices.len();
        cx.emit(
            node,
            Op::Gather { axis: 1, indices },
            &[current],
            shaped(format!("level{level}_{tag}"), width),
        )
    };
    let left = gather(cx, pairs.iter().map(|pair| pair.0).collect(), "left")?;
    let right = gather(cx, pairs.iter().map(|pair| pair.1).collect(), "right")?;
    let products = cx.emit(
        node,
        Op::Mul,
        &[left, right],
        shaped(format!("level{level}_products"), p),
    )?;
    let next = if carried.is_empty() {
        products
    } else {
        let kept = gather(cx, carried.clone(), "carried")?;
        let width = p + carried.len();
        cx.emit(
            node,
            Op::Concat { axis: 1 },
            &[products, kept],
            shaped(format!("level{level}"), width),
        )?
    };
    let factors = factors
        .iter()
        .map(|f| {
            f.chunks(2)
                .map(|chunk| match *chunk {
                    [a, b] => pair_at[&(a, b)],
                    [a] => p + carried_at[&a],
                    _ => unreachable!("chunks of two"),
                })
                .collect()
        })
        .collect();
    Ok((next, factors))
}
