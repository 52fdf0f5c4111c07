//! Sigmoid-like activations. Each starts with one comparison round that yields, for the
//! input clamped to [-L, L], its magnitude and its sign, then evaluates the function on the
//! magnitude (where exp only sees non-positive arguments) and reflects.

use super::calc::{Calc, Fx};
use super::exp::exp_bounded;
use super::normalize::{ln_half_to_one, reciprocal_on};
use super::piecewise::interpolant;
use super::{INTERNAL, Ring};
use anyhow::Result;
use std::f64::consts::LN_2;

/// |x| beyond which sigmoid, tanh and softplus are within 1.2e-7 of their limits.
const SATURATION: f64 = 16.0;
/// |x| beyond which erf is within 1.6e-8 of ±1.
const ERF_SATURATION: f64 = 4.0;
/// Abramowitz & Stegun 7.1.26.
const ERF_P: f64 = 0.3275911;
const ERF_A: [f64; 6] = [
    0.0,
    0.254829592,
    -0.284496736,
    1.421413741,
    -1.453152027,
    1.061405429,
];

/// The input clamped to [-l, l], split into what the functions need.
struct Split<V> {
    /// max(x, 0), unclamped.
    positive_part: Fx<V>,
    /// |clamp(x, -l, l)|
    magnitude: Fx<V>,
    /// [x >= 0] at the input's scale.
    nonnegative: Fx<V>,
}

fn split<D: Ring>(c: &mut Calc<D>, x: &Fx<D::Value>, l: f64) -> Result<Split<D::Value>> {
    let below = c.const_sub(-l, x)?;
    let above = c.add_const(x, -l)?;
    let one = c.constant(1.0, x.scale)?;
    let lanes = c.gate_lanes(&[(x, x), (&below, &below), (&above, &above), (x, &one)])?;
    let [positive_part, below_gap, above_gap, nonnegative] =
        <[_; 4]>::try_from(lanes).ok().expect("four lanes");
    // v = clamp(x); relu(v) = relu(x) - (x - l)^+; |v| = 2 relu(v) - v.
    let raised = c.add(x, &below_gap)?;
    let v = c.sub(&raised, &above_gap)?;
    let relu_v = c.sub(&positive_part, &above_gap)?;
    let twice = c.times(&relu_v, 2)?;
    let magnitude = c.sub(&twice, &v)?;
    Ok(Split {
        positive_part,
        magnitude,
        nonnegative,
    })
}

/// (2d - 1) r: an odd function's value from its value at |x|.
fn with_sign<D: Ring>(
    c: &mut Calc<D>,
    nonnegative: &Fx<D::Value>,
    r: &Fx<D::Value>,
) -> Result<Fx<D::Value>> {
    let twice = c.times(nonnegative, 2)?;
    let sign = c.add_const(&twice, -1.0)?;
    c.mul(&sign, r, nonnegative.scale)
}

fn negate<D: Ring>(c: &mut Calc<D>, x: &Fx<D::Value>) -> Result<Fx<D::Value>> {
    c.times(x, -1)
}

/// σ(x) = (1 - d) + (2d - 1) / (1 + e^-|x|).
pub fn sigmoid<D: Ring>(c: &mut Calc<D>, x: &Fx<D::Value>) -> Result<Fx<D::Value>> {
    let s = split(c, x, SATURATION)?;
    let minus = negate(c, &s.magnitude)?;
    let t = exp_bounded(c, &minus, -SATURATION, 0.0, INTERNAL)?;
    let w = c.add_const(&t, 1.0)?;
    let at_magnitude = reciprocal_on(c, &w, 1.0, 2.0)?;
    let signed = with_sign(c, &s.nonnegative, &at_magnitude)?;
    let complement = c.const_sub(1.0, &s.nonnegative)?;
    c.add(&signed, &complement)
}

pub fn tanh<D: Ring>(c: &mut Calc<D>, x: &Fx<D::Value>) -> Result<Fx<D::Value>> {
    let twice = c.times(x, 2)?;
    let s = sigmoid(c, &twice)?;
    let doubled = c.times(&s, 2)?;
    c.add_const(&doubled, -1.0)
}

pub fn erf<D: Ring>(c: &mut Calc<D>, x: &Fx<D::Value>) -> Result<Fx<D::Value>> {
    let s = split(c, x, ERF_SATURATION)?;
    let a = &s.magnitude;
    let square = c.mul(a, a, INTERNAL)?;
    let minus_square = negate(c, &square)?;
    let gaussian = exp_bounded(
        c,
        &minus_square,
        -ERF_SATURATION * ERF_SATURATION,
        0.0,
        INTERNAL,
    )?;
    let pa = c.mul_const(a, ERF_P, INTERNAL)?;
    let u = c.add_const(&pa, 1.0)?;
    let t = reciprocal_on(c, &u, 1.0, 1.0 + ERF_P * ERF_SATURATION)?;
    let series = c.polynomial(&t, &ERF_A, INTERNAL)?;
    let tail = c.mul(&series, &gaussian, INTERNAL)?;
    let at_magnitude = c.const_sub(1.0, &tail)?;
    with_sign(c, &s.nonnegative, &at_magnitude)
}

/// softplus(x) = max(x, 0) + ln(1 + e^-|x|), with ln w = ln(w/2) + ln 2 for w in (1, 2].
pub fn softplus<D: Ring>(c: &mut Calc<D>, x: &Fx<D::Value>) -> Result<Fx<D::Value>> {
    let s = split(c, x, SATURATION)?;
    let minus = negate(c, &s.magnitude)?;
    let t = exp_bounded(c, &minus, -SATURATION, 0.0, INTERNAL)?;
    let w = c.add_const(&t, 1.0)?;
    // 4 (w / 2) - 3 = 2w - 3
    let twice = c.times(&w, 2)?;
    let v = c.add_const(&twice, -3.0)?;
    let ln_half_w = ln_half_to_one(c, &v)?;
    let ln_w = c.add_const(&ln_half_w, LN_2)?;
    let ln_w = c.rescale(&ln_w, x.scale)?;
    c.add(&s.positive_part, &ln_w)
}

/// elu(x) = max(x, 0) + alpha (e^min(x, 0) - 1), min(x, 0) clamped to -L (where e^x is 0).
pub fn elu<D: Ring>(c: &mut Calc<D>, x: &Fx<D::Value>, alpha: f64) -> Result<Fx<D::Value>> {
    let below = c.const_sub(-SATURATION, x)?;
    let lanes = c.gate_lanes(&[(x, x), (&below, &below)])?;
    let negative_part = c.sub(x, &lanes[0])?;
    let u = c.add(&negative_part, &lanes[1])?;
    let e = exp_bounded(c, &u, -SATURATION, 0.0, x.scale)?;
    let e_minus_one = c.add_const(&e, -1.0)?;
    let scaled = c.mul_const(&e_minus_one, alpha, x.scale)?;
    c.add(&lanes[0], &scaled)
}

/// Knots of the piecewise-linear sigmoid: every 0.5 on [-8, 8].
const PIECEWISE_KNOTS: usize = 33;
const PIECEWISE_RANGE: f64 = 8.0;

/// The linear interpolant through the knots, flat beyond them: one comparison round for
/// every hinge at once, then one truncation for the weighted sum.
pub fn sigmoid_piecewise<D: Ring>(c: &mut Calc<D>, x: &Fx<D::Value>) -> Result<Fx<D::Value>> {
    let knots: Vec<f64> = (0..PIECEWISE_KNOTS)
        .map(|k| -PIECEWISE_RANGE + 2.0 * PIECEWISE_RANGE * k as f64 / (PIECEWISE_KNOTS - 1) as f64)
        .collect();
    let sigmoid = |t: f64| 1.0 / (1.0 + (-t).exp());
    let total = interpolant(c, x, sigmoid, &knots, true, x.scale)?;
    c.rescale(&total, x.scale)
}
