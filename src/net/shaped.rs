//! A network between the compute parties emulated in-process, for the benchmarks' LAN and
//! WAN figures: every party-to-party message leaves through a link of limited bandwidth, one
//! message after another, and arrives half a round trip after it has left. Messages to and
//! from the client and the model owner pass as they are.

use super::{Role, Stats, Transport};
use anyhow::{Result, ensure};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The link between every two compute parties.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Link {
    pub round_trip: Duration,
    pub bits_per_second: u64,
}

impl Link {
    /// 1 Gbit/s, 0.5 ms round trip: servers in one data centre.
    pub const LAN: Link = Link {
        round_trip: Duration::from_micros(500),
        bits_per_second: 1_000_000_000,
    };
    /// 100 Mbit/s, 40 ms round trip: servers in different regions.
    pub const WAN: Link = Link {
        round_trip: Duration::from_millis(40),
        bits_per_second: 100_000_000,
    };

    /// How long `bytes` take to leave through the link.
    fn transmission(&self, bytes: u64) -> Duration {
        Duration::from_nanos((bytes * 8).saturating_mul(1_000_000_000) / self.bits_per_second)
    }
}

/// The moment every endpoint's arrival times count from (the parties share one process).
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

/// A party's endpoint behind emulated links. A message to another party carries, in one
/// extra leading word that the statistics leave out, the time it arrives; the receiver
/// waits until then.
pub struct Shaped<T> {
    inner: T,
    link: Link,
    /// Per peer party: when its link is free again (messages leave one after another).
    free_at: [Duration; 3],
    stamped: u64,
}

impl<T: Transport> Shaped<T> {
    pub fn new(inner: T, link: Link) -> Self {
        Shaped {
            inner,
            link,
            free_at: [Duration::ZERO; 3],
            stamped: 0,
        }
    }
}

impl<T: Transport> Transport for Shaped<T> {
    fn me(&self) -> Role {
        self.inner.me()
    }

    fn send(&mut self, to: Role, words: &[u64]) -> Result<()> {
        let Role::Party(peer) = to else {
            return self.inner.send(to, words);
        };
        let now = epoch().elapsed();
        let free = &mut self.free_at[peer as usize];
        *free = now.max(*free) + self.link.transmission(8 * words.len() as u64);
        let arrival = *free + self.link.round_trip / 2;
        let mut stamped = Vec::with_capacity(words.len() + 1);
        stamped.push(arrival.as_nanos() as u64);
        stamped.extend_from_slice(words);
        self.stamped += 1;
        self.inner.send(to, &stamped)
    }

    fn recv(&mut self, from: Role) -> Result<Vec<u64>> {
        let mut words = self.inner.recv(from)?;
        if !matches!(from, Role::Party(_)) {
            return Ok(words);
        }
        ensure!(
            !words.is_empty(),
            "{from} sent a message without its arrival time"
        );
        let arrival = Duration::from_nanos(words.remove(0));
        if let Some(wait) = arrival.checked_sub(epoch().elapsed()) {
            std::thread::sleep(wait);
        }
        Ok(words)
    }

    fn stats(&self) -> Stats {
        let mut stats = self.inner.stats();
        stats.bytes_sent -= 8 * self.stamped;
        stats
    }

    fn observe_opened(&mut self, words: &[u64]) {
        self.inner.observe_opened(words)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::net::local::network;

    #[test]
    fn messages_arrive_after_half_a_round_trip_and_their_transmission() {
        let link = Link {
            round_trip: Duration::from_millis(20),
            bits_per_second: 8_000_000,
        };
        let mut ends = network(&Role::PARTIES).into_iter();
        let mut a = Shaped::new(ends.next().unwrap(), link);
        let mut b = Shaped::new(ends.next().unwrap(), link);
        let started = Instant::now();
        // 10_000 words = 80 kB: 80 ms at 1 MB/s, then 10 ms of latency.
        a.send(Role::Party(1), &vec![7; 10_000]).unwrap();
        let got = b.recv(Role::Party(0)).unwrap();
        let took = started.elapsed();
        assert_eq!(got, vec![7; 10_000]);
        assert!(took >= Duration::from_millis(90), "{took:?}");
        assert_eq!(a.stats().bytes_sent, 80_000);
    }
}
