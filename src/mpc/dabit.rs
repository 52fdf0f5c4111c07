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
use super::hooks::{self, Fault};
use super::party::{Label, Link, Party};
use super::round::{Components, Delivered, Flat, Lane, Passenger, mul_term};

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
        let nonce = match party.begin_call() {
            _ if hooks::broken(Fault::ReusedDaBit) => 0,
            nonce => nonce,
        };
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

    /// ρ2 alone, as an arithmetic sharing nonzero only in component 2 (party 2's `cur`,
    /// party 1's `next`).
    fn rho2(&self, party: &Party) -> Flat {
        let zeros = || vec![0; self.n];
        match party.id() {
            1 => Flat {
                cur: zeros(),
                next: unpack_bits(&self.bits.next, self.n),
            },
            2 => Flat {
                cur: unpack_bits(&self.bits.cur, self.n),
                next: zeros(),
            },
            _ => Flat {
                cur: zeros(),
                next: zeros(),
            },
        }
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
                vec![Lane::deal(self.n, t)]
            }
            1 => {
                let t = self.dealt.as_ref().expect("after round 0");
                // Party 0 holds no component of ρ2, so its term is zero.
                let term = match party.id() {
                    0 => vec![],
                    _ => mul_term(t.pair(), self.rho2(party).pair()),
                };
                vec![Lane::reshare_one_two(self.n, term)]
            }
            _ => vec![],
        }
    }

    fn deliver(&mut self, party: &Party, round: usize, mut shares: Vec<Components>, _: Delivered) {
        match round {
            0 => self.dealt = Some(shares.remove(0).into()),
            1 => {
                // ρ = t + ρ2 - 2 t ρ2, in place of t.
                let mut rho = self.dealt.take().expect("after round 0");
                let rho2 = self.rho2(party);
                let t_rho2 = shares.remove(0);
                for (r, (r2, tr2)) in [
                    (&mut rho.cur, (&rho2.cur, &t_rho2.0)),
                    (&mut rho.next, (&rho2.next, &t_rho2.1)),
                ] {
                    for (r, (a, b)) in r.iter_mut().zip(r2.iter().zip(tr2)) {
                        *r = r.wrapping_add(*a).wrapping_sub(b.wrapping_mul(2));
                    }
                }
                self.arith = Some(rho);
            }
            _ => {}
        }
    }
}
