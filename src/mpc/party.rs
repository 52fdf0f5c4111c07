//! One compute party's protocol state: its index, its link to the others and the two PRF
//! keys it shares with its neighbours.
//!
//! Party i holds key k_i (shared with party i-1) and k_{i+1} (shared with party i+1). All
//! parties run the same sequence of protocol calls, and every call takes a fresh nonce from
//! a counter that therefore stays in step across parties; streams within a call are told
//! apart by a label.

use super::Protocol;
use super::hooks::{self, Fault, KeyUse};
use super::prf::{Prf, Stream};
use crate::net::{Role, Stats, Transport};
use anyhow::{Context, Result, ensure};

/// Which neighbour a PRF key is shared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Link {
    Prev,
    Next,
}

/// One of the two components a party holds of a replicated sharing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    Cur,
    Next,
}

/// Stream labels within one protocol call.
#[derive(Clone, Copy, Debug)]
#[repr(u8)]
pub enum Label {
    Zero = 1,
    /// Masks and zero-sharings of a lane in a [`Party::round`].
    RoundMask,
    TruncR,
    TruncRHigh,
    /// The dealer's and A's share of the multiples of 2^(63-f) a truncation corrects.
    TruncTop,
    TruncMsb,
    TruncOut,
    DaBit,
    /// A comparison's tables, masks and dealt products ([`super::sign`]).
    Sign,
    /// The mask under which a comparison's two computing parties send their shares to the
    /// dealer.
    SignOpen,
    /// Pond: the masks of a Beaver triple's first and second operands, and its product.
    TripleX,
    TripleY,
    TripleProduct,
    /// Pond: the mask r a comparison opens x + r under, and the XOR shares of its top bit.
    CompareMask,
    CompareTop,
    /// Pond: a daBit's XOR and arithmetic shares.
    DaBitXor,
    DaBitArith,
}

/// The protocols where one party deals correlated randomness to the other two.
#[derive(Clone, Copy)]
pub(crate) enum Dealing {
    Truncation,
    Comparison,
}

pub struct Party {
    id: usize,
    protocol: Protocol,
    net: Box<dyn Transport>,
    with_prev: Prf,
    with_next: Prf,
    calls: u64,
    /// Calls of each dealer-assisted protocol so far, by [`Dealing`]: their dealer rotates
    /// per call of the same protocol, so that each party deals a third of each.
    dealt: [u64; 2],
    /// Synchronous protocol rounds so far (the same at every party).
    rounds: u64,
    /// Owners of secrets that have dealt to this party.
    owners: Vec<OwnerLink>,
}

impl Party {
    /// What [`Party::setup`] sends, all parties together: one key (two words) each.
    pub const SETUP: Stats = Stats {
        bytes_sent: 3 * 16,
        messages_sent: 3,
        rounds: 0,
    };

    /// Agrees on fresh PRF keys with both neighbours: each party draws the key it shares with
    /// its next neighbour from the OS CSPRNG and sends it there.
    pub fn setup(net: Box<dyn Transport>, protocol: Protocol) -> Result<Party> {
        let Role::Party(id) = net.me() else {
            anyhow::bail!("{} is not a compute party", net.me())
        };
        let id = id as usize;
        let mut net = net;
        let with_next = Prf::new(hooks::key(KeyUse::Link { drawer: id })?);
        net.send(Role::Party(((id + 1) % 3) as u8), &with_next.key_words())?;
        let words = net
            .recv(Role::Party(((id + 2) % 3) as u8))
            .context("key agreement")?;
        let with_prev =
            Prf::from_key_words(&words).context("malformed key from the previous party")?;
        Ok(Party {
            id,
            protocol,
            net,
            with_prev,
            with_next,
            calls: 0,
            dealt: [0; 2],
            rounds: 0,
            owners: vec![],
        })
    }

    pub fn id(&self) -> usize {
        self.id
    }

    pub fn protocol(&self) -> Protocol {
        self.protocol
    }

    /// Traffic as metered by the transport, with rounds counted as the protocol's
    /// synchronous rounds: a party that only sends in a round (a truncation's dealer) still
    /// waits for that round on the critical path.
    pub fn stats(&self) -> Stats {
        Stats {
            rounds: self.rounds,
            ..self.net.stats()
        }
    }

    /// Records `n` synchronous rounds.
    pub fn count_rounds(&mut self, n: u64) {
        self.rounds += n;
    }

    /// The party `offset` places after this one (mod 3).
    pub fn peer(&self, offset: usize) -> usize {
        (self.id + offset) % 3
    }

    /// The dealer of the next call of a dealer-assisted protocol (the same at every party).
    pub(crate) fn next_dealer(&mut self, protocol: Dealing) -> usize {
        let count = &mut self.dealt[protocol as usize];
        *count += 1;
        (*count % 3) as usize
    }

    /// Starts a protocol call; the returned nonce keys every stream the call uses, with the
    /// low 16 bits left for labels and lanes within the call.
    pub fn begin_call(&mut self) -> u64 {
        if !hooks::broken(Fault::ReusedNonce) {
            self.calls += 1;
        }
        self.calls << 16
    }

    pub fn stream(&self, link: Link, nonce: u64, label: Label, n: usize) -> Vec<u64> {
        self.prf(link).words(nonce | label as u64, n)
    }

    /// [`Party::stream`] read a piece at a time.
    pub fn stream_reader(&self, link: Link, nonce: u64, label: Label) -> Stream {
        self.prf(link).stream(nonce | label as u64)
    }

    fn prf(&self, link: Link) -> &Prf {
        match link {
            Link::Prev => &self.with_prev,
            Link::Next => &self.with_next,
        }
    }

    /// This party's term of a fresh sharing of zero over Z_2^64 among the parties holding
    /// shares ([`Protocol::holders`]): under ABY3 the three terms, each from the streams
    /// shared with both neighbours; under Pond the two servers' terms, ± the stream they
    /// share (the producer, which holds no share, gets zeros).
    pub fn zero_share(&self, nonce: u64, label: Label, n: usize) -> Vec<u64> {
        match (self.protocol, self.id) {
            (Protocol::Aby3, _) => {
                let prev = self.stream(Link::Prev, nonce, label, n);
                let next = self.stream(Link::Next, nonce, label, n);
                prev.iter()
                    .zip(&next)
                    .map(|(a, b)| a.wrapping_sub(*b))
                    .collect()
            }
            (Protocol::Pond, 0) => self.stream(Link::Next, nonce, label, n),
            (Protocol::Pond, 1) => (self.stream(Link::Prev, nonce, label, n).into_iter())
                .map(u64::wrapping_neg)
                .collect(),
            (Protocol::Pond, _) => vec![0; n],
        }
    }

    pub fn send_to(&mut self, party: usize, words: &[u64]) -> Result<()> {
        self.net.send(Role::Party(party as u8), words)
    }

    pub fn recv_from(&mut self, party: usize, len: usize) -> Result<Vec<u64>> {
        let words = self.net.recv(Role::Party(party as u8))?;
        ensure!(
            words.len() == len,
            "party {party} sent {} words where {len} were expected",
            words.len()
        );
        Ok(words)
    }

    /// The nonce of an owner's next sharing to this party. The owner's first sharing starts
    /// with its keys, which are taken here.
    pub(crate) fn next_dealing(&mut self, owner: Role) -> Result<u64> {
        let at = match self.owners.iter().position(|o| o.role == owner) {
            Some(at) => at,
            None => {
                let link = OwnerLink::accept(self, owner)?;
                self.owners.push(link);
                self.owners.len() - 1
            }
        };
        let link = &mut self.owners[at];
        link.nonce += 1;
        Ok(link.nonce)
    }

    /// Components `cur` and `next` of an owner's sharing `nonce` of `len` elements, each
    /// derived from the owner's keys where this party holds that key, `None` where the owner
    /// sends it. The same nonce always gives the same components, so a share can be made
    /// again instead of held.
    pub(crate) fn dealt_components(
        &self,
        owner: Role,
        nonce: u64,
        len: usize,
    ) -> Result<[Option<Vec<u64>>; 2]> {
        let link = self
            .owners
            .iter()
            .find(|o| o.role == owner)
            .ok_or_else(|| anyhow::anyhow!("{owner} has dealt nothing to party {}", self.id))?;
        let derived = |j: usize| link.keys[j].as_ref().map(|k| k.words(nonce, len));
        Ok(match self.id {
            0 => [derived(0), derived(1)],
            1 => [derived(1), None],
            _ => [None, derived(0)],
        })
    }

    /// Which of this party's components an owner sends (component 2, which no key gives):
    /// `next` at party 1, `cur` at party 2, none at party 0.
    pub(crate) fn sent_component(&self) -> Option<Slot> {
        match self.id {
            0 => None,
            1 => Some(Slot::Next),
            _ => Some(Slot::Cur),
        }
    }

    /// Reports a value reconstructed in the clear (see [`Transport::observe_opened`]).
    pub fn opened(&mut self, words: &[u64]) {
        self.net.observe_opened(words);
    }

    pub fn send_role(&mut self, role: Role, words: &[u64]) -> Result<()> {
        self.net.send(role, words)
    }

    pub fn recv_role(&mut self, role: Role) -> Result<Vec<u64>> {
        self.net.recv(role)
    }
}

/// A party's side of one owner's [`Dealer`](super::share::Dealer): the keys it was given and
/// the sharings so far.
struct OwnerLink {
    role: Role,
    /// Keys for components 0 and 1, where this party holds them.
    keys: [Option<Prf>; 2],
    nonce: u64,
}

impl OwnerLink {
    /// Takes the owner's keys, sent with its first sharing: party 0 holds both, party 1 the
    /// second, party 2 the first.
    fn accept(party: &mut Party, role: Role) -> Result<OwnerLink> {
        let words = party.recv_role(role)?;
        let mut keys = [None, None];
        let held: &[usize] = match party.id() {
            0 => &[0, 1],
            1 => &[1],
            _ => &[0],
        };
        ensure!(
            words.len() == 2 * held.len(),
            "{role} sent {} words of keys where {} were expected",
            words.len(),
            2 * held.len()
        );
        for (&component, key) in held.iter().zip(words.chunks(2)) {
            keys[component] = Some(Prf::from_key_words(key).expect("two words make a key"));
        }
        Ok(OwnerLink {
            role,
            keys,
            nonce: 0,
        })
    }
}
