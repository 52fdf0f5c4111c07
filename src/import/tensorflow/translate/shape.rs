//! Shape and data-movement ops: reshapes, squeezes, concatenation, transposes, pads, strided
//! slices, packs and casts, with their constant operands as ONNX initializers.

use super::{Node, Translator};
use crate::import::tensorflow::onnx::{ONNX_FLOAT, ONNX_INT64, attr_int, attr_ints};
use anyhow::{Result, anyhow, ensure};
use tract_tensorflow::prelude::DatumType;

impl Translator {
    pub(super) fn reshape(&mut self, n: &Node) -> Result<()> {
        self.emit(
            "Reshape",
            &n.def.name,
            &[n.input(0)?, n.input(1)?],
            &n.out,
            vec![],
        );
        Ok(())
    }

    pub(super) fn squeeze(&mut self, n: &Node) -> Result<()> {
        let node = n.def;
        let dims: Vec<i64> = node
            .get_attr_opt_list_int("squeeze_dims")?
            .unwrap_or_default();
        let mut ins = vec![n.input(0)?.to_string()];
        if !dims.is_empty() {
            ins.push(self.int_constant(&node.name, &dims));
        }
        let refs: Vec<&str> = ins.iter().map(String::as_str).collect();
        self.emit("Squeeze", &node.name, &refs, &n.out, vec![]);
        Ok(())
    }

    pub(super) fn expand_dims(&mut self, n: &Node) -> Result<()> {
        self.emit(
            "Unsqueeze",
            &n.def.name,
            &[n.input(0)?, n.input(1)?],
            &n.out,
            vec![],
        );
        Ok(())
    }

    /// ConcatV2, whose last input is the constant axis.
    pub(super) fn concat(&mut self, n: &Node) -> Result<()> {
        let inputs = &n.inputs;
        let axis = *n
            .const_ints(inputs.len() - 1)?
            .first()
            .ok_or_else(|| anyhow!("empty axis"))?;
        let refs: Vec<&str> = inputs[..inputs.len() - 1]
            .iter()
            .map(String::as_str)
            .collect();
        self.emit(
            "Concat",
            &n.def.name,
            &refs,
            &n.out,
            vec![attr_int("axis", axis)],
        );
        Ok(())
    }

    pub(super) fn transpose(&mut self, n: &Node) -> Result<()> {
        let perm = n.const_ints(1)?;
        self.emit(
            "Transpose",
            &n.def.name,
            &[n.input(0)?],
            &n.out,
            vec![attr_ints("perm", &perm)],
        );
        Ok(())
    }

    /// Pad and PadV2 (with a padding value): TensorFlow's [rank, 2] paddings become ONNX's
    /// begins then ends.
    pub(super) fn pad(&mut self, n: &Node) -> Result<()> {
        let node = n.def;
        let paddings = n.const_ints(1)?;
        let rank = paddings.len() / 2;
        let pads: Vec<i64> = (0..rank)
            .map(|d| paddings[2 * d])
            .chain((0..rank).map(|d| paddings[2 * d + 1]))
            .collect();
        let pads = self.int_constant(&node.name, &pads);
        let mut ins = vec![n.input(0)?.to_string(), pads];
        if node.op == "PadV2" {
            ins.push(n.input(2)?.to_string());
        }
        let refs: Vec<&str> = ins.iter().map(String::as_str).collect();
        self.emit("Pad", &node.name, &refs, &n.out, vec![]);
        Ok(())
    }

    pub(super) fn shape(&mut self, n: &Node) -> Result<()> {
        self.emit("Shape", &n.def.name, &[n.input(0)?], &n.out, vec![]);
        Ok(())
    }

    /// StridedSlice as a Slice, then a Squeeze of the axes its shrink mask drops.
    pub(super) fn strided_slice(&mut self, n: &Node) -> Result<()> {
        let node = n.def;
        for mask in ["ellipsis_mask", "new_axis_mask"] {
            ensure!(
                node.get_attr_opt_int::<i64>(mask)?.unwrap_or(0) == 0,
                "StridedSlice {mask} is not supported"
            );
        }
        let (begin, end, strides) = (n.const_ints(1)?, n.const_ints(2)?, n.const_ints(3)?);
        let bit = |mask: &str, i: usize| -> Result<bool> {
            Ok(node.get_attr_opt_int::<i64>(mask)?.unwrap_or(0) >> i & 1 == 1)
        };
        let mut starts = vec![];
        let mut ends = vec![];
        let mut shrink = vec![];
        for i in 0..begin.len() {
            let backwards = strides[i] < 0;
            starts.push(if bit("begin_mask", i)? {
                if backwards { i64::MAX } else { 0 }
            } else {
                begin[i]
            });
            ends.push(if bit("end_mask", i)? {
                if backwards { i64::MIN } else { i64::MAX }
            } else if bit("shrink_axis_mask", i)? {
                begin[i] + 1
            } else {
                end[i]
            });
            if bit("shrink_axis_mask", i)? {
                shrink.push(i as i64);
            }
        }
        let axes: Vec<i64> = (0..begin.len() as i64).collect();
        let args = [
            self.int_constant(&node.name, &starts),
            self.int_constant(&node.name, &ends),
            self.int_constant(&node.name, &axes),
            self.int_constant(&node.name, &strides),
        ];
        let sliced = if shrink.is_empty() {
            n.out.clone()
        } else {
            self.temp(&node.name, "sliced")
        };
        self.emit(
            "Slice",
            &node.name,
            &[n.input(0)?, &args[0], &args[1], &args[2], &args[3]],
            &sliced,
            vec![],
        );
        if !shrink.is_empty() {
            let axes = self.int_constant(&node.name, &shrink);
            self.emit(
                "Squeeze",
                &format!("{}/shrink", node.name),
                &[&sliced, &axes],
                &n.out,
                vec![],
            );
        }
        Ok(())
    }

    /// Pack (tf.stack): each input unsqueezed at the axis, then concatenated.
    pub(super) fn pack(&mut self, n: &Node) -> Result<()> {
        let node = n.def;
        let axis = node.get_attr_opt_int::<i64>("axis")?.unwrap_or(0);
        let axes = self.int_constant(&node.name, &[axis]);
        let mut expanded = vec![];
        for (i, part) in n.inputs.iter().enumerate() {
            let name = self.temp(&node.name, "expanded");
            self.emit(
                "Unsqueeze",
                &format!("{}/expand{i}", node.name),
                &[part, &axes],
                &name,
                vec![],
            );
            expanded.push(name);
        }
        let refs: Vec<&str> = expanded.iter().map(String::as_str).collect();
        self.emit(
            "Concat",
            &node.name,
            &refs,
            &n.out,
            vec![attr_int("axis", axis)],
        );
        Ok(())
    }

    /// Cast to float, or to int64 for every other type.
    pub(super) fn cast(&mut self, n: &Node) -> Result<()> {
        let to = match n.def.get_attr_opt_datum_type("DstT")? {
            Some(DatumType::F32) | Some(DatumType::F64) | Some(DatumType::F16) => ONNX_FLOAT,
            _ => ONNX_INT64,
        };
        self.emit(
            "Cast",
            &n.def.name,
            &[n.input(0)?],
            &n.out,
            vec![attr_int("to", to as i64)],
        );
        Ok(())
    }
}
