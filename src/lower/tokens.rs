//! Token-id inputs. An integer graph input that indexes embedding tables (`input_ids`, as
//! every Hugging Face export takes it) reaches the parties as secret one-hot rows, which the
//! client encodes: the lookup then is a product of the one-hot rows with the secret table,
//! and no party learns an id. Other readers of the ids get them back as numbers.

use super::args::normalize_axis;
use super::registry::rule_for;
use super::{Lowering, To};
use crate::import::{Graph, Node};
use crate::plan::{Dim, Op, Shape, ValueId};
use anyhow::{Result, bail, ensure};
use ndarray::{ArrayD, IxDyn};

/// A token-id input as the plan holds it.
#[derive(Clone, Copy, Debug)]
pub struct TokenInput {
    /// The one-hot rows: the ids' shape plus an axis of `depth`.
    pub one_hot: ValueId,
    pub depth: usize,
}

/// The tensors that are an integer input's ids reshaped (see [`OpRule::reshapes`]), each
/// with the tensor it reshapes, in graph order; the input itself first, with none.
///
/// [`OpRule::reshapes`]: super::OpRule::reshapes
pub fn reshaped_ids(graph: &Graph, input: &str) -> Vec<(String, Option<String>)> {
    let mut ids = vec![(input.to_string(), None)];
    for node in &graph.model.nodes {
        let Some(source) = node.input(0) else {
            continue;
        };
        let reshapes = rule_for(node).is_some_and(|r| r.reshapes);
        if reshapes && ids.iter().any(|(t, _)| t == source) {
            ids.push((node.output().to_string(), Some(source.to_string())));
        }
    }
    ids
}

/// The number of rows of the tables an integer input's ids index, when Gather nodes read
/// them (or them reshaped) as their indices: they are then one-hot encoded with that depth.
/// `None` for an input no Gather indexes with (a mask or labels, computed on as numbers).
pub fn table_rows(graph: &Graph, ids: &[(String, Option<String>)]) -> Result<Option<usize>> {
    let input = &ids[0].0;
    let mut depth = None;
    for node in graph.model.nodes.iter().filter(|n| is_lookup(n, ids)) {
        let table = graph.shape(&node.inputs[0])?;
        let axis = normalize_axis(node, node.int("axis", 0)?, table.rank())?;
        let rows = match table.0.first() {
            Some(Dim::Fixed(rows)) if axis == 0 => *rows,
            _ => bail!(
                "node {} looks up the token ids of {input} along axis {axis} of a table of shape {table}; tfe looks ids up in the rows (axis 0) of a table of fixed size",
                node.name
            ),
        };
        ensure!(
            depth.is_none_or(|d| d == rows),
            "input {input} indexes tables of {} and {rows} rows; tfe one-hot encodes token ids for one vocabulary",
            depth.unwrap_or_default()
        );
        depth = Some(rows);
    }
    Ok(depth)
}

fn is_lookup(node: &Node, ids: &[(String, Option<String>)]) -> bool {
    node.op_type == "Gather"
        && node.domain.is_empty()
        && node
            .input(1)
            .is_some_and(|i| ids.iter().any(|(t, _)| t == i))
}

/// Gather of table rows by token ids: the one-hot rows times the table, as a matrix
/// product; a table of rank other than 2 is flattened to [rows, width] and the product
/// shaped back.
pub fn lookup(cx: &mut Lowering, node: &Node, ids: TokenInput) -> Result<()> {
    let table_name = &node.inputs[0];
    let table_shape = cx.shape(table_name)?;
    let width: usize = table_shape.0[1..]
        .iter()
        .map(|d| match d {
            Dim::Fixed(n) => Ok(*n),
            Dim::Batch(_) => bail!("the table {table_name} must not depend on the batch size"),
        })
        .product::<Result<usize>>()?;
    let mut table = cx.value(table_name)?;
    let flat = Shape::fixed_dims(&[ids.depth, width]);
    if table_shape != flat {
        let reshape = Op::Reshape {
            shape: flat.clone(),
        };
        table = cx.emit(node, reshape, &[table], To::shaped("table", flat))?;
    }
    let mut rows = cx.shape_of(ids.one_hot).clone();
    *rows.0.last_mut().expect("one-hot values have an axis") = Dim::Fixed(width);
    let output = cx.shape(node.output())?;
    if rows == output {
        cx.emit(node, Op::MatMul, &[ids.one_hot, table], To::Output)?;
    } else {
        let looked_up = cx.emit(
            node,
            Op::MatMul,
            &[ids.one_hot, table],
            To::shaped("rows", rows),
        )?;
        cx.emit(
            node,
            Op::Reshape { shape: output },
            &[looked_up],
            To::Output,
        )?;
    }
    Ok(())
}

impl Lowering<'_> {
    /// The one-hot rows of token ids `tensor` (an input's, or those reshaped), if it holds
    /// token ids; reshaped rows are made on first use.
    pub fn token_input(&mut self, tensor: &str) -> Result<Option<TokenInput>> {
        if let Some(&ids) = self.token_inputs.get(tensor) {
            return Ok(Some(ids));
        }
        let Some(source) = self.reshaped_token_ids.get(tensor).cloned() else {
            return Ok(None);
        };
        let source = self.token_input(&source)?.expect("reshaped from token ids");
        let mut shape = self.shape(tensor)?;
        shape.0.push(Dim::Fixed(source.depth));
        let reshape = Op::Reshape {
            shape: shape.clone(),
        };
        let name = format!("{tensor}/one_hot");
        let one_hot = self
            .builder
            .step(tensor, reshape, &[source.one_hot], &name, shape);
        let ids = TokenInput {
            one_hot,
            depth: source.depth,
        };
        self.token_inputs.insert(tensor.to_string(), ids);
        Ok(Some(ids))
    }

    /// The ids of a token-id input as numbers, for readers other than lookups: the one-hot
    /// rows times the public column 0, 1, .., depth - 1 (a local product and its truncation).
    pub(super) fn token_ids(&mut self, tensor: &str, ids: TokenInput) -> Result<ValueId> {
        let counting = ArrayD::from_shape_fn(IxDyn(&[ids.depth, 1]), |i| i[0] as f32);
        let counting = self.public(&format!("{tensor}/ids"), counting)?;
        let mut column = self.shape_of(ids.one_hot).clone();
        *column.0.last_mut().expect("one-hot values have an axis") = Dim::Fixed(1);
        let given = self.shape(tensor)?;
        let name = format!("{tensor}/column");
        let column = self
            .builder
            .step(tensor, Op::MatMul, &[ids.one_hot, counting], &name, column);
        let reshape = Op::Reshape {
            shape: given.clone(),
        };
        let id = self.builder.step(tensor, reshape, &[column], tensor, given);
        self.mark_integral(id);
        Ok(id)
    }
}
