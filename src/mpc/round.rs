//! One communication round carrying any number of independent sharings at once, and the hook
//! that lets input-independent work ride along the rounds of a longer protocol.
//!
//! Every message in a round goes from a party to its previous neighbour, so a round is one
//! message per party at most, whatever it carries. A lane says how its values enter:
//! resharing a term every party holds (three elements on the wire per value), resharing
//! terms only parties 1 and 2 hold (two), or party 0 dealing values it alone knows (one).

use super::hooks::{self, Fault};
use super::party::{Label, Link, Party};
use super::prf::Stream;
use anyhow::{Result, ensure};

/// One party's components (i, i+1) of an arithmetic sharing of a flat vector.
#[derive(Clone, Debug)]
pub(crate) struct Flat {
    pub cur: Vec<u64>,
    pub next: Vec<u64>,
}

/// A borrowed [`Flat`]: protocols read their operands in place instead of copying them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pair<'a> {
    pub cur: &'a [u64],
    pub next: &'a [u64],
}

impl Flat {
    pub fn pair(&self) -> Pair<'_> {
        Pair {
            cur: &self.cur,
            next: &self.next,
        }
    }
}

impl From<(Vec<u64>, Vec<u64>)> for Flat {
    fn from((cur, next): (Vec<u64>, Vec<u64>)) -> Flat {
        Flat { cur, next }
    }
}

/// This party's additive term of the element-wise product `x * y`.
pub(crate) fn mul_term(x: Pair, y: Pair) -> Vec<u64> {
    (0..x.cur.len())
        .map(|i| {
            x.cur[i]
                .wrapping_mul(y.cur[i].wrapping_add(y.next[i]))
                .wrapping_add(x.next[i].wrapping_mul(y.cur[i]))
        })
        .collect()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Every party holds a term (of an AND or a product): terms are masked with a fresh
    /// zero-sharing and each party sends its masked term on.
    Reshare,
    /// Only parties 1 and 2 hold terms, as in a product of a value party 0 dealt with one
    /// held by parties 1 and 2 alone: component 0 comes from the stream parties 0 and 2
    /// share, and 1 and 2 each send one masked component.
    ReshareOneTwo,
    /// Party 0 alone knows the values: component 1 comes from the stream parties 0 and 1
    /// share, and party 0 sends component 0 to party 2.
    Deal,
}

/// Values entering a round, with how they enter.
pub(crate) struct Lane {
    kind: Kind,
    len: usize,
    /// This party's terms (or, for a deal, the values at party 0); empty where it has none.
    values: Vec<u64>,
}

impl Lane {
    pub fn reshare(terms: Vec<u64>) -> Lane {
        Lane {
            kind: Kind::Reshare,
            len: terms.len(),
            values: terms,
        }
    }

    /// Party 0's terms must be zero; it may pass them or nothing.
    pub fn reshare_one_two(len: usize, terms: Vec<u64>) -> Lane {
        Lane {
            kind: Kind::ReshareOneTwo,
            len,
            values: terms,
        }
    }

    /// `values` as known to party 0; the others pass nothing.
    pub fn deal(len: usize, values: Vec<u64>) -> Lane {
        Lane {
            kind: Kind::Deal,
            len,
            values,
        }
    }

    /// Whether party `id` sends this lane to its previous neighbour.
    fn sent_by(&self, id: usize) -> bool {
        match self.kind {
            Kind::Reshare => true,
            Kind::ReshareOneTwo => id != 0,
            Kind::Deal => id == 0,
        }
    }
}

/// One party's two components of a sharing that a round produced.
pub(crate) type Components = (Vec<u64>, Vec<u64>);

/// Words of a mask stream read at a time: bounds what a round holds besides its values.
const MASK_PIECE: usize = 1 << 12;

/// `v = op(v, m)` for each value and the matching word of `mask`, read a piece at a time.
fn combine(values: &mut [u64], mut mask: Stream, op: impl Fn(u64, u64) -> u64) {
    let mut words = [0u64; MASK_PIECE];
    for piece in values.chunks_mut(MASK_PIECE) {
        let words = &mut words[..piece.len()];
        mask.fill(words);
        for (v, m) in piece.iter_mut().zip(words.iter()) {
            *v = op(*v, *m);
        }
    }
}

/// Streams of one lane: distinct per lane within a round's nonce.
fn lane_nonce(nonce: u64, lane: usize) -> u64 {
    nonce + ((lane as u64 + 1) << 8)
}

/// Words a round carries besides its lanes, sent straight to either neighbour (protocols
/// where two parties exchange or a dealer hands out correlated randomness), and how many
/// words this party expects from each.
#[derive(Default)]
pub(crate) struct Direct {
    pub to_prev: Vec<u64>,
    pub to_next: Vec<u64>,
    pub from_prev: usize,
    pub from_next: usize,
}

/// The direct words a round delivered, by sender.
#[derive(Default)]
pub(crate) struct Delivered {
    pub from_prev: Vec<u64>,
    pub from_next: Vec<u64>,
}

impl Party {
    /// Runs one round: every lane's values become a 2-out-of-3 sharing, in lane order.
    pub(crate) fn round(&mut self, lanes: Vec<Lane>) -> Result<Vec<Components>> {
        Ok(self.round_with(lanes, Direct::default())?.0)
    }

    /// [`Party::round`] that also carries `direct` words: at most one message to each
    /// neighbour, whatever the round holds.
    pub(crate) fn round_with(
        &mut self,
        lanes: Vec<Lane>,
        direct: Direct,
    ) -> Result<(Vec<Components>, Delivered)> {
        ensure!(lanes.len() < 255, "too many lanes in one round");
        let nonce = self.begin_call();
        self.count_rounds(1);
        let (id, from_next) = (self.id(), self.peer(1));
        // Per lane: its length, whether the next party sends it, and this party's component
        // (the one it sends, if it sends) with the second one where it is known without
        // receiving.
        let mut derived = Vec::with_capacity(lanes.len());
        for (k, lane) in lanes.into_iter().enumerate() {
            let (len, sends, received) = (lane.len, lane.sent_by(id), lane.sent_by(from_next));
            let pair = self.lane_components(lane, lane_nonce(nonce, k))?;
            ensure!(
                !sends || pair.0.len() == len,
                "round lane {k} has {} values where {len} were expected",
                pair.0.len()
            );
            derived.push((len, sends, received, pair));
        }
        let mut sent: Vec<&[u64]> = derived
            .iter()
            .filter(|d| d.1)
            .map(|d| d.3.0.as_slice())
            .collect();
        if !direct.to_prev.is_empty() {
            sent.push(&direct.to_prev);
        }
        match sent.as_slice() {
            [] => {}
            [only] => self.send_to(self.peer(2), only)?,
            many => self.send_to(self.peer(2), &many.concat())?,
        }
        if !direct.to_next.is_empty() {
            self.send_to(from_next, &direct.to_next)?;
        }
        let expected: usize = derived.iter().filter(|d| d.2).map(|d| d.0).sum();
        let mut received = if expected + direct.from_next > 0 {
            self.recv_from(from_next, expected + direct.from_next)?
        } else {
            vec![]
        };
        let delivered = Delivered {
            from_next: received.split_off(expected),
            from_prev: if direct.from_prev > 0 {
                self.recv_from(self.peer(2), direct.from_prev)?
            } else {
                vec![]
            },
        };
        let receiving = derived.iter().filter(|d| d.2).count();
        let mut at = 0;
        let shares = derived
            .into_iter()
            .map(|(len, _, from_next, (mine, second))| {
                if !from_next {
                    (mine, second)
                } else if receiving == 1 {
                    (mine, std::mem::take(&mut received))
                } else {
                    at += len;
                    (mine, received[at - len..at].to_vec())
                }
            })
            .collect();
        Ok((shares, delivered))
    }

    /// A lane's components at this party before receiving: the one it sends or keeps first
    /// (made from the lane's own values where it has them), and the second one where it is
    /// known without receiving. Masks are read a piece at a time and combined in place.
    fn lane_components(&self, lane: Lane, nonce: u64) -> Result<Components> {
        let n = lane.len;
        let mut values = lane.values;
        let reader = |link| self.stream_reader(link, nonce, Label::RoundMask);
        let stream = |link| self.stream(link, nonce, Label::RoundMask, n);
        Ok(match (lane.kind, self.id()) {
            (Kind::Reshare, _) if hooks::broken(Fault::UnmaskedReshare) => (values, vec![]),
            (Kind::Reshare, _) => {
                // Plus this party's term of a fresh zero-sharing.
                let (mut prev, mut next) = (reader(Link::Prev), reader(Link::Next));
                let (mut a, mut b) = ([0u64; MASK_PIECE], [0u64; MASK_PIECE]);
                for piece in values.chunks_mut(MASK_PIECE) {
                    let len = piece.len();
                    prev.fill(&mut a[..len]);
                    next.fill(&mut b[..len]);
                    for (v, (p, q)) in piece.iter_mut().zip(a.iter().zip(&b)) {
                        *v = v.wrapping_add(p.wrapping_sub(*q));
                    }
                }
                (values, vec![])
            }
            (Kind::ReshareOneTwo, 0) => (stream(Link::Prev), vec![]),
            (Kind::ReshareOneTwo, 1) => {
                combine(&mut values, reader(Link::Next), u64::wrapping_add);
                (values, vec![])
            }
            (Kind::ReshareOneTwo, _) => {
                let alpha = stream(Link::Next);
                for (v, a) in values.iter_mut().zip(&alpha) {
                    *v = v.wrapping_sub(*a);
                }
                combine(&mut values, reader(Link::Prev), u64::wrapping_sub);
                (values, alpha)
            }
            (Kind::Deal, 0) => {
                let c1 = stream(Link::Next);
                for (v, c) in values.iter_mut().zip(&c1) {
                    *v = v.wrapping_sub(*c);
                }
                (values, c1)
            }
            (Kind::Deal, 1) => (stream(Link::Prev), vec![0; n]),
            (Kind::Deal, _) => (vec![0; n], vec![]),
        })
    }
}

/// Input-independent work (such as daBit generation) that sends its values in the messages
/// of another protocol's rounds instead of rounds of its own.
pub(crate) trait Passenger {
    /// Rounds it needs.
    fn rounds(&self) -> usize;
    /// Lanes to add to round `round` of the host protocol.
    fn lanes(&mut self, party: &Party, round: usize) -> Vec<Lane>;
    /// The resulting sharings, in the order the lanes were given, and the direct words
    /// that came for it.
    fn deliver(&mut self, party: &Party, round: usize, shares: Vec<Components>, direct: Delivered);
    /// Direct words to add to round `round` (see [`Party::round_with`]); none by default.
    fn direct(&mut self, _party: &Party, _round: usize) -> Direct {
        Direct::default()
    }
}

/// Counts the rounds of a host protocol and lets a passenger ride each one.
pub(crate) struct Rider<'p> {
    passenger: &'p mut dyn Passenger,
    round: usize,
}

impl<'p> Rider<'p> {
    pub fn new(passenger: &'p mut dyn Passenger) -> Self {
        Rider {
            passenger,
            round: 0,
        }
    }

    /// One round for the host's lanes plus whatever the passenger brings.
    pub fn round(&mut self, party: &mut Party, lanes: Vec<Lane>) -> Result<Vec<Components>> {
        Ok(self.round_with(party, lanes, Direct::default())?.0)
    }

    /// [`Rider::round`] with direct words (see [`Party::round_with`]).
    pub fn round_with(
        &mut self,
        party: &mut Party,
        lanes: Vec<Lane>,
        direct: Direct,
    ) -> Result<(Vec<Components>, Delivered)> {
        let host = lanes.len();
        let mut all = lanes;
        all.extend(self.passenger.lanes(party, self.round));
        // The passenger's direct words follow the host's, both ways.
        let theirs = self.passenger.direct(party, self.round);
        let (host_prev, host_next) = (direct.from_prev, direct.from_next);
        let mut joined = direct;
        joined.to_prev.extend(theirs.to_prev);
        joined.to_next.extend(theirs.to_next);
        joined.from_prev += theirs.from_prev;
        joined.from_next += theirs.from_next;
        let (mut out, mut delivered) = party.round_with(all, joined)?;
        let riders = out.split_off(host);
        let passenger_words = Delivered {
            from_prev: delivered
                .from_prev
                .split_off(host_prev.min(delivered.from_prev.len())),
            from_next: delivered
                .from_next
                .split_off(host_next.min(delivered.from_next.len())),
        };
        self.passenger
            .deliver(party, self.round, riders, passenger_words);
        self.round += 1;
        Ok((out, delivered))
    }

    /// Runs the rounds the passenger still needs once the host protocol is done.
    pub fn finish(&mut self, party: &mut Party) -> Result<()> {
        while self.round < self.passenger.rounds() {
            self.round(party, vec![])?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mpc::run_local;

    /// Every lane kind yields a consistent 2-out-of-3 sharing of the right values.
    #[test]
    fn every_lane_kind_shares_the_right_values() {
        let dealt = vec![5u64, u64::MAX, 1 << 63];
        let terms = [
            vec![1u64, 2, 3],
            vec![10u64, 20, 30],
            vec![100u64, 200, 300],
        ];
        let (views, ()) = run_local(
            |p| {
                let id = p.id();
                let one_two = if id == 0 { vec![] } else { terms[id].clone() };
                let deal = if id == 0 { dealt.clone() } else { vec![] };
                p.round(vec![
                    Lane::reshare(terms[id].clone()),
                    Lane::reshare_one_two(3, one_two),
                    Lane::deal(3, deal),
                ])
            },
            |_, _| Ok(()),
        )
        .unwrap();
        let sum = |vs: [&Vec<u64>; 3]| -> Vec<u64> {
            (0..3)
                .map(|i| vs[0][i].wrapping_add(vs[1][i]).wrapping_add(vs[2][i]))
                .collect()
        };
        let wants = [
            sum([&terms[0], &terms[1], &terms[2]]),
            sum([&vec![0; 3], &terms[1], &terms[2]]),
            dealt.clone(),
        ];
        for (k, want) in wants.iter().enumerate() {
            for i in 0..3 {
                assert_eq!(views[i][k].1, views[(i + 1) % 3][k].0, "lane {k} party {i}");
            }
            let got = sum([&views[0][k].0, &views[1][k].0, &views[2][k].0]);
            assert_eq!(&got, want, "lane {k}");
        }
    }
}
