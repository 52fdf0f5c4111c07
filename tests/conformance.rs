//! The ONNX backend node tests, run under MPC (both protocols).
//!
//! `scripts/conformance-data.sh` writes every node test case of the pinned `onnx` package to
//! `target/conformance/` (or `$TFE_CONFORMANCE_DIR`), with integer and boolean inputs (shapes,
//! axes, indices, conditions) made constants of the model (unless they are all the case's
//! inputs: then they are fed as secret float32 inputs), boolean outputs as 0/1, and a manifest
//! saying which cases are out of scope by construction (dtypes, sequences, training mode). A case is *in scope*
//! when it is not, and every op type in it is lowered by `tfe::lower::rules()`. Each in-scope
//! case is converted with every input dimension as declared, run under both protocols (ABY3,
//! then Pond), and compared with the expected outputs at a fixed-point tolerance.
//!
//! The test fails when an in-scope case fails without an entry in
//! `tests/conformance_expected_failures.txt`, when an entry there passes or is no longer an
//! in-scope case, and when `docs/CONFORMANCE.md` (the per-op report) is out of date. Ignored by
//! plain `cargo test` because it needs the data: the README's test command (and `.ci/run`)
//! writes the data and runs it with `--include-ignored`.

mod common;

use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use tfe::import::BatchPolicy;
use tfe::lower::{Options, convert, rules};
use tfe::mpc::Protocol;
use tfe::serve::{Mode, predict};

const REPORT: &str = "docs/CONFORMANCE.md";
const EXPECTED_FAILURES: &str = "tests/conformance_expected_failures.txt";
const RUN: &str = "cargo test --test conformance -- --ignored";

/// Allowed max |got − expected| for one output: `abs + rel · max |expected|`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Tolerance {
    abs: f32,
    rel: f32,
}

/// With 16 fractional bits every input and weight is rounded to 2^-16 ≈ 1.5e-5, and every
/// product is truncated back to that resolution (the MPC truncation may be off by one more
/// unit). The node tests draw values from N(0, 1) and sum at most a few dozen products (Conv,
/// Gemm, MatMul), so the accumulated error is a few 1e-4: `abs` = 2e-3 leaves headroom while
/// staying far below what a real bug gives (a wrong pad, stride or operand order moves outputs
/// by 0.1 or more). Rounding an operand of a product errs by up to 2^-17 times the other
/// operand, so the error also grows with the values' magnitude (average pooling of values up
/// to 25 multiplies window sums of ~200 by a rounded public 1/9, and errs by 2e-3):
/// `rel` = 1e-3 of the largest expected value covers that with a margin of ten.
const DEFAULT_TOLERANCE: Tolerance = Tolerance {
    abs: 2e-3,
    rel: 1e-3,
};

/// Looser tolerances for ops computed by an approximation (a polynomial or an iteration), by
/// op type. A case that uses several of them gets the loosest of each bound.
const TOLERANCE_OVERRIDES: &[(&str, Tolerance)] = &[];

fn tolerance_for(case: &Case) -> Tolerance {
    TOLERANCE_OVERRIDES
        .iter()
        .filter(|(op, _)| case.op_types.iter().any(|t| t == op))
        .fold(DEFAULT_TOLERANCE, |t, (_, o)| Tolerance {
            abs: t.abs.max(o.abs),
            rel: t.rel.max(o.rel),
        })
}

/// `manifest.json`, as scripts/extract_node_tests.py writes it.
#[derive(Deserialize)]
struct Manifest {
    onnx: String,
    cases: Vec<Case>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    /// Op types of every node; outside the default domain as `domain:Op`.
    op_types: Vec<String>,
    input_dtypes: Vec<String>,
    /// Inputs the script made constants (integer and boolean ones).
    constant_inputs: Vec<String>,
    output_dtypes: Vec<String>,
    /// Why the case is out of scope by construction.
    skip: Option<String>,
}

impl Case {
    fn float_inputs(&self) -> usize {
        self.input_dtypes.len() - self.constant_inputs.len()
    }
}

/// A failed case. `summary` goes into the report, so it must not depend on the run (MPC
/// truncation is randomised); `detail` adds the measured errors.
struct Failure {
    summary: String,
    detail: String,
}

impl Failure {
    fn new(summary: String) -> Self {
        Failure {
            detail: summary.clone(),
            summary,
        }
    }
}

enum Status {
    OutOfScope(String),
    Passed,
    Failed(Failure),
}

fn data_dir() -> PathBuf {
    std::env::var_os("TFE_CONFORMANCE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/conformance"))
}

fn read_manifest(dir: &Path) -> Manifest {
    let path = dir.join("manifest.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "cannot read {}: {e}; run scripts/conformance-data.sh first",
            path.display()
        )
    });
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{}: {e}; rerun scripts/conformance-data.sh", path.display()))
}

/// Op types of the default domain that have a lowering rule, in registry order.
fn lowered_ops() -> Vec<&'static str> {
    rules()
        .iter()
        .filter(|r| r.domain.is_empty())
        .map(|r| r.op_type)
        .collect()
}

/// Why the case is out of scope, or `None` when it is in scope.
fn out_of_scope(case: &Case, lowered: &[&str]) -> Option<String> {
    if let Some(reason) = &case.skip {
        return Some(reason.clone());
    }
    let missing: Vec<&str> = (case.op_types.iter())
        .map(String::as_str)
        .filter(|op| !lowered.contains(op))
        .collect();
    (!missing.is_empty()).then(|| format!("not lowered: {}", missing.join(", ")))
}

fn read_numbered(dir: &Path, prefix: &str, count: usize) -> Vec<ndarray::ArrayD<f32>> {
    (0..count)
        .map(|i| common::read_npy(&dir.join(format!("{prefix}_{i}.npy"))))
        .collect()
}

/// Converts the case, runs it under MPC and compares every output.
fn run_case(dir: &Path, case: &Case) -> Result<(), Failure> {
    let case_dir = dir.join(&case.name);
    // Error messages name the model file: keep them independent of where the data lives,
    // and on one line.
    let relative = |e: anyhow::Error| {
        let message = format!("{e:#}").replace(&format!("{}/", case_dir.display()), "");
        Failure::new(message.split_whitespace().collect::<Vec<_>>().join(" "))
    };
    let options = Options {
        batch: BatchPolicy::AsDeclared,
        ..Options::default()
    };
    let plan = convert(&case_dir.join("model.onnx"), options)
        .map_err(relative)?
        .plan;
    let inputs = read_numbered(&case_dir, "input", case.float_inputs());
    let expected = read_numbered(&case_dir, "output", case.output_dtypes.len());
    let tolerance = tolerance_for(case);
    for protocol in [Protocol::Aby3, Protocol::Pond] {
        let got = predict(&plan, &inputs, Mode::Mpc(protocol))
            .map_err(relative)?
            .outputs;
        if got.len() != expected.len() {
            return Err(Failure::new(format!(
                "{} outputs, expected {}",
                got.len(),
                expected.len()
            )));
        }
        (got.iter().zip(&expected).enumerate())
            .try_for_each(|(i, (g, e))| compare_output(i, g, e, tolerance))
            .map_err(|f| match protocol {
                Protocol::Aby3 => f,
                Protocol::Pond => Failure::new(format!("under pond: {}", f.summary)),
            })?;
    }
    Ok(())
}

fn compare_output(
    index: usize,
    got: &ndarray::ArrayD<f32>,
    expected: &ndarray::ArrayD<f32>,
    tolerance: Tolerance,
) -> Result<(), Failure> {
    let fail = |what: String| Failure::new(format!("output {index}: {what}"));
    if got.shape() != expected.shape() {
        return Err(fail(format!(
            "shape {:?}, expected {:?}",
            got.shape(),
            expected.shape()
        )));
    }
    if !expected.iter().all(|v| v.is_finite()) {
        return Err(fail("the expected values are not all finite".into()));
    }
    if !got.iter().all(|v| v.is_finite()) {
        return Err(fail("not all values are finite".into()));
    }
    let magnitude = expected.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let bound = tolerance.abs + tolerance.rel * magnitude;
    let error = common::max_abs_diff(got, expected);
    if error > bound {
        let summary = format!("output {index}: max |error| above the tolerance");
        return Err(Failure {
            detail: format!(
                "{summary}: {error:.3e} > {bound:.3e} (max |expected| {magnitude:.3e})"
            ),
            summary,
        });
    }
    Ok(())
}

fn run_caught(dir: &Path, case: &Case) -> Status {
    let outcome = catch_unwind(AssertUnwindSafe(|| run_case(dir, case))).unwrap_or_else(|p| {
        Err(Failure::new(format!(
            "panicked: {}",
            common::panic_message(&*p)
        )))
    });
    match outcome {
        Ok(()) => Status::Passed,
        Err(failure) => Status::Failed(failure),
    }
}

/// `case_name: reason` per line; blank lines and `#` comments are ignored.
fn read_expected_failures() -> BTreeMap<String, String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(EXPECTED_FAILURES);
    let text = std::fs::read_to_string(&path).unwrap_or_default();
    (text.lines())
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let (name, reason) = line.split_once(':').unwrap_or_else(|| {
                panic!("{EXPECTED_FAILURES}: `{line}` is not `case_name: reason`")
            });
            (name.trim().to_string(), reason.trim().to_string())
        })
        .collect()
}

/// Every case with its status, in manifest order.
struct Run<'m> {
    onnx: &'m str,
    results: Vec<(&'m Case, Status)>,
    expected_failures: BTreeMap<String, String>,
}

impl Run<'_> {
    fn failures(&self) -> impl Iterator<Item = (&Case, &Failure)> {
        self.results
            .iter()
            .filter_map(|(case, status)| match status {
                Status::Failed(f) => Some((*case, f)),
                _ => None,
            })
    }

    fn is_passed(&self, name: &str) -> bool {
        (self.results.iter()).any(|(c, s)| c.name == name && matches!(s, Status::Passed))
    }

    /// What is wrong with the run: unexpected failures, and stale expected-failure entries.
    fn problems(&self) -> Vec<String> {
        let unexpected = self
            .failures()
            .filter(|(case, _)| !self.expected_failures.contains_key(&case.name))
            .map(|(case, f)| format!("{} fails: {}", case.name, f.detail));
        let stale = self.expected_failures.keys().filter_map(|name| {
            let failing = self.failures().any(|(c, _)| &c.name == name);
            let why = if self.is_passed(name) {
                "now passes"
            } else if !failing {
                "is not an in-scope case"
            } else {
                return None;
            };
            Some(format!("{name} {why}: remove it from {EXPECTED_FAILURES}"))
        });
        unexpected.chain(stale).collect()
    }
}

/// The part of a reason before its details: "non-float output (z: int8)" → "non-float output".
fn reason_kind(reason: &str) -> &str {
    let end = [reason.find(" ("), reason.find(':')]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(reason.len());
    &reason[..end]
}

fn report_markdown(run: &Run, lowered: &[&str]) -> String {
    let mut out = String::new();
    write_header(&mut out, run);
    write_op_table(&mut out, run, lowered);
    write_failures(&mut out, run);
    write_left_out(&mut out, run, lowered);
    out
}

fn write_header(out: &mut String, run: &Run) {
    let t = DEFAULT_TOLERANCE;
    writeln!(
        out,
        "# ONNX backend node tests\n\n\
         Generated by `TFE_BLESS=1 {RUN}` from the node test cases of onnx {} \
         (`scripts/conformance-data.sh` writes them); do not edit by hand.\n\n\
         Integer and boolean inputs (shapes, axes, indices, conditions) are made constants of \
         the model, except when every input of a case is integer or boolean (the comparison \
         and logic ops' own tests): then they are secret float32 inputs, booleans as 0/1 cast \
         to bool, integers as their values where the ops take floats. Boolean outputs are \
         compared as 0/1. A case is in scope when it is not out of scope by construction (the reasons \
         below) and every op type in it is lowered (docs/OPERATORS.md). Each in-scope case is \
         converted with every input dimension as declared, run under three-party MPC with 16 \
         fractional bits, and passes when every output is within {} + {} · max |expected| of \
         the expected one.\n",
        run.onnx, t.abs, t.rel,
    )
    .unwrap();
    for (op, o) in TOLERANCE_OVERRIDES {
        let (abs, rel) = (o.abs, o.rel);
        writeln!(
            out,
            "Cases that use {op} allow {abs} + {rel} · max |expected|.\n"
        )
        .unwrap();
    }
    write_counts(out, run);
}

fn write_counts(out: &mut String, run: &Run) {
    let mut kinds: BTreeMap<&str, usize> = BTreeMap::new();
    let (mut passed, mut failed) = (0, 0);
    for (_, status) in &run.results {
        match status {
            Status::OutOfScope(reason) => *kinds.entry(reason_kind(reason)).or_default() += 1,
            Status::Passed => passed += 1,
            Status::Failed(_) => failed += 1,
        }
    }
    let total = run.results.len();
    let in_scope = passed + failed;
    writeln!(
        out,
        "{total} cases; {in_scope} in scope, of which {passed} pass and {failed} fail. Out of scope:\n"
    )
    .unwrap();
    for (kind, count) in kinds {
        writeln!(out, "- {kind}: {count}").unwrap();
    }
}

fn write_op_table(out: &mut String, run: &Run, lowered: &[&str]) {
    out.push_str("\n## Per lowered op\n\n| op | cases | in scope | passed | failed |\n|---|---|---|---|---|\n");
    for op in lowered {
        let (mut total, mut in_scope, mut passed) = (0, 0, 0);
        for (_, status) in run.results.iter().filter(|(c, _)| uses(c, op)) {
            total += 1;
            in_scope += !matches!(status, Status::OutOfScope(_)) as usize;
            passed += matches!(status, Status::Passed) as usize;
        }
        let failed = in_scope - passed;
        writeln!(out, "| {op} | {total} | {in_scope} | {passed} | {failed} |").unwrap();
    }
}

fn uses(case: &Case, op: &str) -> bool {
    case.op_types.iter().any(|t| t == op)
}

fn write_failures(out: &mut String, run: &Run) {
    out.push_str(&format!(
        "\n## In-scope failures\n\nWith the reason given in `{EXPECTED_FAILURES}`.\n\n"
    ));
    let mut any = false;
    for (case, failure) in run.failures() {
        let reason = (run.expected_failures.get(&case.name))
            .map_or("not listed: a bug".to_string(), |r| r.clone());
        writeln!(
            out,
            "- `{}`: {reason}. Error: {}",
            case.name, failure.summary
        )
        .unwrap();
        any = true;
    }
    if !any {
        out.push_str("None.\n");
    }
}

fn write_left_out(out: &mut String, run: &Run, lowered: &[&str]) {
    out.push_str("\n## Cases left out, per lowered op\n");
    for op in lowered {
        writeln!(out, "\n### {op}\n").unwrap();
        let left_out: Vec<_> = (run.results.iter())
            .filter_map(|(case, status)| match status {
                Status::OutOfScope(reason) if uses(case, op) => Some((case, reason)),
                _ => None,
            })
            .collect();
        if left_out.is_empty() {
            out.push_str("None.\n");
        }
        for (case, reason) in left_out {
            writeln!(out, "- `{}`: {reason}", case.name).unwrap();
        }
    }
}

#[test]
#[ignore = "needs the data of scripts/conformance-data.sh; run with --include-ignored"]
fn onnx_backend_node_tests() {
    let dir = data_dir();
    let manifest = read_manifest(&dir);
    let lowered = lowered_ops();
    let results = (manifest.cases.iter())
        .map(|case| {
            let status = match out_of_scope(case, &lowered) {
                Some(reason) => Status::OutOfScope(reason),
                None => run_caught(&dir, case),
            };
            (case, status)
        })
        .collect();
    let run = Run {
        onnx: &manifest.onnx,
        results,
        expected_failures: read_expected_failures(),
    };
    let mut problems = run.problems();
    if !common::generated_is_current(REPORT, &report_markdown(&run, &lowered)) {
        problems.push(common::out_of_date(REPORT, RUN));
    }
    assert!(
        problems.is_empty(),
        "{} problem(s) (a listed failure needs a precise reason in {EXPECTED_FAILURES}; \
         a bug belongs in an issue, not there):\n{}",
        problems.len(),
        problems.join("\n")
    );
}
