//! daBits: random bits ρ that no single party knows, shared both as XOR components and
//! arithmetically. Opening b xor ρ for a shared bit b then turns b into an arithmetic value
//! without further interaction: b = δ + ρ - 2δρ.
//!
//! The XOR components come free from the PRF streams (component i from the key parties i-1
//! and i share); the arithmetic form needs two products, ρ0 xor ρ1 then xor ρ2, which ride
//! along the first two rounds of the protocol that uses them.

use super::bits::{BoolShare, unpack_bits};
use super::party::{Label, Link, Party};
use super::round::{Flat, Passenger};

pub(crate) struct DaBits {
    /// XOR components, one 0/1 word per bit.
    pub bits: BoolShare,
    xor01: Option<Flat>,
    /// The arithmetic sharing, once both rounds have been ridden.
    pub arith: Option<Flat>,
}

impl DaBits {
    pub fn draw(party: &mut Party, n: usize) -> DaBits {
        let nonce = party.begin_call();
        let words = n.div_ceil(64);
        let cur = unpack_bits(&party.stream(Link::Prev, nonce, Label::DaBit, words), n);
        let next = unpack_bits(&party.stream(Link::Next, nonce, Label::DaBit, words), n);
        DaBits {
            bits: BoolShare { cur, next },
            xor01: None,
            arith: None,
        }
    }

    /// The XOR components as arithmetic values (component j of the sharing of ρ_j alone).
    fn component(&self, party: &Party, j: usize) -> Flat {
        Flat {
            cur: self.bits.cur.clone(),
            next: self.bits.next.clone(),
        }
        .only(party, &[j])
    }

    /// Rounds of the host protocol this passenger needs.
    pub const ROUNDS: usize = 2;
}

impl Passenger for DaBits {
    fn terms(&mut self, party: &Party, round: usize) -> Vec<Vec<u64>> {
        match round {
            // ρ0 ρ1: only party 0 holds both components.
            0 => vec![if party.id() == 0 {
                self.bits
                    .cur
                    .iter()
                    .zip(&self.bits.next)
                    .map(|(a, b)| a & b)
                    .collect()
            } else {
                vec![0; self.bits.cur.len()]
            }],
            1 => vec![super::round::mul_term(
                self.xor01.as_ref().expect("after round 0"),
                &self.component(party, 2),
            )],
            _ => vec![],
        }
    }

    fn deliver(&mut self, party: &Party, round: usize, mut lanes: Vec<Flat>) {
        let minus_two = 2u64.wrapping_neg();
        match round {
            // ρ0 xor ρ1 = ρ0 + ρ1 - 2 ρ0 ρ1
            0 => {
                let both = self.component(party, 0).add(&self.component(party, 1));
                let n = both.cur.len();
                self.xor01 = Some(both.add(&lanes.remove(0).scale(&vec![minus_two; n])));
            }
            // ρ = t xor ρ2 = t + ρ2 - 2 t ρ2
            1 => {
                let t = self.xor01.take().expect("after round 0");
                let n = t.cur.len();
                self.arith = Some(
                    t.add(&self.component(party, 2))
                        .add(&lanes.remove(0).scale(&vec![minus_two; n])),
                );
            }
            _ => {}
        }
    }
}
