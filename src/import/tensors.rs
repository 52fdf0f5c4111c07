//! Constant tensors checked before tract reads them: tract loads raw bytes only for the
//! numeric and boolean element types (it panics on others), and a malformed file deserves
//! an error naming the tensor.

use anyhow::{Result, bail};
use tract_onnx::pb;

/// ONNX element types whose raw bytes tract loads: float, uint8, int8, uint16, int16,
/// int32, int64, bool, float16, double, uint32, uint64.
const RAW_LOADABLE: [i32; 12] = [1, 2, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13];

/// Every initializer and constant-valued attribute of `graph` and its subgraphs whose data
/// is raw bytes has an element type tract loads.
pub fn check(graph: &pb::GraphProto) -> Result<()> {
    for tensor in &graph.initializer {
        check_tensor(tensor, "initializer")?;
    }
    for node in &graph.node {
        for a in &node.attribute {
            for tensor in a.t.iter().chain(&a.tensors) {
                check_tensor(
                    tensor,
                    &format!("attribute {} of node {}", a.name, node.name),
                )?;
            }
            for sub in a.g.iter().chain(&a.graphs) {
                check(sub)?;
            }
        }
    }
    Ok(())
}

fn check_tensor(tensor: &pb::TensorProto, what: &str) -> Result<()> {
    if !tensor.raw_data.is_empty() && !RAW_LOADABLE.contains(&tensor.data_type) {
        bail!(
            "{what} {:?} holds raw data of ONNX element type {}, which tfe cannot read; the model file is malformed, or export the tensor as a numeric type",
            tensor.name,
            tensor.data_type
        );
    }
    Ok(())
}
