//! Multiplication and truncation of arithmetic shares.
//!
//! A product of two replicated sharings is computed locally as a 3-out-of-3 additive sharing
//! (each party one term); [`Party::reshare`] turns it back into a replicated sharing in one
//! round, and [`Party::truncate`] does so while dividing by 2^f, in two rounds.

use super::party::{Dealing, Label, Link, Party};
use super::round::Lane;
use super::share::ArithShare;
use anyhow::Result;
use ndarray::{ArrayD, Zip};

/// This party's additive term of B(x, y) for a bilinear map B (matmul, convolution,
/// element-wise product): B(x_i, y_i + y_{i+1}) + B(x_{i+1}, y_i). Summed over the three
/// parties the terms cover all nine cross products x_j y_k exactly once.
pub fn product_term(
    x: &ArithShare,
    y: &ArithShare,
    b: impl Fn(&ArrayD<u64>, &ArrayD<u64>) -> Result<ArrayD<u64>>,
) -> Result<ArrayD<u64>> {
    let y_sum = Zip::from(&y.cur)
        .and(&y.next)
        .map_collect(|&a, &b| a.wrapping_add(b));
    let mut term = b(&x.cur, &y_sum)?;
    let cross = b(&x.next, &y.cur)?;
    Zip::from(&mut term)
        .and(&cross)
        .for_each(|t, &c| *t = t.wrapping_add(c));
    Ok(term)
}

fn add_into(a: &mut [u64], b: &[u64]) {
    for (a, b) in a.iter_mut().zip(b) {
        *a = a.wrapping_add(*b);
    }
}

fn flat(a: &ArrayD<u64>) -> Vec<u64> {
    a.iter().copied().collect()
}

fn shaped(shape: &[usize], words: Vec<u64>) -> ArrayD<u64> {
    ArrayD::from_shape_vec(ndarray::IxDyn(shape), words).expect("length matches shape")
}

impl Party {
    /// Additive (one term per party) to replicated sharing: one round, one element per value
    /// from each party.
    pub fn reshare(&mut self, term: &ArrayD<u64>) -> Result<ArithShare> {
        let (cur, next) = self.round(vec![Lane::reshare(flat(term))])?.remove(0);
        Ok(ArithShare {
            cur: shaped(term.shape(), cur),
            next: shaped(term.shape(), next),
        })
    }

    /// Additive sharing of z to a replicated sharing of z / 2^f, off by at most one unit in the
    /// last place, with no large errors, for any |z| < 2^62.
    ///
    /// The probabilistic truncation of Escudero et al. (CRYPTO 2020) with a known top bit, run
    /// with one party as dealer (rotating per call): the dealer D makes r = r_A + r_B from the
    /// streams it shares with A and B, and hands A and B additive shares of r' = (r mod 2^63)
    /// `>> f` and of msb(r). Round 1: A and B learn c = z + 2^62 + r (perfectly masked by r,
    /// which is uniform in the whole ring and unknown to both). With b = msb(c) xor msb(r),
    /// z + 2^62 = (c mod 2^63) - (r mod 2^63) + b 2^63 exactly, so
    /// `(c mod 2^63) >> f - r' + b 2^(63-f)` is z/2^f + 2^(62-f) up to the carry out of the low
    /// f bits. Round 2: A and B re-randomise their additive shares of that into a replicated
    /// sharing whose other two components come from the streams D shares with them.
    pub fn truncate(&mut self, term: &ArrayD<u64>, frac_bits: u32) -> Result<ArithShare> {
        let nonce = self.begin_call();
        self.count_rounds(2);
        let n = term.len();
        let mut masked = flat(term);
        add_into(&mut masked, &self.zero_share(nonce, Label::Zero, n));
        let dealer = self.next_dealer(Dealing::Truncation);
        let (a, b) = ((dealer + 1) % 3, (dealer + 2) % 3);
        let f = frac_bits;
        const LOW63: u64 = (1 << 63) - 1;
        let top = 1u64 << (63 - f);
        let offset = 1u64 << (62 - f);
        let (cur, next) = if self.id() == dealer {
            // Streams shared with A (next party) and B (previous party).
            let r_a = self.stream(Link::Next, nonce, Label::TruncR, n);
            let r_b = self.stream(Link::Prev, nonce, Label::TruncR, n);
            let high_a = self.stream(Link::Next, nonce, Label::TruncRHigh, n);
            let msb_a = self.stream(Link::Next, nonce, Label::TruncMsb, n);
            let mut to_b = masked.clone();
            to_b.reserve(2 * n);
            for i in 0..n {
                let r = r_a[i].wrapping_add(r_b[i]);
                to_b.push(((r & LOW63) >> f).wrapping_sub(high_a[i]));
            }
            for i in 0..n {
                let r = r_a[i].wrapping_add(r_b[i]);
                to_b.push((r >> 63).wrapping_sub(msb_a[i]));
            }
            self.send_to(a, &masked)?;
            self.send_to(b, &to_b)?;
            // D holds components D (shared with B) and D+1 = A (shared with A).
            (
                self.stream(Link::Prev, nonce, Label::TruncOut, n),
                self.stream(Link::Next, nonce, Label::TruncOut, n),
            )
        } else {
            let is_a = self.id() == a;
            // The stream this party shares with the dealer.
            let to_dealer = if is_a { Link::Prev } else { Link::Next };
            let r_mine = self.stream(to_dealer, nonce, Label::TruncR, n);
            let mut mine = masked;
            add_into(&mut mine, &r_mine);
            if is_a {
                for v in mine.iter_mut() {
                    *v = v.wrapping_add(1 << 62);
                }
            }
            let other = if is_a { b } else { a };
            self.send_to(other, &mine)?;
            let from_other = self.recv_from(other, n)?;
            let from_dealer = self.recv_from(dealer, if is_a { n } else { 3 * n })?;
            let (high_mine, msb_mine) = if is_a {
                (
                    self.stream(to_dealer, nonce, Label::TruncRHigh, n),
                    self.stream(to_dealer, nonce, Label::TruncMsb, n),
                )
            } else {
                (
                    from_dealer[n..2 * n].to_vec(),
                    from_dealer[2 * n..].to_vec(),
                )
            };
            let out_mask = self.stream(to_dealer, nonce, Label::TruncOut, n);
            let c: Vec<u64> = (0..n)
                .map(|i| {
                    mine[i]
                        .wrapping_add(from_other[i])
                        .wrapping_add(from_dealer[i])
                })
                .collect();
            // What this party learns: c without the half of the mask it knows itself.
            self.opened(
                &c.iter()
                    .zip(&r_mine)
                    .map(|(c, r)| c.wrapping_sub(*r))
                    .collect::<Vec<_>>(),
            );
            let mut y: Vec<u64> = (0..n)
                .map(|i| {
                    let c = c[i];
                    let c_msb = c >> 63;
                    // b = c_msb xor r_msb = c_msb + (1 - 2 c_msb) r_msb, shared additively.
                    let sign = 1u64.wrapping_sub(2 * c_msb);
                    let mut y = top
                        .wrapping_mul(sign.wrapping_mul(msb_mine[i]))
                        .wrapping_sub(high_mine[i]);
                    if is_a {
                        y = y
                            .wrapping_add((c & LOW63) >> f)
                            .wrapping_add(top.wrapping_mul(c_msb))
                            .wrapping_sub(offset);
                    }
                    y.wrapping_sub(out_mask[i])
                })
                .collect();
            self.send_to(other, &y)?;
            add_into(&mut y, &self.recv_from(other, n)?);
            // A holds (A's mask, the joint component); B holds (the joint component, B's mask).
            if is_a { (out_mask, y) } else { (y, out_mask) }
        };
        Ok(ArithShare {
            cur: shaped(term.shape(), cur),
            next: shaped(term.shape(), next),
        })
    }
}
