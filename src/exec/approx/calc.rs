//! Fixed-point arithmetic with explicit scales on top of [`Ring`] primitives, so that the
//! approximations read like the formulas they implement.

use super::Ring;
use crate::exec::maps::{
    AddMap, BroadcastMap, ScaleMap, SliceAxis0Map, StackMap, SubMap, WeightedSumMap,
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
        let gated = {
            let stacked_x = self.d.linear(&StackMap, &xs)?;
            let stacked_y = self.d.linear(&StackMap, &ys)?;
            self.d.gate(&stacked_x, &[&stacked_y])?.remove(0)
        };
        (0..lanes.len())
            .map(|i| {
                let slice = self.d.linear(
                    &SliceAxis0Map {
                        start: i,
                        end: i + 1,
                    },
                    &[&gated],
                )?;
                let v = self.d.linear(
                    &crate::exec::maps::ReshapeMap {
                        shape: shape.clone(),
                    },
                    &[&slice],
                )?;
                Ok(Fx {
                    v,
                    scale: lanes[i].1.scale,
                })
            })
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
