//! Where bytes cross between parties. The protocol talks to a [`Transport`] only, so the
//! in-process channels used by the embedded mode and a networked implementation are
//! interchangeable without touching `mpc`.

pub mod backlog;
pub mod config;
pub mod frame;
pub mod local;
pub mod pki;
pub mod shaped;
pub mod tap;
pub mod tls;

use anyhow::Result;
use std::fmt;

/// Everyone who takes part in a run: three compute parties, the client (input owner and
/// result receiver), the model owner (who secret-shares the weights), and an aggregation's
/// inputters (each deals one vector) and result receiver.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Party(u8),
    Client,
    ModelOwner,
    Receiver,
    Inputter(u16),
}

impl Role {
    pub const PARTIES: [Role; 3] = [Role::Party(0), Role::Party(1), Role::Party(2)];
    pub const ALL: [Role; 5] = [
        Role::Party(0),
        Role::Party(1),
        Role::Party(2),
        Role::Client,
        Role::ModelOwner,
    ];

    pub fn index(self) -> usize {
        match self {
            Role::Party(i) => i as usize,
            Role::Client => 3,
            Role::ModelOwner => 4,
            Role::Receiver => 5,
            Role::Inputter(i) => 6 + i as usize,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Role::Party(i) => write!(f, "party {i}"),
            Role::Client => write!(f, "the client"),
            Role::ModelOwner => write!(f, "the model owner"),
            Role::Receiver => write!(f, "the result receiver"),
            Role::Inputter(i) => write!(f, "inputter {i}"),
        }
    }
}

/// Traffic seen by one endpoint.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    pub bytes_sent: u64,
    pub messages_sent: u64,
    /// Communication rounds: times this endpoint waited for a message after sending one
    /// (a first receive also counts). Messages pipelined within a round count once.
    pub rounds: u64,
}

impl std::ops::Add for Stats {
    type Output = Stats;
    /// Traffic of two stretches one after the other.
    fn add(self, o: Stats) -> Stats {
        Stats {
            bytes_sent: self.bytes_sent + o.bytes_sent,
            messages_sent: self.messages_sent + o.messages_sent,
            rounds: self.rounds + o.rounds,
        }
    }
}

impl Stats {
    /// Traffic of two endpoints working at the same time: bytes and messages add up, and the
    /// rounds are those of the one that waited most.
    pub fn alongside(self, o: Stats) -> Stats {
        Stats {
            rounds: self.rounds.max(o.rounds),
            ..self + o
        }
    }
}

impl std::ops::Sub for Stats {
    type Output = Stats;
    fn sub(self, o: Stats) -> Stats {
        Stats {
            bytes_sent: self.bytes_sent - o.bytes_sent,
            messages_sent: self.messages_sent - o.messages_sent,
            rounds: self.rounds - o.rounds,
        }
    }
}

/// Message passing between roles. Messages are vectors of 64-bit words (ring elements or
/// packed bits); per pair of endpoints they arrive in the order they were sent.
pub trait Transport: Send {
    fn me(&self) -> Role;
    fn send(&mut self, to: Role, words: &[u64]) -> Result<()>;
    fn recv(&mut self, from: Role) -> Result<Vec<u64>>;
    fn stats(&self) -> Stats;
    /// Called by the protocol with every value this endpoint reconstructs in the clear (masked
    /// openings). Part of a party's view for auditing; transports ignore it.
    fn observe_opened(&mut self, _words: &[u64]) {}
}

/// Byte and round accounting shared by every transport implementation.
#[derive(Debug, Default)]
pub struct Meter {
    stats: Stats,
    sent_since_recv: bool,
    received_any: bool,
}

impl Meter {
    pub fn on_send(&mut self, words: usize) {
        self.stats.bytes_sent += 8 * words as u64;
        self.stats.messages_sent += 1;
        self.sent_since_recv = true;
    }

    pub fn on_recv(&mut self) {
        if self.sent_since_recv || !self.received_any {
            self.stats.rounds += 1;
        }
        self.sent_since_recv = false;
        self.received_any = true;
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }
}
