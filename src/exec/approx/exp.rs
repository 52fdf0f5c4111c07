//! e^x as (e^(x/2^n))^(2^n): a degree-4 Taylor polynomial where |x/2^n| < 0.1, then n
//! squarings. Each squaring's output scale is chosen from the value's bound, so the squares
//! keep as many fractional bits as the 2^62 product limit allows.

use super::calc::{Calc, Fx};
use super::poly::polynomial;
use super::{INTERNAL, Ring};
use anyhow::Result;

const TAYLOR: [f64; 5] = [1.0, 1.0, 0.5, 1.0 / 6.0, 1.0 / 24.0];
/// Below this, e^x is under the resolution of every supported precision.
pub const LOW: f64 = -24.0;
/// Largest |x/2^n| fed to the Taylor polynomial.
const TAYLOR_RADIUS: f64 = 0.1;

/// The largest input whose exponential stays inside the fixed-point range 2^(62-2f).
pub fn high(frac_bits: u32) -> f64 {
    ((62 - 2 * frac_bits) as f64 * std::f64::consts::LN_2 - 0.5).min(20.0)
}

/// e^x for all x, clamped to [LOW, high(f)] by one comparison round.
pub fn exp<D: Ring>(c: &mut Calc<D>, x: &Fx<D::Value>) -> Result<Fx<D::Value>> {
    let hi = high(c.f);
    let below = c.const_sub(LOW, x)?;
    let above = c.add_const(x, -hi)?;
    let gaps = c.gate_lanes(&[(&below, &below), (&above, &above)])?;
    let raised = c.add(x, &gaps[0])?;
    let clamped = c.sub(&raised, &gaps[1])?;
    exp_bounded(c, &clamped, LOW, hi, c.f)
}

/// e^x for x already in [lo, hi], at scale `out`.
pub fn exp_bounded<D: Ring>(
    c: &mut Calc<D>,
    x: &Fx<D::Value>,
    lo: f64,
    hi: f64,
    out: u32,
) -> Result<Fx<D::Value>> {
    let radius = lo.abs().max(hi.abs());
    let n = (radius / TAYLOR_RADIUS).log2().ceil().max(0.0) as u32;
    // x / 2^n: the same ring value read with n more fractional bits.
    let t = Calc::<D>::reinterpret(x, x.scale + n);
    let t = c.rescale(&t, INTERNAL)?;
    // Scale of the value entering squaring k (and, at k = n, of the result): the most bits
    // that keep its square below 2^62.
    let bound = |k: u32| (hi.max(0.0) * 2f64.powi(k as i32 - n as i32)).exp() * 1.01;
    let scale = |k: u32| {
        if k == n {
            out
        } else {
            INTERNAL.min((30.9 - bound(k).log2()).floor() as u32)
        }
    };
    let mut y = taylor(c, &t, scale(0))?;
    for k in 0..n {
        y = c.mul(&y, &y, scale(k + 1))?;
    }
    Ok(y)
}

/// Below this, [`exp_nonpositive`] is 0 (e^-10 = 4.5e-5).
const CUTOFF: f64 = 10.0;
/// Squarings after the polynomial.
const SQUARINGS: u32 = 2;
/// p(z) ≈ e^(4z) on z = x/16 in [-0.625, 0], relative error 1.4e-5 (5.7e-5 after the
/// squarings); scripts/fit_approximations.py.
const EXP_QUARTER: [f64; 7] = [
    9.999859323704e-01,
    3.998359219643e+00,
    7.965380301729e+00,
    1.037266716000e+01,
    9.399994169812e+00,
    5.503473079527e+00,
    1.552132505398e+00,
];
/// Scale of the powers of x/16.
const POWER_SCALE: u32 = 21;

/// e^x for x <= 0 (a softmax's input after its max is subtracted): p(x/16)^4, gated to 0
/// below -10 by one comparison. Three truncations for the polynomial, two squarings.
pub fn exp_nonpositive<D: Ring>(c: &mut Calc<D>, x: &Fx<D::Value>) -> Result<Fx<D::Value>> {
    let z = Calc::<D>::reinterpret(x, x.scale + 4);
    let mut y = polynomial(c, &z, &EXP_QUARTER, None, (POWER_SCALE, 1), INTERNAL)?;
    for k in 0..SQUARINGS {
        let out = if k + 1 == SQUARINGS {
            x.scale
        } else {
            INTERNAL
        };
        y = c.mul(&y, &y, out)?;
    }
    let gap = c.add_const(x, CUTOFF)?;
    Ok(c.gate_lanes(&[(&gap, &y)])?.remove(0))
}

fn taylor<D: Ring>(c: &mut Calc<D>, t: &Fx<D::Value>, out: u32) -> Result<Fx<D::Value>> {
    let p = c.polynomial(t, &TAYLOR, INTERNAL)?;
    c.rescale(&p, out)
}
