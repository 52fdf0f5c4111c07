//! Functions that are linear outside [-t, t] and a polynomial inside (PUMA's GELU design):
//! both segment tests are lanes of one comparison, each gating the change of piece, so the
//! polynomial may be garbage outside its interval (its overflowed powers are multiplied by
//! exact zeros). And piecewise-linear interpolants from hinges relu(x - t_k), one lane each.
//! Coefficients from scripts/fit_approximations.py.

use super::Ring;
use super::calc::{Calc, Fx};
use super::poly::polynomial;
use anyhow::Result;

/// Scale of the powers inside the polynomials.
const POWER_SCALE: u32 = 21;

/// GELU(x) - x/2 on [-4, 4] as a polynomial in w = 2 (x/4)^2 - 1 (max error 3.5e-5).
const GELU_EVEN: [f64; 9] = [
    1.407585511788e+00,
    7.327399684995e-01,
    -2.265833564474e-01,
    1.562685604252e-01,
    -1.182517862159e-01,
    6.730793883746e-02,
    -4.170537557352e-02,
    4.358584152657e-02,
    -2.110821767382e-02,
];

/// The same for the tanh form 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (4.2e-5).
const GELU_TANH_EVEN: [f64; 9] = [
    1.408042250218e+00,
    7.324167170630e-01,
    -2.276346229000e-01,
    1.589801323138e-01,
    -1.199047113876e-01,
    6.326858802301e-02,
    -3.694320942773e-02,
    4.525757181047e-02,
    -2.359468416042e-02,
];

/// Where GELU is 0 (below -4) or x (above 4) within 1.3e-4.
const GELU_SATURATION: f64 = 4.0;

/// `lo` below -t (0 when `None`), `inside` on [-t, t], `hi` above t:
/// lo + [x >= -t] (inside - lo) + [x >= t] (hi - inside), both tests in one gate.
fn saturate<D: Ring>(
    c: &mut Calc<D>,
    x: &Fx<D::Value>,
    t: f64,
    lo: Option<&Fx<D::Value>>,
    hi: &Fx<D::Value>,
    inside: &Fx<D::Value>,
) -> Result<Fx<D::Value>> {
    let below = c.add_const(x, t)?;
    let above = c.add_const(x, -t)?;
    let enter = match lo {
        Some(lo) => c.sub(inside, lo)?,
        None => inside.clone(),
    };
    let leave = c.sub(hi, inside)?;
    let gated = c.gate_lanes(&[(&below, &enter), (&above, &leave)])?;
    let sum = c.add(&gated[0], &gated[1])?;
    match lo {
        Some(lo) => c.add(lo, &sum),
        None => Ok(sum),
    }
}

/// x/2 + Q(2 (x/4)^2 - 1) inside [-4, 4], 0 below, x above: five truncations in four
/// rounds ((x/4)^2; w^2; w^3 and w^4; Q) and one comparison round of two lanes.
fn gelu_with<D: Ring>(c: &mut Calc<D>, x: &Fx<D::Value>, even: &[f64]) -> Result<Fx<D::Value>> {
    // x/4 and x/2: the same ring value read with 2 and 1 more fractional bits.
    let quarter = Calc::<D>::reinterpret(x, x.scale + 2);
    let half = Calc::<D>::reinterpret(x, x.scale + 1);
    let u = c.mul(&quarter, &quarter, POWER_SCALE)?;
    let twice = c.times(&u, 2)?;
    let w = c.add_const(&twice, -1.0)?;
    let inside = polynomial(c, &w, even, Some(&half), (POWER_SCALE, 3), x.scale)?;
    saturate(c, x, GELU_SATURATION, None, x, &inside)
}

pub fn gelu<D: Ring>(c: &mut Calc<D>, x: &Fx<D::Value>) -> Result<Fx<D::Value>> {
    gelu_with(c, x, &GELU_EVEN)
}

pub fn gelu_tanh<D: Ring>(c: &mut Calc<D>, x: &Fx<D::Value>) -> Result<Fx<D::Value>> {
    gelu_with(c, x, &GELU_TANH_EVEN)
}

/// `constant + slope x + Σ_k weights[k] relu(x - knots[k])`, exactly, at `extra` bits above
/// x's scale: one comparison round with a lane per knot.
pub fn hinges<D: Ring>(
    c: &mut Calc<D>,
    x: &Fx<D::Value>,
    (constant, slope): (f64, f64),
    knots: &[f64],
    weights: &[f64],
    extra: u32,
) -> Result<Fx<D::Value>> {
    let gaps = knots
        .iter()
        .map(|&t| c.add_const(x, -t))
        .collect::<Result<Vec<_>>>()?;
    let relus = c.gate_lanes(&gaps.iter().map(|g| (g, g)).collect::<Vec<_>>())?;
    let mut terms: Vec<(&Fx<D::Value>, f64)> = relus.iter().zip(weights.iter().copied()).collect();
    if slope != 0.0 {
        terms.push((x, slope));
    }
    c.combination(&terms, constant, extra)
}

/// The linear interpolant of `f` through `knots`, continued by its end chords:
/// f(t_0) + s_0 (x - t_0) + Σ_(k>=1) (s_k - s_(k-1)) relu(x - t_k) at `extra` bits above
/// x's scale, for x >= t_0 (no lane tests the first knot). With `flat`, the curve is flat
/// outside the knots instead (a lane at t_0, and the last slope undone).
pub fn interpolant<D: Ring>(
    c: &mut Calc<D>,
    x: &Fx<D::Value>,
    f: impl Fn(f64) -> f64,
    knots: &[f64],
    flat: bool,
    extra: u32,
) -> Result<Fx<D::Value>> {
    let slopes: Vec<f64> = knots
        .windows(2)
        .map(|w| (f(w[1]) - f(w[0])) / (w[1] - w[0]))
        .collect();
    let change = |k: usize| {
        let next = match slopes.get(k) {
            Some(&s) => s,
            None if flat => 0.0,
            None => slopes[k - 1],
        };
        next - if k == 0 { 0.0 } else { slopes[k - 1] }
    };
    if flat {
        let weights: Vec<f64> = (0..knots.len()).map(change).collect();
        hinges(c, x, (f(knots[0]), 0.0), knots, &weights, extra)
    } else {
        let weights: Vec<f64> = (1..knots.len() - 1).map(change).collect();
        let line = (f(knots[0]) - slopes[0] * knots[0], slopes[0]);
        hinges(c, x, line, &knots[1..knots.len() - 1], &weights, extra)
    }
}
