//! Arithmetic to binary: the bits of x = x0 + x1 + x2 as an XOR sharing of 64-bit words.
//!
//! Each party already holds two of the three components, so the components are a free
//! XOR sharing of three summands. A carry-save step (one AND layer, maj(a,b,c) =
//! ((a^c) & (b^c)) ^ c) reduces them to two; then the generate bits (one AND layer) and a
//! Kogge-Stone parallel-prefix tree (six AND layers, log2 64) give every carry at once on
//! bit-sliced words. Eight rounds, whatever the tensor size.

use super::bits::BoolShare;
use super::party::Party;
use super::round::{Flat, Passenger};
use anyhow::Result;

fn as_bool(f: Flat) -> BoolShare {
    BoolShare {
        cur: f.cur,
        next: f.next,
    }
}

/// Counts the rounds of a host protocol and lets a passenger ride each one.
pub(crate) struct Rider<'p> {
    passenger: &'p mut dyn Passenger,
    round: usize,
}

impl<'p> Rider<'p> {
    pub fn new(passenger: &'p mut dyn Passenger) -> Self {
        Rider {
            passenger,
            round: 0,
        }
    }

    /// One round of ANDs for the host, plus whatever the passenger brings.
    pub fn and_round(
        &mut self,
        party: &mut Party,
        xor_terms: Vec<Vec<u64>>,
    ) -> Result<Vec<BoolShare>> {
        let add = self.passenger.terms(party, self.round);
        let (bools, flats) = party.reshare_round(xor_terms, add)?;
        self.passenger.deliver(party, self.round, flats);
        self.round += 1;
        Ok(bools)
    }
}

impl Party {
    pub(crate) fn bit_decompose(&mut self, x: &Flat, rider: &mut Rider) -> Result<BoolShare> {
        let sum = as_bool(x.clone());
        let a_xor_c = as_bool(x.only(self, &[0, 2]));
        let b_xor_c = as_bool(x.only(self, &[1, 2]));
        let c = as_bool(x.only(self, &[2]));
        let maj = rider
            .and_round(self, vec![a_xor_c.and_term(&b_xor_c)])?
            .remove(0)
            .xor(&c);
        let carry = maj.shl(1);
        let mut g = rider.and_round(self, vec![sum.and_term(&carry)])?.remove(0);
        let mut p = sum.xor(&carry);
        for level in 0..6u32 {
            let s = 1 << level;
            let last = level == 5;
            let mut lanes = vec![p.and_term(&g.shl(s))];
            if !last {
                lanes.push(p.and_term(&p.shl(s)));
            }
            let mut out = rider.and_round(self, lanes)?;
            g = g.xor(&out.remove(0));
            if !last {
                p = out.remove(0);
            }
        }
        Ok(sum.xor(&carry).xor(&g.shl(1)))
    }
}
