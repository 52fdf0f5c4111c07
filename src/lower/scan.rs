//! Scan whose iterations are independent, as skl2onnx writes the pairwise distances of k-NN
//! and kernel models: every state passes through the body unchanged, so iteration t only
//! reads row t of the scanned inputs. Instead of running the body once per row, its nodes run
//! once over all the rows, the scanned axis leading every tensor that depends on it (like a
//! batch axis): scanned inputs with their scan axis moved to the front, states and outer
//! tensors as they are. Before shape inference the Scan node is replaced by those nodes
//! (named `{scan}/{body node}`), so tract infers their shapes and the ordinary rules lower
//! them; the Scan's outputs must come out with the shapes tract inferred for the Scan itself.
//!
//! Element-wise ops and reductions run so (the registry's `over_iterations` fact); a body
//! with any other op, or whose state changes across iterations (a real loop), is refused by
//! the Scan rule with the reason.

use super::Lowering;
use super::registry::{OverIterations, rule_for};
use crate::import::{
    BatchPolicy, Graph, Model, Node, analyse, initializer_ints, int64_initializer, ints,
    ints_attribute,
};
use crate::plan::Dim;
use anyhow::{Result, anyhow, bail, ensure};
use std::collections::HashMap;
use tract_onnx::pb;

/// The Scan rule: reached only by a Scan that [`batched_scans`] could not replace.
pub fn scan(cx: &mut Lowering, node: &Node) -> Result<()> {
    let why = match Body::rewrite(cx.graph, node) {
        Err(e) => e,
        Ok(_) => anyhow!("internal error: the Scan was not replaced by its batched body"),
    };
    Err(why.context("its iterations cannot run at once"))
}

/// Refuses Scan-8 (before opset 9), whose batch axis and sequence_lens input tract's shape
/// inference does not take, before it fails there with a less helpful message.
pub fn check_opset(model: &Model) -> Result<()> {
    match model.nodes.iter().find(|n| is_scan(n)) {
        Some(scan) if model.opset < 9 => bail!(
            "node {} (Scan): Scan before opset 9 (with sequence_lens and a batch axis) is not supported; export with opset 9 or later",
            scan.name
        ),
        _ => Ok(()),
    }
}

/// The graph with every Scan whose iterations are independent replaced by its body run over
/// all iterations, analysed again; the others stay for the Scan rule to refuse.
pub fn batched_scans(graph: Graph, policy: BatchPolicy) -> Result<Graph> {
    let mut replaced: HashMap<String, Body> = HashMap::new();
    for node in graph.model.nodes.iter().filter(|n| is_scan(n)) {
        if let Ok(body) = Body::rewrite(&graph, node) {
            replaced.insert(node.name.clone(), body);
        }
    }
    if replaced.is_empty() {
        return Ok(graph);
    }
    let mut expected = vec![];
    let mut proto = graph.model.proto.graph.clone().expect("checked on read");
    let nodes = std::mem::take(&mut proto.node);
    for (index, node_proto) in nodes.into_iter().enumerate() {
        let node = &graph.model.nodes[index];
        match replaced.remove(&node.name) {
            Some(body) => {
                for out in node.outputs.iter().filter(|o| !o.is_empty()) {
                    expected.push((node.name.clone(), out.clone(), graph.shape(out)?.clone()));
                }
                proto.node.extend(body.nodes);
                proto.initializer.extend(body.initializers);
            }
            None => proto.node.push(node_proto),
        }
    }
    let model = graph.into_model().with_graph(proto);
    let graph = analyse(model, policy)?;
    for (scan, tensor, shape) in expected {
        let batched = graph.shape(&tensor)?;
        ensure!(
            *batched == shape,
            "internal error: Scan {scan}'s output {tensor} has shape {shape}, but its body run over all iterations gives {batched}"
        );
    }
    Ok(graph)
}

fn is_scan(node: &Node) -> bool {
    node.op_type == "Scan" && matches!(node.domain.as_str(), "" | "ai.onnx")
}

/// A body tensor as the batched nodes compute it.
#[derive(Clone)]
struct Lifted {
    /// The outer tensor that holds it.
    name: String,
    /// Its rank in one iteration.
    rank: usize,
    /// Whether it varies over the iterations: then its axis 0 is the iteration axis.
    per_iteration: bool,
}

/// The nodes and initializers that replace one Scan, built from its body.
struct Body {
    prefix: String,
    opset: i64,
    tensors: HashMap<String, Lifted>,
    /// Integer constants the body's reductions read as axes.
    known: HashMap<String, Vec<i64>>,
    /// The number of iterations: the scanned inputs' length along their scan axes.
    iterations: Option<Dim>,
    nodes: Vec<pb::NodeProto>,
    initializers: Vec<pb::TensorProto>,
}

impl Body {
    /// The replacement of `scan`, or why its iterations cannot run at once.
    fn rewrite(graph: &Graph, scan: &Node) -> Result<Body> {
        let body = scan
            .graph("body")?
            .ok_or_else(|| anyhow!("the Scan has no body"))?;
        let scans = usize::try_from(scan.int("num_scan_inputs", 0)?)?;
        let states = body
            .input
            .len()
            .checked_sub(scans)
            .filter(|&states| scan.inputs.len() == body.input.len() && body.output.len() >= states)
            .ok_or_else(|| {
                anyhow!(
                    "{} inputs, a body of {} inputs and {} outputs, and num_scan_inputs {scans} do not agree",
                    scan.inputs.len(),
                    body.input.len(),
                    body.output.len()
                )
            })?;
        let mut lifted = Body {
            prefix: format!("{}/", scan.name),
            opset: graph.model.opset,
            tensors: HashMap::new(),
            known: HashMap::new(),
            iterations: None,
            nodes: vec![],
            initializers: vec![],
        };
        for (state, outer) in body.input.iter().zip(&scan.inputs).take(states) {
            lifted.outer(graph, &state.name, outer)?;
        }
        lifted.scanned_inputs(graph, scan, &body.input[states..])?;
        for init in &body.initializer {
            lifted.initializer(init)?;
        }
        for node in &body.node {
            lifted.node(graph, node)?;
        }
        let outer_output = |i: usize| scan.outputs.get(i).map_or("", String::as_str);
        for (state, (input, output)) in body.input.iter().zip(&body.output).enumerate().take(states)
        {
            lifted.final_state(state, &input.name, &output.name, outer_output(state))?;
        }
        let scan_outputs: Vec<&str> = (states..body.output.len()).map(outer_output).collect();
        lifted.scan_outputs(scan, &body.output[states..], &scan_outputs)?;
        Ok(lifted)
    }

    /// An outer tensor the body reads as it is (a state, or a tensor it captures).
    fn outer(&mut self, graph: &Graph, body_name: &str, outer: &str) -> Result<Lifted> {
        ensure!(!outer.is_empty(), "state {body_name} has no initial value");
        if let Some(values) = graph.constant(outer).and_then(|t| ints(t).ok()) {
            self.known.insert(body_name.to_string(), values);
        }
        let tensor = Lifted {
            name: outer.to_string(),
            rank: graph.shape(outer)?.rank(),
            per_iteration: false,
        };
        self.tensors.insert(body_name.to_string(), tensor.clone());
        Ok(tensor)
    }

    /// The scanned inputs, each with its scan axis first and in iteration order.
    fn scanned_inputs(
        &mut self,
        graph: &Graph,
        scan: &Node,
        body_inputs: &[pb::ValueInfoProto],
    ) -> Result<()> {
        let outer = &scan.inputs[scan.inputs.len() - body_inputs.len()..];
        let axes = scan.ints("scan_input_axes")?;
        let directions = scan.ints("scan_input_directions")?;
        for (j, (input, outer)) in body_inputs.iter().zip(outer).enumerate() {
            ensure!(!outer.is_empty(), "scanned input {j} is missing");
            let shape = graph.shape(outer)?;
            let rank = shape.rank();
            let axis = axes.as_ref().map_or(0, |a| a.get(j).copied().unwrap_or(0));
            let axis = scan_axis(axis, rank, "scan_input_axes")?;
            let count = shape.0[axis];
            if let Some(first) = self.iterations {
                ensure!(
                    first == count,
                    "the scanned inputs have different lengths ({first} and {count})"
                );
            }
            self.iterations = Some(count);
            let mut name = outer.clone();
            if axis != 0 {
                let mut perm: Vec<i64> = (0..rank as i64).filter(|&a| a != axis as i64).collect();
                perm.insert(0, axis as i64);
                name = self.transpose(&name, &input.name, "scan_axis_first", perm);
            }
            if direction(&directions, j)? {
                name = self.reversed(&name, &input.name, count)?;
            }
            self.tensors.insert(
                input.name.clone(),
                Lifted {
                    name,
                    rank: rank - 1,
                    per_iteration: true,
                },
            );
        }
        Ok(())
    }

    fn initializer(&mut self, init: &pb::TensorProto) -> Result<()> {
        let mut moved = init.clone();
        moved.name = self.renamed(&init.name);
        const INT64: i32 = 7;
        if init.data_type == INT64 {
            self.known
                .insert(init.name.clone(), initializer_ints(init)?);
        }
        self.tensors.insert(
            init.name.clone(),
            Lifted {
                name: moved.name.clone(),
                rank: init.dims.len(),
                per_iteration: false,
            },
        );
        self.initializers.push(moved);
        Ok(())
    }

    /// One body node, run over all iterations.
    fn node(&mut self, graph: &Graph, proto: &pb::NodeProto) -> Result<()> {
        let node = Node::from_proto(proto, self.nodes.len());
        let mut inputs = vec![];
        for name in &node.inputs {
            inputs.push(match name.as_str() {
                "" => None,
                name => Some(match self.tensors.get(name) {
                    Some(t) => t.clone(),
                    None => self.outer(graph, name, name)?,
                }),
            });
        }
        if node.op_type == "Identity" {
            let input = inputs.first().cloned().flatten();
            let input = input.ok_or_else(|| anyhow!("Identity {} has no input", node.name))?;
            self.tensors.insert(node.output().to_string(), input);
            return Ok(());
        }
        let kind = rule_for(&node).map_or(OverIterations::No, |r| r.over_iterations);
        let per_iteration = inputs.iter().flatten().any(|t| t.per_iteration);
        let mut batched = proto.clone();
        batched.name = self.renamed(&node.name);
        let rank = match kind {
            OverIterations::ElementWise => {
                let rank = inputs.iter().flatten().map(|t| t.rank).max().unwrap_or(0);
                for (slot, input) in inputs.iter().enumerate() {
                    let Some(input) = input else { continue };
                    batched.input[slot] = if input.per_iteration && input.rank < rank {
                        self.unsqueezed(input, rank)
                    } else {
                        input.name.clone()
                    };
                }
                rank
            }
            OverIterations::Reduction => {
                let data = inputs.first().cloned().flatten();
                let data = data.ok_or_else(|| anyhow!("{} has no data input", node.name))?;
                for (slot, input) in inputs.iter().enumerate() {
                    if let Some(input) = input {
                        batched.input[slot] = input.name.clone();
                    }
                }
                self.reduction(&node, &mut batched, &data)?
            }
            OverIterations::No => bail!(
                "its body's node {} ({}) cannot run over all iterations at once: tfe runs Scan bodies of element-wise ops and reductions (see docs/OPERATORS.md)",
                node.name,
                node.op_type
            ),
        };
        for (slot, out) in node.outputs.iter().enumerate() {
            if out.is_empty() {
                continue;
            }
            batched.output[slot] = self.renamed(out);
            let tensor = Lifted {
                name: batched.output[slot].clone(),
                rank,
                per_iteration,
            };
            self.tensors.insert(out.clone(), tensor);
        }
        self.nodes.push(batched);
        Ok(())
    }

    /// Rewrites a reduction's axes for the leading iteration axis (when its data has one);
    /// returns the rank of its output in one iteration.
    fn reduction(
        &mut self,
        node: &Node,
        batched: &mut pb::NodeProto,
        data: &Lifted,
    ) -> Result<usize> {
        let rank = data.rank;
        let given = match node.ints("axes")? {
            Some(axes) => Some(axes),
            None => match node.input(1) {
                Some(axes) => Some(self.known.get(axes).cloned().ok_or_else(|| {
                    anyhow!("the axes of {} are not a constant of the body", node.name)
                })?),
                None => None,
            },
        };
        let keep_dims = node.int("keepdims", 1)? != 0;
        let noop = node.int("noop_with_empty_axes", 0)? != 0;
        let axes: Vec<i64> = match given.filter(|a| !a.is_empty()) {
            Some(axes) => axes
                .iter()
                .map(|&a| match a < 0 {
                    true => a + rank as i64,
                    false => a,
                })
                .collect(),
            None if noop => vec![],
            None => (0..rank as i64).collect(),
        };
        ensure!(
            axes.iter().all(|a| (0..rank as i64).contains(a)),
            "{} axes out of range for its rank-{rank} input",
            node.name
        );
        let reduced_rank = if keep_dims { rank } else { rank - axes.len() };
        if !data.per_iteration || axes.is_empty() {
            return Ok(reduced_rank);
        }
        let shifted: Vec<i64> = axes.iter().map(|a| a + 1).collect();
        batched.attribute.retain(|a| a.name != "axes");
        let axes_as_input = match node.op_type.as_str() {
            "ReduceSum" => self.opset >= 13,
            _ => self.opset >= 18,
        };
        if axes_as_input {
            let name = format!("{}/axes", batched.name);
            self.initializers
                .push(int64_initializer(name.clone(), shifted));
            batched.input.resize(2, String::new());
            batched.input[1] = name;
        } else {
            batched.attribute.push(ints_attribute("axes", &shifted));
        }
        Ok(reduced_rank)
    }

    /// A body state's final value: the state must leave the body as it entered.
    fn final_state(&mut self, state: usize, input: &str, output: &str, outer: &str) -> Result<()> {
        let initial = &self.tensors[input].name;
        let unchanged = self
            .tensors
            .get(output)
            .is_some_and(|t| &t.name == initial && !t.per_iteration);
        ensure!(
            unchanged,
            "state {state} ({input}) changes from one iteration to the next (body output {output}), which makes the Scan a loop over secret values; tfe runs a Scan only when every state passes through the body unchanged"
        );
        if !outer.is_empty() {
            let initial = initial.clone();
            self.push("Identity", &[&initial], outer, vec![]);
        }
        Ok(())
    }

    /// The scan outputs: each body output stacked along its scan axis, in its direction.
    fn scan_outputs(
        &mut self,
        scan: &Node,
        body_outputs: &[pb::ValueInfoProto],
        outer: &[&str],
    ) -> Result<()> {
        let axes = scan.ints("scan_output_axes")?;
        let directions = scan.ints("scan_output_directions")?;
        for (i, (output, outer)) in body_outputs.iter().zip(outer).enumerate() {
            let tensor = self.tensors.get(&output.name).cloned().ok_or_else(|| {
                anyhow!("body output {} is not computed by the body", output.name)
            })?;
            ensure!(
                tensor.per_iteration,
                "scan output {} is the same in every iteration; tfe runs a Scan whose outputs depend on the scanned inputs",
                output.name
            );
            if outer.is_empty() {
                continue;
            }
            let rank = tensor.rank + 1;
            let axis = axes.as_ref().map_or(0, |a| a.get(i).copied().unwrap_or(0));
            let axis = scan_axis(axis, rank, "scan_output_axes")?;
            let mut name = tensor.name;
            if direction(&directions, i)? {
                let count = self
                    .iterations
                    .expect("a per-iteration tensor has iterations");
                name = self.reversed(&name, &output.name, count)?;
            }
            if axis == 0 {
                self.push("Identity", &[&name], outer, vec![]);
            } else {
                let mut perm: Vec<i64> = (1..rank as i64).collect();
                perm.insert(axis, 0);
                self.push(
                    "Transpose",
                    &[&name],
                    outer,
                    vec![ints_attribute("perm", &perm)],
                );
            }
        }
        Ok(())
    }

    fn renamed(&self, body_name: &str) -> String {
        format!("{}{body_name}", self.prefix)
    }

    /// A body tensor with unit axes after its leading iteration axis, up to `rank` axes of
    /// one iteration, so that broadcasting aligns its own axes from the right.
    fn unsqueezed(&mut self, input: &Lifted, rank: usize) -> String {
        let axes: Vec<i64> = (1..=(rank - input.rank) as i64).collect();
        let base = input.name.strip_prefix(&self.prefix).unwrap_or(&input.name);
        let out = self.renamed(&format!("{base}/rank_{rank}"));
        if self.nodes.iter().any(|n| n.output.contains(&out)) {
            return out;
        }
        if self.opset >= 13 {
            let axes_name = format!("{out}/axes");
            self.initializers
                .push(int64_initializer(axes_name.clone(), axes));
            self.push("Unsqueeze", &[&input.name, &axes_name], &out, vec![]);
        } else {
            self.push(
                "Unsqueeze",
                &[&input.name],
                &out,
                vec![ints_attribute("axes", &axes)],
            );
        }
        out
    }

    fn transpose(&mut self, input: &str, body_name: &str, tag: &str, perm: Vec<i64>) -> String {
        let out = format!("{}/{tag}", self.renamed(body_name));
        self.push(
            "Transpose",
            &[input],
            &out,
            vec![ints_attribute("perm", &perm)],
        );
        out
    }

    /// `input` with its leading axis of `count` entries reversed (a Gather of constant
    /// indices).
    fn reversed(&mut self, input: &str, body_name: &str, count: Dim) -> Result<String> {
        let Dim::Fixed(count) = count else {
            bail!(
                "a reversed scan direction along the batch axis needs the batch size at convert time; convert with --fixed-shapes"
            );
        };
        let out = format!("{}/reversed", self.renamed(body_name));
        let indices = format!("{out}/indices");
        let order: Vec<i64> = (0..count as i64).rev().collect();
        self.initializers
            .push(int64_initializer(indices.clone(), order));
        self.push("Gather", &[input, &indices], &out, vec![]);
        Ok(out)
    }

    fn push(
        &mut self,
        op_type: &str,
        inputs: &[&str],
        output: &str,
        attribute: Vec<pb::AttributeProto>,
    ) {
        let name = match output.starts_with(&self.prefix) {
            true => output.to_string(),
            false => self.renamed(output),
        };
        self.nodes.push(pb::NodeProto {
            name,
            op_type: op_type.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.to_string()],
            attribute,
            ..Default::default()
        });
    }
}

/// A scan axis in `[-rank, rank)` as one in `[0, rank)`.
fn scan_axis(axis: i64, rank: usize, attribute: &str) -> Result<usize> {
    let resolved = if axis < 0 { axis + rank as i64 } else { axis };
    ensure!(
        (0..rank as i64).contains(&resolved),
        "{attribute} holds {axis}, out of range for a rank-{rank} tensor"
    );
    Ok(resolved as usize)
}

/// Whether entry `i` of a directions attribute says reverse (1) rather than forward (0).
fn direction(directions: &Option<Vec<i64>>, i: usize) -> Result<bool> {
    match directions.as_ref().and_then(|d| d.get(i)) {
        None | Some(0) => Ok(false),
        Some(1) => Ok(true),
        Some(d) => bail!("scan direction {d} is neither 0 (forward) nor 1 (reverse)"),
    }
}
