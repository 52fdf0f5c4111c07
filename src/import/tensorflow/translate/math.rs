//! Arithmetic, activations, softmax and reductions: mostly one ONNX op per TensorFlow op;
//! ops without a counterpart keep their TensorFlow name so that `--check` reports them.

use super::{Node, Translator};
use crate::import::tensorflow::onnx::{ONNX_FLOAT, attr_int, attr_ints};
use anyhow::{Result, anyhow};
use tract_onnx::pb;

/// TF ops whose ONNX counterpart has the same name and semantics.
const KNOWN_SAME_NAME: &[&str] = &[
    "Add", "Sub", "Mul", "Relu", "Sigmoid", "Tanh", "Elu", "Softplus", "Exp", "Log", "Sqrt", "Neg",
    "Abs", "Selu",
];

impl Translator {
    /// A float scalar initializer named after the node.
    fn float_scalar(&mut self, base: &str, what: &str, value: f32) -> String {
        let name = self.temp(base, what);
        self.initializers.push(pb::TensorProto {
            name: name.clone(),
            data_type: ONNX_FLOAT,
            float_data: vec![value],
            ..Default::default()
        });
        name
    }

    pub(super) fn mat_mul(&mut self, n: &Node) -> Result<()> {
        let node = n.def;
        let attributes = vec![
            attr_int(
                "transA",
                node.get_attr_opt_bool("transpose_a")?.unwrap_or(false) as i64,
            ),
            attr_int(
                "transB",
                node.get_attr_opt_bool("transpose_b")?.unwrap_or(false) as i64,
            ),
        ];
        self.emit(
            "Gemm",
            &node.name,
            &[n.input(0)?, n.input(1)?],
            &n.out,
            attributes,
        );
        Ok(())
    }

    pub(super) fn relu6(&mut self, n: &Node) -> Result<()> {
        let name = &n.def.name;
        let lo = self.float_scalar(name, "zero", 0.0);
        let hi = self.float_scalar(name, "six", 6.0);
        self.emit("Clip", name, &[n.input(0)?, &lo, &hi], &n.out, vec![]);
        Ok(())
    }

    pub(super) fn square(&mut self, n: &Node) -> Result<()> {
        let x = n.input(0)?;
        self.emit("Mul", &n.def.name, &[x, x], &n.out, vec![]);
        Ok(())
    }

    pub(super) fn rsqrt(&mut self, n: &Node) -> Result<()> {
        let half = self.float_scalar(&n.def.name, "exponent", -0.5);
        self.emit("Pow", &n.def.name, &[n.input(0)?, &half], &n.out, vec![]);
        Ok(())
    }

    /// Softmax and LogSoftmax, over the last axis.
    pub(super) fn softmax(&mut self, n: &Node) -> Result<()> {
        self.emit(
            &n.def.op,
            &n.def.name,
            &[n.input(0)?],
            &n.out,
            vec![attr_int("axis", -1)],
        );
        Ok(())
    }

    /// Mean, Sum, Max and Min over constant axes.
    pub(super) fn reduce(&mut self, n: &Node) -> Result<()> {
        let node = n.def;
        let axes = self.int_constant(&node.name, &n.const_ints(1)?);
        let keep = node.get_attr_opt_bool("keep_dims")?.unwrap_or(false) as i64;
        let onnx_op = match node.op.as_str() {
            "Mean" => "ReduceMean",
            "Sum" => "ReduceSum",
            "Max" => "ReduceMax",
            _ => "ReduceMin",
        };
        // ReduceSum takes its axes as an input from opset 13; the others as an attribute.
        if onnx_op == "ReduceSum" {
            self.emit(
                onnx_op,
                &node.name,
                &[n.input(0)?, &axes],
                &n.out,
                vec![attr_int("keepdims", keep)],
            );
        } else {
            self.emit(
                onnx_op,
                &node.name,
                &[n.input(0)?],
                &n.out,
                vec![
                    attr_ints("axes", &n.const_ints(1)?),
                    attr_int("keepdims", keep),
                ],
            );
        }
        Ok(())
    }

    /// ArgMax and ArgMin over a constant axis, which they drop.
    pub(super) fn arg_max(&mut self, n: &Node) -> Result<()> {
        let axis = *n
            .const_ints(1)?
            .first()
            .ok_or_else(|| anyhow!("empty axis"))?;
        self.emit(
            &n.def.op,
            &n.def.name,
            &[n.input(0)?],
            &n.out,
            vec![attr_int("axis", axis), attr_int("keepdims", 0)],
        );
        Ok(())
    }

    /// Binary arithmetic and element-wise functions; any other op keeps its TensorFlow name,
    /// marked as of the `ai.tensorflow` domain, so that `--check` reports it.
    pub(super) fn element_wise(&mut self, n: &Node) {
        let op = n.def.op.as_str();
        let onnx_op = match op {
            "Add" | "AddV2" => "Add",
            "Sub" => "Sub",
            "Mul" => "Mul",
            "RealDiv" | "Div" => "Div",
            "Maximum" => "Max",
            "Minimum" => "Min",
            "Relu" | "Sigmoid" | "Tanh" | "Elu" | "Softplus" | "Exp" | "Log" | "Sqrt" | "Neg"
            | "Abs" | "Selu" => op,
            // Keep the TF name so that --check reports it.
            other => other,
        };
        let domain_marker = if onnx_op == op && !KNOWN_SAME_NAME.contains(&op) {
            "ai.tensorflow"
        } else {
            ""
        };
        self.nodes.push(pb::NodeProto {
            name: n.def.name.clone(),
            op_type: onnx_op.to_string(),
            domain: domain_marker.to_string(),
            input: n.inputs.clone(),
            output: vec![n.out.clone()],
            ..Default::default()
        });
    }
}
