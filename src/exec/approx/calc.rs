//! Fixed-point arithmetic with explicit scales on top of [`Ring`] primitives, so that the
//! approximations read like the formulas they implement.

use super::Ring;
use crate::exec::maps::{
    AddMap, BroadcastMap, MulMap, ScaleMap, SliceAxis0Map, StackMap, SubMap, WeightedSumMap,
};
use anyhow::{Result, ensure};

/// A ring value holding `value * 2^scale`.
#[derive(Clone)]
pub struct Fx<V> {
    pub v: V,
    pub scale: u32,
}

/// A comparison lane: gate `y` by `[x >= 0]`.
pub type Lane<'a, V> = (&'a Fx<V>, &'a Fx<V>);

/// The two factors of a product.
pub type Factors<'a, V> = (&'a Fx<V>, &'a Fx<V>);

pub struct Calc<'d, D: Ring> {
    pub d: &'d mut D,
    pub f: u32,
}

/// Fractional bits of public constants multiplied into values (their products are
/// truncated right away, so this only sets the constants' precision).
const CONSTANT_BITS: u32 = 28;

impl<'d, D: Ring> Calc<'d, D> {
    pub fn new(d: &'d mut D) -> Self {
        let f = d.frac_bits();
        Calc { d, f }
    }

    pub fn input(&self, v: &D::Value) -> Fx<D::Value> {
        Fx {
            v: v.clone(),
            scale: self.f,
        }
    }

    pub fn output(&mut self, x: Fx<D::Value>) -> Result<D::Value> {
        Ok(self.rescale(&x, self.f)?.v)
    }

    pub fn shape(&self, x: &Fx<D::Value>) -> Vec<usize> {
        D::shape(&x.v)
    }

    pub fn constant(&mut self, c: f64, scale: u32) -> Result<Fx<D::Value>> {
        let ring = (c * 2f64.powi(scale as i32)).round() as i64 as u64;
        Ok(Fx {
            v: self.d.ring_scalar(ring)?,
            scale,
        })
    }

    pub fn add(&mut self, a: &Fx<D::Value>, b: &Fx<D::Value>) -> Result<Fx<D::Value>> {
        ensure!(
            a.scale == b.scale,
            "adding values at scales {} and {}",
            a.scale,
            b.scale
        );
        Ok(Fx {
            v: self.d.linear(&AddMap, &[&a.v, &b.v])?,
            scale: a.scale,
        })
    }

    pub fn sub(&mut self, a: &Fx<D::Value>, b: &Fx<D::Value>) -> Result<Fx<D::Value>> {
        ensure!(
            a.scale == b.scale,
            "subtracting values at scales {} and {}",
            a.scale,
            b.scale
        );
        Ok(Fx {
            v: self.d.linear(&SubMap, &[&a.v, &b.v])?,
            scale: a.scale,
        })
    }

    pub fn add_const(&mut self, a: &Fx<D::Value>, c: f64) -> Result<Fx<D::Value>> {
        let k = self.constant(c, a.scale)?;
        self.add(a, &k)
    }

    /// `c - a` for a public `c`.
    pub fn const_sub(&mut self, c: f64, a: &Fx<D::Value>) -> Result<Fx<D::Value>> {
        let k = self.constant(c, a.scale)?;
        self.sub(&k, a)
    }

    /// Exact multiplication by a public integer.
    pub fn times(&mut self, a: &Fx<D::Value>, k: i64) -> Result<Fx<D::Value>> {
        Ok(Fx {
            v: self.d.linear(&ScaleMap(k), &[&a.v])?,
            scale: a.scale,
        })
    }

    /// `a * b` at scale `out` (at most the sum of the operands' scales).
    pub fn mul(&mut self, a: &Fx<D::Value>, b: &Fx<D::Value>, out: u32) -> Result<Fx<D::Value>> {
        let total = a.scale + b.scale;
        ensure!(
            out <= total,
            "a product at scale {total} cannot be raised to scale {out}"
        );
        Ok(Fx {
            v: self.d.mul_shift(&a.v, &b.v, total - out)?,
            scale: out,
        })
    }

    /// `Σ a_i b_i + addend` at scale `out`, truncated once: every product and the addend
    /// must share one scale (at least `out`).
    pub fn products(
        &mut self,
        pairs: &[Factors<D::Value>],
        addend: Option<&Fx<D::Value>>,
        out: u32,
    ) -> Result<Fx<D::Value>> {
        let total = pairs
            .first()
            .map(|(a, b)| a.scale + b.scale)
            .or(addend.map(|a| a.scale))
            .expect("a sum of products has terms");
        ensure!(
            pairs.iter().all(|(a, b)| a.scale + b.scale == total)
                && addend.is_none_or(|a| a.scale == total)
                && out <= total,
            "a sum of products at mixed scales, or raised to scale {out}"
        );
        let pairs: Vec<_> = pairs.iter().map(|(a, b)| (&a.v, &b.v)).collect();
        Ok(Fx {
            v: self
                .d
                .products_shift(&MulMap, &pairs, addend.map(|a| &a.v), total - out)?,
            scale: out,
        })
    }

    /// `constant + Σ c_i v_i` for public c_i, exactly, at `extra` bits above the terms'
    /// common scale: no truncation, so it can feed one.
    pub fn combination(
        &mut self,
        terms: &[(&Fx<D::Value>, f64)],
        constant: f64,
        extra: u32,
    ) -> Result<Fx<D::Value>> {
        let scale = terms[0].0.scale;
        let mut sum = self.constant(constant, scale + extra)?;
        for (v, c) in terms {
            ensure!(v.scale == scale, "a combination of values at mixed scales");
            let k = (c * 2f64.powi(extra as i32)).round() as i64;
            let term = Fx {
                v: self.d.linear(&ScaleMap(k), &[&v.v])?,
                scale: scale + extra,
            };
            sum = self.add(&sum, &term)?;
        }
        Ok(sum)
    }

    /// The products `a_i b_i` at scale `out`, all in one truncation round (the pairs are
    /// stacked): every pair shares one shape and one scale.
    pub fn mul_lanes(
        &mut self,
        pairs: &[Factors<D::Value>],
        out: u32,
    ) -> Result<Vec<Fx<D::Value>>> {
        if let [(a, b)] = pairs {
            return Ok(vec![self.mul(a, b, out)?]);
        }
        let stack = |c: &mut Self, side: Vec<&Fx<D::Value>>| -> Result<Fx<D::Value>> {
            let values: Vec<&D::Value> = side.iter().map(|v| &v.v).collect();
            Ok(Fx {
                v: c.d.linear(&StackMap, &values)?,
                scale: side[0].scale,
            })
        };
        let a = stack(self, pairs.iter().map(|p| p.0).collect())?;
        let b = stack(self, pairs.iter().map(|p| p.1).collect())?;
        let product = self.mul(&a, &b, out)?;
        let shape = self.shape(pairs[0].0);
        (0..pairs.len())
            .map(|i| self.lane(&product.v, out, i, &shape))
            .collect()
    }

    /// Entry `i` of axis 0 of stacked values, reshaped to `shape`, read at `scale`.
    fn lane(
        &mut self,
        stacked: &D::Value,
        scale: u32,
        i: usize,
        shape: &[usize],
    ) -> Result<Fx<D::Value>> {
        let slice = self.d.linear(
            &SliceAxis0Map {
                start: i,
                end: i + 1,
            },
            &[stacked],
        )?;
        let v = self.d.linear(
            &crate::exec::maps::ReshapeMap {
                shape: shape.to_vec(),
            },
            &[&slice],
        )?;
        Ok(Fx { v, scale })
    }

    pub fn mul_const(&mut self, a: &Fx<D::Value>, c: f64, out: u32) -> Result<Fx<D::Value>> {
        let k = self.constant(c, CONSTANT_BITS)?;
        self.mul(a, &k, out)
    }

    /// The same value at another scale: exact when raising, a truncation when lowering.
    pub fn rescale(&mut self, a: &Fx<D::Value>, scale: u32) -> Result<Fx<D::Value>> {
        if scale >= a.scale {
            let up = self.times(a, 1i64 << (scale - a.scale))?;
            Ok(Fx { v: up.v, scale })
        } else {
            let one = self.d.ring_scalar(1)?;
            Ok(Fx {
                v: self.d.mul_shift(&a.v, &one, a.scale - scale)?,
                scale,
            })
        }
    }

    /// The same ring value read at another scale: divides the value by 2^(scale - a.scale).
    pub fn reinterpret(a: &Fx<D::Value>, scale: u32) -> Fx<D::Value> {
        Fx {
            v: a.v.clone(),
            scale,
        }
    }

    /// `ys[i] * [xs[i] >= 0]` for each lane, all lanes in one comparison round. A `y` may be
    /// a scalar; it is broadcast to its lane.
    pub fn gate_lanes(&mut self, lanes: &[Lane<D::Value>]) -> Result<Vec<Fx<D::Value>>> {
        let shape = self.shape(lanes[0].0);
        // Only scalar ys are copied (broadcast); the rest are stacked straight from the lanes.
        let broadcast = lanes
            .iter()
            .map(|(_, y)| {
                (D::shape(&y.v) != shape)
                    .then(|| self.d.linear(&BroadcastMap { shape: &shape }, &[&y.v]))
                    .transpose()
            })
            .collect::<Result<Vec<_>>>()?;
        let xs: Vec<&D::Value> = lanes.iter().map(|(x, _)| &x.v).collect();
        let ys: Vec<&D::Value> = lanes
            .iter()
            .zip(&broadcast)
            .map(|((_, y), b)| b.as_ref().unwrap_or(&y.v))
            .collect();
        let stacked_x = self.d.linear(&StackMap, &xs)?;
        let stacked_y = self.d.linear(&StackMap, &ys)?;
        let gated = self.d.gate(&stacked_x, &[&stacked_y])?.remove(0);
        (0..lanes.len())
            .map(|i| self.lane(&gated, lanes[i].1.scale, i, &shape))
            .collect()
    }

    /// Σ_i h_i round(weight(i) 2^scale) over axis 0 of stacked 0/1 indicators `h`.
    pub fn weighted(
        &mut self,
        h: &D::Value,
        weight: impl Fn(u32) -> f64,
        scale: u32,
    ) -> Result<Fx<D::Value>> {
        let width = D::shape(h)[0] as u32;
        let weights: Vec<i64> = (0..width)
            .map(|i| (weight(i) * 2f64.powi(scale as i32)).round() as i64)
            .collect();
        Ok(Fx {
            v: self.d.linear(&WeightedSumMap(&weights), &[h])?,
            scale,
        })
    }

    /// `c_0 + c_1 x + ... + c_n x^n` by Horner's rule, every step at `scale`.
    pub fn polynomial(
        &mut self,
        x: &Fx<D::Value>,
        coefficients: &[f64],
        scale: u32,
    ) -> Result<Fx<D::Value>> {
        let (last, rest) = coefficients
            .split_last()
            .expect("a polynomial has coefficients");
        let mut acc = self.constant(*last, scale)?;
        for &c in rest.iter().rev() {
            acc = self.mul(&acc, x, scale)?;
            acc = self.add_const(&acc, c)?;
        }
        Ok(acc)
    }
}
