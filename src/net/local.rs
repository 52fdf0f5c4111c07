//! The embedded transport: every role on its own thread in one process, joined by channels.

use super::backlog::{BACKLOG_WORDS, Backlog};
use super::{Meter, Role, Stats, Transport};
use anyhow::{Result, anyhow, bail};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};

/// One direction between two roles.
struct Link<T> {
    end: T,
    backlog: Arc<Backlog>,
}

pub struct LocalTransport {
    me: Role,
    /// Indexed by [`Role::index`].
    to: Vec<Option<Link<Sender<Vec<u64>>>>>,
    from: Vec<Option<Link<Receiver<Vec<u64>>>>>,
    meter: Meter,
}

/// One connected endpoint per role in `roles`, in the same order.
pub fn network(roles: &[Role]) -> Vec<LocalTransport> {
    network_holding(roles, BACKLOG_WORDS)
}

/// [`network`] whose links hold at most `limit` words unreceived before a sender waits.
fn network_holding(roles: &[Role], limit: usize) -> Vec<LocalTransport> {
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
                let backlog = Arc::new(Backlog::new(limit));
                ends[a].to[roles[b].index()] = Some(Link {
                    end: tx,
                    backlog: backlog.clone(),
                });
                ends[b].from[roles[a].index()] = Some(Link { end: rx, backlog });
            }
        }
    }
    ends
}

impl Drop for LocalTransport {
    /// Wakes senders waiting on this role's links: it will take nothing more.
    fn drop(&mut self) {
        for link in self.from.iter().flatten() {
            link.backlog.close();
        }
    }
}

impl Transport for LocalTransport {
    fn me(&self) -> Role {
        self.me
    }

    fn send(&mut self, to: Role, words: &[u64]) -> Result<()> {
        let link = (self.to.get(to.index()))
            .and_then(Option::as_ref)
            .ok_or_else(|| anyhow!("{} has no link to {to}", self.me))?;
        if !link.backlog.admit(words.len()) || link.end.send(words.to_vec()).is_err() {
            bail!("{to} has stopped; {} cannot send to it", self.me);
        }
        self.meter.on_send(words.len());
        Ok(())
    }

    fn recv(&mut self, from: Role) -> Result<Vec<u64>> {
        let link = (self.from.get(from.index()))
            .and_then(Option::as_ref)
            .ok_or_else(|| anyhow!("{} has no link from {from}", self.me))?;
        let words = (link.end.recv())
            .map_err(|_| anyhow!("{from} stopped before sending what {} waits for", self.me))?;
        link.backlog.take(words.len());
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

    /// A sender waits while its link holds `limit` words unreceived, and only then: the
    /// receiver sees it at most one message ahead past the limit.
    #[test]
    fn a_sender_waits_while_its_link_is_full() {
        let mut ends = network_holding(&[Role::Party(0), Role::Party(1)], 4);
        let (mut a, mut b) = (ends.remove(0), ends.remove(0));
        let sent = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = sent.clone();
        let sender = std::thread::spawn(move || {
            for k in 0..6u64 {
                a.send(Role::Party(1), &[k, k, k]).unwrap();
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(100));
        // 3 words fit; 6 would not, so the second message waits for the first's receipt.
        assert_eq!(sent.load(std::sync::atomic::Ordering::SeqCst), 1);
        for k in 0..6u64 {
            assert_eq!(b.recv(Role::Party(0)).unwrap(), vec![k, k, k]);
        }
        sender.join().unwrap();
    }

    /// A message larger than the limit still goes through an empty link, and a sender
    /// waiting on a receiver that has gone gets an error instead of waiting for ever.
    #[test]
    fn a_waiting_sender_learns_that_the_receiver_has_gone() {
        let mut ends = network_holding(&[Role::Party(0), Role::Party(1)], 2);
        let (mut a, b) = (ends.remove(0), ends.remove(0));
        a.send(Role::Party(1), &[1, 2, 3]).unwrap();
        let sender = std::thread::spawn(move || a.send(Role::Party(1), &[4]));
        std::thread::sleep(std::time::Duration::from_millis(50));
        drop(b);
        let error = sender.join().unwrap().unwrap_err().to_string();
        assert!(error.contains("party 1 has stopped"), "{error}");
    }
}
