//! Per-op test cases: a small ONNX model, converted once and run in every mode at several
//! batch sizes against tract as the plaintext reference.
#![allow(dead_code)]

use super::{Attr, OnnxBuilder, random, tract_reference};
use ndarray::{ArrayD, IxDyn};
use std::panic::{AssertUnwindSafe, catch_unwind};
use tfe::import::{BatchMode, BatchPolicy};
use tfe::lower::{Options, Status, convert};
use tfe::mpc::Protocol;
use tfe::plan::Plan;
use tfe::serve::{Mode, predict};

/// The float interpreter only reorders f32 operations, so it must match tract to f32
/// round-off: 1e-4, relative to the output's magnitude when that exceeds 1.
pub const FLOAT_TOLERANCE: f32 = 1e-4;

/// Fixed point with 16 fractional bits quantises every input and weight to 2^-16 and truncates
/// every product back to 2^-16 (≈ 1.5e-5; the MPC truncation may be off by one more unit).
/// With inputs and weights in [-1, 1] and fan-in up to ~64 (folded BatchNorm scales up to ~3),
/// the worst accumulated error is a few 1e-4, so 2e-3 absolute leaves headroom while staying
/// two orders of magnitude below what a real bug gives (an off-by-one pad, a wrong stride or a
/// swapped operand moves outputs by 0.1-1).
pub const FIXED_TOLERANCE: f32 = 2e-3;

/// Every plan is run at both batch sizes; 3 checks that nothing hard-codes batch 1.
pub const BATCHES: [usize; 2] = [1, 3];

pub const N: Option<i64> = None;

pub fn int(name: &'static str, v: i64) -> Attr {
    Attr::Int(name, v)
}

pub fn ints(name: &'static str, v: &[i64]) -> Attr {
    Attr::Ints(name, v.to_vec())
}

pub fn float(name: &'static str, v: f32) -> Attr {
    Attr::Float(name, v)
}

pub fn auto_pad(mode: &'static str) -> Attr {
    Attr::Str("auto_pad", mode)
}

/// One model under test: an ONNX graph plus its inputs.
pub struct Case {
    pub name: String,
    pub onnx: OnnxBuilder,
    pub inputs: Vec<CaseInput>,
    pub input_scale: f32,
    pub seed: u64,
    /// Converted with `BatchPolicy::AsDeclared` and run at the declared shapes only.
    pub fixed_shapes: bool,
    /// An equivalent model that tract runs instead, where it cannot run this one.
    pub reference: Option<OnnxBuilder>,
    /// Extra error allowed in fixed point and mpc, relative to the output's magnitude, for
    /// ops whose approximations have a relative error (exp and its kin).
    pub relative_tolerance: f32,
    /// The outputs computed in the test, for ops tract does not run (ai.onnx.ml).
    pub expected: Option<Reference>,
    /// Inputs rounded to multiples of this step (exact in fixed point), so that some of them
    /// equal a threshold exactly.
    pub input_step: Option<f32>,
}

/// A graph input: its shape (`None` = the batch), and for token ids (int64) the vocabulary
/// they are drawn from.
pub struct CaseInput {
    pub dims: Vec<Option<i64>>,
    pub vocabulary: Option<usize>,
}

/// A plaintext reference written in the test: the outputs for given inputs.
pub type Reference = Box<dyn Fn(&[ArrayD<f32>]) -> Vec<ArrayD<f32>>>;

pub fn case(name: &str, opset: i64) -> Case {
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
        fixed_shapes: false,
        reference: None,
        relative_tolerance: 0.0,
        expected: None,
        input_step: None,
    }
}

impl Case {
    pub fn input(mut self, name: &str, dims: &[Option<i64>]) -> Self {
        self.onnx.input(name, dims);
        self.inputs.push(CaseInput {
            dims: dims.to_vec(),
            vocabulary: None,
        });
        self
    }

    /// An int64 input of token ids below `vocabulary`.
    pub fn token_input(mut self, name: &str, dims: &[Option<i64>], vocabulary: usize) -> Self {
        const INT64: i32 = 7;
        self.onnx.input_typed(name, INT64, dims);
        self.inputs.push(CaseInput {
            dims: dims.to_vec(),
            vocabulary: Some(vocabulary),
        });
        self
    }

    /// A random initializer in [-1, 1].
    pub fn weight(self, name: &str, shape: &[usize]) -> Self {
        self.weight_scaled(name, shape, 1.0)
    }

    pub fn weight_scaled(mut self, name: &str, shape: &[usize], scale: f32) -> Self {
        self.seed = self.seed.wrapping_add(0x9e37);
        let data = random(shape, self.seed, scale);
        self.init(name, &data)
    }

    pub fn init(mut self, name: &str, data: &ArrayD<f32>) -> Self {
        self.onnx.init(name, data);
        self
    }

    pub fn scalar(self, name: &str, v: f32) -> Self {
        self.init(name, &ArrayD::from_elem(IxDyn(&[]), v))
    }

    pub fn init_i64(mut self, name: &str, data: &[i64]) -> Self {
        self.onnx.init_i64(name, data);
        self
    }

    pub fn init_i64_shaped(mut self, name: &str, dims: &[i64], data: &[i64]) -> Self {
        self.onnx.init_i64_shaped(name, dims, data);
        self
    }

    pub fn init_bool(mut self, name: &str, dims: &[i64], data: &[bool]) -> Self {
        self.onnx.init_bool(name, dims, data);
        self
    }

    pub fn node(mut self, op: &str, inputs: &[&str], outputs: &[&str], attrs: Vec<Attr>) -> Self {
        self.onnx.node(op, inputs, outputs, attrs);
        self
    }

    pub fn output(mut self, name: &str) -> Self {
        self.onnx.output(name);
        self
    }

    /// Direct access to the builder for the rare initializer kinds.
    pub fn with_onnx(mut self, f: impl FnOnce(&mut OnnxBuilder)) -> Self {
        f(&mut self.onnx);
        self
    }

    /// An `ai.onnx.ml` node (the domain imported at `version`).
    pub fn ml_node(
        mut self,
        version: i64,
        op: &str,
        inputs: &[&str],
        outputs: &[&str],
        attrs: Vec<Attr>,
    ) -> Self {
        self.onnx
            .node(op, inputs, outputs, attrs)
            .in_domain("ai.onnx.ml");
        self.onnx.import_opset("ai.onnx.ml", version);
        self
    }

    /// Compares with `reference` computed in the test instead of with tract.
    pub fn expect(
        mut self,
        reference: impl Fn(&[ArrayD<f32>]) -> Vec<ArrayD<f32>> + 'static,
    ) -> Self {
        self.expected = Some(Box::new(reference));
        self
    }

    pub fn input_step(mut self, step: f32) -> Self {
        self.input_step = Some(step);
        self
    }

    pub fn relative_tolerance(mut self, rel: f32) -> Self {
        self.relative_tolerance = rel;
        self
    }

    pub fn input_scale(mut self, scale: f32) -> Self {
        self.input_scale = scale;
        self
    }

    /// Converts with every input dimension as declared (`--fixed-shapes`); the inputs must
    /// then declare their batch size, and the case runs at that size only.
    pub fn fixed_shapes(mut self) -> Self {
        self.fixed_shapes = true;
        self
    }

    /// Compares with tract running `reference`, an equivalent model, instead of this one.
    pub fn reference(mut self, reference: Case) -> Self {
        self.reference = Some(reference.onnx);
        self
    }

    pub fn options(&self) -> Options {
        let batch = if self.fixed_shapes {
            BatchPolicy::AsDeclared
        } else {
            BatchPolicy::Symbolic
        };
        Options {
            batch,
            ..Options::default()
        }
    }

    pub fn batches(&self) -> Vec<usize> {
        self.batches_for(self.fixed_shapes)
    }

    /// The declared batch size when the plan serves the declared shapes only, else
    /// [`BATCHES`].
    fn batches_for(&self, declared_only: bool) -> Vec<usize> {
        match self.inputs.first().and_then(|input| input.dims[0]) {
            Some(declared) if declared_only => vec![declared as usize],
            _ => BATCHES.to_vec(),
        }
    }

    /// The conversion error, which must mention every one of `fragments`.
    pub fn refused(&self, fragments: &[&str]) -> Result<(), String> {
        let path = self.onnx.save(&self.name);
        let error = match convert(&path, self.options()) {
            Ok(_) => return Err("converted, but should have been refused".into()),
            Err(e) => format!("{e:#}"),
        };
        match fragments.iter().find(|f| !error.contains(*f)) {
            Some(missing) => Err(format!("the error does not say {missing:?}: {error}")),
            None => Ok(()),
        }
    }

    /// Each node's op type and coverage status (`lowered`, `folded` or `unsupported`).
    pub fn statuses(&self) -> Vec<(String, &'static str)> {
        let path = self.onnx.save(&self.name);
        let (coverage, _) = tfe::lower::check(&path, self.options()).unwrap();
        coverage
            .nodes
            .into_iter()
            .map(|n| {
                let status = match n.status {
                    Status::Lowered(_) | Status::LoweredAfter(_) => "lowered",
                    Status::Folded(_) => "folded",
                    Status::Unsupported(_) => "unsupported",
                };
                (n.op_type, status)
            })
            .collect()
    }

    /// BatchNormalization's four parameters `{prefix}_{scale,bias,mean,var}` over `c` channels,
    /// variances drawn from `var_range`.
    pub fn bn_params(self, prefix: &str, c: usize, var_range: (f32, f32)) -> Self {
        let var = random(&[c], self.seed ^ 0x5eed, 1.0)
            .mapv(|v| var_range.0 + (v.abs() * (var_range.1 - var_range.0)));
        self.weight(&format!("{prefix}_scale"), &[c])
            .weight_scaled(&format!("{prefix}_bias"), &[c], 0.5)
            .weight_scaled(&format!("{prefix}_mean"), &[c], 0.5)
            .init(&format!("{prefix}_var"), &var)
    }

    pub fn inputs_for(&self, batch: usize) -> Vec<ArrayD<f32>> {
        self.inputs
            .iter()
            .enumerate()
            .map(|(i, input)| {
                let shape: Vec<usize> = input
                    .dims
                    .iter()
                    .map(|d| d.map_or(batch, |n| n as usize))
                    .collect();
                let seed = self.seed ^ ((batch as u64) << 8) ^ i as u64;
                if let Some(v) = input.vocabulary {
                    return random(&shape, seed, 1.0)
                        .mapv(|u| ((u + 1.0) / 2.0 * v as f32).floor().min(v as f32 - 1.0));
                }
                let values = random(&shape, seed, self.input_scale);
                match self.input_step {
                    Some(step) => values.mapv(|v| (v / step).round() * step),
                    None => values,
                }
            })
            .collect()
    }

    /// Converts once, then checks every mode at every batch size against tract.
    pub fn check(&self) -> Result<(), String> {
        let path = self.onnx.save(&self.name);
        let converted = convert(&path, self.options()).map_err(|e| format!("convert: {e:#}"))?;
        let plan = Plan::from_bytes(&converted.plan.to_bytes(), &self.name)
            .map_err(|e| format!("plan round trip: {e:#}"))?;
        let reference = match &self.reference {
            Some(model) => model.save(&format!("{}-reference", self.name)),
            None => path,
        };
        // A model tied to its exported batch converts at its declared shapes only.
        let batches = self.batches_for(converted.batch != BatchMode::Symbolic);
        for batch in batches {
            let inputs = self.inputs_for(batch);
            let expected = match &self.expected {
                Some(expected) => expected(&inputs),
                None => catch_unwind(AssertUnwindSafe(|| tract_reference(&reference, &inputs)))
                    .map_err(|_| format!("batch {batch}: tract failed on the model"))?,
            };
            for (mode, tolerance) in [
                (Mode::Float, FLOAT_TOLERANCE),
                (Mode::Fixed, FIXED_TOLERANCE),
                (Mode::Mpc(Protocol::Aby3), FIXED_TOLERANCE),
                (Mode::Mpc(Protocol::Pond), FIXED_TOLERANCE),
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
                        tolerance + self.relative_tolerance * magnitude
                    };
                    let err = super::max_abs_diff(g, e);
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
pub fn run_all(cases: Vec<Case>) {
    check_all(cases.iter().map(|c| (c, caught(|| c.check()))).collect());
}

/// Checks that every case fails to convert, with an error that mentions each of its
/// fragments.
pub fn refuse_all(cases: Vec<(Case, &[&str])>) {
    check_all(
        cases
            .iter()
            .map(|(c, fragments)| (c, caught(|| c.refused(fragments))))
            .collect(),
    );
}

/// `f()`, with a panic turned into an error.
pub fn caught(f: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        Err(format!(
            "panicked: {}",
            super::panic_message(panic.as_ref())
        ))
    })
}

/// Fails listing every case whose outcome is an error.
pub fn check_all(outcomes: Vec<(&Case, Result<(), String>)>) {
    assert!(!outcomes.is_empty());
    let failures: Vec<String> = outcomes
        .iter()
        .filter_map(|(c, outcome)| outcome.as_ref().err().map(|e| format!("{}: {e}", c.name)))
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        outcomes.len(),
        failures.join("\n")
    );
}
