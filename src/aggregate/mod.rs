//! Secure aggregation: the publicly weighted sum of many inputters' vectors, computed by the
//! three parties on shares and revealed only to one result receiver.
//!
//! A sum needs no multiplication, so each vector is shared as cheaply as the guarantee
//! allows (any one party alone learns nothing): inputter k draws a fresh AES-CTR key from
//! the OS, sends it (two words) to party k mod 3, which derives the mask r from it, and sends
//! x − r (one ring element per value) to party k+1 mod 3. The pairs rotate with k to spread
//! the load. After agreeing on who submitted (one round), each party sums the pieces it
//! holds, times the inputters' public weights, into one term of a 3-out-of-3 sharing of the
//! result, adds its part of a zero-sharing (so that the receiver, even with one party's help,
//! learns only the total) and sends the term to the receiver.
//!
//! Under Pond the pieces go to the two servers only (the key to server k mod 2, x − r to
//! the other), whose two terms are the result: the crypto producer has nothing to deal for
//! a sum, so it only takes part in the agreement (it tells the receiver whether the round
//! met its minimum, as the servers do) and receives no piece and no value.

pub mod ring;

pub use ring::Ring;

use crate::mpc::hooks::{self, Fault};
use crate::mpc::party::Label;
use crate::mpc::prf::{Prf, os_key};
use crate::mpc::{Party, Protocol};
use crate::net::{Role, Stats, Transport};
use anyhow::{Context, Result, bail, ensure};

/// The public parameters of one aggregation round, the same at every role.
#[derive(Clone, Debug)]
pub struct Round {
    /// Who may submit; an inputter's position places its pieces.
    pub inputters: Vec<Role>,
    /// The integer factor each inputter's vector is multiplied by (all 1 for a plain sum).
    pub weights: Vec<u64>,
    /// Values per vector.
    pub len: usize,
    /// The parties reveal nothing unless at least this many inputters submitted.
    pub min_inputs: usize,
    pub ring: Ring,
    /// Who holds the pieces: any pair of the three parties, or Pond's two servers.
    pub protocol: Protocol,
}

/// What a party holds of one inputter's vector.
pub enum Piece {
    /// The key of the mask r.
    Mask(Prf),
    /// x − r, packed.
    Masked(Vec<u64>),
}

/// The parties holding inputter `k`'s mask key and its masked vector under `protocol` (an
/// inputter dials them before it learns the round's other rules).
pub fn holders(protocol: Protocol, k: usize) -> (usize, usize) {
    let parties = protocol.holders();
    (k % parties, (k + 1) % parties)
}

impl Round {
    fn bitmap_words(&self) -> usize {
        self.inputters.len().div_ceil(64)
    }

    /// What the whole round sends when every inputter submits (every role's bytes and
    /// messages, the parties' synchronous rounds).
    pub fn cost(&self) -> Stats {
        let n = self.inputters.len() as u64;
        let (bitmap, values) = (self.bitmap_words() as u64, self.ring.words(self.len) as u64);
        let revealing = self.protocol.holders() as u64;
        let words = n * (2 + values) + 3 * 2 * bitmap + revealing * (bitmap + values);
        Stats {
            bytes_sent: 8 * words,
            messages_sent: 2 * n + 6 + revealing,
            rounds: 1,
        }
    }

    /// Checks one message received from inputter `k` at party `id` and turns it into the
    /// piece that party holds (`None` when it holds none of `k`'s).
    pub fn piece(&self, id: usize, k: usize, words: Vec<u64>) -> Result<Option<Piece>> {
        let (mask_at, value_at) = holders(self.protocol, k);
        let who = self.inputters[k];
        Ok(if id == mask_at {
            let key = Prf::from_key_words(&words)
                .with_context(|| format!("{who} sent {} words for a key", words.len()))?;
            Some(Piece::Mask(key))
        } else if id == value_at {
            let expected = self.ring.words(self.len);
            ensure!(
                words.len() == expected,
                "{who} sent {} words for {} values (expected {expected})",
                words.len(),
                self.len
            );
            Some(Piece::Masked(words))
        } else {
            None
        })
    }
}

/// Inputter side: submits shares of `x` (already in the ring) as inputter `k` of `round`.
pub fn submit(net: &mut dyn Transport, round: &Round, k: usize, x: &[u64]) -> Result<()> {
    ensure!(
        x.len() == round.len,
        "a vector of {} values for a round of {}",
        x.len(),
        round.len
    );
    let key = Prf::new(os_key()?);
    let mut r = round.ring.uniform(&key, 0, x.len());
    if hooks::broken(Fault::UnmaskedPiece) {
        r.fill(0);
    }
    let masked: Vec<u64> = x.iter().zip(&r).map(|(x, r)| x.wrapping_sub(*r)).collect();
    let (mask_at, value_at) = holders(round.protocol, k);
    net.send(Role::Party(mask_at as u8), &key.key_words())?;
    net.send(Role::Party(value_at as u8), &round.ring.pack(&masked))
}

/// Party side: the pieces this party holds, in inputter order; `None` for an inputter whose
/// link closed without submitting (it is left out of the sum, as long as the round's
/// minimum is met).
pub fn collect(party: &mut Party, round: &Round) -> Result<Vec<Option<Piece>>> {
    (0..round.inputters.len())
        .map(|k| {
            let (mask_at, value_at) = holders(round.protocol, k);
            if party.id() != mask_at && party.id() != value_at {
                return Ok(None);
            }
            match party.recv_role(round.inputters[k]) {
                Ok(words) => round.piece(party.id(), k, words),
                Err(_) => Ok(None),
            }
        })
        .collect()
}

/// Party side, once the pieces are in: [`agree`] on who submitted, then send `receiver`
/// this party's term of the result ([`reveal`]). Returns which inputters the sum includes.
pub fn finish(
    party: &mut Party,
    round: &Round,
    pieces: Vec<Option<Piece>>,
    receiver: Role,
) -> Result<Vec<bool>> {
    let included = agree(party, round, &pieces)?;
    if let Some(term) = reveal(party, round, pieces, &included) {
        party.send_role(receiver, &term)?;
    }
    Ok(included)
}

/// Agrees with the other parties on who submitted (both holders of an inputter's pieces
/// must have them) and refuses to go on below the round's minimum.
pub fn agree(party: &mut Party, round: &Round, pieces: &[Option<Piece>]) -> Result<Vec<bool>> {
    let n = round.inputters.len();
    let heard = bitmap(&pieces.iter().map(Option::is_some).collect::<Vec<_>>());
    let mut by_party = [heard.clone(), heard.clone(), heard];
    for offset in [1, 2] {
        party.send_to(party.peer(offset), &by_party[party.id()])?;
    }
    for offset in [1, 2] {
        let peer = party.peer(offset);
        by_party[peer] = party.recv_from(peer, round.bitmap_words())?;
    }
    party.count_rounds(1);
    let has = |p: usize, k: usize| by_party[p][k / 64] >> (k % 64) & 1 == 1;
    let included: Vec<bool> = (0..n)
        .map(|k| {
            let (mask_at, value_at) = holders(round.protocol, k);
            has(mask_at, k) && has(value_at, k)
        })
        .collect();
    let count = included.iter().filter(|&&i| i).count();
    if count < round.min_inputs {
        bail!(
            "only {count} of the round's {n} inputters submitted, fewer than its minimum of {}; \
             the parties reveal no sum of fewer inputs",
            round.min_inputs
        );
    }
    Ok(included)
}

/// The message for the result receiver: the `included` set and this party's term of their
/// weighted sum, re-randomised by a zero-sharing; `None` at a party that holds no term
/// (Pond's producer).
pub fn reveal(
    party: &mut Party,
    round: &Round,
    pieces: Vec<Option<Piece>>,
    included: &[bool],
) -> Option<Vec<u64>> {
    let nonce = party.begin_call();
    if !round.protocol.holds(party.id()) {
        return None;
    }
    let mut term = party.zero_share(nonce, Label::Zero, round.len);
    for (k, piece) in pieces.into_iter().enumerate() {
        let w = round.weights[k];
        let values = match piece {
            Some(_) if !included[k] => continue,
            None => continue,
            Some(Piece::Mask(key)) => round.ring.uniform(&key, 0, round.len),
            Some(Piece::Masked(words)) => round.ring.unpack(&words, round.len),
        };
        for (t, v) in term.iter_mut().zip(values) {
            *t = t.wrapping_add(w.wrapping_mul(v));
        }
    }
    let mut message = bitmap(included);
    message.extend(round.ring.pack(&term));
    Some(message)
}

/// Which inputters a set of flags marks, one bit each.
fn bitmap(flags: &[bool]) -> Vec<u64> {
    let mut words = vec![0u64; flags.len().div_ceil(64)];
    for (k, _) in flags.iter().enumerate().filter(|(_, f)| **f) {
        words[k / 64] |= 1 << (k % 64);
    }
    words
}

/// What the result receiver learns: the weighted sum (signed ring values) and who is in it.
pub struct Revealed {
    pub sum: Vec<i64>,
    pub included: Vec<bool>,
}

/// Receiver side of [`finish`]: the terms of the parties that hold them.
pub fn receive(net: &mut dyn Transport, round: &Round) -> Result<Revealed> {
    let n = round.inputters.len();
    let bitmap_len = round.bitmap_words();
    let mut sum = vec![0u64; round.len];
    let mut agreed: Option<Vec<u64>> = None;
    for role in Role::PARTIES.into_iter().take(round.protocol.holders()) {
        let words = net.recv(role)?;
        ensure!(
            words.len() == bitmap_len + round.ring.words(round.len),
            "{role} revealed {} words for {} values",
            words.len(),
            round.len
        );
        let (set, term) = words.split_at(bitmap_len);
        match &agreed {
            Some(first) => ensure!(
                first == set,
                "the parties disagree on who submitted to the round"
            ),
            None => agreed = Some(set.to_vec()),
        }
        for (s, v) in sum.iter_mut().zip(round.ring.unpack(term, round.len)) {
            *s = s.wrapping_add(v);
        }
    }
    let set = agreed.unwrap_or_default();
    Ok(Revealed {
        sum: sum.into_iter().map(|v| round.ring.signed(v)).collect(),
        included: (0..n).map(|k| set[k / 64] >> (k % 64) & 1 == 1).collect(),
    })
}
