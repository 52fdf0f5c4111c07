//! Replicated secret sharing over Z_2^64: x = x_0 + x_1 + x_2, party i holds (x_i, x_{i+1}).
//! Any one party's pair is uniformly random and independent of x; any two parties can
//! reconstruct. Owners outside the three parties (client, model owner) share and receive
//! values through the functions here.

use super::party::Party;
use super::prf::Prg;
use crate::net::{Role, Transport};
use crate::tensor::Elem;
use anyhow::{Result, ensure};
use ndarray::{ArrayD, IxDyn, Zip};

/// One party's view of an arithmetic sharing: components i and i+1.
#[derive(Clone, Debug)]
pub struct ArithShare {
    pub cur: ArrayD<u64>,
    pub next: ArrayD<u64>,
}

impl ArithShare {
    pub fn shape(&self) -> &[usize] {
        self.cur.shape()
    }

    /// Applies a linear map to both components: valid for any map with no constant term.
    pub fn map(&self, f: impl Fn(&ArrayD<u64>) -> Result<ArrayD<u64>>) -> Result<ArithShare> {
        Ok(ArithShare {
            cur: f(&self.cur)?,
            next: f(&self.next)?,
        })
    }
}

/// Splits `x` into the three parties' views using fresh randomness.
pub fn deal(x: &ArrayD<u64>, prg: &mut Prg) -> [ArithShare; 3] {
    let shape = x.raw_dim();
    let random = |prg: &mut Prg| ArrayD::from_shape_vec(shape.clone(), prg.words(x.len())).unwrap();
    let x0 = random(prg);
    let x1 = random(prg);
    let x2 = Zip::from(x)
        .and(&x0)
        .and(&x1)
        .map_collect(|&x, &a, &b| x.sub(a).sub(b));
    [
        ArithShare {
            cur: x0.clone(),
            next: x1.clone(),
        },
        ArithShare {
            cur: x1,
            next: x2.clone(),
        },
        ArithShare { cur: x2, next: x0 },
    ]
}

/// Owner side: secret-shares `x` and sends each party its two components.
pub fn send_secret(net: &mut dyn Transport, x: &ArrayD<u64>, prg: &mut Prg) -> Result<()> {
    for (i, share) in deal(x, prg).into_iter().enumerate() {
        let mut words = Vec::with_capacity(2 * x.len());
        words.extend(share.cur.iter());
        words.extend(share.next.iter());
        net.send(Role::Party(i as u8), &words)?;
    }
    Ok(())
}

/// Party side of [`send_secret`].
pub fn recv_secret(party: &mut Party, from: Role, shape: &[usize]) -> Result<ArithShare> {
    let words = party.recv_role(from)?;
    let len: usize = shape.iter().product();
    ensure!(
        words.len() == 2 * len,
        "{from} sent {} words for a tensor of shape {shape:?}",
        words.len()
    );
    let (cur, next) = words.split_at(len);
    Ok(ArithShare {
        cur: ArrayD::from_shape_vec(IxDyn(shape), cur.to_vec())?,
        next: ArrayD::from_shape_vec(IxDyn(shape), next.to_vec())?,
    })
}

/// Party side of a reveal to `to`: each party sends one component, so `to` learns the value
/// and nobody else learns anything.
pub fn reveal_to(party: &mut Party, to: Role, share: &ArithShare) -> Result<()> {
    let words: Vec<u64> = share.cur.iter().copied().collect();
    party.send_role(to, &words)
}

/// Receiver side of [`reveal_to`].
pub fn recv_revealed(net: &mut dyn Transport, shape: &[usize]) -> Result<ArrayD<u64>> {
    let len: usize = shape.iter().product();
    let mut sum = vec![0u64; len];
    for role in Role::PARTIES {
        let words = net.recv(role)?;
        ensure!(
            words.len() == len,
            "{role} revealed {} words for a tensor of shape {shape:?}",
            words.len()
        );
        for (s, w) in sum.iter_mut().zip(words) {
            *s = s.wrapping_add(w);
        }
    }
    Ok(ArrayD::from_shape_vec(IxDyn(shape), sum)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dealt_components_sum_to_the_secret_and_overlap_correctly() {
        let x = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![1u64, u64::MAX, 42, 7]).unwrap();
        let shares = deal(&x, &mut Prg::from_os().unwrap());
        for i in 0..3 {
            assert_eq!(
                shares[i].next,
                shares[(i + 1) % 3].cur,
                "party {i} next == party {} cur",
                i + 1
            );
        }
        let sum = Zip::from(&shares[0].cur)
            .and(&shares[1].cur)
            .and(&shares[2].cur)
            .map_collect(|&a, &b, &c| a.add(b).add(c));
        assert_eq!(sum, x);
        assert_ne!(shares[0].cur, x);
    }
}
