//! Comparison with zero under Pond, and the gates and top-bit one-hots built on it.
//!
//! In one round the servers open c = x + r (mod 2^w) for a mask r the producer draws from
//! their keys, so x = c + v with v = -r known to the producer alone: ABY3's dealer-assisted
//! comparison ([`crate::mpc::sign`]) then runs with the producer as dealer (building its
//! tables from v), server 0 reading them at c and server 1 holding their masks. The top bit
//! of v enters as XOR shares the producer deals; the result [x >= 0] xor ρ is opened to the
//! servers only, ρ being a daBit the producer dealt. The same round carries what turns the
//! opened bit into products: ρ's arithmetic shares and, for each gated y, the opening of
//! y - a and the shares of a ρ, so y [x >= 0] = δ y + (1 - 2δ) y ρ needs no further round.

use super::{PRODUCER, producer_link};
use crate::mpc::Party;
use crate::mpc::bits::{
    BoolShare, bit, fields_words, pack_bits, pack_fields, unpack_bits, unpack_fields, words,
};
use crate::mpc::party::Label;
use crate::mpc::round::{Components, Delivered, Lane, Passenger, Rider};
use crate::mpc::share::ArithShare;
use crate::mpc::sign::Operand;
use anyhow::{Result, ensure};
use ndarray::{ArrayD, IxDyn};

/// No work rides along a Pond comparison's rounds: its own first round carried it.
struct Alone;

impl Passenger for Alone {
    fn rounds(&self) -> usize {
        0
    }
    fn lanes(&mut self, _: &Party, _: usize) -> Vec<Lane> {
        vec![]
    }
    fn deliver(&mut self, _: &Party, _: usize, _: Vec<Components>, _: Delivered) {}
}

/// A comparison's outcome at one party: δ = [x >= 0] xor ρ opened (packed bits), this
/// party's arithmetic share of ρ, and of y ρ for each gated y (zeros at the producer).
struct Compared {
    delta: Vec<u64>,
    rho: Vec<u64>,
    products: Vec<Vec<u64>>,
}

impl Party {
    /// [x >= 0] xor ρ for the servers' shares `x` at `width` bits (exact for
    /// |x| < 2^(width-1)), with the daBit ρ and the products y ρ for each of `ys`.
    fn pond_compare(&mut self, x: &[u64], width: u32, ys: &[&[u64]]) -> Result<Compared> {
        ensure!(
            (2..=64).contains(&width),
            "comparison width {width} is outside 2..=64"
        );
        let n = x.len();
        let words = n.div_ceil(64);
        let low = u64::MAX >> (64 - width);
        let nonce = self.begin_call();
        self.count_rounds(1);
        let id = self.id();
        let lane = |k: usize| nonce + ((k as u64 + 1) << 8);
        let stream = |party: &Party, server: usize, label: Label, k: usize, len: usize| {
            party.stream(producer_link(id, server), lane(k), label, len)
        };
        // The mask r of x (lane 0), and per y its mask a (lane k + 1): a server's half, both
        // halves summed at the producer.
        let mask = |party: &Party, label, k: usize| party.mask_words(nonce, k as u64 + 1, label, n);
        if id == PRODUCER {
            let v: Vec<u64> = mask(self, Label::CompareMask, 0)
                .iter()
                .map(|r| r.wrapping_neg())
                .collect();
            let top0 = stream(self, 0, Label::CompareTop, 0, words);
            let top = pack_bits(&v.iter().map(|v| v >> (width - 1)).collect::<Vec<_>>());
            let mut dealt: Vec<u64> = top.iter().zip(&top0).map(|(t, m)| t ^ m).collect();
            let xor0 = stream(self, 0, Label::DaBitXor, 0, words);
            let xor1 = stream(self, 1, Label::DaBitXor, 0, words);
            let rho: Vec<u64> = unpack_bits(
                &xor0
                    .iter()
                    .zip(&xor1)
                    .map(|(a, b)| a ^ b)
                    .collect::<Vec<_>>(),
                n,
            );
            let rho0 = stream(self, 0, Label::DaBitArith, 0, n);
            dealt.extend(rho.iter().zip(&rho0).map(|(r, r0)| r.wrapping_sub(*r0)));
            for k in 0..ys.len() {
                let a = mask(self, Label::TripleX, k + 1);
                let c0 = stream(self, 0, Label::TripleProduct, k + 1, n);
                dealt.extend((0..n).map(|i| a[i].wrapping_mul(rho[i]).wrapping_sub(c0[i])));
            }
            self.send_to(1, &dealt)?;
            let none = BoolShare {
                cur: vec![0; words],
                next: vec![0; words],
            };
            let operand = Operand::Additive {
                dealer: PRODUCER,
                term: &v,
            };
            self.open_nonnegative(operand, width, &none, &mut Rider::new(&mut Alone))?;
            return Ok(Compared {
                delta: vec![0; words],
                rho: vec![0; n],
                products: vec![vec![0; n]; ys.len()],
            });
        }
        let other = 1 - id;
        let r = mask(self, Label::CompareMask, 0);
        let c_mine: Vec<u64> = x.iter().zip(&r).map(|(x, r)| x.wrapping_add(*r)).collect();
        let mut sent = pack_fields(&c_mine, width);
        let masks: Vec<Vec<u64>> = (0..ys.len())
            .map(|k| mask(self, Label::TripleX, k + 1))
            .collect();
        for (y, a) in ys.iter().zip(&masks) {
            sent.extend(y.iter().zip(a).map(|(y, a)| y.wrapping_sub(*a)));
        }
        self.send_to(other, &sent)?;
        let got = self.recv_from(other, sent.len())?;
        let c_words = fields_words(n, width);
        let theirs = unpack_fields(&got[..c_words], width, n);
        let c: Vec<u64> = (c_mine.iter().zip(&theirs))
            .map(|(a, b)| a.wrapping_add(*b) & low)
            .collect();
        let opened_ys: Vec<Vec<u64>> = (0..ys.len())
            .map(|k| {
                let (mine, theirs) = (&sent[c_words + k * n..], &got[c_words + k * n..]);
                (0..n).map(|i| mine[i].wrapping_add(theirs[i])).collect()
            })
            .collect();
        // What a server learns from c and the y - a is the other server's message alone
        // (the rest is its own): its view holds that already.
        let (top, rho, dealt_products) = if id == 0 {
            let products: Vec<Vec<u64>> = (0..ys.len())
                .map(|k| stream(self, 0, Label::TripleProduct, k + 1, n))
                .collect();
            (
                stream(self, 0, Label::CompareTop, 0, words),
                stream(self, 0, Label::DaBitArith, 0, n),
                products,
            )
        } else {
            let dealt = self.recv_from(PRODUCER, words + n * (1 + ys.len()))?;
            let (top, rest) = dealt.split_at(words);
            let (rho, products) = rest.split_at(n);
            (
                top.to_vec(),
                rho.to_vec(),
                products.chunks(n).map(<[u64]>::to_vec).collect(),
            )
        };
        // Server 0 reads the tables at c with its share of v's top bit flipped in; server
        // 1's term is that share alone, in the top bit (all it reads of its term).
        let term: Vec<u64> = (0..n)
            .map(|i| {
                let t = u64::from(bit(&top, i)) << (width - 1);
                if id == 0 { c[i] ^ t } else { t }
            })
            .collect();
        let xor = stream(self, id, Label::DaBitXor, 0, words);
        let zeros = vec![0; words];
        let share = if id == 0 {
            BoolShare {
                cur: xor,
                next: zeros,
            }
        } else {
            BoolShare {
                cur: zeros,
                next: xor,
            }
        };
        let operand = Operand::Additive {
            dealer: PRODUCER,
            term: &term,
        };
        let delta = self.open_nonnegative(operand, width, &share, &mut Rider::new(&mut Alone))?;
        let products = (opened_ys.iter().zip(dealt_products))
            .map(|(e, c): (&Vec<u64>, Vec<u64>)| {
                (0..n)
                    .map(|i| e[i].wrapping_mul(rho[i]).wrapping_add(c[i]))
                    .collect()
            })
            .collect();
        Ok(Compared {
            delta,
            rho,
            products,
        })
    }

    /// Pond's y [x >= 0] for each y (shaped like x).
    pub(crate) fn pond_gate(
        &mut self,
        x: &ArithShare,
        ys: &[&ArithShare],
        width: u32,
    ) -> Result<Vec<ArithShare>> {
        // The shares are read in place (the interpreter's arrays are contiguous).
        let y_words: Vec<_> = ys.iter().map(|y| words(&y.cur)).collect();
        let y_refs: Vec<&[u64]> = y_words.iter().map(|y| y.as_ref()).collect();
        let compared = self.pond_compare(&words(&x.cur), width, &y_refs)?;
        let shape = x.shape();
        let producer = self.id() == PRODUCER;
        Ok(compared
            .products
            .into_iter()
            .zip(y_refs)
            .map(|(mut gated, y)| {
                // δ y + (1 - 2δ) y ρ, in place of y ρ.
                for (i, (o, y)) in gated.iter_mut().zip(y).enumerate() {
                    if bit(&compared.delta, i) && !producer {
                        *o = y.wrapping_sub(*o);
                    }
                }
                ArithShare::additive(
                    ArrayD::from_shape_vec(IxDyn(shape), gated).expect("length matches"),
                )
            })
            .collect())
    }

    /// Pond's [the top set bit of x is bit i] for 0 < x < 2^width, stacked as
    /// `[width, ...x.shape]` (see [`Party::msb_onehot`]).
    pub(crate) fn pond_msb_onehot(&mut self, x: &ArithShare, width: u32) -> Result<ArithShare> {
        let n = x.cur.len();
        let id = self.id();
        // x - 2^i, position-major; the public 2^i comes off server 0's share.
        let shifted: Vec<u64> = (0..width)
            .flat_map(|i| {
                let t = if id == 0 { 1u64 << i } else { 0 };
                x.cur.iter().map(move |v| v.wrapping_sub(t))
            })
            .collect();
        let compared = self.pond_compare(&shifted, width + 1, &[])?;
        // b = δ + (1 - 2δ) ρ, in place of ρ: ρ where δ = 0, 1 - ρ (server 0) or -ρ where 1.
        let mut b = compared.rho;
        if id != PRODUCER {
            for (i, o) in b.iter_mut().enumerate() {
                if bit(&compared.delta, i) {
                    *o = u64::from(id == 0).wrapping_sub(*o);
                }
            }
            for i in 0..b.len() - n {
                b[i] = b[i].wrapping_sub(b[i + n]);
            }
        }
        let mut shape = vec![width as usize];
        shape.extend_from_slice(x.shape());
        Ok(ArithShare::additive(
            ArrayD::from_shape_vec(IxDyn(&shape), b).expect("length matches"),
        ))
    }
}
