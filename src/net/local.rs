//! The embedded transport: every role on its own thread in one process, joined by channels.

use super::{Meter, Role, Stats, Transport};
use anyhow::{Result, anyhow};
use std::sync::mpsc::{Receiver, Sender, channel};

pub struct LocalTransport {
    me: Role,
    /// Indexed by [`Role::index`].
    to: Vec<Option<Sender<Vec<u64>>>>,
    from: Vec<Option<Receiver<Vec<u64>>>>,
    meter: Meter,
}

/// One connected endpoint per role in `roles`, in the same order.
pub fn network(roles: &[Role]) -> Vec<LocalTransport> {
    let slots = roles.iter().map(|r| r.index() + 1).max().unwrap_or(0);
    let mut ends: Vec<LocalTransport> = roles
        .iter()
        .map(|&me| LocalTransport {
            me,
            to: (0..slots).map(|_| None).collect(),
            from: (0..slots).map(|_| None).collect(),
            meter: Meter::default(),
        })
        .collect();
    for a in 0..roles.len() {
        for b in 0..roles.len() {
            if a != b {
                let (tx, rx) = channel();
                ends[a].to[roles[b].index()] = Some(tx);
                ends[b].from[roles[a].index()] = Some(rx);
            }
        }
    }
    ends
}

impl Transport for LocalTransport {
    fn me(&self) -> Role {
        self.me
    }

    fn send(&mut self, to: Role, words: &[u64]) -> Result<()> {
        let link = (self.to.get(to.index()))
            .and_then(Option::as_ref)
            .ok_or_else(|| anyhow!("{} has no link to {to}", self.me))?;
        link.send(words.to_vec())
            .map_err(|_| anyhow!("{to} has stopped; {} cannot send to it", self.me))?;
        self.meter.on_send(words.len());
        Ok(())
    }

    fn recv(&mut self, from: Role) -> Result<Vec<u64>> {
        let link = (self.from.get(from.index()))
            .and_then(Option::as_ref)
            .ok_or_else(|| anyhow!("{} has no link from {from}", self.me))?;
        let words = link
            .recv()
            .map_err(|_| anyhow!("{from} stopped before sending what {} waits for", self.me))?;
        self.meter.on_recv();
        Ok(words)
    }

    fn stats(&self) -> Stats {
        self.meter.stats()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_bytes_and_rounds() {
        let mut ends = network(&[Role::Party(0), Role::Party(1)]);
        let (mut a, mut b) = (ends.remove(0), ends.remove(0));
        a.send(Role::Party(1), &[1, 2, 3]).unwrap();
        a.send(Role::Party(1), &[4]).unwrap();
        assert_eq!(b.recv(Role::Party(0)).unwrap(), vec![1, 2, 3]);
        assert_eq!(b.recv(Role::Party(0)).unwrap(), vec![4]);
        b.send(Role::Party(0), &[9]).unwrap();
        a.recv(Role::Party(1)).unwrap();
        assert_eq!(
            a.stats(),
            Stats {
                bytes_sent: 32,
                messages_sent: 2,
                rounds: 1
            }
        );
        assert_eq!(
            b.stats(),
            Stats {
                bytes_sent: 8,
                messages_sent: 1,
                rounds: 1
            }
        );
        drop(a);
        assert!(b.recv(Role::Party(0)).is_err());
    }
}
