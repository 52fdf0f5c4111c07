//! One communication round carrying any number of independent sharings at once, and the hook
//! that lets input-independent work ride along the rounds of a longer protocol.
//!
//! Every message in a round goes from a party to its previous neighbour, so a round is one
//! message per party at most, whatever it carries. A lane says how its values enter:
//! resharing a term every party holds (three elements on the wire per value), resharing
//! terms only parties 1 and 2 hold (two), or party 0 dealing values it alone knows (one).

use super::bits::BoolShare;
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

/// The group a lane's values live in: bits under XOR or ring elements under addition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Group {
    Xor,
    Add,
}

impl Group {
    fn plus(self, a: u64, b: u64) -> u64 {
        match self {
            Group::Xor => a ^ b,
            Group::Add => a.wrapping_add(b),
        }
    }

    fn minus(self, a: u64, b: u64) -> u64 {
        match self {
            Group::Xor => a ^ b,
            Group::Add => a.wrapping_sub(b),
        }
    }
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
    group: Group,
    len: usize,
    /// This party's terms (or, for a deal, the values at party 0); empty where it has none.
    values: Vec<u64>,
}

impl Lane {
    pub fn reshare(group: Group, terms: Vec<u64>) -> Lane {
        Lane {
            kind: Kind::Reshare,
            group,
            len: terms.len(),
            values: terms,
        }
    }

    /// Party 0's terms must be zero; it may pass them or nothing.
    pub fn reshare_one_two(group: Group, len: usize, terms: Vec<u64>) -> Lane {
        Lane {
            kind: Kind::ReshareOneTwo,
            group,
            len,
            values: terms,
        }
    }

    /// `values` as known to party 0; the others pass nothing.
    pub fn deal(group: Group, len: usize, values: Vec<u64>) -> Lane {
        Lane {
            kind: Kind::Deal,
            group,
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

impl Party {
    /// Runs one round: every lane's values become a 2-out-of-3 sharing, in lane order.
    pub(crate) fn round(&mut self, lanes: Vec<Lane>) -> Result<Vec<Components>> {
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
        let sent: Vec<&[u64]> = derived
            .iter()
            .filter(|d| d.1)
            .map(|d| d.3.0.as_slice())
            .collect();
        match sent.as_slice() {
            [] => {}
            [only] => self.send_to(self.peer(2), only)?,
            many => self.send_to(self.peer(2), &many.concat())?,
        }
        let expected: usize = derived.iter().filter(|d| d.2).map(|d| d.0).sum();
        let mut received = if expected > 0 {
            self.recv_from(from_next, expected)?
        } else {
            vec![]
        };
        let receiving = derived.iter().filter(|d| d.2).count();
        let mut at = 0;
        Ok(derived
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
            .collect())
    }

    /// A lane's components at this party before receiving: the one it sends or keeps first
    /// (made from the lane's own values where it has them), and the second one where it is
    /// known without receiving. Masks are read a piece at a time and combined in place.
    fn lane_components(&self, lane: Lane, nonce: u64) -> Result<Components> {
        let (g, n) = (lane.group, lane.len);
        let mut values = lane.values;
        let reader = |link| self.stream_reader(link, nonce, Label::RoundMask);
        let stream = |link| self.stream(link, nonce, Label::RoundMask, n);
        Ok(match (lane.kind, self.id()) {
            (Kind::Reshare, _) => {
                // Plus this party's term of a fresh zero-sharing.
                let (mut prev, mut next) = (reader(Link::Prev), reader(Link::Next));
                let (mut a, mut b) = ([0u64; MASK_PIECE], [0u64; MASK_PIECE]);
                for piece in values.chunks_mut(MASK_PIECE) {
                    let len = piece.len();
                    prev.fill(&mut a[..len]);
                    next.fill(&mut b[..len]);
                    for (v, (p, q)) in piece.iter_mut().zip(a.iter().zip(&b)) {
                        *v = g.plus(*v, g.minus(*p, *q));
                    }
                }
                (values, vec![])
            }
            (Kind::ReshareOneTwo, 0) => (stream(Link::Prev), vec![]),
            (Kind::ReshareOneTwo, 1) => {
                combine(&mut values, reader(Link::Next), |v, m| g.plus(v, m));
                (values, vec![])
            }
            (Kind::ReshareOneTwo, _) => {
                let alpha = stream(Link::Next);
                for (v, a) in values.iter_mut().zip(&alpha) {
                    *v = g.minus(*v, *a);
                }
                combine(&mut values, reader(Link::Prev), |v, m| g.minus(v, m));
                (values, alpha)
            }
            (Kind::Deal, 0) => {
                let c1 = stream(Link::Next);
                for (v, c) in values.iter_mut().zip(&c1) {
                    *v = g.minus(*v, *c);
                }
                (values, c1)
            }
            (Kind::Deal, 1) => (stream(Link::Prev), vec![0; n]),
            (Kind::Deal, _) => (vec![0; n], vec![]),
        })
    }

    /// Opens XOR-shared bits, packed 64 to a word, to every party in one round: each party
    /// sends the component its previous neighbour lacks. Returns the `n` bits, still packed.
    pub(crate) fn open_packed(&mut self, bits: &BoolShare, n: usize) -> Result<Vec<u64>> {
        self.count_rounds(1);
        self.send_to(self.peer(2), &bits.next)?;
        let third = self.recv_from(self.peer(1), bits.next.len())?;
        let mut packed: Vec<u64> = (0..bits.cur.len())
            .map(|k| bits.cur[k] ^ bits.next[k] ^ third[k])
            .collect();
        // Bits past n pad the last word; they are no one's value.
        if let (Some(last), tail @ 1..) = (packed.last_mut(), n % 64) {
            *last &= (1 << tail) - 1;
        }
        self.opened(&packed);
        Ok(packed)
    }
}

/// Input-independent work (such as daBit generation) that sends its values in the messages
/// of another protocol's rounds instead of rounds of its own.
pub(crate) trait Passenger {
    /// Rounds it needs.
    fn rounds(&self) -> usize;
    /// Lanes to add to round `round` of the host protocol.
    fn lanes(&mut self, party: &Party, round: usize) -> Vec<Lane>;
    /// The resulting sharings, in the order the lanes were given.
    fn deliver(&mut self, party: &Party, round: usize, shares: Vec<Components>);
}

/// Rides nothing.
pub(crate) struct NoPassenger;

impl Passenger for NoPassenger {
    fn rounds(&self) -> usize {
        0
    }
    fn lanes(&mut self, _: &Party, _: usize) -> Vec<Lane> {
        vec![]
    }
    fn deliver(&mut self, _: &Party, _: usize, _: Vec<Components>) {}
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
        let host = lanes.len();
        let mut all = lanes;
        all.extend(self.passenger.lanes(party, self.round));
        let mut out = party.round(all)?;
        let riders = out.split_off(host);
        self.passenger.deliver(party, self.round, riders);
        self.round += 1;
        Ok(out)
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
                    Lane::reshare(Group::Add, terms[id].clone()),
                    Lane::reshare(Group::Xor, terms[id].clone()),
                    Lane::reshare_one_two(Group::Add, 3, one_two.clone()),
                    Lane::reshare_one_two(Group::Xor, 3, one_two),
                    Lane::deal(Group::Add, 3, deal.clone()),
                    Lane::deal(Group::Xor, 3, deal),
                ])
            },
            |_, _| Ok(()),
        )
        .unwrap();
        let groups = [
            Group::Add,
            Group::Xor,
            Group::Add,
            Group::Xor,
            Group::Add,
            Group::Xor,
        ];
        let sum = |g: Group, vs: [&Vec<u64>; 3]| -> Vec<u64> {
            (0..3)
                .map(|i| g.plus(g.plus(vs[0][i], vs[1][i]), vs[2][i]))
                .collect()
        };
        for (k, &g) in groups.iter().enumerate() {
            for i in 0..3 {
                assert_eq!(views[i][k].1, views[(i + 1) % 3][k].0, "lane {k} party {i}");
            }
            let got = sum(g, [&views[0][k].0, &views[1][k].0, &views[2][k].0]);
            let want = match k {
                0 | 1 => sum(g, [&terms[0], &terms[1], &terms[2]]),
                2 | 3 => sum(g, [&vec![0; 3], &terms[1], &terms[2]]),
                _ => dealt.clone(),
            };
            assert_eq!(got, want, "lane {k}");
        }
    }
}
