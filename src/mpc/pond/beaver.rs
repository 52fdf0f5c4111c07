//! Products of secrets by Beaver triples, for any bilinear map B (element-wise product,
//! matrix product, convolution): the producer draws masks a and b, each as two halves from
//! the keys it shares with the servers, computes B(a, b) and sends server 1 its share of it
//! (server 0's comes from their key). The servers open e = x - a and f = y - b to each
//! other, and B(x, y) = B(e, f) + B(e, b) + B(a, f) + B(a, b) is then linear in what each
//! holds: server 0 takes B(e, b_0 + f) + B(a_0, f) + c_0, server 1 B(e, b_1) + B(a_1, f)
//! + c_1. One round; the servers send both operands' sizes each, the producer the product's.

use super::{PRODUCER, producer_link};
use crate::mpc::Party;
use crate::mpc::arith::RingMap;
use crate::mpc::hooks::{self, Fault};
use crate::mpc::party::Label;
use anyhow::{Result, ensure};
use ndarray::{ArrayD, IxDyn, Zip};

fn add(a: &mut ArrayD<u64>, b: &ArrayD<u64>) {
    Zip::from(a).and(b).for_each(|a, &b| *a = a.wrapping_add(b));
}

fn sub(a: &ArrayD<u64>, b: &ArrayD<u64>) -> ArrayD<u64> {
    Zip::from(a).and(b).map_collect(|&a, &b| a.wrapping_sub(b))
}

impl Party {
    /// This party's additive share of Σ_k B(x_k, y_k), for the servers' shares x_k, y_k
    /// (the producer passes arrays of their shapes and gets zeros).
    pub(crate) fn beaver_products(
        &mut self,
        pairs: &[(&ArrayD<u64>, &ArrayD<u64>)],
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
        // The mask of operand `label` of pair `k`: this party's half, or at the producer
        // both halves summed.
        let mask = |party: &Party, k: usize, label: Label, like: &ArrayD<u64>| {
            let half = |server| {
                let link = producer_link(id, server);
                let words = party.stream(link, nonce + ((k as u64 + 1) << 8), label, like.len());
                ArrayD::from_shape_vec(IxDyn(like.shape()), words).expect("length matches")
            };
            match id {
                PRODUCER => {
                    let mut both = half(0);
                    add(&mut both, &half(1));
                    both
                }
                server => half(server),
            }
        };
        let masks: Vec<(ArrayD<u64>, ArrayD<u64>)> = (pairs.iter().enumerate())
            .map(|(k, (x, y))| {
                (
                    mask(self, k, Label::TripleX, x),
                    mask(self, k, Label::TripleY, y),
                )
            })
            .collect();
        if id == PRODUCER {
            let mut product: Option<ArrayD<u64>> = None;
            for (a, b) in &masks {
                let term = map(a, b)?;
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
        let other = 1 - id;
        let mut opened: Vec<u64> = Vec::new();
        let unmasked = hooks::broken(Fault::UnmaskedTriple);
        for ((x, y), (a, b)) in pairs.iter().zip(&masks) {
            for (v, mask) in [(x, a), (y, b)] {
                match unmasked {
                    true => opened.extend(v.iter()),
                    false => opened.extend(sub(v, mask).iter()),
                }
            }
        }
        self.send_to(other, &opened)?;
        let theirs = self.recv_from(other, opened.len())?;
        for (mine, theirs) in opened.iter_mut().zip(&theirs) {
            *mine = mine.wrapping_add(*theirs);
        }
        // What a server learns from x - a and y - b is the other server's message alone
        // (the rest is its own): its view holds that already.
        let mut at = 0;
        let mut take = |like: &ArrayD<u64>| {
            let words = opened[at..at + like.len()].to_vec();
            at += like.len();
            ArrayD::from_shape_vec(IxDyn(like.shape()), words).expect("length matches")
        };
        let mut term: Option<ArrayD<u64>> = None;
        for ((x, y), (a, b)) in pairs.iter().zip(&masks) {
            let (e, f) = (take(x), take(y));
            let mut t = if id == 0 {
                let mut b_f = b.clone();
                add(&mut b_f, &f);
                map(&e, &b_f)?
            } else {
                map(&e, b)?
            };
            add(&mut t, &map(a, &f)?);
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
