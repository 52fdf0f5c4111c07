//! Replicated secret sharing over Z_2^64: x = x_0 + x_1 + x_2, party i holds (x_i, x_{i+1}).
//! Any one party's pair is uniformly random and independent of x; any two parties can
//! reconstruct. Owners outside the three parties (client, model owner) share and receive
//! values through the functions here.

use super::party::Party;
use super::prf::{Prf, os_key};
use crate::net::{Role, Transport};
use anyhow::{Result, ensure};
use ndarray::{ArrayD, IxDyn};

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

/// An owner of secrets (the client or the model owner) dealing sharings to the parties.
///
/// Components 0 and 1 of every sharing come from two keys it gives the parties once, with
/// its first sharing (party 0 gets both, party 1 the second, party 2 the first), so per value
/// only component 2 = x - x0 - x1 travels, to parties 1 and 2: two elements on the wire
/// instead of six. Each party still lacks one component, which is uniform to it.
pub struct Dealer {
    keys: [Prf; 2],
    nonce: u64,
    introduced: bool,
}

impl Dealer {
    /// Fresh keys from the OS CSPRNG, for one run with one set of parties.
    pub fn from_os() -> Result<Dealer> {
        Ok(Dealer {
            keys: [Prf::new(os_key()?), Prf::new(os_key()?)],
            nonce: 0,
            introduced: false,
        })
    }

    /// Secret-shares `x`; parties receive it with [`recv_secret`] in the same order.
    pub fn send_secret(&mut self, net: &mut dyn Transport, x: &ArrayD<u64>) -> Result<()> {
        if !self.introduced {
            let [k0, k1] = self.keys.each_ref().map(Prf::key_words);
            for (role, keys) in
                Role::PARTIES
                    .into_iter()
                    .zip([[k0, k1].concat(), k1.to_vec(), k0.to_vec()])
            {
                net.send(role, &keys)?;
            }
            self.introduced = true;
        }
        let [_, _, x2] = self.components(x);
        net.send(Role::Party(1), &x2)?;
        net.send(Role::Party(2), &x2)
    }

    /// The next sharing of `x`: x0 and x1 from the two keys, x2 = x - x0 - x1 in Z_2^64.
    pub fn components(&mut self, x: &ArrayD<u64>) -> [Vec<u64>; 3] {
        self.nonce += 1;
        let x0 = self.keys[0].words(self.nonce, x.len());
        let x1 = self.keys[1].words(self.nonce, x.len());
        let x2: Vec<u64> = x
            .iter()
            .zip(x0.iter().zip(&x1))
            .map(|(x, (a, b))| x.wrapping_sub(*a).wrapping_sub(*b))
            .collect();
        [x0, x1, x2]
    }
}

/// Party side of [`Dealer::send_secret`].
pub fn recv_secret(party: &mut Party, from: Role, shape: &[usize]) -> Result<ArithShare> {
    let len: usize = shape.iter().product();
    let [cur, next] = party.dealt_components(from, len)?;
    let sent = |party: &mut Party| -> Result<Vec<u64>> {
        let words = party.recv_role(from)?;
        ensure!(
            words.len() == len,
            "{from} sent {} words for a tensor of shape {shape:?}",
            words.len()
        );
        Ok(words)
    };
    let cur = match cur {
        Some(c) => c,
        None => sent(party)?,
    };
    let next = match next {
        Some(n) => n,
        None => sent(party)?,
    };
    Ok(ArithShare {
        cur: ArrayD::from_shape_vec(IxDyn(shape), cur)?,
        next: ArrayD::from_shape_vec(IxDyn(shape), next)?,
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
    use crate::mpc::run_local;

    #[test]
    fn dealt_components_sum_to_the_secret_and_overlap_correctly() {
        let x = ArrayD::from_shape_vec(IxDyn(&[2, 2]), vec![1u64, u64::MAX, 42, 7]).unwrap();
        let y = ArrayD::from_shape_vec(IxDyn(&[3]), vec![5u64, 6, 7]).unwrap();
        let (shares, ()) = run_local(
            |p| {
                Ok([
                    recv_secret(p, Role::Client, &[2, 2])?,
                    recv_secret(p, Role::Client, &[3])?,
                ])
            },
            |client, _| {
                let mut dealer = Dealer::from_os()?;
                dealer.send_secret(client, &x)?;
                dealer.send_secret(client, &y)
            },
        )
        .unwrap();
        for (t, secret) in [&x, &y].into_iter().enumerate() {
            let s: Vec<&ArithShare> = shares.iter().map(|v| &v[t]).collect();
            for i in 0..3 {
                assert_eq!(
                    s[i].next,
                    s[(i + 1) % 3].cur,
                    "party {i} next == party {} cur",
                    i + 1
                );
                assert_ne!(&s[i].cur, secret);
            }
            let mut sum = s[0].cur.clone();
            for part in [&s[1].cur, &s[2].cur] {
                sum.zip_mut_with(part, |a, b| *a = a.wrapping_add(*b));
            }
            assert_eq!(&sum, secret);
        }
    }
}
