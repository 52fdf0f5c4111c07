//! Multiplication and truncation of arithmetic shares.
//!
//! A product of two replicated sharings is computed locally as a 3-out-of-3 additive sharing
//! (each party one term); [`Party::reshare`] turns it back into a replicated sharing in one
//! round, and [`Party::truncate`] does so while dividing by 2^f, in two rounds, the second
//! of which ([`Settle`]) may ride a later protocol's first round.

use super::Protocol;
use super::bits::{fields_words, pack_fields, unpack_fields};
use super::hooks::{self, Fault};
use super::party::{Dealing, Label, Link, Party};
use super::pond::PRODUCER;
use super::round::{Delivered, Direct, Lane};
use super::share::ArithShare;
use anyhow::{Result, ensure};
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

/// One factor of a product of secrets: a share, or under Pond a share masked once for the
/// session (`Party::mask_for_session`), which the product need not open again.
#[derive(Clone, Copy)]
pub enum Factor<'a> {
    Share(&'a ArithShare),
    Masked(&'a ArithShare),
}

/// A bilinear map on ring tensors (matmul, convolution, element-wise product), as the
/// interpreter hands it to the protocol.
pub type RingMap<'b> = &'b dyn Fn(&ArrayD<u64>, &ArrayD<u64>) -> Result<ArrayD<u64>>;

fn add_into(a: &mut [u64], b: &[u64]) {
    for (a, b) in a.iter_mut().zip(b) {
        *a = a.wrapping_add(*b);
    }
}

fn flat(a: &ArrayD<u64>) -> Vec<u64> {
    a.iter().copied().collect()
}

/// Bits below 2^63: the truncation reads c mod 2^63.
const LOW63: u64 = (1 << 63) - 1;

/// The largest truncation: the offset 2^(62-f) must be a whole number.
pub const MAX_SHIFT: u32 = 62;

/// Words the dealer of a truncation of `n` values by 2^f sends B besides its term: B's share
/// of r' in 63 - f bits, and two (f+1)-bit shares per value, each packed.
pub fn corrections_words(n: usize, f: u32) -> usize {
    fields_words(n, 63 - f) + fields_words(2 * n, f + 1)
}

fn shaped(shape: &[usize], words: Vec<u64>) -> ArrayD<u64> {
    ArrayD::from_shape_vec(ndarray::IxDyn(shape), words).expect("length matches shape")
}

impl Party {
    /// This party's additive term of Σ_k B(x_k, y_k) over pairs of secrets: each pair's
    /// [`product_term`], locally, under ABY3; Beaver triples, in one round, under Pond.
    pub fn secret_products(
        &mut self,
        pairs: &[(Factor, Factor)],
        b: RingMap,
    ) -> Result<ArrayD<u64>> {
        if self.protocol() == Protocol::Pond {
            return self.beaver_products(pairs, b);
        }
        let mut sum: Option<ArrayD<u64>> = None;
        for (x, y) in pairs {
            let (Factor::Share(x), Factor::Share(y)) = (x, y) else {
                anyhow::bail!("only Pond masks weights for a session");
            };
            let term = product_term(x, y, b)?;
            match &mut sum {
                None => sum = Some(term),
                Some(acc) => Zip::from(acc)
                    .and(&term)
                    .for_each(|a, &t| *a = a.wrapping_add(t)),
            }
        }
        sum.ok_or_else(|| anyhow::anyhow!("no products to compute"))
    }

    /// Additive (one term per party) to replicated sharing: one round, one element per value
    /// from each party. Under Pond the servers' terms are already the sharing.
    pub fn reshare(&mut self, term: &ArrayD<u64>) -> Result<ArithShare> {
        if self.protocol() == Protocol::Pond {
            return Ok(ArithShare::additive(term.clone()));
        }
        let (cur, next) = self.round(vec![Lane::reshare(flat(term))])?.remove(0);
        Ok(ArithShare {
            cur: shaped(term.shape(), cur),
            next: shaped(term.shape(), next),
        })
    }

    /// Additive sharing of z to a replicated sharing of z / 2^f, off by at most one unit in
    /// the last place (rounding up with probability the fraction dropped, so unbiased), exact
    /// when z is a multiple of 2^f, with no large errors, for any |z| < 2^62:
    /// [`Party::truncate_open`], then [`Party::settle`].
    pub fn truncate(&mut self, term: &ArrayD<u64>, frac_bits: u32) -> Result<ArithShare> {
        let pending = self.truncate_open(term, frac_bits)?;
        match self.protocol() {
            Protocol::Aby3 => self.settle(&pending),
            // The servers' terms are the sharing; the producer holds shapes only.
            Protocol::Pond if self.id() == PRODUCER => {
                Ok(ArithShare::additive(ArrayD::zeros(pending.term.raw_dim())))
            }
            Protocol::Pond => Ok(ArithShare::additive(pending.term)),
        }
    }

    /// The first round of [`Party::truncate`]: z / 2^f as a [`Pending`] sharing.
    ///
    /// The probabilistic truncation of Escudero et al. (CRYPTO 2020) with a known top bit, run
    /// with one party as dealer (rotating per call): the dealer D and A share a stream r_A, D
    /// and B a stream r_B, and r = r_A + r_B is uniform in the whole ring and unknown to A and
    /// B, who learn c = z + 2^62 + r. With b = msb(c) xor msb(r),
    /// z + 2^62 = (c mod 2^63) - (r mod 2^63) + b 2^63 exactly, so
    /// `(c mod 2^63) >> f - r' + b 2^(63-f)` is z/2^f + 2^(62-f) up to the carry out of the
    /// low f bits, for r' = (r mod 2^63) >> f. A draws its share of r' from its stream
    /// modulo 2^(63-f); the dealer sends B the rest, 63 - f bits, and shares of two small
    /// integers that multiply 2^(63-f) and so only matter modulo 2^(f+1): the wrap of the two
    /// shares of r', and msb(r), whose sign follows msb(c) (81 bits at f = 16, where a word
    /// each took 128; [`Cost::truncate_open`](super::cost::Cost::truncate_open)).
    pub fn truncate_open(&mut self, term: &ArrayD<u64>, frac_bits: u32) -> Result<Pending> {
        let f = frac_bits;
        ensure!(
            (1..=MAX_SHIFT).contains(&f),
            "a truncation by {f} bits is outside 1..={MAX_SHIFT}"
        );
        let nonce = self.begin_call();
        self.count_rounds(1);
        let n = term.len();
        let mut masked = flat(term);
        // Under Pond the producer deals every truncation and holds no term: the servers'
        // terms are the whole sharing, so neither a zero-sharing nor a dealer's term enters c.
        let pond = self.protocol() == Protocol::Pond;
        let dealer = if pond {
            PRODUCER
        } else {
            add_into(&mut masked, &self.zero_share(nonce, Label::Zero, n));
            self.next_dealer(Dealing::Truncation)
        };
        // Words a server receives from the dealer besides B's corrections: its term.
        let dealer_term = if pond { 0 } else { n };
        let (a, b) = ((dealer + 1) % 3, (dealer + 2) % 3);
        let top = 1u64 << (63 - f);
        let high = top - 1;
        let field = (1u64 << (f + 1)) - 1;
        let y = if self.id() == dealer {
            // Streams shared with A (next party) and B (previous party).
            let r_a = self.stream(Link::Next, nonce, Label::TruncR, n);
            let r_b = self.stream(Link::Prev, nonce, Label::TruncR, n);
            let high_a = self.stream(Link::Next, nonce, Label::TruncRHigh, n);
            let wrap_a = self.stream(Link::Next, nonce, Label::TruncTop, n);
            let msb_a = self.stream(Link::Next, nonce, Label::TruncMsb, n);
            let mut highs = Vec::with_capacity(n);
            let mut fields = Vec::with_capacity(2 * n);
            let mut y = Vec::with_capacity(n);
            for i in 0..n {
                let r = r_a[i].wrapping_add(r_b[i]);
                let (r_high, high_a) = ((r & LOW63) >> f, high_a[i] & high);
                let high_b = r_high.wrapping_sub(high_a) & high;
                let wrap = (high_a + high_b) >> (63 - f);
                let wrap_b = wrap.wrapping_sub(wrap_a[i]) & field;
                let msb_b = (r >> 63).wrapping_sub(msb_a[i]) & field;
                highs.push(high_b);
                fields.extend([wrap_b, msb_b]);
                // B's term without the sign of c, which only moves bits from 64 - f up.
                y.push(top.wrapping_mul(wrap_b + msb_b).wrapping_sub(high_b));
            }
            if pond {
                masked.clear();
            } else {
                self.send_to(a, &masked)?;
            }
            masked.extend(pack_fields(&highs, 63 - f));
            masked.extend(pack_fields(&fields, f + 1));
            self.send_to(b, &masked)?;
            y
        } else {
            let is_a = self.id() == a;
            // The stream this party shares with the dealer.
            let to_dealer = if is_a { Link::Prev } else { Link::Next };
            let r_mine = self.stream(to_dealer, nonce, Label::TruncR, n);
            let mut mine = masked;
            if !hooks::broken(Fault::UnmaskedTruncation) {
                add_into(&mut mine, &r_mine);
            }
            if is_a {
                for v in mine.iter_mut() {
                    *v = v.wrapping_add(1 << 62);
                }
            }
            let other = if is_a { b } else { a };
            self.send_to(other, &mine)?;
            let from_other = self.recv_from(other, n)?;
            let corrections = if is_a { 0 } else { corrections_words(n, f) };
            let from_dealer = match dealer_term + corrections {
                0 => vec![],
                len => self.recv_from(dealer, len)?,
            };
            let (high_mine, wrap_mine, msb_mine) = if is_a {
                (
                    self.stream(to_dealer, nonce, Label::TruncRHigh, n),
                    self.stream(to_dealer, nonce, Label::TruncTop, n),
                    self.stream(to_dealer, nonce, Label::TruncMsb, n),
                )
            } else {
                let (highs, fields) = from_dealer[dealer_term..].split_at(fields_words(n, 63 - f));
                let fields = unpack_fields(fields, f + 1, 2 * n);
                let (wraps, msbs) = fields.chunks_exact(2).map(|p| (p[0], p[1])).unzip();
                (unpack_fields(highs, 63 - f, n), wraps, msbs)
            };
            let dealers_term = &from_dealer[..dealer_term];
            let c: Vec<u64> = (0..n)
                .map(|i| {
                    let dealt = dealers_term.get(i).copied().unwrap_or(0);
                    mine[i].wrapping_add(from_other[i]).wrapping_add(dealt)
                })
                .collect();
            // What this party learns: c without the half of the mask it knows itself.
            self.opened(
                &c.iter()
                    .zip(&r_mine)
                    .map(|(c, r)| c.wrapping_sub(*r))
                    .collect::<Vec<_>>(),
            );
            let offset = 1u64 << (62 - f);
            (0..n)
                .map(|i| {
                    let c = c[i];
                    let c_msb = c >> 63;
                    // b = c_msb xor r_msb = c_msb + (1 - 2 c_msb) r_msb, shared additively.
                    let sign = 1u64.wrapping_sub(2 * c_msb);
                    let msb = sign.wrapping_mul(msb_mine[i] & field);
                    let tops = (wrap_mine[i] & field).wrapping_add(msb);
                    let mut y = top.wrapping_mul(tops).wrapping_sub(high_mine[i] & high);
                    if is_a {
                        y = y
                            .wrapping_add((c & LOW63) >> f)
                            .wrapping_add(top.wrapping_mul(c_msb))
                            .wrapping_sub(offset);
                    }
                    y
                })
                .collect()
        };
        Ok(Pending {
            dealer,
            frac_bits,
            term: shaped(term.shape(), y),
        })
    }

    /// A [`Pending`] sharing to a replicated one in one round ([`Settle`]).
    pub fn settle(&mut self, pending: &Pending) -> Result<ArithShare> {
        let settle = Settle::begin(self, pending);
        let direct = settle.direct();
        let (_, got) = self.round_with(vec![], direct)?;
        Ok(settle.finish(got))
    }
}

/// A value additively shared between the two parties after `dealer`, A and B: what a
/// truncation holds before its re-randomisation, and what linear maps keep so. The
/// dealer's term is B's mod 2^(64 - f): B's term is the dealer's corrections times the
/// sign of c, and the sign only matters from bit 64 - f up, so the low bits form a
/// replicated sharing that a comparison of up to 64 - f bits can read
/// ([`super::sign::Operand::Additive`]).
#[derive(Clone, Debug)]
pub struct Pending {
    pub dealer: usize,
    pub frac_bits: u32,
    /// This party's term.
    pub term: ArrayD<u64>,
}

/// The re-randomisation of a [`Pending`] sharing: A and B (the parties after the dealer)
/// exchange their terms masked by streams each shares with the dealer; the sum is the
/// component they both hold, the masks the other two. It needs nothing but its own round,
/// so it can ride another protocol's round.
pub(crate) struct Settle {
    /// 0 at the dealer, 1 at A, 2 at B.
    part: usize,
    shape: Vec<usize>,
    mask: Vec<u64>,
    /// At the dealer, the mask it shares with A; elsewhere the masked term sent.
    other: Vec<u64>,
}

impl Settle {
    pub fn begin(party: &mut Party, pending: &Pending) -> Settle {
        let nonce = party.begin_call();
        let n = pending.term.len();
        let part = (party.id() + 3 - pending.dealer) % 3;
        let shape = pending.term.shape().to_vec();
        if part == 0 {
            return Settle {
                part,
                shape,
                mask: party.stream(Link::Prev, nonce, Label::TruncOut, n),
                other: party.stream(Link::Next, nonce, Label::TruncOut, n),
            };
        }
        let to_dealer = if part == 1 { Link::Prev } else { Link::Next };
        let mask = party.stream(to_dealer, nonce, Label::TruncOut, n);
        let other = pending
            .term
            .iter()
            .zip(&mask)
            .map(|(t, m)| t.wrapping_sub(*m))
            .collect();
        Settle {
            part,
            shape,
            mask,
            other,
        }
    }

    /// A sends to B (its next neighbour), B to A (its previous).
    pub fn direct(&self) -> Direct {
        let n = self.mask.len();
        match self.part {
            0 => Direct::default(),
            1 => Direct {
                to_next: self.other.clone(),
                from_next: n,
                ..Direct::default()
            },
            _ => Direct {
                to_prev: self.other.clone(),
                from_prev: n,
                ..Direct::default()
            },
        }
    }

    pub fn finish(self, got: Delivered) -> ArithShare {
        let joint = |mut mine: Vec<u64>, theirs: &[u64]| {
            add_into(&mut mine, theirs);
            mine
        };
        // The dealer holds (B's mask, A's mask), A (A's mask, the joint component), B (the
        // joint component, B's mask).
        let (cur, next) = match self.part {
            0 => (self.mask, self.other),
            1 => (self.mask, joint(self.other, &got.from_next)),
            _ => (joint(self.other, &got.from_prev), self.mask),
        };
        ArithShare {
            cur: shaped(&self.shape, cur),
            next: shaped(&self.shape, next),
        }
    }
}
