//! One compute party's view of a plan run: values are replicated shares, or public tensors
//! (constants introduced by lowering) that every party holds in the clear.

use super::approx::{self, Ring};
use super::maps::{MaskMap, MulMap};
use super::{Bilinear, Domain, Linear};
use crate::mpc::{ArithShare, Party, arith::product_term};
use crate::net::Stats;
use crate::plan::Function;
use crate::tensor::FixedPoint;
use crate::tensor::fixed::{shift_right, top_bit_onehot};
use anyhow::Result;
use ndarray::{ArrayD, IxDyn};
use std::borrow::Cow;

#[derive(Clone, Debug)]
pub enum MpcValue {
    Public(ArrayD<u64>),
    Secret(ArithShare),
}

pub struct MpcDomain<'p> {
    pub party: &'p mut Party,
    pub fixed: FixedPoint,
}

impl MpcValue {
    /// Party `id`'s share of this value; a public value is the sharing (v, 0, 0), so that
    /// linear maps and reveals treat both kinds alike.
    pub fn to_share(&self, id: usize) -> ArithShare {
        self.as_share(id).into_owned()
    }

    /// [`MpcValue::to_share`], borrowing a secret value's share instead of copying it.
    fn as_share(&self, id: usize) -> Cow<'_, ArithShare> {
        match self {
            MpcValue::Secret(s) => Cow::Borrowed(s),
            MpcValue::Public(p) => {
                let zeros = ArrayD::zeros(p.raw_dim());
                Cow::Owned(ArithShare {
                    cur: if id == 0 { p.clone() } else { zeros.clone() },
                    next: if id == 2 { p.clone() } else { zeros },
                })
            }
        }
    }
}

/// How the mpc domain computes a product `map(x, y)` rescaled by `shift` bits; the cost
/// domain follows the same choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ProductRoute {
    /// Both operands public, or one public with nothing to rescale: each component alone.
    Local,
    /// Two secrets, nothing to rescale: the resharing round.
    Reshare,
    /// A secret operand and a rescale: the two-round truncation.
    Truncate,
}

impl ProductRoute {
    pub(super) fn of(x_secret: bool, y_secret: bool, shift: u32) -> ProductRoute {
        match (x_secret, y_secret, shift) {
            (false, false, _) => ProductRoute::Local,
            (true, true, 0) => ProductRoute::Reshare,
            (_, _, 0) => ProductRoute::Local,
            _ => ProductRoute::Truncate,
        }
    }
}

impl MpcValue {
    fn is_secret(&self) -> bool {
        matches!(self, MpcValue::Secret(_))
    }
}

impl MpcDomain<'_> {
    /// `map(x, y)` truncated by `shift` bits, by the [`ProductRoute`] its operands take.
    fn product<B: Bilinear>(
        &mut self,
        map: &B,
        x: &MpcValue,
        y: &MpcValue,
        shift: u32,
    ) -> Result<MpcValue> {
        let route = ProductRoute::of(x.is_secret(), y.is_secret(), shift);
        let apply = |a: &ArrayD<u64>, b: &ArrayD<u64>| map.apply(&a.view(), &b.view());
        let product = match (x, y) {
            (MpcValue::Public(a), MpcValue::Public(b)) => {
                return Ok(MpcValue::Public(
                    apply(a, b)?.mapv(|v| shift_right(v, shift)),
                ));
            }
            (MpcValue::Secret(s), MpcValue::Public(p)) if route == ProductRoute::Local => {
                s.map(|c| apply(c, p))?
            }
            (MpcValue::Public(p), MpcValue::Secret(s)) if route == ProductRoute::Local => {
                s.map(|c| apply(p, c))?
            }
            // A public operand scales each component; the first is an additive term like
            // any other.
            (MpcValue::Secret(s), MpcValue::Public(p)) => {
                self.party.truncate(&apply(&s.cur, p)?, shift)?
            }
            (MpcValue::Public(p), MpcValue::Secret(s)) => {
                self.party.truncate(&apply(p, &s.cur)?, shift)?
            }
            (MpcValue::Secret(a), MpcValue::Secret(b)) => {
                let term = product_term(a, b, apply)?;
                if route == ProductRoute::Reshare {
                    self.party.reshare(&term)?
                } else {
                    self.party.truncate(&term, shift)?
                }
            }
        };
        Ok(MpcValue::Secret(product))
    }
}

impl Ring for MpcDomain<'_> {
    fn frac_bits(&self) -> u32 {
        self.fixed.frac_bits
    }

    fn ring_scalar(&mut self, v: u64) -> Result<MpcValue> {
        Ok(MpcValue::Public(ArrayD::from_elem(IxDyn(&[]), v)))
    }

    fn mul_shift(&mut self, x: &MpcValue, y: &MpcValue, shift: u32) -> Result<MpcValue> {
        self.product(&MulMap, x, y, shift)
    }

    fn msb_onehot(&mut self, x: &MpcValue, width: u32) -> Result<MpcValue> {
        Ok(match x {
            MpcValue::Public(p) => MpcValue::Public(top_bit_onehot(p.view(), width)),
            MpcValue::Secret(s) => MpcValue::Secret(self.party.msb_onehot(s, width)?),
        })
    }
}

impl Domain for MpcDomain<'_> {
    type Value = MpcValue;

    fn shape(value: &MpcValue) -> Vec<usize> {
        match value {
            MpcValue::Public(p) => p.shape().to_vec(),
            MpcValue::Secret(s) => s.shape().to_vec(),
        }
    }

    fn constant(&mut self, c: &ArrayD<f32>) -> Result<MpcValue> {
        Ok(MpcValue::Public(self.fixed.encode_array(c.view())?))
    }

    fn linear<L: Linear>(&mut self, map: &L, xs: &[&MpcValue]) -> Result<MpcValue> {
        if xs.iter().all(|x| matches!(x, MpcValue::Public(_))) {
            let views: Vec<_> = xs
                .iter()
                .map(|x| match x {
                    MpcValue::Public(p) => p.view(),
                    MpcValue::Secret(_) => unreachable!(),
                })
                .collect();
            return Ok(MpcValue::Public(map.apply(&views)?));
        }
        let id = self.party.id();
        let shares: Vec<Cow<ArithShare>> = xs.iter().map(|x| x.as_share(id)).collect();
        let cur: Vec<_> = shares.iter().map(|s| s.cur.view()).collect();
        let next: Vec<_> = shares.iter().map(|s| s.next.view()).collect();
        Ok(MpcValue::Secret(ArithShare {
            cur: map.apply(&cur)?,
            next: map.apply(&next)?,
        }))
    }

    fn bilinear<B: Bilinear>(&mut self, map: &B, x: &MpcValue, y: &MpcValue) -> Result<MpcValue> {
        self.product(map, x, y, self.fixed.frac_bits)
    }

    fn gate(&mut self, x: &MpcValue, ys: &[&MpcValue]) -> Result<Vec<MpcValue>> {
        match x {
            // A public condition selects locally.
            MpcValue::Public(p) => {
                let keep = p.mapv(|v| u64::from(self.fixed.compares_nonnegative(v)));
                ys.iter()
                    .map(|y| self.linear(&MaskMap { mask: &keep }, &[y]))
                    .collect()
            }
            MpcValue::Secret(s) => {
                let id = self.party.id();
                let shares: Vec<Cow<ArithShare>> = ys.iter().map(|y| y.as_share(id)).collect();
                let shares: Vec<&ArithShare> = shares.iter().map(|s| s.as_ref()).collect();
                Ok(self
                    .party
                    .gate(s, &shares, self.fixed.comparison_bits())?
                    .into_iter()
                    .map(MpcValue::Secret)
                    .collect())
            }
        }
    }

    fn function(&mut self, f: Function, x: &MpcValue) -> Result<MpcValue> {
        approx::evaluate(self, f, x)
    }

    fn stats(&self) -> Stats {
        self.party.stats()
    }
}
