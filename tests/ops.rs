//! Per-operator tests: for every ONNX op family that `tfe` lowers, small models built in Rust
//! exercise the attribute variants the ONNX spec defines. Each case is converted once and the
//! one plan is run in every mode at batch 1 and 3, against tract as the plaintext reference.
//!
//! Inputs and weights are drawn from [-1, 1] unless a case says otherwise. Cases are chosen so
//! that ignoring an attribute changes the result by far more than the tolerance (asymmetric
//! pads, sizes where ceil_mode adds an output, SAME_UPPER vs SAME_LOWER with odd total padding,
//! a constant as the first operand of Sub, ...).

mod common;

use common::{Attr, OnnxBuilder, random, tract_reference};
use ndarray::{ArrayD, IxDyn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use tfe::exec::{Mode, predict};
use tfe::lower::{Options, convert};
use tfe::plan::Plan;

/// The float interpreter only reorders f32 operations, so it must match tract to f32
/// round-off: 1e-4, relative to the output's magnitude when that exceeds 1.
const FLOAT_TOLERANCE: f32 = 1e-4;

/// Fixed point with 16 fractional bits quantises every input and weight to 2^-16 and truncates
/// every product back to 2^-16 (≈ 1.5e-5; the MPC truncation may be off by one more unit).
/// With inputs and weights in [-1, 1] and fan-in up to ~64 (folded BatchNorm scales up to ~3),
/// the worst accumulated error is a few 1e-4, so 2e-3 absolute leaves headroom while staying
/// two orders of magnitude below what a real bug gives (an off-by-one pad, a wrong stride or a
/// swapped operand moves outputs by 0.1-1).
const FIXED_TOLERANCE: f32 = 2e-3;

/// Every plan is run at both batch sizes; 3 checks that nothing hard-codes batch 1.
const BATCHES: [usize; 2] = [1, 3];

const N: Option<i64> = None;

fn int(name: &'static str, v: i64) -> Attr {
    Attr::Int(name, v)
}

fn ints(name: &'static str, v: &[i64]) -> Attr {
    Attr::Ints(name, v.to_vec())
}

fn float(name: &'static str, v: f32) -> Attr {
    Attr::Float(name, v)
}

fn auto_pad(mode: &'static str) -> Attr {
    Attr::Str("auto_pad", mode)
}

/// One model under test: an ONNX graph plus the shapes of its inputs (`None` = the batch).
struct Case {
    name: String,
    onnx: OnnxBuilder,
    inputs: Vec<Vec<Option<i64>>>,
    input_scale: f32,
    seed: u64,
}

fn case(name: &str, opset: i64) -> Case {
    // FNV-1a of the name: every case gets its own deterministic data.
    let seed = name.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    Case {
        name: format!("ops-{name}"),
        onnx: OnnxBuilder::new(opset),
        inputs: vec![],
        input_scale: 1.0,
        seed,
    }
}

impl Case {
    fn input(mut self, name: &str, dims: &[Option<i64>]) -> Self {
        self.onnx.input(name, dims);
        self.inputs.push(dims.to_vec());
        self
    }

    /// A random initializer in [-1, 1].
    fn weight(self, name: &str, shape: &[usize]) -> Self {
        self.weight_scaled(name, shape, 1.0)
    }

    fn weight_scaled(mut self, name: &str, shape: &[usize], scale: f32) -> Self {
        self.seed = self.seed.wrapping_add(0x9e37);
        let data = random(shape, self.seed, scale);
        self.init(name, &data)
    }

    fn init(mut self, name: &str, data: &ArrayD<f32>) -> Self {
        self.onnx.init(name, data);
        self
    }

    fn scalar(self, name: &str, v: f32) -> Self {
        self.init(name, &ArrayD::from_elem(IxDyn(&[]), v))
    }

    fn init_i64(mut self, name: &str, data: &[i64]) -> Self {
        self.onnx.init_i64(name, data);
        self
    }

    fn node(mut self, op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<Attr>) -> Self {
        self.onnx.node(op, inputs, outputs, attrs);
        self
    }

    fn output(mut self, name: &str) -> Self {
        self.onnx.output(name);
        self
    }

    /// Direct access to the builder for the rare initializer kinds.
    fn with_onnx(mut self, f: impl FnOnce(&mut OnnxBuilder)) -> Self {
        f(&mut self.onnx);
        self
    }

    fn input_scale(mut self, scale: f32) -> Self {
        self.input_scale = scale;
        self
    }

    /// BatchNormalization's four parameters `{prefix}_{scale,bias,mean,var}` over `c` channels,
    /// variances drawn from `var_range`.
    fn bn_params(self, prefix: &str, c: usize, var_range: (f32, f32)) -> Self {
        let var = random(&[c], self.seed ^ 0x5eed, 1.0)
            .mapv(|v| var_range.0 + (v.abs() * (var_range.1 - var_range.0)));
        self.weight(&format!("{prefix}_scale"), &[c])
            .weight_scaled(&format!("{prefix}_bias"), &[c], 0.5)
            .weight_scaled(&format!("{prefix}_mean"), &[c], 0.5)
            .init(&format!("{prefix}_var"), &var)
    }

    fn inputs_for(&self, batch: usize) -> Vec<ArrayD<f32>> {
        self.inputs
            .iter()
            .enumerate()
            .map(|(i, dims)| {
                let shape: Vec<usize> = dims
                    .iter()
                    .map(|d| d.map_or(batch, |n| n as usize))
                    .collect();
                random(
                    &shape,
                    self.seed ^ ((batch as u64) << 8) ^ i as u64,
                    self.input_scale,
                )
            })
            .collect()
    }

    /// Converts once, then checks every mode at every batch size against tract.
    fn check(&self) -> Result<(), String> {
        let path = self.onnx.save(&self.name);
        let options = Options::default();
        let converted = convert(&path, options).map_err(|e| format!("convert: {e:#}"))?;
        let plan = Plan::from_bytes(&converted.plan.to_bytes(), &self.name)
            .map_err(|e| format!("plan round trip: {e:#}"))?;
        for batch in BATCHES {
            let inputs = self.inputs_for(batch);
            let expected = catch_unwind(AssertUnwindSafe(|| tract_reference(&path, &inputs)))
                .map_err(|_| format!("batch {batch}: tract failed on the model"))?;
            for (mode, tolerance) in [
                (Mode::Float, FLOAT_TOLERANCE),
                (Mode::Fixed, FIXED_TOLERANCE),
                (Mode::Mpc, FIXED_TOLERANCE),
            ] {
                let got = predict(&plan, &inputs, mode)
                    .map_err(|e| format!("batch {batch} {mode:?}: {e:#}"))?
                    .outputs;
                if got.len() != expected.len() {
                    return Err(format!(
                        "batch {batch} {mode:?}: {} outputs, tract gives {}",
                        got.len(),
                        expected.len()
                    ));
                }
                for (i, (g, e)) in got.iter().zip(&expected).enumerate() {
                    if g.shape() != e.shape() {
                        return Err(format!(
                            "batch {batch} {mode:?} output {i}: shape {:?}, tract gives {:?}",
                            g.shape(),
                            e.shape()
                        ));
                    }
                    let magnitude = e.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                    let bound = if mode == Mode::Float {
                        tolerance * magnitude
                    } else {
                        tolerance
                    };
                    let err = common::max_abs_diff(g, e);
                    if err.is_nan() || err > bound {
                        return Err(format!(
                            "batch {batch} {mode:?} output {i}: max |error| {err} > {bound} (max |value| {magnitude})"
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// Runs every case (all of them, even after a failure) and fails listing each that failed.
fn run_all(cases: Vec<Case>) {
    assert!(!cases.is_empty());
    let failures: Vec<String> = cases
        .iter()
        .filter_map(|c| {
            let outcome = catch_unwind(AssertUnwindSafe(|| c.check())).unwrap_or_else(|panic| {
                Err(format!("panicked: {}", common::panic_message(&*panic)))
            });
            outcome.err().map(|e| format!("{}: {e}", c.name))
        })
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

// ---------------------------------------------------------------------------------------------
// Gemm and MatMul

#[test]
fn gemm() {
    let plain = |name: &str| case(name, 13).input("x", &[N, Some(4)]).output("y");
    run_all(vec![
        // C of shape [N]
        plain("gemm-c-vector")
            .weight("b", &[4, 3])
            .weight("c", &[3])
            .node("Gemm", &["x", "b", "c"], &["y"], vec![]),
        // transB, C of shape [1, N]
        plain("gemm-transb-c-row")
            .weight("b", &[3, 4])
            .weight("c", &[1, 3])
            .node("Gemm", &["x", "b", "c"], &["y"], vec![int("transB", 1)]),
        // alpha and beta with constant B and C
        plain("gemm-alpha-beta")
            .weight("b", &[4, 3])
            .weight("c", &[3])
            .node(
                "Gemm",
                &["x", "b", "c"],
                &["y"],
                vec![float("alpha", 0.5), float("beta", 2.0)],
            ),
        // scalar C
        plain("gemm-c-scalar")
            .weight("b", &[4, 3])
            .scalar("c", 0.75)
            .node("Gemm", &["x", "b", "c"], &["y"], vec![float("beta", -1.5)]),
        // C absent
        plain("gemm-no-c").weight("b", &[4, 3]).node(
            "Gemm",
            &["x", "b"],
            &["y"],
            vec![float("alpha", -1.5)],
        ),
        // C of shape [M, N]: M is the batch, so C is secret (computed from x), scaled by beta
        plain("gemm-c-matrix-secret")
            .weight("b", &[4, 3])
            .weight("w2", &[4, 3])
            .node("MatMul", &["x", "w2"], &["c"], vec![])
            .node("Gemm", &["x", "b", "c"], &["y"], vec![float("beta", 2.0)]),
        // C of shape [M, N] constant: M must not be the batch, so A is the batch-free secret
        // x^T x ([4, 4]; axis 0 of every graph input is the batch, by design)
        plain("gemm-c-matrix-const")
            .weight("b", &[4, 3])
            .weight("c", &[4, 3])
            .node("Transpose", &["x"], &["xt"], vec![])
            .node("MatMul", &["xt", "x"], &["a"], vec![])
            .node("Gemm", &["a", "b", "c"], &["y"], vec![float("beta", 0.5)]),
        // transA on a secret A (x transposed, so A is [K, M])
        plain("gemm-transa")
            .weight("b", &[4, 3])
            .weight("c", &[3])
            .node("Transpose", &["x"], &["xt"], vec![ints("perm", &[1, 0])])
            .node("Gemm", &["xt", "b", "c"], &["y"], vec![int("transA", 1)]),
        plain("gemm-transa-transb-alpha")
            .weight("b", &[3, 4])
            .node("Transpose", &["x"], &["xt"], vec![])
            .node(
                "Gemm",
                &["xt", "b"],
                &["y"],
                vec![int("transA", 1), int("transB", 1), float("alpha", 2.0)],
            ),
        // constant A, secret B: the weight on the left, C of shape [M, 1]
        plain("gemm-const-a-secret-b")
            .weight("a", &[2, 4])
            .weight("c", &[2, 1])
            .node("Transpose", &["x"], &["xt"], vec![])
            .node("Gemm", &["a", "xt", "c"], &["y"], vec![float("beta", 0.5)]),
        // secret, batch-free B computed from two inputs (x^T z: [4, 3]), alpha on the secret path
        plain("gemm-secret-b")
            .input("z", &[N, Some(3)])
            .weight("c", &[3])
            .node("Transpose", &["x"], &["xt"], vec![])
            .node("MatMul", &["xt", "z"], &["b"], vec![])
            .node(
                "Gemm",
                &["x", "b", "c"],
                &["y"],
                vec![float("alpha", 0.5), float("beta", 2.0)],
            ),
        // secret B with transB (z^T x: [3, 4])
        plain("gemm-secret-b-transb")
            .input("z", &[N, Some(3)])
            .weight("c", &[1, 3])
            .node("Transpose", &["z"], &["zt"], vec![])
            .node("MatMul", &["zt", "x"], &["b"], vec![])
            .node("Gemm", &["x", "b", "c"], &["y"], vec![int("transB", 1)]),
        // B = the input itself: x x^T, [N, N], with alpha and a scalar C
        plain("gemm-x-xt").scalar("c", 0.25).node(
            "Gemm",
            &["x", "x", "c"],
            &["y"],
            vec![int("transB", 1), float("alpha", 0.5)],
        ),
        // secret C with beta == 1 (no scaling step)
        plain("gemm-secret-c-beta1")
            .weight("b", &[4, 4])
            .node("Relu", &["x"], &["c"], vec![])
            .node("Gemm", &["x", "b", "c"], &["y"], vec![]),
    ]);
}

#[test]
fn matmul() {
    run_all(vec![
        case("matmul-2d-weight", 13)
            .input("x", &[N, Some(5)])
            .weight("w", &[5, 3])
            .node("MatMul", &["x", "w"], &["y"], vec![])
            .output("y"),
        case("matmul-3d-input-2d-weight", 13)
            .input("x", &[N, Some(2), Some(4)])
            .weight("w", &[4, 3])
            .node("MatMul", &["x", "w"], &["y"], vec![])
            .output("y"),
        case("matmul-weight-left", 13)
            .input("x", &[N, Some(4), Some(5)])
            .weight("w", &[3, 4])
            .node("MatMul", &["w", "x"], &["y"], vec![])
            .output("y"),
        case("matmul-weight-left-2d", 13)
            .input("x", &[N, Some(4)])
            .weight("w", &[3, 4])
            .node("Transpose", &["x"], &["xt"], vec![])
            .node("MatMul", &["w", "xt"], &["y"], vec![])
            .output("y"),
        case("matmul-x-xt", 13)
            .input("x", &[N, Some(4)])
            .node("Transpose", &["x"], &["xt"], vec![])
            .node("MatMul", &["x", "xt"], &["y"], vec![])
            .output("y"),
        case("matmul-batched-secret-secret", 13)
            .input("x", &[N, Some(2), Some(4)])
            .node("Transpose", &["x"], &["xt"], vec![ints("perm", &[0, 2, 1])])
            .node("MatMul", &["x", "xt"], &["y"], vec![])
            .output("y"),
        case("matmul-two-inputs-batched", 13)
            .input("x", &[N, Some(2), Some(4)])
            .input("w", &[N, Some(4), Some(3)])
            .node("MatMul", &["x", "w"], &["y"], vec![])
            .output("y"),
    ]);
}

// ---------------------------------------------------------------------------------------------
// Element-wise arithmetic

/// Every broadcasting variant of a binary element-wise op on x: [N, 3, 2, 4].
fn elementwise(op: &str) {
    let lower = op.to_lowercase();
    let x = |variant: &str| {
        case(&format!("{lower}-{variant}"), 13).input("x", &[N, Some(3), Some(2), Some(4)])
    };
    let with_const = |variant: &str, shape: &[usize], const_first: bool| {
        let ins: &[&str] = if const_first {
            &["c", "x"]
        } else {
            &["x", "c"]
        };
        x(variant)
            .weight("c", shape)
            .node(op, ins, &["y"], vec![])
            .output("y")
    };
    run_all(vec![
        x("secret-secret")
            .input("z", &[N, Some(3), Some(2), Some(4)])
            .node(op, &["x", "z"], &["y"], vec![])
            .output("y"),
        x("same-tensor")
            .node(op, &["x", "x"], &["y"], vec![])
            .output("y"),
        // secret operands of different shapes: [N, 3, 2, 4] with [N, 3, 1, 1]
        x("secret-broadcast")
            .node("GlobalMaxPool", &["x"], &["g"], vec![])
            .node(op, &["g", "x"], &["y"], vec![])
            .output("y"),
        with_const("const-channel", &[3, 1, 1], false),
        with_const("const-one", &[1], false),
        with_const("const-scalar", &[], false),
        with_const("const-full", &[3, 2, 4], false),
        with_const("const-first-channel", &[3, 1, 1], true),
        with_const("const-first-trailing", &[2, 4], true),
        with_const("const-first-scalar", &[], true),
    ]);
}

#[test]
fn add() {
    elementwise("Add");
}

#[test]
fn sub() {
    elementwise("Sub");
}

#[test]
fn mul() {
    elementwise("Mul");
}

#[test]
fn relu() {
    run_all(vec![
        case("relu", 13)
            .input("x", &[N, Some(3), Some(5)])
            .node("Relu", &["x"], &["y"], vec![])
            .output("y"),
        case("relu-large", 13)
            .input("x", &[N, Some(8)])
            .input_scale(50.0)
            .node("Relu", &["x"], &["y"], vec![])
            .output("y"),
        // values near zero and exact zeros after a shift
        case("relu-after-sub", 13)
            .input("x", &[N, Some(4), Some(3)])
            .scalar("c", 0.5)
            .node("Sub", &["x", "c"], &["s"], vec![])
            .node("Relu", &["s"], &["r"], vec![])
            .node("Relu", &["r"], &["y"], vec![])
            .output("y"),
    ]);
}

// ---------------------------------------------------------------------------------------------
// Convolution

#[test]
fn conv() {
    // x: [N, 4, 7, 7] for odd sizes, [N, 4, 8, 8] where SAME padding must be asymmetric.
    let conv2d = |name: &str, size: i64, w: &[usize], bias: bool, attrs: Vec<Attr>| {
        let c = case(name, 13)
            .input("x", &[N, Some(4), Some(size), Some(size)])
            .weight("w", w);
        let (c, ins): (Case, &[&str]) = if bias {
            (c.weight("b", &[w[0]]), &["x", "w", "b"])
        } else {
            (c, &["x", "w"])
        };
        c.node("Conv", ins, &["y"], attrs).output("y")
    };
    let conv1d = |name: &str, w: &[usize], bias: bool, attrs: Vec<Attr>| {
        let c = case(name, 13)
            .input("x", &[N, Some(3), Some(10)])
            .weight("w", w);
        let (c, ins): (Case, &[&str]) = if bias {
            (c.weight("b", &[w[0]]), &["x", "w", "b"])
        } else {
            (c, &["x", "w"])
        };
        c.node("Conv", ins, &["y"], attrs).output("y")
    };
    run_all(vec![
        conv2d("conv-3x3-bias", 7, &[5, 4, 3, 3], true, vec![]),
        conv2d(
            "conv-3x3-no-bias",
            7,
            &[5, 4, 3, 3],
            false,
            vec![ints("kernel_shape", &[3, 3])],
        ),
        conv2d("conv-rect-kernel", 7, &[3, 4, 3, 2], true, vec![]),
        conv2d(
            "conv-stride2",
            7,
            &[3, 4, 3, 3],
            true,
            vec![ints("strides", &[2, 2])],
        ),
        conv2d(
            "conv-stride-2x1",
            7,
            &[3, 4, 3, 3],
            false,
            vec![ints("strides", &[2, 1])],
        ),
        // pads [h_begin, w_begin, h_end, w_end], all different
        conv2d(
            "conv-asym-pads",
            7,
            &[3, 4, 3, 3],
            true,
            vec![ints("pads", &[1, 0, 0, 2])],
        ),
        conv2d(
            "conv-asym-pads-stride",
            7,
            &[3, 4, 3, 3],
            false,
            vec![ints("pads", &[2, 1, 0, 1]), ints("strides", &[2, 2])],
        ),
        // 8 / stride 2 with kernel 3: one pad in total, at the end (UPPER) or the start (LOWER)
        conv2d(
            "conv-same-upper",
            8,
            &[3, 4, 3, 3],
            true,
            vec![auto_pad("SAME_UPPER"), ints("strides", &[2, 2])],
        ),
        conv2d(
            "conv-same-lower",
            8,
            &[3, 4, 3, 3],
            true,
            vec![auto_pad("SAME_LOWER"), ints("strides", &[2, 2])],
        ),
        conv2d(
            "conv-same-upper-stride1-even-kernel",
            7,
            &[3, 4, 2, 2],
            false,
            vec![auto_pad("SAME_UPPER")],
        ),
        conv2d(
            "conv-same-lower-stride1-even-kernel",
            7,
            &[3, 4, 2, 2],
            false,
            vec![auto_pad("SAME_LOWER")],
        ),
        conv2d(
            "conv-valid",
            8,
            &[3, 4, 3, 3],
            true,
            vec![auto_pad("VALID"), ints("strides", &[2, 2])],
        ),
        conv2d(
            "conv-dilation2",
            7,
            &[3, 4, 3, 3],
            true,
            vec![ints("dilations", &[2, 2])],
        ),
        conv2d(
            "conv-dilation-pads",
            7,
            &[3, 4, 3, 3],
            false,
            vec![ints("dilations", &[2, 1]), ints("pads", &[2, 1, 1, 0])],
        ),
        conv2d(
            "conv-groups2",
            7,
            &[6, 2, 3, 3],
            true,
            vec![int("group", 2)],
        ),
        conv2d(
            "conv-depthwise",
            7,
            &[4, 1, 3, 3],
            true,
            vec![int("group", 4), ints("pads", &[1, 1, 1, 1])],
        ),
        conv2d(
            "conv-depthwise-multiplier2",
            7,
            &[8, 1, 3, 3],
            false,
            vec![int("group", 4), ints("strides", &[2, 2])],
        ),
        conv2d("conv-1x1", 7, &[6, 4, 1, 1], true, vec![]),
        conv2d(
            "conv-1x1-stride2",
            7,
            &[3, 4, 1, 1],
            false,
            vec![ints("strides", &[2, 2])],
        ),
        conv1d("conv1d", &[4, 3, 3], true, vec![]),
        conv1d(
            "conv1d-stride-pads",
            &[4, 3, 3],
            false,
            vec![ints("strides", &[2]), ints("pads", &[1, 2])],
        ),
        conv1d(
            "conv1d-dilation",
            &[4, 3, 3],
            true,
            vec![ints("dilations", &[2])],
        ),
        conv1d(
            "conv1d-same-lower",
            &[4, 3, 4],
            true,
            vec![auto_pad("SAME_LOWER"), ints("strides", &[3])],
        ),
        conv1d(
            "conv1d-same-upper",
            &[4, 3, 4],
            true,
            vec![auto_pad("SAME_UPPER"), ints("strides", &[3])],
        ),
        conv1d("conv1d-groups", &[6, 1, 3], true, vec![int("group", 3)]),
        case("conv3d", 13)
            .input("x", &[N, Some(2), Some(5), Some(4), Some(4)])
            .weight("w", &[3, 2, 2, 3, 2])
            .weight("b", &[3])
            .node(
                "Conv",
                &["x", "w", "b"],
                &["y"],
                vec![
                    ints("strides", &[2, 1, 1]),
                    ints("pads", &[0, 1, 0, 1, 0, 1]),
                ],
            )
            .output("y"),
        // a secret weight: a^T b over the batch ([12, 9]) reshaped to [3, 4, 3, 3]
        case("conv-secret-weight", 13)
            .input("x", &[N, Some(4), Some(6), Some(6)])
            .input("a", &[N, Some(12)])
            .input("b", &[N, Some(9)])
            .input_scale(0.5)
            .weight("bias", &[3])
            .init_i64("shape", &[3, 4, 3, 3])
            .node("Transpose", &["a"], &["at"], vec![])
            .node("MatMul", &["at", "b"], &["m"], vec![])
            .node("Reshape", &["m", "shape"], &["w"], vec![])
            .node(
                "Conv",
                &["x", "w", "bias"],
                &["y"],
                vec![ints("pads", &[1, 0, 0, 1])],
            )
            .output("y"),
    ]);
}

// ---------------------------------------------------------------------------------------------
// Pooling

fn pool(op: &str, name: &str, opset: i64, dims: &[Option<i64>], attrs: Vec<Attr>) -> Case {
    case(name, opset)
        .input("x", dims)
        .node(op, &["x"], &["y"], attrs)
        .output("y")
}

const IMAGE: &[Option<i64>] = &[N, Some(3), Some(7), Some(7)];
const SIGNAL: &[Option<i64>] = &[N, Some(3), Some(9)];

#[test]
fn max_pool() {
    let mp =
        |name: &str, dims: &[Option<i64>], attrs: Vec<Attr>| pool("MaxPool", name, 13, dims, attrs);
    run_all(vec![
        mp("maxpool-k2", IMAGE, vec![ints("kernel_shape", &[2, 2])]),
        mp("maxpool-k3", IMAGE, vec![ints("kernel_shape", &[3, 3])]),
        mp(
            "maxpool-k2-s2",
            IMAGE,
            vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
        ),
        mp(
            "maxpool-k3-s2",
            IMAGE,
            vec![ints("kernel_shape", &[3, 3]), ints("strides", &[2, 2])],
        ),
        mp(
            "maxpool-rect",
            IMAGE,
            vec![ints("kernel_shape", &[3, 2]), ints("strides", &[1, 2])],
        ),
        // padding must never win the max: the inputs are negative half of the time
        mp(
            "maxpool-pads",
            IMAGE,
            vec![ints("kernel_shape", &[2, 2]), ints("pads", &[1, 1, 1, 1])],
        ),
        mp(
            "maxpool-asym-pads",
            IMAGE,
            vec![
                ints("kernel_shape", &[3, 3]),
                ints("strides", &[2, 2]),
                ints("pads", &[0, 1, 2, 0]),
            ],
        ),
        // 7 with kernel 2 stride 2: floor gives 3, ceil gives 4
        mp(
            "maxpool-ceil",
            IMAGE,
            vec![
                ints("kernel_shape", &[2, 2]),
                ints("strides", &[2, 2]),
                int("ceil_mode", 1),
            ],
        ),
        // 6 + 2 pads, kernel 3 stride 2: floor gives 3, ceil gives 4
        case("maxpool-ceil-pads", 13)
            .input("x", &[N, Some(2), Some(6), Some(6)])
            .node(
                "MaxPool",
                &["x"],
                &["y"],
                vec![
                    ints("kernel_shape", &[3, 3]),
                    ints("strides", &[2, 2]),
                    ints("pads", &[1, 1, 1, 1]),
                    int("ceil_mode", 1),
                ],
            )
            .output("y"),
        mp(
            "maxpool-dilation",
            IMAGE,
            vec![ints("kernel_shape", &[2, 2]), ints("dilations", &[2, 2])],
        ),
        mp(
            "maxpool-dilation-stride",
            IMAGE,
            vec![
                ints("kernel_shape", &[2, 2]),
                ints("dilations", &[2, 1]),
                ints("strides", &[2, 2]),
            ],
        ),
        mp(
            "maxpool-same-upper",
            IMAGE,
            vec![ints("kernel_shape", &[2, 2]), auto_pad("SAME_UPPER")],
        ),
        mp(
            "maxpool-same-lower",
            IMAGE,
            vec![ints("kernel_shape", &[2, 2]), auto_pad("SAME_LOWER")],
        ),
        mp("maxpool1d", SIGNAL, vec![ints("kernel_shape", &[3])]),
        // 9 + 1 pad, kernel 3 stride 2: floor gives 4, ceil gives 5
        mp(
            "maxpool1d-ceil-pads",
            SIGNAL,
            vec![
                ints("kernel_shape", &[3]),
                ints("strides", &[2]),
                ints("pads", &[1, 0]),
                int("ceil_mode", 1),
            ],
        ),
        mp(
            "maxpool3d",
            &[N, Some(2), Some(4), Some(5), Some(4)],
            vec![
                ints("kernel_shape", &[2, 2, 2]),
                ints("strides", &[2, 1, 2]),
                int("ceil_mode", 1),
            ],
        ),
        // opset 18 (MaxPool unchanged since 12)
        pool(
            "MaxPool",
            "maxpool-opset18",
            18,
            IMAGE,
            vec![
                ints("kernel_shape", &[3, 3]),
                ints("strides", &[2, 2]),
                ints("pads", &[1, 1, 0, 0]),
            ],
        ),
    ]);
}

#[test]
fn average_pool() {
    let ap = |name: &str, dims: &[Option<i64>], attrs: Vec<Attr>| {
        pool("AveragePool", name, 13, dims, attrs)
    };
    let k3s2p1 = || {
        vec![
            ints("kernel_shape", &[3, 3]),
            ints("strides", &[2, 2]),
            ints("pads", &[1, 1, 1, 1]),
        ]
    };
    let with = |mut attrs: Vec<Attr>, extra: Attr| {
        attrs.push(extra);
        attrs
    };
    run_all(vec![
        ap("avgpool-k2", IMAGE, vec![ints("kernel_shape", &[2, 2])]),
        ap(
            "avgpool-k3-s2",
            IMAGE,
            vec![ints("kernel_shape", &[3, 3]), ints("strides", &[2, 2])],
        ),
        // border windows hold 4 or 6 real values out of 9: the divisor differs per position
        ap("avgpool-pads-exclude", IMAGE, k3s2p1()),
        ap(
            "avgpool-pads-exclude-explicit",
            IMAGE,
            with(k3s2p1(), int("count_include_pad", 0)),
        ),
        ap(
            "avgpool-pads-include",
            IMAGE,
            with(k3s2p1(), int("count_include_pad", 1)),
        ),
        ap(
            "avgpool-asym-pads-exclude",
            IMAGE,
            vec![ints("kernel_shape", &[2, 3]), ints("pads", &[0, 2, 1, 0])],
        ),
        ap(
            "avgpool-asym-pads-include",
            IMAGE,
            vec![
                ints("kernel_shape", &[2, 3]),
                ints("pads", &[0, 2, 1, 0]),
                int("count_include_pad", 1),
            ],
        ),
        // 7 with kernel 2 stride 2: ceil adds a last window holding one column of the input
        ap(
            "avgpool-ceil",
            IMAGE,
            vec![
                ints("kernel_shape", &[2, 2]),
                ints("strides", &[2, 2]),
                int("ceil_mode", 1),
            ],
        ),
        ap(
            "avgpool-ceil-include",
            IMAGE,
            vec![
                ints("kernel_shape", &[2, 2]),
                ints("strides", &[2, 2]),
                int("ceil_mode", 1),
                int("count_include_pad", 1),
            ],
        ),
        ap(
            "avgpool-ceil-pads",
            IMAGE,
            vec![
                ints("kernel_shape", &[3, 3]),
                ints("strides", &[2, 2]),
                ints("pads", &[1, 1, 1, 1]),
                int("ceil_mode", 1),
            ],
        ),
        ap(
            "avgpool-same-upper",
            IMAGE,
            vec![ints("kernel_shape", &[2, 2]), auto_pad("SAME_UPPER")],
        ),
        ap(
            "avgpool-same-lower",
            IMAGE,
            vec![ints("kernel_shape", &[2, 2]), auto_pad("SAME_LOWER")],
        ),
        ap(
            "avgpool1d",
            SIGNAL,
            vec![ints("kernel_shape", &[3]), ints("strides", &[2])],
        ),
        ap(
            "avgpool1d-pads-exclude",
            SIGNAL,
            vec![ints("kernel_shape", &[3]), ints("pads", &[2, 1])],
        ),
        ap(
            "avgpool1d-pads-include",
            SIGNAL,
            vec![
                ints("kernel_shape", &[3]),
                ints("pads", &[2, 1]),
                int("count_include_pad", 1),
            ],
        ),
        ap(
            "avgpool1d-ceil",
            SIGNAL,
            vec![
                ints("kernel_shape", &[2]),
                ints("strides", &[2]),
                int("ceil_mode", 1),
            ],
        ),
        ap(
            "avgpool3d-pads",
            &[N, Some(2), Some(4), Some(4), Some(3)],
            vec![
                ints("kernel_shape", &[2, 2, 2]),
                ints("pads", &[1, 0, 0, 0, 1, 1]),
            ],
        ),
        // dilations exist from opset 19
        pool(
            "AveragePool",
            "avgpool-opset19-dilations",
            19,
            IMAGE,
            vec![
                ints("kernel_shape", &[2, 2]),
                ints("dilations", &[2, 2]),
                ints("pads", &[1, 1, 0, 0]),
            ],
        ),
    ]);
}

#[test]
fn global_pools() {
    let mut cases = vec![];
    for op in ["GlobalAveragePool", "GlobalMaxPool"] {
        let lower = op.to_lowercase();
        cases.push(pool(
            op,
            &format!("{lower}-2d"),
            13,
            &[N, Some(3), Some(5), Some(4)],
            vec![],
        ));
        cases.push(pool(
            op,
            &format!("{lower}-1d"),
            13,
            &[N, Some(4), Some(6)],
            vec![],
        ));
        cases.push(pool(
            op,
            &format!("{lower}-3d"),
            13,
            &[N, Some(2), Some(3), Some(3), Some(2)],
            vec![],
        ));
    }
    run_all(cases);
}

// ---------------------------------------------------------------------------------------------
// BatchNormalization

const BN_ARGS: &[&str] = &["bn_scale", "bn_bias", "bn_mean", "bn_var"];

fn bn_inputs(x: &str) -> Vec<&str> {
    std::iter::once(x).chain(BN_ARGS.iter().copied()).collect()
}

/// BatchNormalization variances: ordinary, and far below epsilon (where ignoring epsilon
/// would multiply outputs by up to ~7).
const VAR: (f32, f32) = (0.1, 1.0);
const SMALL_VAR: (f32, f32) = (0.001, 0.01);

fn epsilon() -> Vec<Attr> {
    vec![float("epsilon", 0.05)]
}

/// x: [N, 3, 6, 6] -> Conv (4 outputs, `w_shape` per group, asymmetric pads) -> BatchNorm.
fn conv_then_bn(
    name: &str,
    opset: i64,
    w_shape: &[usize],
    group: i64,
    bias: bool,
    var: (f32, f32),
    attrs: Vec<Attr>,
) -> Case {
    let c = case(name, opset)
        .input("x", &[N, Some(4), Some(6), Some(6)])
        .weight("w", w_shape)
        .bn_params("bn", w_shape[0], var);
    let (c, ins): (Case, &[&str]) = if bias {
        (c.weight("b", &[w_shape[0]]), &["x", "w", "b"])
    } else {
        (c, &["x", "w"])
    };
    c.node(
        "Conv",
        ins,
        &["c"],
        vec![ints("pads", &[1, 0, 0, 1]), int("group", group)],
    )
    .node("BatchNormalization", &bn_inputs("c"), &["y"], attrs)
    .output("y")
}

#[test]
fn batch_norm() {
    let standalone = |name: &str, dims: &[Option<i64>], c: usize, var, attrs| {
        case(name, 13)
            .input("x", dims)
            .bn_params("bn", c, var)
            .node("Relu", &["x"], &["r"], vec![])
            .node("BatchNormalization", &bn_inputs("r"), &["y"], attrs)
            .output("y")
    };
    let after_gemm = |name: &str, trans_b: i64, bias: bool, var, attrs| {
        let b_shape: &[usize] = if trans_b == 1 { &[5, 6] } else { &[6, 5] };
        let c = case(name, 13)
            .input("x", &[N, Some(6)])
            .weight("b", b_shape)
            .bn_params("bn", 5, var);
        let (c, ins): (Case, &[&str]) = if bias {
            (c.weight("c", &[5]), &["x", "b", "c"])
        } else {
            (c, &["x", "b"])
        };
        c.node(
            "Gemm",
            ins,
            &["g"],
            vec![int("transB", trans_b), float("alpha", 0.5)],
        )
        .node("BatchNormalization", &bn_inputs("g"), &["y"], attrs)
        .output("y")
    };
    run_all(vec![
        standalone(
            "bn-standalone",
            &[N, Some(3), Some(4), Some(4)],
            3,
            VAR,
            vec![],
        ),
        standalone(
            "bn-standalone-epsilon",
            &[N, Some(3), Some(4), Some(4)],
            3,
            SMALL_VAR,
            epsilon(),
        ),
        standalone("bn-standalone-2d", &[N, Some(4)], 4, VAR, vec![]),
        standalone(
            "bn-standalone-1d-signal",
            &[N, Some(4), Some(5)],
            4,
            VAR,
            vec![],
        ),
        after_gemm("bn-gemm", 0, true, VAR, vec![]),
        after_gemm("bn-gemm-transb-no-c", 1, false, VAR, vec![]),
        after_gemm("bn-gemm-epsilon", 1, true, SMALL_VAR, epsilon()),
        // the Conv output is read twice, so the BatchNormalization cannot fold into it
        case("bn-conv-shared-output", 13)
            .input("x", &[N, Some(3), Some(5), Some(5)])
            .weight("w", &[3, 3, 3, 3])
            .bn_params("bn", 3, VAR)
            .node(
                "Conv",
                &["x", "w"],
                &["c"],
                vec![ints("pads", &[1, 1, 1, 1])],
            )
            .node("BatchNormalization", &bn_inputs("c"), &["n"], vec![])
            .node("Add", &["n", "c"], &["y"], vec![])
            .output("y"),
        // folded into the Conv before it (weights scaled per output channel, new bias)
        conv_then_bn("bn-conv-bias", 13, &[5, 4, 3, 3], 1, true, VAR, vec![]),
        conv_then_bn("bn-conv-no-bias", 13, &[5, 4, 3, 3], 1, false, VAR, vec![]),
        conv_then_bn(
            "bn-conv-epsilon",
            13,
            &[5, 4, 3, 3],
            1,
            true,
            SMALL_VAR,
            epsilon(),
        ),
        conv_then_bn("bn-conv-depthwise", 13, &[4, 1, 3, 3], 4, true, VAR, vec![]),
        conv_then_bn("bn-conv-opset15", 15, &[5, 4, 3, 3], 1, false, VAR, vec![]),
        // as many inputs as outputs with a 1x1 kernel: a per-channel scale applied along the
        // wrong weight axis still broadcasts, so only the values show it
        conv_then_bn(
            "bn-conv-1x1-square",
            13,
            &[4, 4, 1, 1],
            1,
            true,
            VAR,
            vec![],
        ),
    ]);
}

// ---------------------------------------------------------------------------------------------
// Shape and data movement

#[test]
fn flatten() {
    let flat = |name: &str, attrs: Vec<Attr>| {
        case(name, 13)
            .input("x", &[N, Some(3), Some(2), Some(2)])
            .node("Flatten", &["x"], &["y"], attrs)
            .output("y")
    };
    run_all(vec![
        flat("flatten-default", vec![]),
        flat("flatten-axis1", vec![int("axis", 1)]),
        flat("flatten-axis2", vec![int("axis", 2)]),
        flat("flatten-axis-neg1", vec![int("axis", -1)]),
        flat("flatten-axis0", vec![int("axis", 0)]),
        // the layout matters downstream: a Gemm over the flattened features
        case("flatten-then-gemm", 13)
            .input("x", &[N, Some(2), Some(3), Some(2)])
            .weight("b", &[12, 3])
            .node(
                "Transpose",
                &["x"],
                &["t"],
                vec![ints("perm", &[0, 2, 3, 1])],
            )
            .node("Flatten", &["t"], &["f"], vec![])
            .node("Gemm", &["f", "b"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn reshape() {
    let rs = |name: &str, opset: i64, shape: &[i64], attrs: Vec<Attr>| {
        case(name, opset)
            .input("x", &[N, Some(3), Some(4)])
            .init_i64("shape", shape)
            .node("Reshape", &["x", "shape"], &["y"], attrs)
            .output("y")
    };
    run_all(vec![
        rs("reshape-0-minus1", 13, &[0, -1], vec![]),
        rs("reshape-0-2-minus1", 13, &[0, 2, -1], vec![]),
        rs("reshape-0-4-3", 13, &[0, 4, 3], vec![]),
        rs("reshape-minus1-4", 13, &[-1, 4], vec![]),
        rs("reshape-minus1-2", 13, &[-1, 2], vec![]),
        rs("reshape-flat", 13, &[-1], vec![]),
        rs(
            "reshape-opset18-allowzero0",
            18,
            &[0, 6, -1],
            vec![int("allowzero", 0)],
        ),
        // the reshaped layout feeds a product, so an element-order mistake shows
        case("reshape-then-matmul", 13)
            .input("x", &[N, Some(3), Some(4)])
            .init_i64("shape", &[0, 2, 6])
            .weight("w", &[6, 2])
            .node("Reshape", &["x", "shape"], &["r"], vec![])
            .node("MatMul", &["r", "w"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn transpose() {
    let tr = |name: &str, dims: &[Option<i64>], attrs: Vec<Attr>| {
        case(name, 13)
            .input("x", dims)
            .node("Transpose", &["x"], &["y"], attrs)
            .output("y")
    };
    let x4: &[Option<i64>] = &[N, Some(2), Some(3), Some(4)];
    run_all(vec![
        tr(
            "transpose-nhwc-to-nchw",
            x4,
            vec![ints("perm", &[0, 3, 1, 2])],
        ),
        tr(
            "transpose-nchw-to-nhwc",
            x4,
            vec![ints("perm", &[0, 2, 3, 1])],
        ),
        tr(
            "transpose-batch-moves",
            x4,
            vec![ints("perm", &[2, 0, 3, 1])],
        ),
        tr("transpose-default-3d", &[N, Some(2), Some(3)], vec![]),
        tr("transpose-default-4d", x4, vec![]),
        tr(
            "transpose-identity-perm",
            x4,
            vec![ints("perm", &[0, 1, 2, 3])],
        ),
    ]);
}

#[test]
fn squeeze_unsqueeze() {
    let x: &[Option<i64>] = &[N, Some(1), Some(3), Some(1)];
    let v11 = |name: &str, op: &str, dims: &[Option<i64>], axes: &[i64]| {
        case(name, 11)
            .input("x", dims)
            .node(op, &["x"], &["y"], vec![ints("axes", axes)])
            .output("y")
    };
    let v13 = |name: &str, opset: i64, op: &str, dims: &[Option<i64>], axes: &[i64]| {
        case(name, opset)
            .input("x", dims)
            .init_i64("axes", axes)
            .node(op, &["x", "axes"], &["y"], vec![])
            .output("y")
    };
    run_all(vec![
        v11("squeeze11-two-axes", "Squeeze", x, &[1, 3]),
        v11("squeeze11-negative-axis", "Squeeze", x, &[-1]),
        v11(
            "unsqueeze11-two-axes",
            "Unsqueeze",
            &[N, Some(3), Some(2)],
            &[1, 4],
        ),
        v11(
            "unsqueeze11-negative-axis",
            "Unsqueeze",
            &[N, Some(3), Some(2)],
            &[-1],
        ),
        v13("squeeze13-two-axes", 13, "Squeeze", x, &[1, 3]),
        v13("squeeze13-negative-axis", 13, "Squeeze", x, &[-3]),
        v13(
            "unsqueeze13-two-axes",
            13,
            "Unsqueeze",
            &[N, Some(3), Some(2)],
            &[1, 4],
        ),
        v13(
            "unsqueeze13-negative-axes",
            13,
            "Unsqueeze",
            &[N, Some(3), Some(2)],
            &[-1, 1],
        ),
        v13("squeeze18", 18, "Squeeze", x, &[3]),
        v13(
            "unsqueeze13-before-batch",
            13,
            "Unsqueeze",
            &[N, Some(3)],
            &[0],
        ),
        // round trip through a product so that the layout matters
        case("unsqueeze-squeeze-chain", 13)
            .input("x", &[N, Some(4)])
            .init_i64("axes", &[1])
            .weight("w", &[4, 3])
            .node("Unsqueeze", &["x", "axes"], &["u"], vec![])
            .node("MatMul", &["u", "w"], &["m"], vec![])
            .node("Squeeze", &["m", "axes"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn concat() {
    run_all(vec![
        case("concat-two-inputs", 13)
            .input("x", &[N, Some(3), Some(4)])
            .input("z", &[N, Some(2), Some(4)])
            .node("Concat", &["x", "z"], &["y"], vec![int("axis", 1)])
            .output("y"),
        case("concat-negative-axis", 13)
            .input("x", &[N, Some(3), Some(4)])
            .node("Relu", &["x"], &["r"], vec![])
            .node("Concat", &["x", "r", "x"], &["y"], vec![int("axis", -1)])
            .output("y"),
        case("concat-batch-axis", 13)
            .input("x", &[N, Some(3)])
            .node("Relu", &["x"], &["r"], vec![])
            .node("Concat", &["r", "x"], &["y"], vec![int("axis", 0)])
            .output("y"),
        // A constant has no batch axis, so it can only be concatenated with a batch-free
        // secret: here s = z^T a ([3, 4]), whose concatenation then multiplies x.
        case("concat-secret-then-constant", 13)
            .input("x", &[N, Some(5)])
            .input("a", &[N, Some(4)])
            .input("z", &[N, Some(3)])
            .weight("c", &[2, 4])
            .node("Transpose", &["z"], &["zt"], vec![])
            .node("MatMul", &["zt", "a"], &["s"], vec![])
            .node("Concat", &["s", "c"], &["sc"], vec![int("axis", 0)])
            .node("MatMul", &["x", "sc"], &["y"], vec![])
            .output("y"),
        // s = x^T z ([4, 2]) after a constant [4, 3] along axis -1
        case("concat-constant-first-negative-axis", 13)
            .input("x", &[N, Some(4)])
            .input("z", &[N, Some(2)])
            .weight("c", &[4, 3])
            .node("Transpose", &["x"], &["xt"], vec![])
            .node("MatMul", &["xt", "z"], &["s"], vec![])
            .node("Concat", &["c", "s"], &["cs"], vec![int("axis", -1)])
            .node("MatMul", &["x", "cs"], &["y"], vec![])
            .output("y"),
    ]);
}

#[test]
fn identity_and_dropout() {
    let x = |name: &str, opset: i64| case(name, opset).input("x", &[N, Some(3), Some(4)]);
    let then_relu = |c: Case| c.node("Relu", &["d"], &["y"], vec![]).output("y");
    run_all(vec![
        // the graph output is the input itself
        x("identity-only", 13)
            .node("Identity", &["x"], &["y"], vec![])
            .output("y"),
        then_relu(x("identity-then-relu", 13).node("Identity", &["x"], &["d"], vec![])),
        x("identity-of-result", 13)
            .node("Relu", &["x"], &["r"], vec![])
            .node("Identity", &["r"], &["y"], vec![])
            .output("y"),
        then_relu(x("dropout13-ratio-input", 13).scalar("ratio", 0.3).node(
            "Dropout",
            &["x", "ratio"],
            &["d"],
            vec![],
        )),
        then_relu(
            x("dropout13-training-false", 13)
                .scalar("ratio", 0.5)
                .with_onnx(|o| {
                    o.init_bool_scalar("training_mode", false);
                })
                .node("Dropout", &["x", "ratio", "training_mode"], &["d"], vec![]),
        ),
        then_relu(x("dropout13-no-ratio", 13).node("Dropout", &["x"], &["d"], vec![])),
        then_relu(x("dropout11-ratio-attr", 11).node(
            "Dropout",
            &["x"],
            &["d"],
            vec![float("ratio", 0.25)],
        )),
        // the graph output is the Dropout's output, aliasing the input
        x("dropout-only", 13)
            .scalar("ratio", 0.3)
            .node("Dropout", &["x", "ratio"], &["y"], vec![])
            .output("y"),
    ]);
}

// ---------------------------------------------------------------------------------------------
// A small network mixing the families

/// x: [N, 3, 8, 8] -> Conv (4 x 3x3, pad 1) -> `middle` -> MaxPool 2/2 -> Flatten -> Gemm (5).
fn chain(name: &str, middle: &[&str]) -> Case {
    let mut c = case(name, 17)
        .input("x", &[N, Some(3), Some(8), Some(8)])
        .weight("w", &[4, 3, 3, 3])
        .weight("b", &[4])
        .bn_params("bn", 4, (0.2, 1.0))
        .weight_scaled("fc", &[5, 64], 0.3)
        .weight("fc_b", &[5])
        .node(
            "Conv",
            &["x", "w", "b"],
            &["t0"],
            vec![ints("pads", &[1, 1, 1, 1])],
        );
    for (i, op) in middle.iter().enumerate() {
        let (from, to) = (format!("t{i}"), format!("t{}", i + 1));
        let ins = if *op == "BatchNormalization" {
            bn_inputs(&from)
        } else {
            vec![from.as_str()]
        };
        c = c.node(op, &ins, &[&to], vec![]);
    }
    let last = format!("t{}", middle.len());
    c.node(
        "MaxPool",
        &[&last],
        &["p"],
        vec![ints("kernel_shape", &[2, 2]), ints("strides", &[2, 2])],
    )
    .node("Flatten", &["p"], &["f"], vec![])
    .node("Gemm", &["f", "fc", "fc_b"], &["y"], vec![int("transB", 1)])
    .output("y")
}

/// The BatchNormalization folds into the Conv; after the Relu it cannot, and stays a step.
#[test]
fn conv_bn_relu_pool_flatten_gemm_chain() {
    run_all(vec![
        chain("chain-conv-bn-relu", &["BatchNormalization", "Relu"]),
        chain("chain-conv-relu-bn", &["Relu", "BatchNormalization"]),
    ]);
}
