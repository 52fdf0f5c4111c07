//! Attention masks (src/lower/saturate.rs): constants beyond the fixed-point range that only
//! shift a Softmax's input saturate, and the masked softmax equals the plaintext one; the
//! same constants anywhere else are still refused.

use crate::common::cases::*;
use tfe::lower::check;

/// Attention scores [N, 2, 4, 4] masked by `mask_value` where a secret padding mask says so,
/// as Hugging Face exports build it: `keep = (m > -0.4) or first position`, unsqueezed to
/// [N, 1, 1, 4], `Where(keep, 0, mask_value)` added to the scores, Softmax over the keys,
/// then the `Where(IsNaN(p), 0, p)` guard. Every row keeps key 0, so no row is all masked.
fn padding_masked(name: &str, mask_value: f32) -> Case {
    case(name, 13)
        .input("scores", &[N, Some(2), Some(4), Some(4)])
        .input("m", &[N, Some(4)])
        .input_scale(3.0)
        .scalar("threshold", -0.4)
        .init_bool("first", &[4], &[true, false, false, false])
        .init_i64("axes", &[1, 2])
        .scalar("zero", 0.0)
        .scalar("masked", mask_value)
        .node("Greater", &["m", "threshold"], &["kept"], vec![])
        .node("Or", &["kept", "first"], &["keep"], vec![])
        .node("Unsqueeze", &["keep", "axes"], &["keep4"], vec![])
        .node("Where", &["keep4", "zero", "masked"], &["additive"], vec![])
        .node("Add", &["scores", "additive"], &["s"], vec![])
        .node("Softmax", &["s"], &["p"], vec![int("axis", -1)])
        .node("IsNaN", &["p"], &["nan"], vec![])
        .node("Where", &["nan", "zero", "p"], &["y"], vec![])
        .output("y")
        .relative_tolerance(2e-4)
}

/// A causal mask known at convert time, selected into the scores (GPT-2's
/// `where(causal, scores, finfo.min)`), then Softmax.
fn causal_masked(name: &str, mask_value: f32) -> Case {
    let lower: Vec<bool> = (0..16).map(|i| i % 4 <= i / 4).collect();
    case(name, 13)
        .input("scores", &[N, Some(2), Some(4), Some(4)])
        .input_scale(3.0)
        .init_bool("causal", &[4, 4], &lower)
        .scalar("masked", mask_value)
        .node("Where", &["causal", "scores", "masked"], &["s"], vec![])
        .node("Softmax", &["s"], &["y"], vec![int("axis", -1)])
        .output("y")
        .relative_tolerance(2e-4)
}

/// Masked positions get probability 0 and the others the plaintext softmax, within the
/// fixed-point tolerance. Without saturation none of these converts.
#[test]
fn masked_softmax_equals_the_plaintext_one() {
    run_all(vec![
        padding_masked("mask-neg-inf", f32::NEG_INFINITY),
        padding_masked("mask-finfo-min", f32::MIN),
        padding_masked("mask-minus-1e9", -1e9),
        // in range: left as it is
        padding_masked("mask-minus-1e4", -1e4),
        causal_masked("causal-neg-inf", f32::NEG_INFINITY),
        causal_masked("causal-finfo-min", f32::MIN),
    ]);
}

/// `--check` says which constant saturated, to what, and for which Softmax.
#[test]
fn check_reports_the_saturated_constant() {
    let c = padding_masked("mask-report", f32::MIN);
    let (coverage, plan) = check(&c.onnx.save(&c.name), c.options()).unwrap();
    assert!(plan.is_some());
    let notes: Vec<&String> = coverage.nodes.iter().flat_map(|n| &n.notes).collect();
    assert!(
        notes.iter().any(
            |n| n.contains("saturated 1 element(s) of constant masked to +-16777216")
                && n.contains("a mask for Softmax softmax_")
        ),
        "{notes:?}"
    );
    assert!(
        coverage
            .text()
            .contains("saturated 1 element(s) of constant masked")
    );
}

/// A constant beyond the range that reaches anything but a Softmax's input (an output, a
/// product) would change the result if saturated: it is refused, saying why.
#[test]
fn huge_constants_elsewhere_are_refused() {
    let x: &[Option<i64>] = &[N, Some(3), Some(4)];
    let why = "only saturated where they mask the input of a Softmax";
    refuse_all(vec![
        (
            case("huge-added-to-output", 13)
                .input("x", x)
                .scalar("k", f32::NEG_INFINITY)
                .node("Add", &["x", "k"], &["y"], vec![])
                .output("y"),
            &["weight k", "-inf", why],
        ),
        (
            case("huge-scaled-then-softmax", 13)
                .input("x", x)
                .scalar("k", 1e12)
                .node("Mul", &["x", "k"], &["s"], vec![])
                .node("Softmax", &["s"], &["y"], vec![])
                .output("y"),
            &["weight k", why],
        ),
        (
            case("huge-softmax-input-also-output", 13)
                .input("x", x)
                .scalar("k", f32::MIN)
                .node("Add", &["x", "k"], &["s"], vec![])
                .node("Softmax", &["s"], &["y"], vec![])
                .output("y")
                .output("s"),
            &["weight k", why],
        ),
    ]);
}
