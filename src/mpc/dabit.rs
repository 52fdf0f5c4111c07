//! daBits: random bits ρ that no single party knows, shared both as XOR components and
//! arithmetically. Opening b xor ρ for a shared bit b then turns b into an arithmetic value
//! without further interaction: b = δ + ρ - 2δρ.
//!
//! The XOR components ρ0, ρ1, ρ2 come free from the PRF streams (component i from the key
//! parties i-1 and i share). Party 0 holds ρ0 and ρ1, so it deals t = ρ0 xor ρ1 as a ring
//! value (one element on the wire); ρ = t xor ρ2 = t + ρ2 - 2 t ρ2 then needs one product
//! whose terms only parties 1 and 2 hold (two elements). Both ride along the first two
//! rounds of the protocol that uses the daBits.

use super::bits::{BoolShare, unpack_bits};
use super::party::{Label, Link, Party};
use super::round::{Components, Flat, Group, Lane, Passenger, mul_term};

pub(crate) struct DaBits {
    n: usize,
    /// XOR components, packed 64 bits to a word.
    pub bits: BoolShare,
    dealt: Option<Flat>,
    /// The arithmetic sharing, once both rounds have been ridden.
    pub arith: Option<Flat>,
}

impl DaBits {
    pub fn draw(party: &mut Party, n: usize) -> DaBits {
        let nonce = party.begin_call();
        let words = n.div_ceil(64);
        DaBits {
            n,
            bits: BoolShare {
                cur: party.stream(Link::Prev, nonce, Label::DaBit, words),
                next: party.stream(Link::Next, nonce, Label::DaBit, words),
            },
            dealt: None,
            arith: None,
        }
    }

    /// ρ2 alone, as an arithmetic sharing nonzero only in component 2.
    fn rho2(&self, party: &Party) -> Flat {
        Flat {
            cur: unpack_bits(&self.bits.cur, self.n),
            next: unpack_bits(&self.bits.next, self.n),
        }
        .only(party, &[2])
    }
}

impl Passenger for DaBits {
    fn rounds(&self) -> usize {
        2
    }

    fn lanes(&mut self, party: &Party, round: usize) -> Vec<Lane> {
        match round {
            0 => {
                let t = if party.id() == 0 {
                    let both: Vec<u64> = (self.bits.cur.iter().zip(&self.bits.next))
                        .map(|(a, b)| a ^ b)
                        .collect();
                    unpack_bits(&both, self.n)
                } else {
                    vec![]
                };
                vec![Lane::deal(Group::Add, self.n, t)]
            }
            1 => {
                let t = self.dealt.as_ref().expect("after round 0");
                vec![Lane::reshare_one_two(
                    Group::Add,
                    self.n,
                    mul_term(t, &self.rho2(party)),
                )]
            }
            _ => vec![],
        }
    }

    fn deliver(&mut self, party: &Party, round: usize, mut shares: Vec<Components>) {
        match round {
            0 => self.dealt = Some(shares.remove(0).into()),
            1 => {
                let t = self.dealt.take().expect("after round 0");
                let t_rho2 = Flat::from(shares.remove(0));
                self.arith = Some(
                    t.add(&self.rho2(party))
                        .add(&t_rho2.scale(&vec![2u64.wrapping_neg(); self.n])),
                );
            }
            _ => {}
        }
    }
}
