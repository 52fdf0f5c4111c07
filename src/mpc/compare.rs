//! Exact comparison with zero, and ReLU built on it.
//!
//! The sign of x is the top bit of x_0 + x_1 + x_2. Each party already holds two of the
//! three components, so the components form a binary (XOR) sharing of three summands for
//! free. A carry-save step reduces them to two, and a Kogge-Stone parallel-prefix tree over
//! bit-sliced 64-bit words yields the carry into bit 63 in log2(64) = 6 AND layers.
//! Bit injection turns the shared bit d = [x >= 0] into x * d with a daBit: a random bit ρ
//! shared both ways; d xor ρ is opened and x * d = δ x + (1 - 2δ)(x ρ).
//!
//! Rounds: carry-save 1, generate bits 1, prefix tree 6, opening 1; the daBit and the x ρ
//! product ride along in the first three rounds. Nine rounds for a whole tensor.

use super::party::{Label, Link, Party};
use super::share::ArithShare;
use anyhow::Result;
use ndarray::{ArrayD, IxDyn};

/// One party's view of an XOR sharing of 64-bit words: components i and i+1.
struct BoolShare {
    cur: Vec<u64>,
    next: Vec<u64>,
}

impl BoolShare {
    fn shl(&self, s: u32) -> BoolShare {
        BoolShare {
            cur: self.cur.iter().map(|w| w << s).collect(),
            next: self.next.iter().map(|w| w << s).collect(),
        }
    }

    fn xor(&self, o: &BoolShare) -> BoolShare {
        let x = |a: &[u64], b: &[u64]| a.iter().zip(b).map(|(a, b)| a ^ b).collect();
        BoolShare {
            cur: x(&self.cur, &o.cur),
            next: x(&self.next, &o.next),
        }
    }

    /// This party's XOR term of `self & o` (before masking and resharing).
    fn and_term(&self, o: &BoolShare) -> Vec<u64> {
        (0..self.cur.len())
            .map(|i| {
                (self.cur[i] & o.cur[i]) ^ (self.cur[i] & o.next[i]) ^ (self.next[i] & o.cur[i])
            })
            .collect()
    }
}

/// Additive term of the element-wise product of two flat arithmetic sharings.
fn mul_term(x: (&[u64], &[u64]), y: (&[u64], &[u64])) -> Vec<u64> {
    (0..x.0.len())
        .map(|i| {
            x.0[i]
                .wrapping_mul(y.0[i].wrapping_add(y.1[i]))
                .wrapping_add(x.1[i].wrapping_mul(y.0[i]))
        })
        .collect()
}

fn xor_into(a: &mut [u64], b: &[u64]) {
    a.iter_mut().zip(b).for_each(|(a, b)| *a ^= b);
}

fn add_into(a: &mut [u64], b: &[u64]) {
    a.iter_mut()
        .zip(b)
        .for_each(|(a, b)| *a = a.wrapping_add(*b));
}

/// Bit k of the result is bit `at` of word k.
fn pack_bits(words: &[u64], at: u32) -> Vec<u64> {
    let mut out = vec![0u64; words.len().div_ceil(64)];
    for (k, w) in words.iter().enumerate() {
        out[k / 64] |= ((w >> at) & 1) << (k % 64);
    }
    out
}

fn unpack_bits(packed: &[u64], n: usize) -> Vec<u64> {
    (0..n).map(|k| (packed[k / 64] >> (k % 64)) & 1).collect()
}

impl Party {
    /// Component `j` of a sharing that is nonzero only in the listed components, as this party
    /// holds it: keeps `cur` when component `id` is listed and `next` when `id+1` is.
    fn only_components(&self, comps: &[usize], cur: &[u64], next: &[u64]) -> (Vec<u64>, Vec<u64>) {
        let pick = |j: usize, v: &[u64]| {
            if comps.contains(&j) {
                v.to_vec()
            } else {
                vec![0; v.len()]
            }
        };
        (pick(self.id(), cur), pick(self.peer(1), next))
    }

    /// Sends masked terms and receives the next party's, as one message per round.
    fn round(
        &mut self,
        mut terms: Vec<u64>,
        mask: &[u64],
        xor_len: usize,
    ) -> Result<(Vec<u64>, Vec<u64>)> {
        xor_into(&mut terms[..xor_len], &mask[..xor_len]);
        add_into(&mut terms[xor_len..], &mask[xor_len..]);
        let theirs = self.exchange(&terms)?;
        Ok((terms, theirs))
    }

    /// Masks for a round carrying `xor_len` XOR-shared then `add_len` additively shared words.
    fn round_masks(&mut self, xor_len: usize, add_len: usize) -> Vec<u64> {
        let nonce = self.begin_call();
        let mut m = self.xor_zero_share(nonce, Label::BoolZero, xor_len);
        m.extend(self.zero_share(nonce, Label::Zero, add_len));
        m
    }

    /// ReLU(x) = x * [x >= 0], exactly, for |x| < 2^63.
    pub fn relu(&mut self, x: &ArithShare) -> Result<ArithShare> {
        let shape = x.shape().to_vec();
        let n = x.cur.len();
        let xc: Vec<u64> = x.cur.iter().copied().collect();
        let xn: Vec<u64> = x.next.iter().copied().collect();

        // daBit components: ρ_i from the stream shared with the previous party (key k_i).
        let nonce = self.begin_call();
        let words = n.div_ceil(64);
        let rho_cur = unpack_bits(&self.stream(Link::Prev, nonce, Label::DaBit, words), n);
        let rho_next = unpack_bits(&self.stream(Link::Next, nonce, Label::DaBit, words), n);

        // Round 1: majority of the three components (the carry-save carry), and ρ0 ρ1.
        let (u_c, u_n) = self.only_components(&[0, 2], &xc, &xn);
        let (v_c, v_n) = self.only_components(&[1, 2], &xc, &xn);
        let (w_c, w_n) = self.only_components(&[2], &xc, &xn);
        let u = BoolShare {
            cur: u_c,
            next: u_n,
        };
        let v = BoolShare {
            cur: v_c,
            next: v_n,
        };
        let mut terms = u.and_term(&v);
        if self.id() == 0 {
            terms.extend(rho_cur.iter().zip(&rho_next).map(|(a, b)| a & b));
        } else {
            terms.extend(std::iter::repeat_n(0, n));
        }
        let mask = self.round_masks(n, n);
        let (mine, theirs) = self.round(terms, &mask, n)?;
        // maj(x0, x1, x2) = ((x0 ^ x2) & (x1 ^ x2)) ^ x2
        let maj = BoolShare {
            cur: mine[..n].to_vec(),
            next: theirs[..n].to_vec(),
        }
        .xor(&BoolShare {
            cur: w_c,
            next: w_n,
        });
        let carry = maj.shl(1);
        let sum = BoolShare {
            cur: xc.clone(),
            next: xn.clone(),
        };
        // t = ρ0 xor ρ1 = ρ0 + ρ1 - 2 ρ0 ρ1
        let (r01_c, r01_n) = self.only_components(&[0, 1], &rho_cur, &rho_next);
        let t_c: Vec<u64> = (0..n)
            .map(|k| r01_c[k].wrapping_sub(mine[n + k].wrapping_mul(2)))
            .collect();
        let t_n: Vec<u64> = (0..n)
            .map(|k| r01_n[k].wrapping_sub(theirs[n + k].wrapping_mul(2)))
            .collect();

        // Round 2: generate bits of sum + carry, and t ρ2.
        let (r2_c, r2_n) = self.only_components(&[2], &rho_cur, &rho_next);
        let mut terms = sum.and_term(&carry);
        terms.extend(mul_term((&t_c, &t_n), (&r2_c, &r2_n)));
        let mask = self.round_masks(n, n);
        let (mine, theirs) = self.round(terms, &mask, n)?;
        let mut g = BoolShare {
            cur: mine[..n].to_vec(),
            next: theirs[..n].to_vec(),
        };
        let mut p = sum.xor(&carry);
        // ρ = t xor ρ2 = t + ρ2 - 2 t ρ2, now arithmetic.
        let rho_a_c: Vec<u64> = (0..n)
            .map(|k| {
                t_c[k]
                    .wrapping_add(r2_c[k])
                    .wrapping_sub(mine[n + k].wrapping_mul(2))
            })
            .collect();
        let rho_a_n: Vec<u64> = (0..n)
            .map(|k| {
                t_n[k]
                    .wrapping_add(r2_n[k])
                    .wrapping_sub(theirs[n + k].wrapping_mul(2))
            })
            .collect();

        // Rounds 3-8: prefix tree; the first level also carries x ρ.
        let mut x_rho: Option<(Vec<u64>, Vec<u64>)> = None;
        for level in 0..6u32 {
            let s = 1u32 << level;
            let last = level == 5;
            let mut terms = p.and_term(&g.shl(s));
            if !last {
                terms.extend(p.and_term(&p.shl(s)));
            }
            let xor_len = terms.len();
            if level == 0 {
                terms.extend(mul_term((&xc, &xn), (&rho_a_c, &rho_a_n)));
            }
            let mask = self.round_masks(xor_len, terms.len() - xor_len);
            let (mine, theirs) = self.round(terms, &mask, xor_len)?;
            let generated = BoolShare {
                cur: mine[..n].to_vec(),
                next: theirs[..n].to_vec(),
            };
            g = g.xor(&generated);
            if !last {
                p = BoolShare {
                    cur: mine[n..2 * n].to_vec(),
                    next: theirs[n..2 * n].to_vec(),
                };
            }
            if level == 0 {
                x_rho = Some((mine[xor_len..].to_vec(), theirs[xor_len..].to_vec()));
            }
        }
        let (xr_c, xr_n) = x_rho.expect("set at level 0");

        // Round 9: the sign bit is bit 63 of sum ^ carry ^ (carries into each bit); open
        // δ = [x >= 0] xor ρ, with [x >= 0] = not msb (flip component 0).
        let msb = sum.xor(&carry).xor(&g.shl(1));
        let flip_cur = u64::from(self.id() == 0);
        let flip_next = u64::from(self.peer(1) == 0);
        let d_cur: Vec<u64> = (0..n)
            .map(|k| ((msb.cur[k] >> 63) ^ flip_cur) ^ rho_cur[k])
            .collect();
        let d_next: Vec<u64> = (0..n)
            .map(|k| ((msb.next[k] >> 63) ^ flip_next) ^ rho_next[k])
            .collect();
        let packed_next = pack_bits(&d_next, 0);
        self.send_to(self.peer(2), &packed_next)?;
        let third = unpack_bits(&self.recv_from(self.peer(1), packed_next.len())?, n);
        let opened: Vec<u64> = (0..n).map(|k| d_cur[k] ^ d_next[k] ^ third[k]).collect();
        self.opened(&pack_bits(&opened, 0));
        let select = |x: &[u64], xr: &[u64]| -> Vec<u64> {
            (0..n)
                .map(|k| {
                    if d_cur[k] ^ d_next[k] ^ third[k] == 1 {
                        x[k].wrapping_sub(xr[k])
                    } else {
                        xr[k]
                    }
                })
                .collect()
        };
        Ok(ArithShare {
            cur: ArrayD::from_shape_vec(IxDyn(&shape), select(&xc, &xr_c))?,
            next: ArrayD::from_shape_vec(IxDyn(&shape), select(&xn, &xr_n))?,
        })
    }
}
