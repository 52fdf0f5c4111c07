//! Polynomials with one truncation per level instead of one per degree: the powers
//! v^2..v^m (m = ceil(d/2)) take ceil(log2 m) rounds of truncation (each level's products
//! stacked into one), then Σ c_k v^k = A(v..v^m) + v^m B(v..v^(d-m)) is one sum of products
//! truncated once. A degree-6 polynomial costs three truncations where Horner's rule takes
//! six.

use super::Ring;
use super::calc::{Calc, Fx};
use anyhow::{Result, ensure};

/// Bits below 2^62 that every sum of products keeps free.
pub const HEADROOM: u32 = 61;

/// v^1..v^m at `scale`, v raised exactly to it. Values with |v| > 1 make garbage powers,
/// which callers only use where a comparison discards them.
fn powers<D: Ring>(
    c: &mut Calc<D>,
    v: &Fx<D::Value>,
    m: usize,
    scale: u32,
) -> Result<Vec<Fx<D::Value>>> {
    ensure!(v.scale <= scale, "powers at a scale below their base's");
    let mut p = vec![c.rescale(v, scale)?];
    while p.len() < m {
        let n = p.len();
        let next: Vec<_> = (n + 1..=(2 * n).min(m))
            .map(|k| (&p[n - 1], &p[k - n - 1]))
            .collect();
        let products = c.mul_lanes(&next, scale)?;
        p.extend(products);
    }
    Ok(p)
}

/// A and B of [`split_at`].
pub type Halves<V> = (Fx<V>, Option<Fx<V>>);

/// `Σ coefficients[k] v^k` as A + v^r B: A = c_0 + c_1 v + ... + c_r v^r and
/// B = c_(r+1) v + ... + c_d v^(d-r), both exact combinations of the powers `p` (v^1..) at
/// `extra` bits above their scale, so that the pair (v^r, B) joins a sum of products. With
/// r = d, B is `None`.
pub fn split_at<D: Ring>(
    c: &mut Calc<D>,
    p: &[Fx<D::Value>],
    coefficients: &[f64],
    r: usize,
    extra: u32,
) -> Result<Halves<D::Value>> {
    let d = coefficients.len() - 1;
    let low: Vec<_> = (1..=r).map(|k| (&p[k - 1], coefficients[k])).collect();
    let a = c.combination(&low, coefficients[0], extra)?;
    if d == r {
        return Ok((a, None));
    }
    let high: Vec<_> = (1..=d - r)
        .map(|j| (&p[j - 1], coefficients[r + j]))
        .collect();
    Ok((a, Some(c.combination(&high, 0.0, extra)?)))
}

/// `Σ coefficients[k] v^k + addend` at scale `out`, for |v| <= 1 and a result below
/// 2^`bound_bits`; the powers are kept at `scale`, the coefficients at the bits the 2^62
/// product limit leaves.
pub fn polynomial<D: Ring>(
    c: &mut Calc<D>,
    v: &Fx<D::Value>,
    coefficients: &[f64],
    addend: Option<&Fx<D::Value>>,
    (scale, bound_bits): (u32, u32),
    out: u32,
) -> Result<Fx<D::Value>> {
    let d = coefficients.len() - 1;
    let m = d.div_ceil(2).max(1);
    let extra = HEADROOM - bound_bits - 2 * scale;
    let p = powers(c, v, m, scale)?;
    let (a, b) = split_at(c, &p, coefficients, m, extra)?;
    let total = if b.is_some() {
        2 * scale + extra
    } else {
        scale + extra
    };
    let a = c.rescale(&a, total)?;
    let a = match addend {
        Some(x) => {
            let x = c.rescale(x, total)?;
            c.add(&a, &x)?
        }
        None => a,
    };
    match b {
        None => c.rescale(&a, out),
        Some(b) => c.products(&[(&p[m - 1], &b)], Some(&a), out),
    }
}
