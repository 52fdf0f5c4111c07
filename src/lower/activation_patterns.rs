//! Activations as exporters write them out op by op: GELU's erf form
//! `0.5 x (1 + erf(x / √2))`, its tanh form (GPT-2's
//! `0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³)))`) and SiLU `x sigmoid(x)`. Lowered op by op,
//! each is an accurate erf or tanh or sigmoid plus products; recognised, the last node
//! computes the one cheap function of x and the others fold into it.
//!
//! A pattern is recognised by what it computes, not by its node order: from a candidate
//! last node, the element-wise ops whose results that node alone reads (and no graph output)
//! are followed back to a single secret tensor x, with scalar constants as the only other
//! leaves; the expression is then evaluated at sample points and compared with each
//! function. So `x * 0.5 * (1 + erf(x / 1.414))`, `(x * (erf(x * 0.7071) + 1)) * 0.5` and
//! the other orders and spellings exporters emit are all found.

use super::readers::{Anchored, Readers, producers, scalar};
use crate::import::{Graph, Node};
use crate::plan::Function;
use std::collections::HashMap;

/// A recognised activation, anchored at its last node.
#[derive(Clone)]
pub struct ActivationPattern {
    /// The activation's input.
    pub x: String,
    pub function: Function,
}

pub type ActivationPatterns = Anchored<ActivationPattern>;

/// Element-wise ops an expression may contain.
const OPS: [&str; 9] = [
    "Mul", "Add", "Sub", "Div", "Pow", "Neg", "Erf", "Tanh", "Sigmoid",
];
/// More nodes than any of the patterns has.
const MAX_NODES: usize = 12;
/// Where the expression is compared with each function.
const SAMPLES: [f64; 13] = [
    -7.0, -4.5, -3.0, -2.0, -1.25, -0.5, -0.1, 0.3, 0.8, 1.5, 2.5, 4.0, 6.5,
];

impl ActivationPatterns {
    /// The patterns among `candidates` (the functions a caller wants recognised).
    pub fn find(graph: &Graph, readers: &Readers, candidates: &[Function]) -> ActivationPatterns {
        let search = Search {
            graph,
            readers,
            producers: producers(&graph.model),
        };
        let mut patterns = ActivationPatterns::default();
        if candidates.is_empty() {
            return patterns;
        }
        // Last nodes first, so that a larger expression wins over one inside it.
        for anchor in graph.model.nodes.iter().rev() {
            if patterns.absorbed_by(&anchor.name).is_some()
                || !OPS.contains(&anchor.op_type.as_str())
            {
                continue;
            }
            let Some(expression) = search.expression(anchor) else {
                continue;
            };
            // A constant of higher rank would broadcast x.
            let same_shape = graph.shape(expression.x).ok() == graph.shape(anchor.output()).ok();
            let found = candidates.iter().find(|f| expression.computes(**f));
            let Some(&function) = found.filter(|_| same_shape) else {
                continue;
            };
            let absorbed = expression.nodes[1..].iter().map(|n| n.name.as_str());
            let x = expression.x.to_string();
            patterns.insert(&anchor.name, absorbed, ActivationPattern { x, function });
        }
        patterns
    }
}

struct Search<'g, 'r> {
    graph: &'g Graph,
    readers: &'r Readers<'g>,
    producers: HashMap<&'g str, &'g Node>,
}

/// An element-wise expression of one secret tensor.
struct Expression<'g> {
    x: &'g str,
    /// Its nodes, the anchor first.
    nodes: Vec<&'g Node>,
    scalars: HashMap<&'g str, f64>,
}

impl<'g> Search<'g, '_> {
    /// The expression ending at `anchor`: inputs are followed back while the element-wise
    /// node producing them has them read by no one else.
    fn expression(&self, anchor: &'g Node) -> Option<Expression<'g>> {
        let mut nodes = vec![anchor];
        let mut scalars = HashMap::new();
        let mut x: Option<&'g str> = None;
        let mut next = 0;
        while next < nodes.len() {
            let node = nodes[next];
            next += 1;
            for input in &node.inputs {
                if let Some(v) = scalar(self.graph, input).map(f64::from) {
                    scalars.insert(input.as_str(), v);
                    continue;
                }
                if !self.graph.is_secret(input) {
                    return None;
                }
                let inner = self
                    .producers
                    .get(input.as_str())
                    .filter(|p| OPS.contains(&p.op_type.as_str()))
                    .filter(|_| {
                        self.readers
                            .sole(input)
                            .is_some_and(|r| r.name == node.name)
                    });
                match inner {
                    Some(producer) if nodes.len() < MAX_NODES => nodes.push(producer),
                    Some(_) => return None,
                    None if x.is_none_or(|x| x == input) => x = Some(input),
                    None => return None,
                }
            }
        }
        Some(Expression {
            x: x?,
            nodes,
            scalars,
        })
    }
}

impl Expression<'_> {
    /// Whether the expression equals `f` at every sample, within what float32 constants
    /// explain (GELU's two forms differ by up to 5e-4, far above this).
    fn computes(&self, f: Function) -> bool {
        SAMPLES.iter().all(|&x| {
            self.at(x)
                .is_some_and(|y| (y - f.exact(x)).abs() <= 1e-5 * (1.0 + f.exact(x).abs()))
        })
    }

    /// The expression's value at x = `x`.
    fn at(&self, x: f64) -> Option<f64> {
        let mut values: HashMap<&str, f64> = self.scalars.clone();
        values.insert(self.x, x);
        // Producers were found after their readers: evaluate in reverse.
        for node in self.nodes.iter().rev() {
            let arg = |i: usize| node.input(i).and_then(|t| values.get(t).copied());
            let a = arg(0)?;
            let y = match node.op_type.as_str() {
                "Mul" => a * arg(1)?,
                "Add" => a + arg(1)?,
                "Sub" => a - arg(1)?,
                "Div" => a / arg(1)?,
                "Pow" => a.powf(arg(1)?),
                "Neg" => -a,
                "Erf" => libm::erf(a),
                "Tanh" => a.tanh(),
                "Sigmoid" => 1.0 / (1.0 + (-a).exp()),
                _ => return None,
            };
            values.insert(node.output(), y);
        }
        values.get(self.nodes[0].output()).copied()
    }
}
