//! Replicated secret sharing over Z_2^64: x = x_0 + x_1 + x_2, party i holds (x_i, x_{i+1}).
//! Any one party's pair is uniformly random and independent of x; any two parties can
//! reconstruct. Owners outside the three parties (client, model owner) share and receive
//! values through the functions here, for either protocol: under Pond the same dealing
//! reaches the two servers alone (server 0 derives x_0 and x_1, server 1 receives x_2), and
//! the crypto producer receives nothing.

use super::Protocol;
use super::hooks::{self, KeyUse};
use super::party::{Label, Party, Slot};
use super::prf::Prf;
use crate::net::{Role, Transport};
use anyhow::{Context, Result, ensure};
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

    /// A Pond secret as the interpreter holds it: the server's additive share in `cur`,
    /// zeros in `next` (zeros throughout at the producer, which holds shapes only).
    pub fn additive(share: ArrayD<u64>) -> ArithShare {
        ArithShare {
            next: ArrayD::zeros(share.raw_dim()),
            cur: share,
        }
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
    protocol: Protocol,
    keys: [Prf; 2],
    nonce: u64,
    introduced: bool,
}

impl Dealer {
    /// Fresh keys from the OS CSPRNG, for one run with one set of parties.
    pub fn from_os(protocol: Protocol) -> Result<Dealer> {
        Ok(Dealer {
            protocol,
            keys: [
                Prf::new(hooks::key(KeyUse::Owner { component: 0 })?),
                Prf::new(hooks::key(KeyUse::Owner { component: 1 })?),
            ],
            nonce: 0,
            introduced: false,
        })
    }

    /// Secret-shares `x`; parties receive it with [`recv_secret`] in the same order.
    pub fn send_secret(&mut self, net: &mut dyn Transport, x: &ArrayD<u64>) -> Result<()> {
        if !self.introduced {
            let [k0, k1] = self.keys.each_ref().map(Prf::key_words);
            let keys = [[k0, k1].concat(), k1.to_vec(), k0.to_vec()];
            for (role, keys) in self.recipients().zip(keys) {
                net.send(role, &keys)?;
            }
            self.introduced = true;
        }
        let [_, _, x2] = self.components(x);
        for role in self.recipients().skip(1) {
            net.send(role, &x2)?;
        }
        Ok(())
    }

    /// The parties that receive anything, in order: all three, or Pond's two servers.
    fn recipients(&self) -> impl Iterator<Item = Role> {
        Role::PARTIES.into_iter().take(self.protocol.holders())
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
    let mut dealt = recv_dealt(party, from, shape)?;
    let sent = dealt.sent.take();
    dealt.made(party, sent)
}

/// A party's share of a value an owner dealt, kept as small as it can be: the component the
/// owner sent (to parties 1 and 2), and the dealing's nonce, from which the owner's keys give
/// the others. [`DealtShare::share`] makes the full share, the same each time, so a large
/// weight need not be held in full between uses.
pub struct DealtShare {
    owner: Role,
    nonce: u64,
    shape: Vec<usize>,
    /// The component the owner sent, where this party receives one.
    sent: Option<(Slot, ArrayD<u64>)>,
}

/// Party side of [`Dealer::send_secret`], keeping the share as dealt.
pub fn recv_dealt(party: &mut Party, from: Role, shape: &[usize]) -> Result<DealtShare> {
    let len = (shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)))
        .with_context(|| format!("a tensor of shape {shape:?} has too many elements"))?;
    // Pond's crypto producer is dealt nothing: it holds the shape alone.
    let holds = party.protocol().holds(party.id());
    let nonce = if holds { party.next_dealing(from)? } else { 0 };
    let sent = match party.sent_component().filter(|_| holds) {
        None => None,
        Some(slot) => {
            let words = party.recv_role(from)?;
            ensure!(
                words.len() == len,
                "{from} sent {} words for a tensor of shape {shape:?}",
                words.len()
            );
            Some((slot, ArrayD::from_shape_vec(IxDyn(shape), words)?))
        }
    };
    Ok(DealtShare {
        owner: from,
        nonce,
        shape: shape.to_vec(),
        sent,
    })
}

impl DealtShare {
    /// The number of elements of the value.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The party's full share: the sent component, and the others made from the owner's keys.
    pub fn share(&self, party: &Party) -> Result<ArithShare> {
        self.made(party, self.sent.clone())
    }

    fn made(&self, party: &Party, sent: Option<(Slot, ArrayD<u64>)>) -> Result<ArithShare> {
        if !party.protocol().holds(party.id()) {
            // Pond's crypto producer: the shape alone.
            return Ok(ArithShare::additive(ArrayD::zeros(IxDyn(&self.shape))));
        }
        let [cur, next] = party.dealt_components(self.owner, self.nonce, self.len())?;
        let derived = |words: Option<Vec<u64>>| -> Result<ArrayD<u64>> {
            let words = words.context("a dealt component is either sent or derived")?;
            Ok(ArrayD::from_shape_vec(IxDyn(&self.shape), words)?)
        };
        let dealt = match sent {
            Some((Slot::Cur, sent)) => ArithShare {
                cur: sent,
                next: derived(next)?,
            },
            Some((Slot::Next, sent)) => ArithShare {
                cur: derived(cur)?,
                next: sent,
            },
            None => ArithShare {
                cur: derived(cur)?,
                next: derived(next)?,
            },
        };
        // Under Pond, server 0's share is x_0 + x_1 and server 1's x_2: the two sum to x
        // and neither alone says anything about it.
        Ok(match (party.protocol(), party.id()) {
            (Protocol::Aby3, _) => dealt,
            (Protocol::Pond, 0) => ArithShare::additive(
                Zip::from(&dealt.cur)
                    .and(&dealt.next)
                    .map_collect(|a, b| a.wrapping_add(*b)),
            ),
            (Protocol::Pond, _) => ArithShare::additive(dealt.next),
        })
    }
}

/// Party side of a reveal to `to`: each share holder sends one additive term of the value
/// plus its term of a fresh sharing of zero, so `to` learns the value and nothing about the
/// sharing it came from, and nobody else learns anything. Under ABY3 the term is the
/// party's first component; under Pond the server's share ([`ArithShare::additive`]).
pub fn reveal_to(party: &mut Party, to: Role, share: &ArithShare) -> Result<()> {
    let nonce = party.begin_call();
    let n = share.cur.len();
    if !party.protocol().holds(party.id()) {
        return Ok(());
    }
    let mut words: Vec<u64> = share.cur.iter().copied().collect();
    let zero = party.zero_share(nonce, Label::Zero, n);
    for (w, z) in words.iter_mut().zip(zero) {
        *w = w.wrapping_add(z);
    }
    party.send_role(to, &words)
}

/// Receiver side of [`reveal_to`].
pub fn recv_revealed(
    net: &mut dyn Transport,
    protocol: Protocol,
    shape: &[usize],
) -> Result<ArrayD<u64>> {
    let len: usize = shape.iter().product();
    let mut sum = vec![0u64; len];
    for role in Role::PARTIES.into_iter().take(protocol.holders()) {
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
        // y is kept as dealt and its share made after a later dealing, twice: the same share.
        let (shares, ()) = run_local(
            |p| {
                let x = recv_secret(p, Role::Client, &[2, 2])?;
                let y = recv_dealt(p, Role::Client, &[3])?;
                recv_secret(p, Role::Client, &[3])?;
                let (y, again) = (y.share(p)?, y.share(p)?);
                assert_eq!((&y.cur, &y.next), (&again.cur, &again.next));
                Ok([x, y])
            },
            |client, _| {
                let mut dealer = Dealer::from_os(Protocol::Aby3)?;
                dealer.send_secret(client, &x)?;
                dealer.send_secret(client, &y)?;
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
