//! Comparison with zero and what is built on it: gating values by a sign (ReLU, select,
//! max) and locating the top set bit (normalisation for reciprocals, square roots, logs).
//!
//! `gate`: the sign bit of x comes from the bit-plane carry tree ([`Party::sign_bits`]);
//! bit injection uses a daBit ρ: δ = [x >= 0] xor ρ is opened and
//! y [x >= 0] = δ y + (1 - 2δ)(y ρ). The daBit and the y ρ products ride along the first
//! three rounds of the carry tree, so a gate costs 3 + ceil(log2(width - 1)) rounds (9 at
//! the default width of 48 bits) for any number of values gated by the same comparison.

use super::bits::{BoolShare, pack_bits};
use super::dabit::DaBits;
use super::party::Party;
use super::round::{Components, Flat, Group, Lane, NoPassenger, Pair, Passenger, Rider, mul_term};
use super::share::ArithShare;
use anyhow::Result;
use ndarray::{ArrayD, IxDyn};
use std::borrow::{Borrow, Cow};

/// A share's components in memory order, borrowed when they are contiguous (as the
/// interpreter's arrays are), copied otherwise.
fn words(x: &ArrayD<u64>) -> Cow<'_, [u64]> {
    match x.as_slice() {
        Some(words) => Cow::Borrowed(words),
        None => Cow::Owned(x.iter().copied().collect()),
    }
}

fn shaped(shape: &[usize], f: Flat) -> ArithShare {
    let arr = |v| ArrayD::from_shape_vec(IxDyn(shape), v).expect("length matches shape");
    ArithShare {
        cur: arr(f.cur),
        next: arr(f.next),
    }
}

/// Bit `i` of bits packed 64 to a word.
fn bit(packed: &[u64], i: usize) -> bool {
    (packed[i / 64] >> (i % 64)) & 1 == 1
}

/// daBits for the first two rounds, then the products y ρ in the third.
struct GateRide<'y> {
    dabits: DaBits,
    ys: &'y [Pair<'y>],
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
            self.ys
                .iter()
                .map(|y| Lane::reshare(Group::Add, mul_term(*y, rho.pair())))
                .collect()
        } else {
            vec![]
        }
    }

    fn deliver(&mut self, party: &Party, round: usize, shares: Vec<Components>) {
        if round < self.dabits.rounds() {
            self.dabits.deliver(party, round, shares);
        } else if round == self.dabits.rounds() {
            self.products = shares.into_iter().map(Flat::from).collect();
        }
    }
}

impl Party {
    /// Opens `bits` xor ρ for daBits ρ: δ, packed 64 to a word, with which b = δ + (1 - 2δ) ρ
    /// and b y = δ y + (1 - 2δ) ρ y.
    fn open_masked(&mut self, bits: &BoolShare, dabits: &DaBits, n: usize) -> Result<Vec<u64>> {
        self.open_packed(&bits.xor(&dabits.bits), n)
    }

    /// y * [x >= 0] for each y (shaped like x), exactly, for |x| < 2^(width-1). The ys may
    /// be borrowed: they are read in place.
    pub fn gate<Y: Borrow<ArithShare>>(
        &mut self,
        x: &ArithShare,
        ys: &[Y],
        width: u32,
    ) -> Result<Vec<ArithShare>> {
        let n = x.cur.len();
        let y_words: Vec<_> = ys
            .iter()
            .map(|y| (words(&y.borrow().cur), words(&y.borrow().next)))
            .collect();
        let y_pairs: Vec<Pair> = y_words
            .iter()
            .map(|(cur, next)| Pair { cur, next })
            .collect();
        let mut ride = GateRide {
            dabits: DaBits::draw(self, n),
            ys: &y_pairs,
            products: vec![],
        };
        let mut rider = Rider::new(&mut ride);
        let (cur, next) = (words(&x.cur), words(&x.next));
        let sign = self.sign_bits(
            Pair {
                cur: &cur,
                next: &next,
            },
            width,
            &mut rider,
        )?;
        rider.finish(self)?;
        let nonnegative = sign.not(self, !0);
        let delta = self.open_masked(&nonnegative, &ride.dabits, n)?;
        Ok(ride
            .products
            .into_iter()
            .zip(&y_pairs)
            .map(|(mut gated, y)| {
                // δ y + (1 - 2δ) y ρ, in place of y ρ: y ρ where δ = 0, y - y ρ where δ = 1.
                for (out, y) in [(&mut gated.cur, y.cur), (&mut gated.next, y.next)] {
                    for (i, (o, y)) in out.iter_mut().zip(y).enumerate() {
                        if bit(&delta, i) {
                            *o = y.wrapping_sub(*o);
                        }
                    }
                }
                shaped(x.shape(), gated)
            })
            .collect())
    }

    /// ReLU(x) = x [x >= 0].
    pub fn relu(&mut self, x: &ArithShare, width: u32) -> Result<ArithShare> {
        Ok(self.gate(x, &[x], width)?.remove(0))
    }

    /// For 0 < x < 2^width: integer (0/1) sharings of [the top set bit of x is bit i] for
    /// i < width, stacked as `[width, ...x.shape]`. A2B (8 rounds), a prefix OR from the
    /// top (6 rounds) and a daBit opening (1 round): 15 rounds. Zero gives all zeros.
    pub fn msb_onehot(&mut self, x: &ArithShare, width: u32) -> Result<ArithShare> {
        let n = x.cur.len();
        let width_n = width as usize * n;
        let mut dabits = DaBits::draw(self, width_n);
        let mut rider = Rider::new(&mut dabits);
        let (cur, next) = (words(&x.cur), words(&x.next));
        let mut bits = self.bit_decompose(
            Pair {
                cur: &cur,
                next: &next,
            },
            &mut rider,
        )?;
        rider.finish(self)?;
        let mut no_passenger = NoPassenger;
        let mut rider = Rider::new(&mut no_passenger);
        for level in 0..6u32 {
            // a | b = a ^ b ^ (a & b)
            let shifted = bits.shr(1 << level);
            let and: BoolShare = rider
                .round(
                    self,
                    vec![Lane::reshare(Group::Xor, bits.and_term(&shifted))],
                )?
                .remove(0)
                .into();
            bits = bits.xor(&shifted).xor(&and);
        }
        let onehot = bits.xor(&bits.shr(1));
        // Position-major, to match the stacked layout.
        let pick = |words: &[u64]| -> Vec<u64> {
            pack_bits(
                &(0..width)
                    .flat_map(|i| words.iter().map(move |w| (w >> i) & 1))
                    .collect::<Vec<_>>(),
            )
        };
        let positions = BoolShare {
            cur: pick(&onehot.cur),
            next: pick(&onehot.next),
        };
        let delta = self.open_masked(&positions, &dabits, width_n)?;
        // h = δ + (1 - 2δ) ρ, in place of ρ: ρ where δ = 0, 1 - ρ where δ = 1 (the public 1
        // is component 0: party 0's `cur`, party 2's `next`).
        let mut h = dabits.arith.expect("daBits ride the first rounds");
        let id = self.id();
        for (out, holds_one) in [(&mut h.cur, id == 0), (&mut h.next, id == 2)] {
            for (i, o) in out.iter_mut().enumerate() {
                if bit(&delta, i) {
                    *o = u64::from(holds_one).wrapping_sub(*o);
                }
            }
        }
        let mut shape = vec![width as usize];
        shape.extend_from_slice(x.shape());
        Ok(shaped(&shape, h))
    }
}
