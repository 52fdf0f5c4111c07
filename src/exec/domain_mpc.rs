//! One compute party's view of a plan run: values are replicated shares, or public tensors
//! (constants introduced by lowering) that every party holds in the clear.

use super::approx::{self, Ring};
use super::maps::{AddMap, MaskMap};
use super::{Bilinear, Domain, Linear};
use crate::mpc::arith::{Factor, Pending};
use crate::mpc::{ArithShare, Party, Protocol};
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
    /// A truncation's result awaiting its second round ([`MpcDomain::settled`]), kept so
    /// through linear maps until a ReLU takes that round into its own first one.
    Pending(Pending),
    /// Under Pond, a secret opened once for the session under a fixed mask
    /// ([`Party::mask_for_session`], the weights): products take it without opening it
    /// again, and linear maps (alone or with public values) and products with public values
    /// keep it so, since they map the mask alike.
    Masked(ArithShare),
}

pub struct MpcDomain<'p> {
    pub party: &'p mut Party,
    pub fixed: FixedPoint,
    /// Whether the step being evaluated leaves its truncation pending ([`Domain::defer`]).
    pub defer: bool,
}

impl MpcValue {
    /// Party `id`'s share of this settled value ([`MpcDomain::settled`]); a public value is
    /// the sharing (v, 0, 0), so that linear maps and reveals treat both kinds alike.
    pub fn to_share(&self, id: usize) -> ArithShare {
        self.as_share(id).into_owned()
    }

    /// [`MpcValue::to_share`], borrowing a secret value's share instead of copying it.
    fn as_share(&self, id: usize) -> Cow<'_, ArithShare> {
        match self {
            MpcValue::Secret(s) => Cow::Borrowed(s),
            MpcValue::Masked(m) => Cow::Owned(ArithShare::additive(m.cur.clone())),
            MpcValue::Pending(_) => unreachable!("pending values are settled before use"),
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

/// How the mpc domain computes a sum of products `Σ map(x_i, y_i) (+ addend)` rescaled by
/// `shift` bits; the cost domain follows the same choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum ProductRoute {
    /// Everything public, or secrets only scaled by public values with nothing to
    /// rescale: each component alone.
    Local,
    /// A product of two secrets, nothing to rescale: the resharing round.
    Reshare,
    /// A secret operand and a rescale: the two-round truncation.
    Truncate,
}

impl ProductRoute {
    /// The route for products whose operands are secret as `pairs` says, plus an addend
    /// (secret or not).
    pub(super) fn of(pairs: &[(bool, bool)], addend_secret: bool, shift: u32) -> ProductRoute {
        let any_secret = addend_secret || pairs.iter().any(|&(x, y)| x || y);
        let two_secrets = pairs.iter().any(|&(x, y)| x && y);
        match (any_secret, two_secrets, shift) {
            (false, _, _) => ProductRoute::Local,
            (true, true, 0) => ProductRoute::Reshare,
            (true, false, 0) => ProductRoute::Local,
            _ => ProductRoute::Truncate,
        }
    }
}

impl MpcValue {
    fn is_secret(&self) -> bool {
        !matches!(self, MpcValue::Public(_))
    }

    /// This party's term of the value as a [`Pending`] sharing on `dealer`: a pending
    /// value's own term; of a secret one, the two components the dealer lacks at the party
    /// after it, and the dealer's own component at the other two; a public value at the
    /// party after the dealer. `None` for a value pending on another dealer.
    fn term(&self, id: usize, dealer: usize) -> Option<Cow<'_, ArrayD<u64>>> {
        let part = (id + 3 - dealer) % 3;
        Some(match self {
            MpcValue::Pending(p) => {
                if p.dealer != dealer {
                    return None;
                }
                Cow::Borrowed(&p.term)
            }
            MpcValue::Secret(s) => match part {
                1 => {
                    let mut sum = s.cur.clone();
                    sum.zip_mut_with(&s.next, |a, b| *a = a.wrapping_add(*b));
                    Cow::Owned(sum)
                }
                2 => Cow::Borrowed(&s.next),
                _ => Cow::Borrowed(&s.cur),
            },
            MpcValue::Public(p) if part == 1 => Cow::Borrowed(p),
            MpcValue::Public(p) => Cow::Owned(ArrayD::zeros(p.raw_dim())),
            MpcValue::Masked(_) => unreachable!("only ABY3 leaves truncations pending"),
        })
    }

    /// This party's (share, opened value) of a value in a masked linear map: a masked
    /// value's own; a public one is masked by zero (the value itself at server 0 and as the
    /// opened value, nothing at the producer, whose share of a masked value is its mask).
    fn masked_parts(&self, id: usize) -> (Cow<'_, ArrayD<u64>>, Cow<'_, ArrayD<u64>>) {
        let zeros = |p: &ArrayD<u64>| Cow::Owned(ArrayD::zeros(p.raw_dim()));
        match (self, id) {
            (MpcValue::Masked(m), _) => (Cow::Borrowed(&m.cur), Cow::Borrowed(&m.next)),
            (MpcValue::Public(p), 0) => (Cow::Borrowed(p), Cow::Borrowed(p)),
            (MpcValue::Public(p), 1) => (zeros(p), Cow::Borrowed(p)),
            (MpcValue::Public(p), _) => (zeros(p), zeros(p)),
            _ => unreachable!("only masked and public values enter a masked map"),
        }
    }
}

/// Whether a linear map of operands (secret, masked) gives a masked value: when one is
/// masked and every secret one is (public values are masked by zero). The cost domain
/// follows the same rule.
pub(super) fn masked_map(operands: impl Iterator<Item = (bool, bool)> + Clone) -> bool {
    operands.clone().any(|(_, masked)| masked) && operands.into_iter().all(|(s, m)| m || !s)
}

/// A secret as a product's factor; `None` for a public value.
fn factor(v: &MpcValue) -> Option<Factor<'_>> {
    match v {
        MpcValue::Secret(s) => Some(Factor::Share(s)),
        MpcValue::Masked(m) => Some(Factor::Masked(m)),
        _ => None,
    }
}

impl MpcDomain<'_> {
    /// `value` with any pending truncation finished (its second round, on its own).
    pub fn settled<'v>(&mut self, value: &'v MpcValue) -> Result<Cow<'v, MpcValue>> {
        Ok(match value {
            MpcValue::Pending(p) => Cow::Owned(MpcValue::Secret(self.party.settle(p)?)),
            MpcValue::Masked(m) => {
                Cow::Owned(MpcValue::Secret(ArithShare::additive(m.cur.clone())))
            }
            settled => Cow::Borrowed(settled),
        })
    }

    /// `value` as a product's operand: settled, except that a masked value stays masked.
    fn operand<'v>(&mut self, value: &'v MpcValue) -> Result<Cow<'v, MpcValue>> {
        match value {
            MpcValue::Masked(_) => Ok(Cow::Borrowed(value)),
            other => self.settled(other),
        }
    }

    fn all_settled<'v>(&mut self, values: &[&'v MpcValue]) -> Result<Vec<Cow<'v, MpcValue>>> {
        values.iter().map(|v| self.settled(v)).collect()
    }
}

impl Ring for MpcDomain<'_> {
    fn frac_bits(&self) -> u32 {
        self.fixed.frac_bits
    }

    fn ring_scalar(&mut self, v: u64) -> Result<MpcValue> {
        Ok(MpcValue::Public(ArrayD::from_elem(IxDyn(&[]), v)))
    }

    /// `(Σ map(x_i, y_i) + addend) >> shift`, by the [`ProductRoute`] its operands take:
    /// the products' additive terms are summed before the one resharing or truncation.
    fn products_shift<B: Bilinear>(
        &mut self,
        map: &B,
        pairs: &[(&MpcValue, &MpcValue)],
        addend: Option<&MpcValue>,
        shift: u32,
    ) -> Result<MpcValue> {
        let mut operands = vec![];
        for (x, y) in pairs {
            operands.push((self.operand(x)?, self.operand(y)?));
        }
        let pairs: Vec<(&MpcValue, &MpcValue)> = operands
            .iter()
            .map(|(x, y)| (x.as_ref(), y.as_ref()))
            .collect();
        let addend = addend.map(|a| self.settled(a)).transpose()?;
        let addend = addend.as_deref();
        let secrets: Vec<(bool, bool)> = pairs
            .iter()
            .map(|(x, y)| (x.is_secret(), y.is_secret()))
            .collect();
        let route = ProductRoute::of(&secrets, addend.is_some_and(|a| a.is_secret()), shift);
        let apply = |a: &ArrayD<u64>, b: &ArrayD<u64>| map.apply(&a.view(), &b.view());
        let id = self.party.id();
        if route == ProductRoute::Local {
            // Linear in the secrets: each component alone (a public value is (v, 0, 0)).
            let mut parts = vec![];
            for (x, y) in pairs {
                parts.push(match (x, y) {
                    (MpcValue::Public(a), MpcValue::Public(b)) => MpcValue::Public(apply(a, b)?),
                    (MpcValue::Secret(s), MpcValue::Public(p)) => {
                        MpcValue::Secret(s.map(|c| apply(c, p))?)
                    }
                    (MpcValue::Public(p), MpcValue::Secret(s)) => {
                        MpcValue::Secret(s.map(|c| apply(p, c))?)
                    }
                    (MpcValue::Masked(m), MpcValue::Public(p)) => {
                        MpcValue::Masked(m.map(|c| apply(c, p))?)
                    }
                    (MpcValue::Public(p), MpcValue::Masked(m)) => {
                        MpcValue::Masked(m.map(|c| apply(p, c))?)
                    }
                    _ => unreachable!("two secrets take the resharing; operands are settled"),
                });
            }
            parts.extend(addend.cloned());
            let mut sum = parts.remove(0);
            for part in &parts {
                sum = self.linear(&AddMap, &[&sum, part])?;
            }
            return Ok(match sum {
                MpcValue::Public(p) => MpcValue::Public(p.mapv(|v| shift_right(v, shift))),
                secret => secret,
            });
        }
        // Party `id`'s additive term of the sum: x_i y_i + x_i y_(i+1) + x_(i+1) y_i for two
        // secrets, its first component times a public operand, a public product at party 0.
        let mut term: Option<ArrayD<u64>> = None;
        let mut accumulate = |t: ArrayD<u64>| -> Result<()> {
            term = Some(match term.take() {
                None => t,
                Some(acc) => AddMap.apply_to(&[&acc, &t])?,
            });
            Ok(())
        };
        let secret_pairs: Vec<(Factor, Factor)> = (pairs.iter())
            .filter_map(|(x, y)| Some((factor(x)?, factor(y)?)))
            .collect();
        if !secret_pairs.is_empty() {
            accumulate(self.party.secret_products(&secret_pairs, &apply)?)?;
        }
        for (x, y) in &pairs {
            let t = match (x, y) {
                (x, y) if x.is_secret() && y.is_secret() => continue,
                (MpcValue::Secret(s) | MpcValue::Masked(s), MpcValue::Public(p)) => {
                    apply(&s.cur, p)?
                }
                (MpcValue::Public(p), MpcValue::Secret(s) | MpcValue::Masked(s)) => {
                    apply(p, &s.cur)?
                }
                (MpcValue::Public(a), MpcValue::Public(b)) => {
                    let product = apply(a, b)?;
                    if id == 0 {
                        product
                    } else {
                        ArrayD::zeros(product.raw_dim())
                    }
                }
                _ => unreachable!("operands are settled"),
            };
            accumulate(t)?;
        }
        if let Some(a) = addend {
            accumulate(a.as_share(id).cur.clone())?;
        }
        let term = term.expect("at least one product");
        Ok(match route {
            ProductRoute::Reshare => MpcValue::Secret(self.party.reshare(&term)?),
            _ if self.defer => MpcValue::Pending(self.party.truncate_open(&term, shift)?),
            _ => MpcValue::Secret(self.party.truncate(&term, shift)?),
        })
    }

    fn msb_onehot(&mut self, x: &MpcValue, width: u32) -> Result<MpcValue> {
        Ok(match self.settled(x)?.as_ref() {
            MpcValue::Public(p) => MpcValue::Public(top_bit_onehot(p.view(), width)),
            MpcValue::Secret(s) => MpcValue::Secret(self.party.msb_onehot(s, width)?),
            MpcValue::Pending(_) | MpcValue::Masked(_) => unreachable!("settled"),
        })
    }
}

impl Domain for MpcDomain<'_> {
    type Value = MpcValue;

    fn shape(value: &MpcValue) -> Vec<usize> {
        match value {
            MpcValue::Public(p) => p.shape().to_vec(),
            MpcValue::Secret(s) | MpcValue::Masked(s) => s.shape().to_vec(),
            MpcValue::Pending(p) => p.term.shape().to_vec(),
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
                    _ => unreachable!("all public"),
                })
                .collect();
            return Ok(MpcValue::Public(map.apply(&views)?));
        }
        let id = self.party.id();
        let pending = xs.iter().find_map(|x| match x {
            MpcValue::Pending(p) => Some((p.dealer, p.frac_bits)),
            _ => None,
        });
        if let Some((dealer, frac_bits)) = pending {
            // The map of the terms, pending on the first pending operand's dealer; one
            // pending on another dealer is settled first.
            let mut terms = Vec::with_capacity(xs.len());
            for x in xs {
                terms.push(match x.term(id, dealer) {
                    Some(term) => term,
                    None => {
                        let settled = self.settled(x)?;
                        let term = settled.term(id, dealer).expect("settled");
                        Cow::Owned(term.into_owned())
                    }
                });
            }
            return Ok(MpcValue::Pending(Pending {
                dealer,
                frac_bits,
                term: map.apply_to(&terms.iter().map(|t| t.as_ref()).collect::<Vec<_>>())?,
            }));
        }
        let operands = xs
            .iter()
            .map(|x| (x.is_secret(), matches!(x, MpcValue::Masked(_))));
        if masked_map(operands) {
            let parts: Vec<_> = xs.iter().map(|x| x.masked_parts(id)).collect();
            let cur: Vec<_> = parts.iter().map(|(c, _)| c.view()).collect();
            let opened: Vec<_> = parts.iter().map(|(_, e)| e.view()).collect();
            return Ok(MpcValue::Masked(ArithShare {
                cur: map.apply(&cur)?,
                next: map.apply(&opened)?,
            }));
        }
        let shares: Vec<Cow<ArithShare>> = xs.iter().map(|x| x.as_share(id)).collect();
        let cur: Vec<_> = shares.iter().map(|s| s.cur.view()).collect();
        let next: Vec<_> = shares.iter().map(|s| s.next.view()).collect();
        Ok(MpcValue::Secret(ArithShare {
            cur: map.apply(&cur)?,
            next: map.apply(&next)?,
        }))
    }

    fn bilinear<B: Bilinear>(&mut self, map: &B, x: &MpcValue, y: &MpcValue) -> Result<MpcValue> {
        self.products_shift(map, &[(x, y)], None, self.fixed.frac_bits)
    }

    fn gate(&mut self, x: &MpcValue, ys: &[&MpcValue]) -> Result<Vec<MpcValue>> {
        if let (MpcValue::Pending(p), [y]) = (x, ys)
            && std::ptr::eq(x, *y)
        {
            let width = self.fixed.comparison_bits();
            return Ok(vec![MpcValue::Secret(self.party.relu_pending(p, width)?)]);
        }
        let x = self.settled(x)?;
        let ys = self.all_settled(ys)?;
        let ys: Vec<&MpcValue> = ys.iter().map(|y| y.as_ref()).collect();
        match x.as_ref() {
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
            MpcValue::Pending(_) | MpcValue::Masked(_) => unreachable!("settled"),
        }
    }

    fn function(&mut self, f: Function, x: &MpcValue) -> Result<MpcValue> {
        let x = self.settled(x)?;
        approx::evaluate(self, f, &x)
    }

    fn defer(&mut self, on: bool) {
        // Pond's truncation leaves nothing pending: its result is the servers' sharing.
        self.defer = on && self.party.protocol() == Protocol::Aby3;
    }

    fn stats(&self) -> Stats {
        self.party.stats()
    }
}
