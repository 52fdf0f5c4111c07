//! Arithmetic to binary: bits of x = x0 + x1 + x2 as XOR sharings.
//!
//! Party 0 holds x0 and x1, so it deals their sum a as an XOR sharing (one element per value
//! on the wire, round 0); b = x2 is component 2 of a free XOR sharing, held by parties 1 and
//! 2. An adder on a and b gives the bits of x: the generate bits a AND b have terms that
//! only parties 1 and 2 hold (two elements, round 1), and a parallel-prefix tree the
//! carries, one AND layer per round.
//!
//! Two layouts: [`Party::bit_decompose`] computes every bit of every value (bit-sliced
//! words, a Kogge-Stone tree: 8 rounds); [`Party::sign_bits`] only the top bit of the low
//! `width` bits, on bit planes, with a tree that keeps only the groups that reach the top
//! carry, so it sends a few hundred bits per value instead of dozens of words.

use super::bits::{BoolShare, to_planes};
use super::party::Party;
use super::round::{Group, Lane, Pair, Rider};
use anyhow::{Result, ensure};

impl Party {
    /// The summands a = x0 + x1 and b = x2 of x, each encoded by `encode` into `len` words,
    /// as XOR sharings; round 0 of `rider` deals a.
    fn summands(
        &mut self,
        x: Pair,
        len: usize,
        encode: impl Fn(&[u64]) -> Vec<u64>,
        rider: &mut Rider,
    ) -> Result<(BoolShare, BoolShare)> {
        let a_values = if self.id() == 0 {
            let sum: Vec<u64> = x
                .cur
                .iter()
                .zip(x.next)
                .map(|(a, b)| a.wrapping_add(*b))
                .collect();
            encode(&sum)
        } else {
            vec![]
        };
        let a = rider
            .round(self, vec![Lane::deal(Group::Xor, len, a_values)])?
            .remove(0)
            .into();
        let zeros = || vec![0; len];
        let b = match self.id() {
            0 => (zeros(), zeros()),
            1 => (zeros(), encode(x.next)),
            _ => (encode(x.cur), zeros()),
        };
        Ok((a, b.into()))
    }

    /// Generate bits a AND b for summands from [`Party::summands`], in one round: party 0
    /// holds no component of b, so its AND term is zero.
    fn generate(&mut self, a: &BoolShare, b: &BoolShare, rider: &mut Rider) -> Result<BoolShare> {
        let term = a.and_term(b);
        Ok(rider
            .round(
                self,
                vec![Lane::reshare_one_two(Group::Xor, term.len(), term)],
            )?
            .remove(0)
            .into())
    }

    /// Every bit of every value, bit-sliced: 8 rounds.
    pub(crate) fn bit_decompose(&mut self, x: Pair, rider: &mut Rider) -> Result<BoolShare> {
        let (a, b) = self.summands(x, x.cur.len(), <[u64]>::to_vec, rider)?;
        let mut g = self.generate(&a, &b, rider)?;
        let sum = a.xor(&b);
        let mut p = sum.clone();
        for level in 0..6u32 {
            let s = 1 << level;
            let last = level == 5;
            let mut lanes = vec![Lane::reshare(Group::Xor, p.and_term(&g.shl(s)))];
            if !last {
                lanes.push(Lane::reshare(Group::Xor, p.and_term(&p.shl(s))));
            }
            let mut out = rider.round(self, lanes)?;
            g = g.xor(&out.remove(0).into());
            if !last {
                p = out.remove(0).into();
            }
        }
        Ok(sum.xor(&g.shl(1)))
    }

    /// The sign bit of each value, XOR-shared and packed 64 to a word (bits past the end are
    /// garbage), exact for |x| < 2^(width-1): bit width-1 of a + b mod 2^width. Rounds: 2 +
    /// ceil(log2(width - 1)).
    pub(crate) fn sign_bits(
        &mut self,
        x: Pair,
        width: u32,
        rider: &mut Rider,
    ) -> Result<BoolShare> {
        ensure!(
            (2..=64).contains(&width),
            "comparison width {width} is outside 2..=64"
        );
        let words = x.cur.len().div_ceil(64);
        let top = width as usize - 1;
        let (mut a, mut b) =
            self.summands(x, width as usize * words, |v| to_planes(v, width), rider)?;
        let top_bits = a
            .planes(words, top..top + 1)
            .xor(&b.planes(words, top..top + 1));
        // The low planes are what the tree reads.
        a = a.planes(words, 0..top);
        b = b.planes(words, 0..top);
        // Group j of the tree covers a run of low bits; g is whether the run generates a
        // carry, p whether it propagates one (unused for the lowest run).
        let mut g = self.generate(&a, &b, rider)?;
        let mut p = a.xor(&b);
        drop((a, b));
        let mut groups = top;
        while groups > 1 {
            let pairs = groups / 2;
            // Pair j merges groups 2j (lower) and 2j + 1: the carry it generates is
            // g[2j+1] ^ p[2j+1] g[2j], and it propagates p[2j+1] p[2j] (unused for pair 0).
            let merged = |from: usize| (from..pairs).map(|j| (2 * j + 1, 2 * j));
            let mut out = rider.round(
                self,
                vec![
                    Lane::reshare(Group::Xor, p.and_term_planes(&g, words, merged(0))),
                    Lane::reshare(Group::Xor, p.and_term_planes(&p, words, merged(1))),
                ],
            )?;
            let carried: BoolShare = out.remove(0).into();
            let spans: BoolShare = out.remove(0).into();
            let mut next_g = carried.xor_planes(&g, words, (0..pairs).map(|j| 2 * j + 1));
            let mut next_p = BoolShare {
                cur: vec![0; words],
                next: vec![0; words],
            }
            .append(&spans);
            if groups % 2 == 1 {
                next_g = next_g.append(&g.planes(words, groups - 1..groups));
                next_p = next_p.append(&p.planes(words, groups - 1..groups));
            }
            (g, p, groups) = (next_g, next_p, pairs + groups % 2);
        }
        Ok(top_bits.xor(&g))
    }
}
