//! Comparison with zero and what is built on it: gating values by a sign (ReLU, select,
//! max) and locating the top set bit (normalisation for reciprocals, square roots, logs).
//!
//! `gate`: δ = [x >= 0] xor ρ for a daBit ρ is opened by the dealer-assisted comparison
//! ([`super::sign`]), and y [x >= 0] = δ y + (1 - 2δ)(y ρ). The daBit and the y ρ products
//! ride along the comparison's first three rounds, so a gate costs the comparison's rounds
//! (four at the default width of 48 bits, never fewer than three) for any number of values
//! gated by the same comparison.
//!
//! `msb_onehot`: [x >= 2^i] for every bit position i from one batch of comparisons; the
//! one-hot of the top set bit is the difference of adjacent ones.

use super::Protocol;
use super::arith::{Pending, Settle};
use super::bits::{bit, words};
use super::dabit::DaBits;
use super::party::Party;
use super::round::{Components, Delivered, Direct, Flat, Lane, Pair, Passenger, Rider, mul_term};
use super::share::ArithShare;
use super::sign::Operand;
use anyhow::{Result, ensure};
use ndarray::{ArrayD, IxDyn};
use std::borrow::Borrow;

fn shaped(shape: &[usize], f: Flat) -> ArithShare {
    let arr = |v| ArrayD::from_shape_vec(IxDyn(shape), v).expect("length matches shape");
    ArithShare {
        cur: arr(f.cur),
        next: arr(f.next),
    }
}

/// daBits for the first two rounds, then the products y ρ in the third; a pending operand
/// settles in the first.
struct GateRide<'y> {
    dabits: DaBits,
    ys: &'y [Pair<'y>],
    settle: Option<Settle>,
    /// The settled operand, gated after the ys.
    settled: Option<Flat>,
    products: Vec<Flat>,
}

impl Passenger for GateRide<'_> {
    fn rounds(&self) -> usize {
        self.dabits.rounds() + 1
    }

    fn lanes(&mut self, party: &Party, round: usize) -> Vec<Lane> {
        if round < self.dabits.rounds() {
            self.dabits.lanes(party, round)
        } else if round == self.dabits.rounds() {
            let rho = self.dabits.arith.as_ref().expect("daBits are ready");
            let settled = self.settled.as_ref().map(Flat::pair);
            self.ys
                .iter()
                .copied()
                .chain(settled)
                .map(|y| Lane::reshare(mul_term(y, rho.pair())))
                .collect()
        } else {
            vec![]
        }
    }

    fn direct(&mut self, _: &Party, round: usize) -> Direct {
        match (&self.settle, round) {
            (Some(settle), 0) => settle.direct(),
            _ => Direct::default(),
        }
    }

    fn deliver(&mut self, party: &Party, round: usize, shares: Vec<Components>, got: Delivered) {
        if round == 0
            && let Some(settle) = self.settle.take()
        {
            let share = settle.finish(got);
            self.settled = Some(Flat {
                cur: share.cur.into_iter().collect(),
                next: share.next.into_iter().collect(),
            });
        }
        if round < self.dabits.rounds() {
            self.dabits
                .deliver(party, round, shares, Delivered::default());
        } else if round == self.dabits.rounds() {
            self.products = shares.into_iter().map(Flat::from).collect();
        }
    }
}

impl Party {
    /// y * [x >= 0] for each y (shaped like x), exactly, for |x| < 2^(width-1). The ys may
    /// be borrowed: they are read in place.
    pub fn gate<Y: Borrow<ArithShare>>(
        &mut self,
        x: &ArithShare,
        ys: &[Y],
        width: u32,
    ) -> Result<Vec<ArithShare>> {
        if self.protocol() == Protocol::Pond {
            let ys: Vec<&ArithShare> = ys.iter().map(Borrow::borrow).collect();
            return self.pond_gate(x, &ys, width);
        }
        let y_words: Vec<_> = ys
            .iter()
            .map(|y| (words(&y.borrow().cur), words(&y.borrow().next)))
            .collect();
        let y_pairs: Vec<Pair> = y_words
            .iter()
            .map(|(cur, next)| Pair { cur, next })
            .collect();
        let shape = x.shape().to_vec();
        let (cur, next) = (words(&x.cur), words(&x.next));
        let x = Operand::Replicated(Pair {
            cur: &cur,
            next: &next,
        });
        self.gate_operand(x, &y_pairs, None, width, shape)
    }

    /// ReLU of a truncation's result before its second round: that round rides the
    /// comparison's first, which takes the truncation's terms as they are
    /// ([`Operand::Additive`]), so the truncation and the ReLU take one round less.
    pub fn relu_pending(&mut self, x: &Pending, width: u32) -> Result<ArithShare> {
        ensure!(
            width + x.frac_bits <= 64,
            "a comparison of {width} bits reads more than a pending truncation by 2^{} shares",
            x.frac_bits
        );
        let settle = Settle::begin(self, x);
        let term = words(&x.term);
        let operand = Operand::Additive {
            dealer: x.dealer,
            term: &term,
        };
        let shape = x.term.shape().to_vec();
        Ok(self
            .gate_operand(operand, &[], Some(settle), width, shape)?
            .remove(0))
    }

    /// y [x >= 0] for the ys, then for the settled operand if there is one.
    fn gate_operand(
        &mut self,
        x: Operand,
        y_pairs: &[Pair],
        settle: Option<Settle>,
        width: u32,
        shape: Vec<usize>,
    ) -> Result<Vec<ArithShare>> {
        let mut ride = GateRide {
            dabits: DaBits::draw(self, x.len()),
            ys: y_pairs,
            settle,
            settled: None,
            products: vec![],
        };
        let rho = ride.dabits.bits.clone();
        let mut rider = Rider::new(&mut ride);
        let delta = self.open_nonnegative(x, width, &rho, &mut rider)?;
        rider.finish(self)?;
        let settled = ride.settled.as_ref().map(Flat::pair);
        Ok(ride
            .products
            .into_iter()
            .zip(y_pairs.iter().copied().chain(settled))
            .map(|(mut gated, y)| {
                // δ y + (1 - 2δ) y ρ, in place of y ρ: y ρ where δ = 0, y - y ρ where δ = 1.
                for (out, y) in [(&mut gated.cur, y.cur), (&mut gated.next, y.next)] {
                    for (i, (o, y)) in out.iter_mut().zip(y).enumerate() {
                        if bit(&delta, i) {
                            *o = y.wrapping_sub(*o);
                        }
                    }
                }
                shaped(&shape, gated)
            })
            .collect())
    }

    /// ReLU(x) = x [x >= 0].
    pub fn relu(&mut self, x: &ArithShare, width: u32) -> Result<ArithShare> {
        Ok(self.gate(x, &[x], width)?.remove(0))
    }

    /// For 0 < x < 2^width: integer (0/1) sharings of [the top set bit of x is bit i] for
    /// i < width, stacked as `[width, ...x.shape]`: b_i = [x >= 2^i] for every i from one
    /// batch of comparisons at width + 1 bits, then b_i - b_(i+1). Zero gives all zeros.
    pub fn msb_onehot(&mut self, x: &ArithShare, width: u32) -> Result<ArithShare> {
        if self.protocol() == Protocol::Pond {
            return self.pond_msb_onehot(x, width);
        }
        let n = x.cur.len();
        let count = width as usize * n;
        let (cur, next) = (words(&x.cur), words(&x.next));
        // x - 2^i, position-major; the public 2^i comes off component 0 (party 0's `cur`,
        // party 2's `next`).
        let id = self.id();
        let minus = |c: &[u64], holds: bool| -> Vec<u64> {
            (0..width)
                .flat_map(|i| {
                    let t = if holds { 1u64 << i } else { 0 };
                    c.iter().map(move |v| v.wrapping_sub(t))
                })
                .collect()
        };
        let shifted = Flat {
            cur: minus(&cur, id == 0),
            next: minus(&next, id == 2),
        };
        let mut dabits = DaBits::draw(self, count);
        let rho = dabits.bits.clone();
        let mut rider = Rider::new(&mut dabits);
        let delta = self.open_nonnegative(
            Operand::Replicated(shifted.pair()),
            width + 1,
            &rho,
            &mut rider,
        )?;
        rider.finish(self)?;
        drop(shifted);
        // b = δ + (1 - 2δ) ρ, in place of ρ: ρ where δ = 0, 1 - ρ where δ = 1.
        let mut b = dabits.arith.expect("daBits ride the first rounds");
        for (out, holds_one) in [(&mut b.cur, id == 0), (&mut b.next, id == 2)] {
            for (i, o) in out.iter_mut().enumerate() {
                if bit(&delta, i) {
                    *o = u64::from(holds_one).wrapping_sub(*o);
                }
            }
            // b_i - b_(i+1), in place from the lowest position up.
            for i in 0..count - n {
                out[i] = out[i].wrapping_sub(out[i + n]);
            }
        }
        let mut shape = vec![width as usize];
        shape.extend_from_slice(x.shape());
        Ok(shaped(&shape, b))
    }
}
