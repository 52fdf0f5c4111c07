//! Functions of a positive value through normalisation: locate x's top bit k, so that
//! x = m 2^(k+1-f) with m in [0.5, 1), approximate the function of m, and undo the scaling
//! with public per-bit constants (one local weighted sum of the top-bit indicators).

use super::calc::{Calc, Fx};
use super::piecewise::interpolant;
use super::poly::polynomial;
use super::{INTERNAL, Ring};
use anyhow::Result;
use std::f64::consts::LN_2;

/// ln m for m in [0.5, 1] as a polynomial in 4m - 3 (degree-7 Chebyshev fit, max error 2.2e-7).
const LN_ON_HALF_TO_ONE: [f64; 8] = [
    -0.2876818890293499,
    0.3333330830176096,
    -0.05556134958321066,
    0.012348969072048984,
    -0.003058063898132707,
    0.0008114787657452141,
    -0.00027209557633472677,
    8.003009886261641e-05,
];

/// 1/sqrt(m) on m in [0.5, 1] as a polynomial in 4m - 3, relative error 1.9e-6
/// (scripts/fit_approximations.py).
const RSQRT_ON_HALF_TO_ONE: [f64; 7] = [
    1.154700220354e+00,
    -1.924648389564e-01,
    4.812286685532e-02,
    -1.324909231707e-02,
    3.846570365554e-03,
    -1.390624698309e-03,
    4.367416250622e-04,
];

/// 1/m likewise, relative error 8.8e-6.
const RECIPROCAL_ON_HALF_TO_ONE: [f64; 7] = [
    1.333333335347e+00,
    -4.445262146222e-01,
    1.481753711135e-01,
    -4.873780256244e-02,
    1.624601983527e-02,
    -6.722942368256e-03,
    2.240925759772e-03,
];

/// Scale of m and of the powers of 4m - 3 in those polynomials.
const POWER_SCALE: u32 = 21;

/// A positive value split as m 2^(k+1-f): `onehot` marks bit k, `m` in [0.5, 1) is at
/// the scale asked for.
struct Normalized<V> {
    onehot: V,
    m: Fx<V>,
}

/// Bit positions a positive fixed-point value can occupy: values stay below 2^(62-2f).
fn width(f: u32) -> u32 {
    62 - f
}

fn normalize<D: Ring>(
    c: &mut Calc<D>,
    x: &Fx<D::Value>,
    scale: u32,
) -> Result<Normalized<D::Value>> {
    let w = width(x.scale);
    let onehot = c.d.msb_onehot(&x.v, w)?;
    // The ring value of m at `scale` is x_ring 2^(scale-1-k): the product of the integer
    // x_ring and a factor with e extra bits (so that no weight is fractional), truncated by
    // e, and read at `scale`.
    let e = w.saturating_sub(scale);
    let factor = c.weighted(&onehot, |k| 2f64.powi(scale as i32 - 1 - k as i32), e)?;
    let product = c.mul(&Calc::<D>::reinterpret(x, 0), &factor, 0)?;
    Ok(Normalized {
        onehot,
        m: Calc::<D>::reinterpret(&product, scale),
    })
}

/// `coefficients` at v = 4m - 3 for m in [0.5, 1) at [`POWER_SCALE`], at scale `out`.
fn on_half_to_one<D: Ring>(
    c: &mut Calc<D>,
    m: &Fx<D::Value>,
    coefficients: &[f64],
    out: u32,
) -> Result<Fx<D::Value>> {
    let four = c.times(m, 4)?;
    let v = c.add_const(&four, -3.0)?;
    polynomial(c, &v, coefficients, None, (POWER_SCALE, 2), out)
}

/// Newton's iteration for 1/w on w in [lo, hi], from the chord through the end points.
pub fn reciprocal_on<D: Ring>(
    c: &mut Calc<D>,
    w: &Fx<D::Value>,
    lo: f64,
    hi: f64,
) -> Result<Fx<D::Value>> {
    let s = INTERNAL;
    let w = c.rescale(w, s)?;
    let slope = c.mul_const(&w, -1.0 / (lo * hi), s)?;
    let mut y = c.add_const(&slope, 1.0 / lo + 1.0 / hi)?;
    // The chord's worst relative error, at the geometric mean; each step squares it.
    let start_error = (lo + hi) / (lo * hi).sqrt() - 2.0;
    let steps = (24.0 * LN_2 / -start_error.ln()).log2().ceil().max(1.0) as u32;
    for _ in 0..steps {
        let wy = c.mul(&w, &y, s)?;
        let correction = c.const_sub(2.0, &wy)?;
        y = c.mul(&y, &correction, s)?;
    }
    Ok(y)
}

/// 1/x for x > 0.
pub fn reciprocal_positive<D: Ring>(c: &mut Calc<D>, x: &Fx<D::Value>) -> Result<Fx<D::Value>> {
    let n = normalize(c, x, POWER_SCALE)?;
    let y = on_half_to_one(c, &n.m, &RECIPROCAL_ON_HALF_TO_ONE, x.scale)?;
    unnormalize(c, &y, &n.onehot, -1.0)
}

/// Knots of the start of [`reciprocal_of_sum`]: a ratio of sqrt 2, where the chord of 1/s
/// is within 3.0% of it.
const SUM_KNOT_RATIO: f64 = std::f64::consts::SQRT_2;
/// Bits of that start above the sum's scale.
const SUM_START_BITS: u32 = 20;
/// Scale of its error terms.
const SUM_ERROR_SCALE: u32 = 24;

/// 1/s for a sum s in [1, terms] (a softmax's denominator: terms at most 1, one of them 1):
/// the chords of 1/s between knots a factor sqrt 2 apart (one comparison round), then
/// 1/s = y0 / (1 - e) = y0 (1 + e)(1 + e^2) to within e^4, e = 1 - s y0 (three truncation
/// rounds).
pub fn reciprocal_of_sum<D: Ring>(
    c: &mut Calc<D>,
    s: &Fx<D::Value>,
    terms: u32,
) -> Result<Fx<D::Value>> {
    let mut knots = vec![1.0];
    while *knots.last().expect("a first knot") < terms.max(2) as f64 {
        knots.push(knots.last().expect("a knot") * SUM_KNOT_RATIO);
    }
    let y0 = interpolant(c, s, |t| 1.0 / t, &knots, false, SUM_START_BITS)?;
    let minus_s = c.times(s, -1)?;
    let one = c.constant(1.0, s.scale + y0.scale)?;
    let e = c.products(&[(&minus_s, &y0)], Some(&one), SUM_ERROR_SCALE)?;
    let one_plus_e = c.add_const(&e, 1.0)?;
    // e^2 and y0 (1 + e) in one round: e raised so that both products share a scale.
    let e_raised = c.rescale(&e, y0.scale)?;
    let level = c.mul_lanes(&[(&e, &e_raised), (&y0, &one_plus_e)], SUM_ERROR_SCALE)?;
    let one_plus_e2 = c.add_const(&level[0], 1.0)?;
    c.mul(&level[1], &one_plus_e2, s.scale)
}

/// 1/x with its sign: |x| and [x >= 0] from one comparison round.
pub fn reciprocal<D: Ring>(c: &mut Calc<D>, x: &Fx<D::Value>) -> Result<Fx<D::Value>> {
    let one = c.constant(1.0, x.scale)?;
    let lanes = c.gate_lanes(&[(x, x), (x, &one)])?;
    let (positive_part, nonnegative) = (&lanes[0], &lanes[1]);
    let twice = c.times(positive_part, 2)?;
    let magnitude = c.sub(&twice, x)?;
    let r = reciprocal_positive(c, &magnitude)?;
    let sign = c.times(nonnegative, 2)?;
    let sign = c.add_const(&sign, -1.0)?;
    c.mul(&sign, &r, x.scale)
}

/// `y 2^(power (k + 1 - f))` at scale f, for y < 2^(f+1) at scale f: the weights carry as
/// many extra bits as keep the product below 2^61.
fn unnormalize<D: Ring>(
    c: &mut Calc<D>,
    y: &Fx<D::Value>,
    onehot: &D::Value,
    power: f64,
) -> Result<Fx<D::Value>> {
    let f = y.scale as f64;
    let top = (width(y.scale) as f64 - f) * power;
    let bottom = (1.0 - f) * power;
    let largest_weight = top.max(bottom);
    let a = (60.0 - (f + 1.0) - largest_weight).floor() as u32;
    let scale = c.weighted(onehot, |k| 2f64.powf(power * (k as f64 + 1.0 - f)), a)?;
    c.mul(y, &scale, y.scale)
}

/// 1/sqrt(x) for x > 0: (1/sqrt(m)) 2^(-(k+1-f)/2).
pub fn rsqrt<D: Ring>(c: &mut Calc<D>, x: &Fx<D::Value>) -> Result<Fx<D::Value>> {
    let n = normalize(c, x, POWER_SCALE)?;
    let y = on_half_to_one(c, &n.m, &RSQRT_ON_HALF_TO_ONE, x.scale)?;
    unnormalize(c, &y, &n.onehot, -0.5)
}

/// sqrt(x) for x >= 0: (m / sqrt(m)) 2^((k+1-f)/2); 0 gives 0.
pub fn sqrt<D: Ring>(c: &mut Calc<D>, x: &Fx<D::Value>) -> Result<Fx<D::Value>> {
    let n = normalize(c, x, POWER_SCALE)?;
    let y = on_half_to_one(c, &n.m, &RSQRT_ON_HALF_TO_ONE, INTERNAL)?;
    let root_m = c.mul(&n.m, &y, x.scale)?;
    unnormalize(c, &root_m, &n.onehot, 0.5)
}

/// ln m for `v` = 4m - 3 with m in [0.5, 1], at [`INTERNAL`] scale.
pub fn ln_half_to_one<D: Ring>(c: &mut Calc<D>, v: &Fx<D::Value>) -> Result<Fx<D::Value>> {
    c.polynomial(v, &LN_ON_HALF_TO_ONE, INTERNAL)
}

/// ln x for x > 0: ln m + (k + 1 - f) ln 2.
pub fn log<D: Ring>(c: &mut Calc<D>, x: &Fx<D::Value>) -> Result<Fx<D::Value>> {
    let f = x.scale;
    let n = normalize(c, x, INTERNAL)?;
    let four_m = c.times(&n.m, 4)?;
    let v = c.add_const(&four_m, -3.0)?;
    let ln_m = ln_half_to_one(c, &v)?;
    let ln_m = c.rescale(&ln_m, f)?;
    let exponent = c.weighted(&n.onehot, |k| (k as f64 + 1.0 - f as f64) * LN_2, f)?;
    c.add(&ln_m, &exponent)
}
