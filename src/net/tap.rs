//! A transport wrapper that hands every received message, and every value the protocol
//! opens locally, to an observer: how tests (and auditors) capture a party's view of a run.

use super::{Role, Stats, Transport};
use anyhow::Result;

pub struct Tap<T, F> {
    inner: T,
    observe: F,
}

impl<T: Transport, F: FnMut(Role, &[u64]) + Send> Tap<T, F> {
    pub fn new(inner: T, observe: F) -> Self {
        Tap { inner, observe }
    }
}

impl<T: Transport, F: FnMut(Role, &[u64]) + Send> Transport for Tap<T, F> {
    fn me(&self) -> Role {
        self.inner.me()
    }

    fn send(&mut self, to: Role, words: &[u64]) -> Result<()> {
        self.inner.send(to, words)
    }

    fn recv(&mut self, from: Role) -> Result<Vec<u64>> {
        let words = self.inner.recv(from)?;
        (self.observe)(from, &words);
        Ok(words)
    }

    fn stats(&self) -> Stats {
        self.inner.stats()
    }

    /// Openings are reported as if received from the endpoint itself.
    fn observe_opened(&mut self, words: &[u64]) {
        (self.observe)(self.inner.me(), words)
    }
}
