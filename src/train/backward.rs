//! The backward rule of each forward op a training plan differentiates, written as plan
//! steps onto a [`Tape`] (the plan being derived): given the gradient of a step's output,
//! the gradient contribution to each input that needs one.

use crate::plan::{Dim, Function, Op, Plan, PlanBuilder, Shape, Step, ValueId, Visibility};
use anyhow::{Result, bail};
use ndarray::{ArrayD, IxDyn};

/// A plan being extended value by value, with the public constants it has made.
pub struct Tape {
    pub builder: PlanBuilder,
    /// The node the steps being added come from (their values are named after it).
    node: String,
    zero: Option<ValueId>,
    one: Option<ValueId>,
}

impl Tape {
    /// Extends `plan`, whose outputs are dropped: the new plan has its own.
    pub fn new(mut plan: Plan) -> Tape {
        plan.outputs.clear();
        Tape {
            builder: PlanBuilder::extend(plan),
            node: String::new(),
            zero: None,
            one: None,
        }
    }

    pub fn shape(&self, id: ValueId) -> Shape {
        self.builder.shape(id).clone()
    }

    /// Steps added from now on come from `node`.
    pub fn at(&mut self, node: &str) {
        self.node = node.to_string();
    }

    /// A step of the current node, its output named `{node}/{name}`.
    pub fn step(&mut self, op: Op, inputs: &[ValueId], name: &str, shape: Shape) -> ValueId {
        let value = format!("{}/{name}", self.node);
        self.builder.step(&self.node, op, inputs, &value, shape)
    }

    /// A weight and its position in the plan's weights.
    pub fn weight(
        &mut self,
        name: &str,
        data: ArrayD<f32>,
        visibility: Visibility,
    ) -> (ValueId, usize) {
        let index = self.builder.weight_count();
        (self.builder.weight(name, data, visibility), index)
    }

    /// `factor * x` with the factor at its own precision (`Function::Scale`).
    pub fn scale(&mut self, x: ValueId, factor: f32, shape: Shape) -> ValueId {
        let op = Op::Function {
            function: Function::Scale { factor },
        };
        self.step(op, &[x], "scaled", shape)
    }

    /// A public scalar constant, made once.
    fn constant(&mut self, v: f32) -> ValueId {
        let slot = if v == 0.0 { self.zero } else { self.one };
        if let Some(id) = slot {
            return id;
        }
        let (id, _) = self.weight(
            &format!("constant {v}"),
            ArrayD::from_elem(IxDyn(&[]), v),
            Visibility::Public,
        );
        if v == 0.0 {
            self.zero = Some(id);
        } else {
            self.one = Some(id);
        }
        id
    }

    /// `g` summed over the axes along which a value of shape `target` was broadcast to
    /// `g`'s shape, then shaped as `target`.
    fn unbroadcast(&mut self, g: ValueId, target: &Shape) -> ValueId {
        let from = self.shape(g);
        if &from == target {
            return g;
        }
        let lead = from.rank() - target.rank();
        let axes: Vec<usize> = (0..from.rank())
            .filter(|&a| {
                a < lead || (target.0[a - lead] == Dim::Fixed(1) && from.0[a] != Dim::Fixed(1))
            })
            .collect();
        let mut v = g;
        if !axes.is_empty() {
            let reduced = from.reduced(&axes, true);
            let op = Op::ReduceSum {
                axes,
                keep_dims: true,
            };
            v = self.step(op, &[v], "grad_reduced", reduced);
        }
        if &self.shape(v) != target {
            let op = Op::Reshape {
                shape: target.clone(),
            };
            v = self.step(op, &[v], "grad_reshaped", target.clone());
        }
        v
    }

    fn transposed(&mut self, v: ValueId) -> ValueId {
        let shape = self.shape(v);
        let swapped = Shape(vec![shape.0[1], shape.0[0]]);
        let op = Op::Transpose { perm: vec![1, 0] };
        self.step(op, &[v], "transposed", swapped)
    }
}

/// The gradient contributions of `step`'s inputs that `needs` one, from the gradient `g` of
/// its output.
pub fn backward(
    t: &mut Tape,
    step: &Step,
    g: ValueId,
    needs: impl Fn(ValueId) -> bool,
) -> Result<Vec<(ValueId, ValueId)>> {
    t.at(&format!("{}/backward", step.node));
    let inputs = &step.inputs;
    let shape_of = |t: &Tape, i: usize| t.shape(inputs[i]);
    let mut out = vec![];
    match &step.op {
        Op::MatMul => {
            let (a, b) = (inputs[0], inputs[1]);
            let (sa, sb) = (shape_of(t, 0), shape_of(t, 1));
            if sa.rank() != 2 || sb.rank() != 2 {
                bail!(
                    "node {} multiplies tensors of shapes {sa} and {sb}; training differentiates matrix products of rank 2 only (freeze the layer with --freeze {})",
                    step.node,
                    step.node
                );
            }
            if needs(a) {
                let bt = t.transposed(b);
                out.push((a, t.step(Op::MatMul, &[g, bt], "grad_a", sa)));
            }
            if needs(b) {
                let at = t.transposed(a);
                out.push((b, t.step(Op::MatMul, &[at, g], "grad_b", sb)));
            }
        }
        Op::Add | Op::Sub => {
            for (i, &input) in inputs.iter().enumerate() {
                if !needs(input) {
                    continue;
                }
                let shape = shape_of(t, i);
                let mut gi = t.unbroadcast(g, &shape);
                if i == 1 && step.op == Op::Sub {
                    gi = t.step(Op::Neg, &[gi], "grad_negated", shape);
                }
                out.push((input, gi));
            }
        }
        Op::Mul => {
            for (i, &input) in inputs.iter().enumerate() {
                if !needs(input) {
                    continue;
                }
                let other = inputs[1 - i];
                let full = t.shape(g);
                let product = t.step(Op::Mul, &[g, other], "grad_product", full);
                out.push((input, t.unbroadcast(product, &shape_of(t, i))));
            }
        }
        Op::Relu => {
            let zero = t.constant(0.0);
            let shape = shape_of(t, 0);
            let gx = t.step(Op::Select, &[inputs[0], g, zero], "grad", shape);
            out.push((inputs[0], gx));
        }
        Op::Function { function } => {
            let y = step.output;
            let shape = t.shape(y);
            let one = t.constant(1.0);
            let slope = match function {
                Function::Sigmoid | Function::SigmoidPolynomial | Function::SigmoidPiecewise => {
                    let rest = t.step(Op::Sub, &[one, y], "one_minus", shape.clone());
                    t.step(Op::Mul, &[y, rest], "slope", shape.clone())
                }
                Function::Tanh | Function::TanhPolynomial => {
                    let square = t.step(Op::Mul, &[y, y], "square", shape.clone());
                    t.step(Op::Sub, &[one, square], "slope", shape.clone())
                }
                Function::Scale { factor } => {
                    let gx = t.scale(g, *factor, shape);
                    return Ok(vec![(inputs[0], gx)]);
                }
                other => unsupported(step, &format!("the function {}", other.name()))?,
            };
            out.push((inputs[0], t.step(Op::Mul, &[g, slope], "grad", shape)));
        }
        Op::Reshape { .. } => {
            let shape = shape_of(t, 0);
            let op = Op::Reshape {
                shape: shape.clone(),
            };
            out.push((inputs[0], t.step(op, &[g], "grad", shape)));
        }
        Op::Transpose { perm } => {
            let mut inverse = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inverse[p] = i;
            }
            let op = Op::Transpose { perm: inverse };
            let shape = shape_of(t, 0);
            out.push((inputs[0], t.step(op, &[g], "grad", shape)));
        }
        Op::Neg => {
            let shape = shape_of(t, 0);
            out.push((inputs[0], t.step(Op::Neg, &[g], "grad", shape)));
        }
        other => unsupported(step, other.name())?,
    }
    Ok(out)
}

fn unsupported<T>(step: &Step, what: &str) -> Result<T> {
    bail!(
        "node {} ({what}) needs a gradient, and training does not differentiate it yet (it takes MatMul/Gemm, Add, Sub, Mul, Relu, Sigmoid, Tanh, Reshape and Transpose); freeze the layers up to it with --freeze",
        step.node
    )
}
