//! How far a sender may run ahead of its receiver on one link, in words not yet taken.
//!
//! The protocols exchange in rounds, so a party is rarely more than a message ahead of a
//! peer; but a role that only sends (Pond's crypto producer, an owner dealing) would
//! otherwise queue a whole request's messages ahead of the parties that take them, in
//! memory. Every test passes with a limit of one word (a sender waits whenever its link
//! holds anything, a networked inbox holds one message), so the limit costs no deadlock
//! the protocols could reach.

use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Words a link may hold not yet taken before its sender waits (64 MiB); a link holding
/// nothing takes a message of any size.
pub const BACKLOG_WORDS: usize = 8 << 20;

/// What one link holds that its receiver has not taken yet, shared by its two ends.
pub struct Backlog {
    state: Mutex<Held>,
    taken: Condvar,
    /// Words held before a sender waits.
    limit: usize,
}

#[derive(Default)]
struct Held {
    words: usize,
    /// The receiving end is gone: nothing more will be taken.
    closed: bool,
}

impl Backlog {
    /// An empty link whose sender waits once it holds `limit` words.
    pub fn new(limit: usize) -> Backlog {
        Backlog {
            state: Mutex::default(),
            taken: Condvar::new(),
            limit,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Held> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `words` more fit under the limit (or the link is empty), then counts
    /// them; false if the receiving end has gone.
    pub fn admit(&self, words: usize) -> bool {
        let mut held = self.lock();
        while !held.closed && held.words > 0 && held.words + words > self.limit {
            held = self
                .taken
                .wait(held)
                .unwrap_or_else(PoisonError::into_inner);
        }
        held.words += words;
        !held.closed
    }

    /// `words` admitted earlier have been taken.
    pub fn take(&self, words: usize) {
        let mut held = self.lock();
        held.words = held.words.saturating_sub(words);
        self.taken.notify_all();
    }

    /// The receiving end has gone: wakes the senders waiting on it.
    pub fn close(&self) {
        self.lock().closed = true;
        self.taken.notify_all();
    }
}
