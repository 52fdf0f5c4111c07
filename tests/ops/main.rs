//! Per-operator tests: for every ONNX op family that `tfe` lowers, small models built in Rust
//! exercise the attribute variants the ONNX spec defines. Each case is converted once and the
//! one plan is run in every mode at batch 1 and 3, against tract as the plaintext reference.
//!
//! Inputs and weights are drawn from [-1, 1] unless a case says otherwise. Cases are chosen so
//! that ignoring an attribute changes the result by far more than the tolerance (asymmetric
//! pads, sizes where ceil_mode adds an output, SAME_UPPER vs SAME_LOWER with odd total padding,
//! a constant as the first operand of Sub, ...).
//!
//! Per-op tests for the comparison-based and approximated operators, against tract in float,
//! fixed and mpc at batch 1 and 3 (see tests/common/cases.rs). Inputs that must be positive
//! (log, sqrt, reciprocal, divisors) are made so inside the model: x*x + c.
//!
//! One module per op family, named after the file of src/lower/ that lowers it.

#[path = "../common/mod.rs"]
mod common;

mod activation;
mod activation_patterns;
mod compare;
mod convert;
mod elementwise;
mod fuse;
mod linear;
mod logic;
mod ml;
mod movement;
mod normalization;
mod pool;
mod power;
mod recurrent;
mod reduce;
mod reorder;
mod resize;
mod saturate;
mod scan;
mod shape;
mod softmax;
mod svm;
mod tokens;
mod topk;
mod tree;

use common::Attr;
use common::cases::*;
use ndarray::{ArrayD, IxDyn};

// Helpers that the cases of several families share.

/// "To the end of the axis", as exporters write it.
const END: i64 = i64::MAX;

fn str_attr(name: &'static str, v: &'static str) -> Attr {
    Attr::Str(name, v)
}

fn tensor(shape: &[usize], data: &[f32]) -> ArrayD<f32> {
    ArrayD::from_shape_vec(IxDyn(shape), data.to_vec()).unwrap()
}

/// Adds a graph output for each name.
fn outputs(c: Case, names: &[&str]) -> Case {
    names.iter().fold(c, |c, name| c.output(name))
}

/// x [N, 3, 4] and a positive p = x*x + c computed from it.
fn with_positive(name: &str, opset: i64, c: f32) -> Case {
    case(name, opset)
        .input("x", &[N, Some(3), Some(4)])
        .scalar("c", c)
        .node("Mul", &["x", "x"], &["xx"], vec![])
        .node("Add", &["xx", "c"], &["p"], vec![])
}

/// A reference computed row by row for ops tract does not run (ai.onnx.ml): `per_row` gives
/// each row's outputs; of a classifier's two, the first (the label) is `[N]`, the others
/// `[N, width]`.
fn row_by_row(
    inputs: &[ArrayD<f32>],
    per_row: impl Fn(&[f32]) -> Vec<Vec<f32>>,
) -> Vec<ArrayD<f32>> {
    let x = &inputs[0];
    let n = x.shape()[0];
    let results: Vec<Vec<Vec<f32>>> = (0..n)
        .map(|i| per_row(x.index_axis(ndarray::Axis(0), i).as_slice().unwrap()))
        .collect();
    let outputs = results[0].len();
    (0..outputs)
        .map(|o| {
            let width = results[0][o].len();
            let flat: Vec<f32> = results.iter().flat_map(|r| r[o].clone()).collect();
            let shape = if o == 0 && outputs == 2 {
                vec![n]
            } else {
                vec![n, width]
            };
            tensor(&shape, &flat)
        })
        .collect()
}
