//! Sigmoid, tanh and SiLU from one comparison round: four lanes clamp x to [-T, T] and
//! split it into an inner part clamp(x, -t, t) and an outer excess, |x| - t clamped to
//! [0, T - t]. The logistic function's poles at ±iπ make one polynomial on [-T, T] need
//! degree 14 or more, while each part takes a low degree; both polynomials join one sum of
//! products truncated once. Every variable stays in [-1, 1] for every input, so nothing
//! overflows and no gate follows the polynomials: three truncation rounds after the
//! comparison. Coefficients from scripts/fit_approximations.py.

use super::Ring;
use super::calc::{Calc, Fx};
use super::poly::{HEADROOM, split_at};
use anyhow::Result;

/// The inner part is |x| <= t = 2^INNER_BITS ...
const INNER_BITS: u32 = 1;
/// ... the outer excess at most T - t = 2^WIDTH_BITS, so T = 10.
const WIDTH_BITS: u32 = 3;
/// Scale of the powers.
const POWER_SCALE: u32 = 20;

/// SiLU(x) - x/2 (even) on |x| <= 2 in w = 2 (x/2)^2 - 1 (max error 1.5e-5).
const SILU_INNER: [f64; 5] = [
    4.305260728152e-01,
    3.725133247065e-01,
    -4.831892227981e-02,
    8.268853895791e-03,
    -1.410018644452e-03,
];
/// g(2 + s) - g(2), g = SiLU(x) - x/2, on s in [0, 8] in z = s/4 - 1 (2.7e-5).
const SILU_OUTER: [f64; 9] = [
    2.223572303734e+00,
    2.049555496642e+00,
    -7.844450376954e-02,
    7.347092448102e-02,
    -4.778089475215e-02,
    2.875598586431e-02,
    2.790198106385e-03,
    -3.277958993596e-02,
    1.883883063897e-02,
];
/// sigmoid(x) - 1/2 (odd) on |x| <= 2 as (x/2) P(w) (1.6e-5).
const SIGMOID_INNER: [f64; 4] = [
    4.305097221366e-01,
    -5.799228865745e-02,
    9.804104157627e-03,
    -1.540681612627e-03,
];
/// s(2 + q) - s(2), s = sigmoid - 1/2, on q in [0, 8] as (q/8) Q(z) (3.8e-5).
const SIGMOID_OUTER: [f64; 6] = [
    2.334215044629e-01,
    -2.131981372047e-01,
    1.750421887553e-01,
    -1.280796185580e-01,
    7.306910936622e-02,
    -2.109489622927e-02,
];

/// The comparison's results, all exact linear maps of the four gated lanes.
struct Clamped<V> {
    /// clamp(x, -t, t) / t, in [-1, 1].
    inner: Fx<V>,
    /// 2 e / (T - t) - 1 for the excess e = clamp(|x| - t, 0, T - t), in [-1, 1].
    outer: Fx<V>,
    /// sign(x) e / (T - t), in [-1, 1].
    signed: Fx<V>,
    /// clamp(x, -T, T).
    clamped: Fx<V>,
    /// max(x - T, 0).
    above: Fx<V>,
}

/// One comparison round of four lanes: relu(x - T), relu(x - t), relu(-t - x), relu(-T - x).
fn clamp<D: Ring>(c: &mut Calc<D>, x: &Fx<D::Value>) -> Result<Clamped<D::Value>> {
    let t = f64::from(1u32 << INNER_BITS);
    let big = t + f64::from(1u32 << WIDTH_BITS);
    let gaps = [
        c.add_const(x, -big)?,
        c.add_const(x, -t)?,
        c.const_sub(-t, x)?,
        c.const_sub(-big, x)?,
    ];
    let lanes: Vec<_> = gaps.iter().map(|g| (g, g)).collect();
    let relus = c.gate_lanes(&lanes)?;
    let [above, right, left, below] = <[_; 4]>::try_from(relus).ok().expect("four lanes");
    let raised = c.add(x, &left)?;
    let inner = c.sub(&raised, &right)?;
    let right_excess = c.sub(&right, &above)?;
    let left_excess = c.sub(&left, &below)?;
    let excess = c.add(&right_excess, &left_excess)?;
    let signed = c.sub(&right_excess, &left_excess)?;
    let lowered = c.sub(x, &above)?;
    let clamped = c.add(&lowered, &below)?;
    let f = x.scale;
    let outer = Calc::<D>::reinterpret(&excess, f + WIDTH_BITS - 1);
    let outer = c.add_const(&outer, -1.0)?;
    let inner = Calc::<D>::reinterpret(&inner, f + INNER_BITS);
    let signed = Calc::<D>::reinterpret(&signed, f + WIDTH_BITS);
    let [inner, outer, signed] = [inner, outer, signed].map(|v| c.rescale(&v, POWER_SCALE));
    Ok(Clamped {
        inner: inner?,
        outer: outer?,
        signed: signed?,
        clamped,
        above,
    })
}

/// Coefficient bits for a sum of products of powers below 2^`bound_bits`.
fn extra(bound_bits: u32) -> u32 {
    HEADROOM - bound_bits - 2 * POWER_SCALE
}

/// SiLU(x) = x sigmoid(x) = clamp(x)/2 + relu(x - T) + M(inner) + D(excess): powers w, z^2
/// in the first round, w^2, z^3, z^4 in the second, one sum in the third. Beyond T it is x
/// within T e^-T = 4.5e-4, below -T it is 0 within as much.
pub fn silu<D: Ring>(c: &mut Calc<D>, x: &Fx<D::Value>) -> Result<Fx<D::Value>> {
    let s = clamp(c, x)?;
    let (v, z) = (&s.inner, &s.outer);
    let first = c.mul_lanes(&[(v, v), (z, z)], POWER_SCALE)?;
    let twice = c.times(&first[0], 2)?;
    let w = c.add_const(&twice, -1.0)?;
    let z2 = &first[1];
    let second = c.mul_lanes(&[(&w, &w), (z, z2), (z2, z2)], POWER_SCALE)?;
    let [w2, z3, z4] = <[_; 3]>::try_from(second).ok().expect("three powers");
    let e = extra(4);
    let (a_inner, b_inner) = split_at(c, &[w, w2.clone()], &SILU_INNER, 2, e)?;
    let outer_powers = [z.clone(), z2.clone(), z3, z4.clone()];
    let (a_outer, b_outer) = split_at(c, &outer_powers, &SILU_OUTER, 4, e)?;
    let total = 2 * POWER_SCALE + e;
    let half = Calc::<D>::reinterpret(&s.clamped, x.scale + 1);
    let mut addend = c.add(&a_inner, &a_outer)?;
    addend = c.rescale(&addend, total)?;
    let half = c.rescale(&half, total)?;
    addend = c.add(&addend, &half)?;
    let (b_inner, b_outer) = (b_inner.expect("degree 4"), b_outer.expect("degree 8"));
    let sum = c.products(&[(&w2, &b_inner), (&z4, &b_outer)], Some(&addend), x.scale)?;
    c.add(&sum, &s.above)
}

/// sigmoid(x) at scale `out`: 1/2 + (x_i/t) P(w) + (e/(T - t)) Q(z), the factors folded
/// into the powers (x_i/t w and e/(T - t) z^2 in the second round).
fn sigmoid_at<D: Ring>(c: &mut Calc<D>, x: &Fx<D::Value>, out: u32) -> Result<Fx<D::Value>> {
    let s = clamp(c, x)?;
    let (v, z, q) = (&s.inner, &s.outer, &s.signed);
    let first = c.mul_lanes(&[(v, v), (z, z)], POWER_SCALE)?;
    let twice = c.times(&first[0], 2)?;
    let w = c.add_const(&twice, -1.0)?;
    let z2 = &first[1];
    let second = c.mul_lanes(&[(&w, &w), (v, &w), (z, z2), (q, z2)], POWER_SCALE)?;
    let [w2, vw, z3, qz2] = <[_; 4]>::try_from(second).ok().expect("four products");
    let e = extra(1);
    let (a_inner, b_inner) = split_at(c, &[w.clone(), w2], &SIGMOID_INNER, 1, e)?;
    let outer_powers = [z.clone(), z2.clone(), z3];
    let (a_outer, b_outer) = split_at(c, &outer_powers, &SIGMOID_OUTER, 2, e)?;
    let (b_inner, b_outer) = (b_inner.expect("degree 3"), b_outer.expect("degree 5"));
    let half = c.constant(0.5, 2 * POWER_SCALE + e)?;
    let pairs = [
        (v, &a_inner),
        (&vw, &b_inner),
        (q, &a_outer),
        (&qz2, &b_outer),
    ];
    c.products(&pairs, Some(&half), out)
}

pub fn sigmoid<D: Ring>(c: &mut Calc<D>, x: &Fx<D::Value>) -> Result<Fx<D::Value>> {
    sigmoid_at(c, x, x.scale)
}

/// tanh(x) = 2 sigmoid(2x) - 1: the sigmoid at one more fractional bit, read as twice it.
pub fn tanh<D: Ring>(c: &mut Calc<D>, x: &Fx<D::Value>) -> Result<Fx<D::Value>> {
    let twice = c.times(x, 2)?;
    let s = sigmoid_at(c, &twice, x.scale + 1)?;
    let doubled = Calc::<D>::reinterpret(&s, x.scale);
    c.add_const(&doubled, -1.0)
}
