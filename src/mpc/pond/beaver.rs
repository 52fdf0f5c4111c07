//! Products of secrets by Beaver triples, for any bilinear map B (element-wise product,
//! matrix product, convolution): the producer draws masks a and b, each as two halves from
//! the keys it shares with the servers, computes B(a, b) and sends server 1 its share of it
//! (server 0's comes from their key). The servers open e = x - a and f = y - b to each
//! other, and B(x, y) = B(e, f) + B(e, b) + B(a, f) + B(a, b) is then linear in what each
//! holds: server 0 takes B(e, b_0 + f) + B(a_0, f) + c_0, server 1 takes
//! B(e, b_1) + B(a_1, f) + c_1. One round; the servers send the sizes of the operands they
//! open, the producer the product's.
//!
//! A weight is opened once per session instead ([`Party::mask_for_session`]): its mask a
//! stays fixed while every product draws a fresh mask for the other operand, so a request
//! opens only its own values. Its masked form keeps the opened e beside the share, and the
//! share is then e + a_0 at server 0 and a_1 at server 1; the producer holds a itself.
//! Between requests a party keeps only e ([`SessionMasked`]): the mask's halves come again
//! from the keys, so the producer holds no words of the weights and a server one per value.

use super::{PRODUCER, producer_link};
use crate::mpc::Party;
use crate::mpc::arith::{Factor, RingMap};
use crate::mpc::hooks::{self, Fault};
use crate::mpc::party::Label;
use crate::mpc::share::ArithShare;
use anyhow::{Result, ensure};
use ndarray::{ArrayD, IxDyn, Zip};
use std::borrow::Cow;

fn add(a: &mut ArrayD<u64>, b: &ArrayD<u64>) {
    Zip::from(a).and(b).for_each(|a, &b| *a = a.wrapping_add(b));
}

fn sub(a: &ArrayD<u64>, b: &ArrayD<u64>) -> ArrayD<u64> {
    Zip::from(a).and(b).map_collect(|&a, &b| a.wrapping_sub(b))
}

/// A secret opened once for the session under a mask fixed for it, as a party keeps it
/// between requests: the opened value at the servers (none at the producer) and the call
/// whose streams give the mask again.
pub struct SessionMasked {
    nonce: u64,
    shape: Vec<usize>,
    opened: Option<ArrayD<u64>>,
}

impl SessionMasked {
    /// How many values it masks.
    pub fn values(&self) -> usize {
        self.shape.iter().product()
    }
}

/// A factor opened now (one not masked for the session): the server's share.
fn fresh<'a>(factor: &Factor<'a>) -> Option<&'a ArrayD<u64>> {
    match factor {
        Factor::Share(x) => Some(&x.cur),
        Factor::Masked(_) => None,
    }
}

/// A factor's mask as this party holds it (the producer: the whole mask), and at the
/// servers the opened value if the factor was masked for the session.
/// Borrowed where the factor was masked for the session (the weights, read in place at
/// every request), made where it is masked now.
struct Masked<'a> {
    mask: Cow<'a, ArrayD<u64>>,
    opened: Option<&'a ArrayD<u64>>,
}

impl Party {
    /// This server's half of a fresh mask of `len` words (both halves summed at the
    /// producer), from the stream of `label` in lane `lane` of the call `nonce`.
    pub(super) fn mask_words(&self, nonce: u64, lane: u64, label: Label, len: usize) -> Vec<u64> {
        let id = self.id();
        let half = |server| self.stream(producer_link(id, server), nonce + (lane << 8), label, len);
        match id {
            PRODUCER => {
                let mut both = half(0);
                for (a, b) in both.iter_mut().zip(half(1)) {
                    *a = a.wrapping_add(b);
                }
                both
            }
            server => half(server),
        }
    }

    /// [`Party::mask_words`] of the given shape.
    fn fresh_mask(&self, nonce: u64, lane: u64, label: Label, shape: &[usize]) -> ArrayD<u64> {
        let words = self.mask_words(nonce, lane, label, shape.iter().product());
        ArrayD::from_shape_vec(IxDyn(shape), words).expect("length matches")
    }

    /// `shares` (Pond secrets, fewer than 256) opened once under masks fixed for the
    /// session, which the products of [`Party::beaver_products`] take without opening them
    /// again (in the form [`Party::session_masked`] gives). One round for all of them: each
    /// server sends their sizes in one message.
    pub fn mask_for_session(&mut self, shares: &[&ArithShare]) -> Result<Vec<SessionMasked>> {
        ensure!(
            !shares.is_empty() && shares.len() < 256,
            "{} values masked in one call",
            shares.len()
        );
        let call = self.begin_call();
        self.count_rounds(1);
        // Each value's mask in its own lane of the call.
        let mut lanes: Vec<SessionMasked> = (shares.iter().enumerate())
            .map(|(k, share)| SessionMasked {
                nonce: call + ((k as u64) << 8),
                shape: share.shape().to_vec(),
                opened: None,
            })
            .collect();
        let id = self.id();
        if id == PRODUCER {
            return Ok(lanes);
        }
        let unmasked = hooks::broken(Fault::UnmaskedTriple);
        let mut opened = Vec::with_capacity(shares.iter().map(|s| s.cur.len()).sum());
        for (share, lane) in shares.iter().zip(&lanes) {
            if unmasked {
                opened.extend(share.cur.iter());
            } else {
                let a = self.mask_words(lane.nonce, 0, Label::TripleX, lane.values());
                opened.extend(share.cur.iter().zip(a).map(|(x, a)| x.wrapping_sub(a)));
            }
        }
        self.send_to(1 - id, &opened)?;
        let theirs = self.recv_from(1 - id, opened.len())?;
        for (e, t) in opened.iter_mut().zip(theirs) {
            *e = e.wrapping_add(t);
        }
        let mut rest = opened.as_slice();
        for lane in &mut lanes {
            let (e, after) = rest.split_at(lane.values());
            lane.opened = Some(ArrayD::from_shape_vec(IxDyn(&lane.shape), e.to_vec())?);
            rest = after;
        }
        Ok(lanes)
    }

    /// The masked form of a secret masked for the session: at the servers the share
    /// (e + a_0, or a_1) with e beside it, at the producer the whole mask a. Made from the
    /// keys each time; sends nothing.
    pub fn session_masked(&self, masked: &SessionMasked) -> ArithShare {
        let mut cur = self.fresh_mask(masked.nonce, 0, Label::TripleX, &masked.shape);
        match &masked.opened {
            None => ArithShare::additive(cur),
            Some(e) => {
                if self.id() == 0 {
                    add(&mut cur, e);
                }
                ArithShare {
                    cur,
                    next: e.clone(),
                }
            }
        }
    }

    /// This party's additive share of Σ_k B(x_k, y_k), for the servers' factors (the
    /// producer passes factors of their shapes, masked ones with their masks, and gets
    /// zeros).
    pub(crate) fn beaver_products<'f>(
        &mut self,
        pairs: &[(Factor<'f>, Factor<'f>)],
        map: RingMap,
    ) -> Result<ArrayD<u64>> {
        ensure!(
            !pairs.is_empty() && pairs.len() < 256,
            "{} products in one call",
            pairs.len()
        );
        let nonce = self.begin_call();
        self.count_rounds(1);
        let id = self.id();
        let masked = |party: &Party, k: usize, label: Label, factor: &Factor<'f>| match *factor {
            Factor::Share(x) => Masked {
                mask: Cow::Owned(party.fresh_mask(nonce, k as u64 + 1, label, x.shape())),
                opened: None,
            },
            Factor::Masked(x) if id == PRODUCER => Masked {
                mask: Cow::Borrowed(&x.cur),
                opened: None,
            },
            Factor::Masked(x) => Masked {
                // Server 0's share is e + a_0, server 1's a_1.
                mask: if id == 0 {
                    Cow::Owned(sub(&x.cur, &x.next))
                } else {
                    Cow::Borrowed(&x.cur)
                },
                opened: Some(&x.next),
            },
        };
        let masks: Vec<(Masked, Masked)> = (pairs.iter().enumerate())
            .map(|(k, (x, y))| {
                (
                    masked(self, k, Label::TripleX, x),
                    masked(self, k, Label::TripleY, y),
                )
            })
            .collect();
        if id == PRODUCER {
            let mut product: Option<ArrayD<u64>> = None;
            for (a, b) in &masks {
                let term = map(&a.mask, &b.mask)?;
                match &mut product {
                    None => product = Some(term),
                    Some(sum) => add(sum, &term),
                }
            }
            let product = product.expect("at least one pair");
            let c0 = self.stream(
                producer_link(id, 0),
                nonce,
                Label::TripleProduct,
                product.len(),
            );
            let c1: Vec<u64> = (product.iter().zip(&c0))
                .map(|(c, c0)| c.wrapping_sub(*c0))
                .collect();
            self.send_to(1, &c1)?;
            return Ok(ArrayD::zeros(product.raw_dim()));
        }
        let mut opened: Vec<u64> = Vec::new();
        let unmasked = hooks::broken(Fault::UnmaskedTriple);
        for ((x, y), (a, b)) in pairs.iter().zip(&masks) {
            for (factor, m) in [(x, a), (y, b)] {
                match (fresh(factor), unmasked) {
                    (None, _) => {}
                    (Some(v), true) => opened.extend(v.iter()),
                    (Some(v), false) => opened.extend(sub(v, &m.mask).iter()),
                }
            }
        }
        if !opened.is_empty() {
            self.send_to(1 - id, &opened)?;
            let theirs = self.recv_from(1 - id, opened.len())?;
            for (mine, theirs) in opened.iter_mut().zip(&theirs) {
                *mine = mine.wrapping_add(*theirs);
            }
        }
        // What a server learns from x - a and y - b is the other server's message alone
        // (the rest is its own): its view holds that already.
        let mut at = 0;
        let mut take = |m: &Masked<'f>| match m.opened {
            Some(e) => Cow::Borrowed(e),
            None => {
                let len = m.mask.len();
                let words = opened[at..at + len].to_vec();
                at += len;
                Cow::Owned(ArrayD::from_shape_vec(m.mask.raw_dim(), words).expect("length matches"))
            }
        };
        let mut term: Option<ArrayD<u64>> = None;
        for (a, b) in &masks {
            let (e, f) = (take(a), take(b));
            let mut t = if id == 0 {
                let mut b_f = b.mask.clone().into_owned();
                add(&mut b_f, &f);
                map(&e, &b_f)?
            } else {
                map(&e, &b.mask)?
            };
            add(&mut t, &map(&a.mask, &f)?);
            match &mut term {
                None => term = Some(t),
                Some(sum) => add(sum, &t),
            }
        }
        let mut term = term.expect("at least one pair");
        let c = match id {
            0 => self.stream(
                producer_link(id, 0),
                nonce,
                Label::TripleProduct,
                term.len(),
            ),
            _ => self.recv_from(PRODUCER, term.len())?,
        };
        for (t, c) in term.iter_mut().zip(c) {
            *t = t.wrapping_add(c);
        }
        Ok(term)
    }
}
