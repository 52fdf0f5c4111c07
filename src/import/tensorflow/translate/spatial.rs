//! Convolutions, pools, bias additions and fused batch norms: TensorFlow's NHWC ops become
//! ONNX's NCHW ones between transposes.

use super::{Node, Translator};
use crate::import::tensorflow::onnx::{attr_float, attr_int, attr_ints, attr_str, tensor};
use anyhow::{Result, anyhow, bail, ensure};
use tract_onnx::pb;
use tract_tensorflow::tfpb::tensorflow::NodeDef;

const NHWC_TO_NCHW: [i64; 4] = [0, 3, 1, 2];
const NCHW_TO_NHWC: [i64; 4] = [0, 2, 3, 1];

/// Whether the node's tensors are NHWC (TensorFlow's default) rather than NCHW.
fn is_nhwc(node: &NodeDef) -> Result<bool> {
    Ok(node
        .get_attr_opt_str("data_format")?
        .is_none_or(|f| f == "NHWC"))
}

/// Spatial entries of an NHWC (or NCHW) 4-vector attribute such as strides.
fn spatial(node: &NodeDef, name: &str) -> Result<Vec<i64>> {
    let v: Vec<i64> = node
        .get_attr_opt_list_int(name)?
        .unwrap_or_else(|| vec![1; 4]);
    ensure!(
        v.len() == 4,
        "{} of node {} should have 4 entries",
        name,
        node.name
    );
    Ok(if is_nhwc(node)? {
        v[1..3].to_vec()
    } else {
        v[2..4].to_vec()
    })
}

fn padding(node: &NodeDef) -> Result<pb::AttributeProto> {
    Ok(match node.get_attr_str("padding")?.as_str() {
        "SAME" => attr_str("auto_pad", "SAME_UPPER"),
        "VALID" => attr_str("auto_pad", "VALID"),
        other => bail!("padding {other} of node {} is not supported", node.name),
    })
}

impl Translator {
    /// `op` applied in NCHW to an NHWC (or already NCHW) tensor: transposes around it.
    fn in_nchw(
        &mut self,
        node: &NodeDef,
        op: &str,
        x: &str,
        extra: &[&str],
        attributes: Vec<pb::AttributeProto>,
    ) -> Result<()> {
        let out = tensor(&node.name);
        if !is_nhwc(node)? {
            let inputs: Vec<&str> = std::iter::once(x).chain(extra.iter().copied()).collect();
            self.emit(op, &node.name, &inputs, &out, attributes);
            return Ok(());
        }
        let nchw = self.temp(&node.name, "nchw");
        self.emit(
            "Transpose",
            &format!("{}/to_nchw", node.name),
            &[x],
            &nchw,
            vec![attr_ints("perm", &NHWC_TO_NCHW)],
        );
        let inner = self.temp(&node.name, "inner");
        let inputs: Vec<&str> = std::iter::once(nchw.as_str())
            .chain(extra.iter().copied())
            .collect();
        self.emit(op, &node.name, &inputs, &inner, attributes);
        self.emit(
            "Transpose",
            &format!("{}/to_nhwc", node.name),
            &[&inner],
            &out,
            vec![attr_ints("perm", &NCHW_TO_NHWC)],
        );
        Ok(())
    }

    /// Conv2D and DepthwiseConv2dNative.
    pub(super) fn conv(&mut self, n: &Node) -> Result<()> {
        let node = n.def;
        let filter = n.input(1)?;
        // HWIO (Conv2D) or HW C multiplier (depthwise) to ONNX's O I/g H W.
        let oihw = self.temp(&node.name, "filter");
        self.emit(
            "Transpose",
            &format!("{}/filter", node.name),
            &[filter],
            &oihw,
            vec![attr_ints("perm", &[3, 2, 0, 1])],
        );
        let mut attributes = vec![
            padding(node)?,
            attr_ints("strides", &spatial(node, "strides")?),
            attr_ints("dilations", &spatial(node, "dilations")?),
        ];
        let weight = if node.op == "DepthwiseConv2dNative" {
            let shape = n
                .consts
                .get(filter)
                .ok_or_else(|| anyhow!("the filter of {} must be a constant", node.name))?
                .shape
                .clone();
            let (channels, multiplier) = (shape[2] as i64, shape[3] as i64);
            // [M, C, H, W] -> [C, M, H, W] -> [C*M, 1, H, W]
            let cm = self.temp(&node.name, "filter_cm");
            self.emit(
                "Transpose",
                &format!("{}/filter_cm", node.name),
                &[&oihw],
                &cm,
                vec![attr_ints("perm", &[1, 0, 2, 3])],
            );
            let target = self.int_constant(
                &node.name,
                &[channels * multiplier, 1, shape[0] as i64, shape[1] as i64],
            );
            let grouped = self.temp(&node.name, "filter_grouped");
            self.emit(
                "Reshape",
                &format!("{}/filter_grouped", node.name),
                &[&cm, &target],
                &grouped,
                vec![],
            );
            attributes.push(attr_int("group", channels));
            grouped
        } else {
            oihw
        };
        self.in_nchw(node, "Conv", n.input(0)?, &[&weight], attributes)
    }

    /// MaxPool and AvgPool (which does not count the padding).
    pub(super) fn pool(&mut self, n: &Node) -> Result<()> {
        let node = n.def;
        let mut attributes = vec![
            padding(node)?,
            attr_ints("kernel_shape", &spatial(node, "ksize")?),
            attr_ints("strides", &spatial(node, "strides")?),
        ];
        let onnx_op = if node.op == "MaxPool" {
            "MaxPool"
        } else {
            "AveragePool"
        };
        if node.op == "AvgPool" {
            attributes.push(attr_int("count_include_pad", 0));
        }
        self.in_nchw(node, onnx_op, n.input(0)?, &[], attributes)
    }

    pub(super) fn bias_add(&mut self, n: &Node) -> Result<()> {
        let node = n.def;
        let bias = if is_nhwc(node)? {
            n.input(1)?.to_string()
        } else {
            let target = self.int_constant(&node.name, &[-1, 1, 1]);
            let reshaped = self.temp(&node.name, "bias");
            self.emit(
                "Reshape",
                &format!("{}/bias", node.name),
                &[n.input(1)?, &target],
                &reshaped,
                vec![],
            );
            reshaped
        };
        self.emit("Add", &node.name, &[n.input(0)?, &bias], &n.out, vec![]);
        Ok(())
    }

    /// FusedBatchNorm (V2, V3) in inference mode.
    pub(super) fn fused_batch_norm(&mut self, n: &Node) -> Result<()> {
        let node = n.def;
        ensure!(
            !node.get_attr_opt_bool("is_training")?.unwrap_or(false),
            "node {} is a batch norm in training mode; freeze the graph for inference",
            node.name
        );
        let eps = node.get_attr_opt_float::<f32>("epsilon")?.unwrap_or(1e-3);
        self.in_nchw(
            node,
            "BatchNormalization",
            n.input(0)?,
            &[n.input(1)?, n.input(2)?, n.input(3)?, n.input(4)?],
            vec![attr_float("epsilon", eps)],
        )
    }
}
