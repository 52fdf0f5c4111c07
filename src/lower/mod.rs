//! Lowering ONNX nodes to plan steps: one rule per op family, a registry mapping op types to
//! rules, and the per-node coverage report that `tfe-convert --check` prints.

mod activation;
mod activation_patterns;
mod args;
mod classes;
mod compare;
mod compare_groups;
mod convert;
mod coverage;
mod elementwise;
mod fuse;
mod hints;
mod linear;
mod logic;
mod ml;
mod movement;
mod normalization;
mod op_rule;
mod per_row;
mod pool;
mod power;
mod readers;
mod recurrent;
mod reduce;
mod registry;
mod reorder;
mod resize;
mod rms;
mod saturate;
mod scan;
mod shape;
mod softmax;
mod svm;
mod tokens;
mod topk;
mod tree;
mod window;

pub use activation::{GeluMethod, SigmoidMethod};
pub use convert::{Converted, check, convert};
pub use coverage::{Coverage, NodeReport, Status};
pub use registry::{OpRule, operators_markdown, rules};

use hints::hint_for;
use registry::rule_for;

use crate::import::{BatchPolicy, Graph, GraphNames, Model, Node, floats, ints};
use crate::plan::{Dim, Op, Plan, PlanBuilder, Shape, Source, ValueId, Visibility};
use crate::tensor::FixedPoint;
use activation_patterns::ActivationPatterns;
use anyhow::{Context, Result, anyhow, bail, ensure};
use compare_groups::ComparisonGroups;
use fuse::Fusions;
use ndarray::ArrayD;
use readers::Readers;
use reorder::Reorders;
use rms::RmsPatterns;
use saturate::Saturations;
use std::collections::{HashMap, HashSet};
use tokens::TokenInput;

#[derive(Clone, Debug, Default)]
pub struct Options {
    pub fixed_point: FixedPoint,
    pub batch: BatchPolicy,
    /// Input and output names for TensorFlow graphs (empty: found in the graph).
    pub graph_names: GraphNames,
    /// How Sigmoid is approximated.
    pub sigmoid: SigmoidMethod,
    /// How Gelu is approximated.
    pub gelu: GeluMethod,
}

/// A constant tied to the batch size the model was exported with: it only broadcasts
/// against the batch at that size, so the plan cannot serve any batch.
#[derive(Debug, thiserror::Error)]
#[error(
    "inputs of shapes {shapes} do not broadcast to {output} at every batch size N: a constant's size equals the batch the model was exported with, so the model only runs at that batch"
)]
pub struct BatchTie {
    shapes: String,
    output: String,
}

/// Where a step's result goes, which gives the value its name and shape.
pub enum To<'a> {
    /// The node's (first) output tensor, with its inferred shape.
    Output,
    /// Another tensor the node computes (a further output, or the output of a
    /// BatchNormalization folded into the node), with its inferred shape.
    Tensor(&'a str),
    /// An intermediate value named `{node}/{tag}`, with the shape of the node's output.
    Temp(String),
    /// An intermediate value named `{node}/{tag}`, of the given shape.
    Shaped(String, Shape),
}

impl To<'_> {
    pub fn temp(tag: impl Into<String>) -> Self {
        To::Temp(tag.into())
    }

    pub fn shaped(tag: impl Into<String>, shape: Shape) -> Self {
        To::Shaped(tag.into(), shape)
    }

    /// The node's output for the last step of a lowering, else the intermediate `tag`.
    pub fn output_if(last: bool, tag: impl Into<String>) -> Self {
        if last { To::Output } else { To::temp(tag) }
    }
}

/// The state rules lower into: the plan under construction and the plan value of every
/// ONNX tensor lowered so far.
pub struct Lowering<'g> {
    pub graph: &'g Graph,
    builder: PlanBuilder,
    values: HashMap<String, ValueId>,
    fusions: Fusions,
    reorders: Reorders,
    rms: RmsPatterns,
    activations: ActivationPatterns,
    /// Shapes of the tensors that rewrites add to the graph.
    introduced: HashMap<String, Shape>,
    fixed_point: FixedPoint,
    /// Values known to hold integers (indices, class labels): casting them to an integer
    /// type rounds nothing.
    integral: HashSet<ValueId>,
    /// Token ids by tensor: the inputs', and those reshaped once used (see `tokens.rs`).
    token_inputs: HashMap<String, TokenInput>,
    /// Tensors that are token ids reshaped, with the tensor each reshapes.
    reshaped_token_ids: HashMap<String, String>,
    /// Tensors computed from the secret input whose every element is known at convert time
    /// (IsNaN of a fixed-point value is false): a public constant, made only if a rule reads
    /// the tensor as a value.
    fills: HashMap<String, f32>,
    /// Constants that only shift a Softmax's inputs (attention masks), which may saturate.
    saturations: Saturations,
    /// What `--check` reports about the node being lowered besides its status.
    notes: Vec<String>,
    /// The public scalars made so far, by name (see [`Lowering::scalar`]).
    scalars: HashMap<String, (ValueId, f32)>,
    comparisons: ComparisonGroups,
    pub sigmoid: SigmoidMethod,
    gelu: GeluMethod,
}

impl<'g> Lowering<'g> {
    /// The plan value of a tensor: computed by an earlier step, or a convert-time constant
    /// (a model parameter) that becomes a secret weight.
    pub fn value(&mut self, tensor: &str) -> Result<ValueId> {
        if let Some(&id) = self.values.get(tensor) {
            return Ok(id);
        }
        let id = if let Some(ids) = self.token_inputs.get(tensor).copied() {
            self.token_ids(tensor, ids)?
        } else if let Some(&v) = self.fills.get(tensor) {
            let (block, axis) = self.filled(tensor, v)?;
            self.batch_repeated(tensor, block, axis, Visibility::Public)?
        } else if let Some(tiled) = self.graph.tiled(tensor) {
            ensure!(
                tiled.step.is_none(),
                "tensor {tensor} holds positions that count along the batch; tfe takes such a tensor only as the indices of a Gather"
            );
            let block = self.saturated(tensor, tiled.block.clone())?;
            self.batch_repeated(tensor, block, tiled.axis, Visibility::Secret)?
        } else {
            let data = self.constant(tensor)?;
            let data = self.saturated(tensor, data)?;
            self.weight(tensor, data, Visibility::Secret)?
        };
        self.values.insert(tensor.to_string(), id);
        Ok(id)
    }

    /// A tensor holding `v` everywhere, as a block of one row per batch axis and that axis
    /// (see [`Lowering::batch_repeated`]).
    fn filled(&self, tensor: &str, v: f32) -> Result<(ArrayD<f32>, usize)> {
        let shape = self.shape(tensor)?;
        let block_dims: Vec<usize> = shape
            .0
            .iter()
            .map(|d| match d {
                Dim::Fixed(n) => *n,
                Dim::Batch(_) => 1,
            })
            .collect();
        let axis = shape
            .0
            .iter()
            .position(|d| matches!(d, Dim::Batch(_)))
            .unwrap_or(0);
        Ok((ArrayD::from_elem(ndarray::IxDyn(&block_dims), v), axis))
    }

    /// A tensor that repeats a block per batch row (see [`crate::import::Tiled`]): the block as a weight,
    /// repeated to the batch at run time by data movement alone. A block of one row (or of
    /// the whole shape, with no batch axis) is expanded; one of `k` rows is lifted to
    /// [.., 1, k, ..], expanded to [.., N, k, ..] and merged to [.., N*k, ..].
    fn batch_repeated(
        &mut self,
        tensor: &str,
        block: ArrayD<f32>,
        axis: usize,
        visibility: Visibility,
    ) -> Result<ValueId> {
        let shape = self.shape(tensor)?;
        let dims = block.shape().to_vec();
        let block = self.weight(&format!("{tensor}/block"), block, visibility)?;
        let (lifts, last) = if dims[axis] == 1 || !shape.has_batch() {
            (
                vec![],
                Op::Expand {
                    shape: shape.clone(),
                },
            )
        } else {
            let mut lifted = Shape::fixed_dims(&dims);
            lifted.0.insert(axis, Dim::Fixed(1));
            let mut expanded = lifted.clone();
            expanded.0[axis] = Dim::Batch(1);
            let lifts = vec![
                (
                    Op::Reshape {
                        shape: lifted.clone(),
                    },
                    lifted,
                ),
                (
                    Op::Expand {
                        shape: expanded.clone(),
                    },
                    expanded,
                ),
            ];
            (
                lifts,
                Op::Reshape {
                    shape: shape.clone(),
                },
            )
        };
        let mut current = block;
        for (op, out) in lifts {
            let name = format!("{tensor}/{}", op.name());
            current = self.builder.step(tensor, op, &[current], &name, out);
        }
        Ok(self.builder.step(tensor, last, &[current], tensor, shape))
    }

    /// A tensor's value at convert time, or an error saying it must be constant.
    pub fn constant(&self, tensor: &str) -> Result<ArrayD<f32>> {
        floats(self.known(tensor)?)
    }

    /// A convert-time integer tensor (axes, shapes, indices).
    pub fn constant_ints(&self, tensor: &str) -> Result<Vec<i64>> {
        ints(self.known(tensor)?)
    }

    fn known(&self, tensor: &str) -> Result<&std::sync::Arc<tract_onnx::prelude::Tensor>> {
        if self.graph.is_secret(tensor) {
            bail!(
                "tensor {tensor} depends on the secret input, but this operator needs it to be a constant"
            );
        }
        self.graph
            .constant(tensor)
            .ok_or_else(|| anyhow!("tensor {tensor} is not a constant at convert time (it may depend on the batch size)"))
    }

    pub fn is_constant(&self, tensor: &str) -> bool {
        !self.graph.is_secret(tensor) && self.graph.constant(tensor).is_some()
    }

    /// Adds a weight, checking it fits the fixed-point range.
    pub fn weight(
        &mut self,
        name: &str,
        data: ArrayD<f32>,
        visibility: Visibility,
    ) -> Result<ValueId> {
        self.fixed_point.encode_array(data.view()).map_err(|e| {
            anyhow!(
                "weight {name}: {e}; the model cannot be computed in fixed point with {} fractional bits ({})",
                self.fixed_point.frac_bits,
                saturate::WHERE_SATURATED
            )
        })?;
        Ok(self.builder.weight(name, data, visibility))
    }

    /// A constant with the elements beyond the attention-mask bound saturated, when it only
    /// shifts a Softmax's inputs (see `saturate`); noted in the coverage report.
    fn saturated(&mut self, tensor: &str, data: ArrayD<f32>) -> Result<ArrayD<f32>> {
        let Some(softmax) = self.saturations.softmax_shifted_by(tensor) else {
            return Ok(data);
        };
        let (data, count) = saturate::saturate(&data, self.fixed_point)
            .with_context(|| format!("constant {tensor}, a mask for Softmax {softmax}"))?;
        if count > 0 {
            let bound = saturate::mask_bound(self.fixed_point)?;
            self.notes.push(format!(
                "saturated {count} element(s) of constant {tensor} to +-{bound} (a mask for Softmax {softmax}; see docs/ARCHITECTURE.md)"
            ));
        }
        Ok(data)
    }

    /// Records that every element of `tensor` is `v` whatever the input (see `fills`).
    pub fn fill(&mut self, tensor: &str, v: f32) {
        self.fills.insert(tensor.to_string(), v);
    }

    /// The one value of a tensor known at convert time to hold it everywhere: a lowered fill,
    /// or a batch-sized tensor the graph fills with one value.
    pub fn uniform(&self, tensor: &str) -> Option<f32> {
        self.fills
            .get(tensor)
            .copied()
            .or_else(|| self.graph.uniform(tensor))
    }

    /// The comparisons lowered together at `node`, when it leads a group.
    pub fn comparison_group(&self, node: &str) -> Option<&[Node]> {
        self.comparisons.group_at(node)
    }

    /// A line for `--check` about the node being lowered.
    pub fn note(&mut self, text: impl Into<String>) {
        self.notes.push(text.into());
    }

    /// Whether the ONNX element type of a tensor is bool (see [`args::is_bool`]).
    pub fn is_bool(&self, tensor: &str) -> bool {
        args::is_bool(self.graph, tensor)
    }

    /// A structural constant every party may know (divisors, unit scales).
    pub fn public(&mut self, name: &str, data: ArrayD<f32>) -> Result<ValueId> {
        self.weight(name, data, Visibility::Public)
    }

    pub fn shape(&self, tensor: &str) -> Result<Shape> {
        match self.introduced.get(tensor) {
            Some(shape) => Ok(shape.clone()),
            None => Ok(self.graph.shape(tensor)?.clone()),
        }
    }

    /// Declares a tensor the ONNX graph does not have, for a rewrite to compute.
    fn introduce(&mut self, tensor: &str, shape: Shape) {
        self.introduced.insert(tensor.to_string(), shape);
    }

    pub fn shape_of(&self, id: ValueId) -> &Shape {
        self.builder.shape(id)
    }

    /// Emits one step of `node`'s lowering: `op` applied to `inputs`, its result going `to`
    /// a tensor of the graph or an intermediate value. Every rule emits through this.
    pub fn emit(&mut self, node: &Node, op: Op, inputs: &[ValueId], to: To) -> Result<ValueId> {
        let (name, shape, is_tensor) = match to {
            To::Output => (node.output().to_string(), self.shape(node.output())?, true),
            To::Tensor(tensor) => (tensor.to_string(), self.shape(tensor)?, true),
            To::Temp(tag) => {
                let shape = self.shape(node.output())?;
                (format!("{}/{tag}", node.name), shape, false)
            }
            To::Shaped(tag, shape) => (format!("{}/{tag}", node.name), shape, false),
        };
        if op.broadcasts() {
            self.check_broadcast(inputs, &shape)?;
        }
        let id = self.builder.step(&node.name, op, inputs, &name, shape);
        if is_tensor {
            self.values.insert(name, id);
        }
        Ok(id)
    }

    /// An element-wise step's inputs broadcast to its output's shape at every batch size.
    /// Shape inference at two batch sizes can mistake a constant whose size equals the
    /// exported batch for a batch-sized tensor; broadcasting it against the batch shows it.
    fn check_broadcast(&self, inputs: &[ValueId], output: &Shape) -> Result<()> {
        let shapes: Vec<&Shape> = inputs.iter().map(|&id| self.shape_of(id)).collect();
        let broadcast = shapes
            .iter()
            .try_fold(Shape(vec![]), |acc, s| acc.broadcast(s));
        if broadcast.as_ref() == Some(output) {
            return Ok(());
        }
        let shapes = shapes.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        if shapes.iter().any(|s| s.contains('N')) {
            return Err(BatchTie {
                shapes: shapes.join(" and "),
                output: output.to_string(),
            }
            .into());
        }
        bail!(
            "internal error: inputs of shapes {} do not broadcast to the output's {output}",
            shapes.join(" and ")
        )
    }

    pub fn mark_integral(&mut self, id: ValueId) {
        self.integral.insert(id);
    }

    /// Whether a tensor holds integers: an index or label computed so, or a reshuffle of one.
    pub fn is_integral(&self, tensor: &str) -> bool {
        self.values
            .get(tensor)
            .is_some_and(|id| self.integral.contains(id))
    }

    /// Data movement keeps integers integers: the outputs of a node its rule says moves
    /// integers are integral when its secret inputs are.
    fn propagate_integral(&mut self, node: &Node, rule: &OpRule) {
        let inputs_integral = node
            .inputs
            .iter()
            .filter(|i| !i.is_empty() && self.graph.is_secret(i))
            .all(|i| self.is_integral(i));
        if rule.moves_integers && inputs_integral {
            let outputs: Vec<ValueId> = node
                .outputs
                .iter()
                .filter_map(|o| self.values.get(o).copied())
                .collect();
            self.integral.extend(outputs);
        }
    }

    /// Makes `output` another name for an existing value (Identity, folded BatchNorm).
    pub fn alias(&mut self, output: &str, value: ValueId) {
        self.values.insert(output.to_string(), value);
    }

    pub fn fusions(&self) -> &Fusions {
        &self.fusions
    }
}

/// Lowers every node. With `keep_going`, a failing node is recorded and its outputs stand in
/// as placeholders so that the rest of the graph is still checked; the plan is then `None`.
pub fn lower_graph(graph: &Graph, options: Options, keep_going: bool) -> (Option<Plan>, Coverage) {
    let model = &graph.model;
    let source = Source {
        file_name: model.file_name(),
        sha256: model.sha256.clone(),
    };
    let readers = Readers::new(model);
    let mut cx = Lowering {
        graph,
        builder: PlanBuilder::new(options.fixed_point, source),
        values: HashMap::new(),
        fusions: Fusions::find(graph, &readers),
        reorders: Reorders::find(graph, &readers),
        rms: RmsPatterns::find(graph, &readers),
        activations: ActivationPatterns::find(graph, &readers, &activation::fused(&options)),
        introduced: HashMap::new(),
        fixed_point: options.fixed_point,
        integral: HashSet::new(),
        token_inputs: HashMap::new(),
        reshaped_token_ids: HashMap::new(),
        fills: HashMap::new(),
        saturations: Saturations::find(graph, &readers),
        notes: vec![],
        scalars: HashMap::new(),
        comparisons: ComparisonGroups::find(graph),
        sigmoid: options.sigmoid,
        gelu: options.gelu,
    };
    let mut coverage = Coverage::new(model);
    let mut failed = false;
    let mut setup = || -> Result<()> {
        for name in &model.inputs {
            let shape = cx.shape(name)?;
            let ids = tokens::reshaped_ids(graph, name);
            let depth = match model.is_integer_input(name) {
                true => tokens::table_rows(graph, &ids)?,
                false => None,
            };
            match depth {
                Some(depth) => {
                    let one_hot = cx.builder.one_hot_input(name, shape, depth);
                    cx.token_inputs
                        .insert(name.clone(), TokenInput { one_hot, depth });
                    cx.reshaped_token_ids.extend(
                        ids.into_iter()
                            .filter_map(|(tensor, source)| Some((tensor, source?))),
                    );
                }
                None => {
                    let id = cx.builder.input(name, shape);
                    cx.values.insert(name.clone(), id);
                }
            }
        }
        Ok(())
    };
    if let Err(e) = setup() {
        coverage.graph_error = Some(format!("{e:#}"));
        return (None, coverage);
    }
    for node in &model.nodes {
        let steps_before = cx.builder.steps().len();
        cx.notes.clear();
        let status = if !node.outputs.iter().any(|o| graph.is_secret(o)) {
            Status::Folded("computed at convert time".into())
        } else if let Some(into) = cx.fusions.absorbed_by(&node.name) {
            Status::Folded(format!("into {into}"))
        } else if let Some(into) = cx.rms.absorbed_by(&node.name) {
            Status::Folded(format!("into {into} (an RMS normalisation)"))
        } else if let Some(into) = cx.activations.absorbed_by(&node.name) {
            Status::Folded(format!("into {into} (one activation)"))
        } else if let Some(leader) = cx.comparisons.lowered_with(&node.name) {
            Status::Folded(format!(
                "into {leader} (one gate for the comparisons of one tensor)"
            ))
        } else if let Some(pool) = cx.reorders.moved_after(&node.name) {
            Status::LoweredAfter(pool.to_string())
        } else {
            match rule_for(node) {
                None => no_rule(node),
                Some(rule) => match lower_node(&mut cx, node, rule.lower) {
                    Ok(()) => {
                        cx.propagate_integral(node, rule);
                        Status::Lowered(approximations(&cx.builder.steps()[steps_before..]))
                    }
                    Err(e) => {
                        coverage.tied_to_batch |= e.downcast_ref::<BatchTie>().is_some();
                        Status::Unsupported(format!("{e:#}"))
                    }
                },
            }
        };
        if let Status::Unsupported(_) = status {
            failed = true;
            if !keep_going {
                coverage.record(node, status, vec![]);
                break;
            }
            let missing: Vec<&String> = node
                .outputs
                .iter()
                .filter(|o| !o.is_empty() && !cx.values.contains_key(*o))
                .collect();
            for out in missing {
                let shape = cx.shape(out).unwrap_or(Shape(vec![]));
                let id = cx.builder.input(out, shape);
                cx.values.insert(out.clone(), id);
            }
        }
        coverage.record(node, status, std::mem::take(&mut cx.notes));
    }
    if failed {
        return (None, coverage);
    }
    for out in &model.outputs {
        let known = cx.values.get(out).copied();
        let filled = || {
            cx.fills
                .contains_key(out)
                .then(|| cx.value(out).ok())
                .flatten()
        };
        match known.or_else(filled) {
            Some(id) => cx.builder.output(id),
            None => {
                coverage.graph_error = Some(format!(
                    "graph output {out} does not depend on the input; tfe only computes outputs derived from the secret input"
                ));
                return (None, coverage);
            }
        }
    }
    match cx.builder.build() {
        Ok(plan) => (Some(plan), coverage),
        Err(e) => {
            coverage.graph_error = Some(format!("internal error building the plan: {e:#}"));
            (None, coverage)
        }
    }
}

/// Lowers a node by its rule, together with the activation a reordering moved after it.
fn lower_node(cx: &mut Lowering, node: &Node, rule: registry::Lower) -> Result<()> {
    if let Some(pattern) = cx.rms.anchored_at(&node.name).cloned() {
        return normalization::rms_of_pattern(cx, node, &pattern);
    }
    if let Some(pattern) = cx.activations.anchored_at(&node.name).cloned() {
        return activation::of_pattern(cx, node, &pattern);
    }
    match cx.reorders.activation_before(&node.name).cloned() {
        Some(activation) => reorder::lower_pool_then_activation(cx, node, rule, &activation),
        None => rule(cx, node),
    }
}

/// Why a node has no lowering, with a hint where a rewrite exists.
fn no_rule(node: &Node) -> Status {
    let mut reason = format!(
        "no secure lowering for {} (domain {:?})",
        node.op_type,
        if node.domain.is_empty() {
            "ai.onnx"
        } else {
            &node.domain
        }
    );
    if let Some(hint) = hint_for(&node.op_type) {
        reason.push_str("; hint: ");
        reason.push_str(hint);
    }
    Status::Unsupported(reason)
}

/// The approximated functions a node's steps use, for the coverage report.
fn approximations(steps: &[crate::plan::Step]) -> Vec<String> {
    let mut names: Vec<String> = vec![];
    for function in steps.iter().flat_map(|step| step.op.approximations()) {
        if !names.iter().any(|n| n == function.name()) {
            names.push(function.name().to_string());
        }
    }
    names
}

/// Coverage from the op registry alone, for models that shape inference cannot handle.
pub fn registry_coverage(model: &Model) -> Coverage {
    let secret = model.secret_tensors();
    let mut coverage = Coverage::new(model);
    for node in &model.nodes {
        let status = if !node.outputs.iter().any(|o| secret.contains(o)) {
            Status::Folded("computed at convert time".into())
        } else if rule_for(node).is_some() {
            Status::Lowered(vec![])
        } else {
            no_rule(node)
        };
        coverage.record(node, status, vec![]);
    }
    coverage
}

/// What rules read besides tensors by name: a node's inputs by position, public scalars.
impl Lowering<'_> {
    /// The node's `i`th input as a plan value.
    pub fn input_value(&mut self, node: &Node, i: usize) -> Result<ValueId> {
        let name = node
            .input(i)
            .ok_or_else(|| anyhow!("{} needs input {i}", node.op_type))?
            .to_string();
        self.value(&name)
    }

    /// A public scalar named after the node; asked for again, the same value.
    pub fn scalar(&mut self, node: &Node, tag: &str, v: f32) -> Result<ValueId> {
        let name = format!("{}/{tag}", node.name);
        if let Some(&(id, known)) = self.scalars.get(&name)
            && known.to_bits() == v.to_bits()
        {
            return Ok(id);
        }
        let id = self.public(&name, ArrayD::from_elem(ndarray::IxDyn(&[]), v))?;
        self.scalars.insert(name, (id, v));
        Ok(id)
    }
}
