//! One round of resharing for several independent products at once, and the hook that lets
//! input-independent work ride along the rounds of a longer protocol.

use super::bits::{BoolShare, pack_bits, unpack_bits};
use super::party::{Label, Party};
use anyhow::Result;

/// One party's components (i, i+1) of an arithmetic sharing of a flat vector.
#[derive(Clone, Debug)]
pub(crate) struct Flat {
    pub cur: Vec<u64>,
    pub next: Vec<u64>,
}

impl Flat {
    /// A public vector as the sharing (v, 0, 0).
    pub fn public(party: &Party, v: Vec<u64>) -> Flat {
        let zeros = vec![0; v.len()];
        let (cur, next) = match party.id() {
            0 => (v, zeros),
            2 => (zeros, v),
            _ => (zeros.clone(), zeros),
        };
        Flat { cur, next }
    }

    /// Each element times a public integer.
    pub fn scale(&self, coef: &[u64]) -> Flat {
        let mul = |v: &[u64]| {
            v.iter()
                .zip(coef)
                .map(|(a, c)| a.wrapping_mul(*c))
                .collect()
        };
        Flat {
            cur: mul(&self.cur),
            next: mul(&self.next),
        }
    }

    pub fn add(&self, o: &Flat) -> Flat {
        let add = |a: &[u64], b: &[u64]| a.iter().zip(b).map(|(a, b)| a.wrapping_add(*b)).collect();
        Flat {
            cur: add(&self.cur, &o.cur),
            next: add(&self.next, &o.next),
        }
    }

    /// The components of a sharing that is nonzero only in the listed components, with
    /// component j equal to this party's copy of it: `cur` is component `id`, `next` is
    /// component `id + 1`.
    pub fn only(&self, party: &Party, components: &[usize]) -> Flat {
        let keep = |j: usize, v: &[u64]| {
            if components.contains(&j) {
                v.to_vec()
            } else {
                vec![0; v.len()]
            }
        };
        Flat {
            cur: keep(party.id(), &self.cur),
            next: keep(party.peer(1), &self.next),
        }
    }
}

/// This party's additive term of the element-wise product `x * y`.
pub(crate) fn mul_term(x: &Flat, y: &Flat) -> Vec<u64> {
    (0..x.cur.len())
        .map(|i| {
            x.cur[i]
                .wrapping_mul(y.cur[i].wrapping_add(y.next[i]))
                .wrapping_add(x.next[i].wrapping_mul(y.cur[i]))
        })
        .collect()
}

/// Input-independent work (such as daBit generation) that sends its products in the
/// messages of another protocol's rounds instead of rounds of its own.
pub(crate) trait Passenger {
    /// Additive product terms to reshare in round `round` of the host protocol.
    fn terms(&mut self, party: &Party, round: usize) -> Vec<Vec<u64>>;
    /// The resulting sharings, in the order the terms were given.
    fn deliver(&mut self, party: &Party, round: usize, lanes: Vec<Flat>);
}

/// Rides nothing.
pub(crate) struct NoPassenger;

impl Passenger for NoPassenger {
    fn terms(&mut self, _: &Party, _: usize) -> Vec<Vec<u64>> {
        vec![]
    }
    fn deliver(&mut self, _: &Party, _: usize, _: Vec<Flat>) {}
}

impl Party {
    /// One resharing round: each XOR lane is this party's term of an AND, each additive lane
    /// its term of a product; all are masked with fresh zero-sharings, sent to the previous
    /// party as one message, and completed with what the next party sends.
    pub(crate) fn reshare_round(
        &mut self,
        xor: Vec<Vec<u64>>,
        add: Vec<Vec<u64>>,
    ) -> Result<(Vec<BoolShare>, Vec<Flat>)> {
        let nonce = self.begin_call();
        let xor_len: usize = xor.iter().map(Vec::len).sum();
        let add_len: usize = add.iter().map(Vec::len).sum();
        let mut words: Vec<u64> = xor.iter().chain(&add).flatten().copied().collect();
        let xor_mask = self.xor_zero_share(nonce, Label::BoolZero, xor_len);
        let add_mask = self.zero_share(nonce, Label::Zero, add_len);
        words[..xor_len]
            .iter_mut()
            .zip(&xor_mask)
            .for_each(|(w, m)| *w ^= m);
        words[xor_len..]
            .iter_mut()
            .zip(&add_mask)
            .for_each(|(w, m)| *w = w.wrapping_add(*m));
        let theirs = self.exchange(&words)?;
        let mut at = 0;
        let mut take = |len: usize| {
            let range = at..at + len;
            at += len;
            (words[range.clone()].to_vec(), theirs[range].to_vec())
        };
        let bools = xor
            .iter()
            .map(|l| take(l.len()))
            .map(|(cur, next)| BoolShare { cur, next })
            .collect();
        let flats = add
            .iter()
            .map(|l| take(l.len()))
            .map(|(cur, next)| Flat { cur, next })
            .collect();
        Ok((bools, flats))
    }

    /// Opens XOR-shared single bits (0/1 words) to every party, in one round: each party
    /// sends the component its previous neighbour lacks.
    pub(crate) fn open_bits(&mut self, bits: &BoolShare) -> Result<Vec<u64>> {
        let n = bits.cur.len();
        self.count_rounds(1);
        let packed = pack_bits(&bits.next);
        self.send_to(self.peer(2), &packed)?;
        let third = unpack_bits(&self.recv_from(self.peer(1), packed.len())?, n);
        let opened: Vec<u64> = (0..n)
            .map(|k| bits.cur[k] ^ bits.next[k] ^ third[k])
            .collect();
        self.opened(&pack_bits(&opened));
        Ok(opened)
    }
}
