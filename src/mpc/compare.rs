//! Comparison with zero and what is built on it: gating values by a sign (ReLU, select,
//! max) and locating the top set bit (normalisation for reciprocals, square roots, logs).
//!
//! `gate`: the sign bit of x comes from the A2B conversion (8 rounds); bit injection uses a
//! daBit ρ: δ = [x >= 0] xor ρ is opened and y [x >= 0] = δ y + (1 - 2δ)(y ρ). The daBit
//! and the y ρ products ride along the A2B rounds, so a gate costs 9 rounds for any number
//! of values gated by the same comparison.

use super::a2b::Rider;
use super::bits::BoolShare;
use super::dabit::DaBits;
use super::party::Party;
use super::round::{Flat, Passenger, mul_term};
use super::share::ArithShare;
use anyhow::Result;
use ndarray::{ArrayD, IxDyn};

fn flat(x: &ArithShare) -> Flat {
    Flat {
        cur: x.cur.iter().copied().collect(),
        next: x.next.iter().copied().collect(),
    }
}

fn shaped(shape: &[usize], f: Flat) -> ArithShare {
    let arr = |v| ArrayD::from_shape_vec(IxDyn(shape), v).expect("length matches shape");
    ArithShare {
        cur: arr(f.cur),
        next: arr(f.next),
    }
}

/// daBits for the first two rounds, then the products y ρ in the third.
struct GateRide {
    dabits: DaBits,
    ys: Vec<Flat>,
    products: Vec<Flat>,
}

impl Passenger for GateRide {
    fn terms(&mut self, party: &Party, round: usize) -> Vec<Vec<u64>> {
        if round < DaBits::ROUNDS {
            self.dabits.terms(party, round)
        } else if round == DaBits::ROUNDS {
            let rho = self.dabits.arith.as_ref().expect("daBits are ready");
            self.ys.iter().map(|y| mul_term(y, rho)).collect()
        } else {
            vec![]
        }
    }

    fn deliver(&mut self, party: &Party, round: usize, lanes: Vec<Flat>) {
        if round < DaBits::ROUNDS {
            self.dabits.deliver(party, round, lanes);
        } else if round == DaBits::ROUNDS {
            self.products = lanes;
        }
    }
}

impl Party {
    /// y * [x >= 0] for each y (shaped like x), exactly, for |x| < 2^63: 9 rounds.
    pub fn gate(&mut self, x: &ArithShare, ys: &[ArithShare]) -> Result<Vec<ArithShare>> {
        let n = x.cur.len();
        let dabits = DaBits::draw(self, n);
        let mut ride = GateRide {
            dabits,
            ys: ys.iter().map(flat).collect(),
            products: vec![],
        };
        let bits = self.bit_decompose(&flat(x), &mut Rider::new(&mut ride))?;
        let nonnegative = bits.bit(63).not(self, 1);
        let delta = self.open_bits(&nonnegative.xor(&ride.dabits.bits))?;
        let one_minus_2delta: Vec<u64> = delta.iter().map(|&d| 1u64.wrapping_sub(2 * d)).collect();
        Ok(ride
            .ys
            .iter()
            .zip(&ride.products)
            .map(|(y, y_rho)| {
                shaped(
                    x.shape(),
                    y.scale(&delta).add(&y_rho.scale(&one_minus_2delta)),
                )
            })
            .collect())
    }

    /// ReLU(x) = x [x >= 0].
    pub fn relu(&mut self, x: &ArithShare) -> Result<ArithShare> {
        Ok(self.gate(x, std::slice::from_ref(x))?.remove(0))
    }

    /// For 0 < x < 2^width: integer (0/1) sharings of [the top set bit of x is bit i] for
    /// i < width, stacked as `[width, ...x.shape]`. A2B (8 rounds), a prefix OR from the
    /// top (6 rounds) and a daBit opening (1 round): 15 rounds. Zero gives all zeros.
    pub fn msb_onehot(&mut self, x: &ArithShare, width: u32) -> Result<ArithShare> {
        let n = x.cur.len();
        let width_n = width as usize * n;
        let mut dabits = DaBits::draw(self, width_n);
        let mut bits = self.bit_decompose(&flat(x), &mut Rider::new(&mut dabits))?;
        let mut no_passenger = super::round::NoPassenger;
        let mut rider = Rider::new(&mut no_passenger);
        for level in 0..6u32 {
            // a | b = a ^ b ^ (a & b)
            let shifted = bits.shr(1 << level);
            let and = rider
                .and_round(self, vec![bits.and_term(&shifted)])?
                .remove(0);
            bits = bits.xor(&shifted).xor(&and);
        }
        let onehot = bits.xor(&bits.shr(1));
        // Position-major, to match the stacked layout.
        let pick = |words: &[u64]| -> Vec<u64> {
            (0..width)
                .flat_map(|i| words.iter().map(move |w| (w >> i) & 1))
                .collect()
        };
        let positions = BoolShare {
            cur: pick(&onehot.cur),
            next: pick(&onehot.next),
        };
        let delta = self.open_bits(&positions.xor(&dabits.bits))?;
        let rho = dabits.arith.expect("daBits ride the first rounds");
        let one_minus_2delta: Vec<u64> = delta.iter().map(|&d| 1u64.wrapping_sub(2 * d)).collect();
        let h = rho.scale(&one_minus_2delta).add(&Flat::public(self, delta));
        let mut shape = vec![width as usize];
        shape.extend_from_slice(x.shape());
        Ok(shaped(&shape, h))
    }
}
