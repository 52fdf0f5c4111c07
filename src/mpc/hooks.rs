//! Test-only control of the protocol's randomness: fix one party's keys, so that a test
//! sees that party's view conditioned on everything the party can derive, and break one
//! mask on purpose, so that the security test shows it fails when a mask is removed or
//! reused. Only the `test-hooks` feature (enabled by the crate's own dev-dependency on
//! itself, so by test builds alone) compiles the controls in; otherwise keys come from
//! the OS and [`broken`] is a constant `false` the compiler removes.

/// Which key of the protocol is being drawn.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum KeyUse {
    /// The key party `drawer` shares with its next neighbour.
    Link { drawer: usize },
    /// The key of an owner's component `component` (0 or 1; see `share::Dealer`).
    Owner { component: usize },
}

/// A mask the protocol leaves out or uses twice, for negative controls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Products are reshared without their zero-sharing.
    UnmaskedReshare,
    /// A truncation's two computing parties leave out their halves of the mask r.
    UnmaskedTruncation,
    /// A comparison's result is opened without its daBit.
    UnmaskedComparison,
    /// The comparison's dealer sends its tables without their masks.
    UnmaskedTables,
    /// Every daBit is drawn from the same stream (each comparison reuses one mask).
    ReusedDaBit,
    /// Every protocol call uses the same nonce (every stream is reused).
    ReusedNonce,
    /// Pond's servers open their Beaver operands without the triple's masks.
    UnmaskedTriple,
    /// An aggregation's inputter sends its vector without the mask r.
    UnmaskedPiece,
}

/// Whether `fault` is switched on.
#[cfg(not(feature = "test-hooks"))]
#[inline(always)]
pub(crate) fn broken(_: Fault) -> bool {
    false
}

/// A fresh key for `use_` from the OS CSPRNG.
#[cfg(not(feature = "test-hooks"))]
pub(crate) fn key(_: KeyUse) -> anyhow::Result<super::prf::Key> {
    super::prf::os_key()
}

#[cfg(feature = "test-hooks")]
pub use controls::*;

#[cfg(feature = "test-hooks")]
mod controls {
    use super::{Fault, KeyUse};
    use crate::mpc::prf::{Key, Prf, os_key};
    use anyhow::Result;
    use std::collections::HashMap;
    use std::sync::{Mutex, MutexGuard, PoisonError};

    /// What a test sets for the span of [`with`].
    #[derive(Clone, Copy, Debug, Default)]
    pub struct Controls {
        /// Party `.0`'s keys (the two it shares with its neighbours, and the owners'
        /// components it holds) come from the seed `.1`; every other key is fresh.
        pub fixed_party: Option<(usize, u64)>,
        pub fault: Option<Fault>,
    }

    struct State {
        controls: Controls,
        /// Keys drawn so far per use: the client's and the model owner's component keys
        /// differ although both are fixed.
        drawn: HashMap<KeyUse, u64>,
    }

    static STATE: Mutex<Option<State>> = Mutex::new(None);
    /// Held for the span of [`with`]: tests in one process take turns.
    static TURN: Mutex<()> = Mutex::new(());

    fn state() -> MutexGuard<'static, Option<State>> {
        STATE.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `body` with `controls` in force for every party and owner in this process.
    pub fn with<T>(controls: Controls, body: impl FnOnce() -> T) -> T {
        let _turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
        struct Clear;
        impl Drop for Clear {
            fn drop(&mut self) {
                *state() = None;
            }
        }
        *state() = Some(State {
            controls,
            drawn: HashMap::new(),
        });
        let _clear = Clear;
        body()
    }

    pub(crate) fn broken(fault: Fault) -> bool {
        state()
            .as_ref()
            .is_some_and(|s| s.controls.fault == Some(fault))
    }

    /// The fixed party's keys from its seed, others from the OS.
    pub(crate) fn key(use_: KeyUse) -> Result<Key> {
        let mut guard = state();
        let Some(state) = guard.as_mut() else {
            return os_key();
        };
        let Some((party, seed)) = state.controls.fixed_party else {
            return os_key();
        };
        let held = match use_ {
            KeyUse::Link { drawer } => drawer == party || (drawer + 1) % 3 == party,
            // Party 0 holds both components, party 1 the second, party 2 the first.
            KeyUse::Owner { component } => party == 0 || (component == 1) == (party == 1),
        };
        if !held {
            return os_key();
        }
        let count = state.drawn.entry(use_).or_default();
        *count += 1;
        let tag = match use_ {
            KeyUse::Link { drawer } => drawer as u64,
            KeyUse::Owner { component } => 8 + component as u64,
        };
        let mut seed_key = [0u8; 16];
        seed_key[..8].copy_from_slice(&seed.to_le_bytes());
        let words = Prf::new(seed_key).words(tag << 32 | *count, 2);
        let mut key = [0u8; 16];
        key[..8].copy_from_slice(&words[0].to_le_bytes());
        key[8..].copy_from_slice(&words[1].to_le_bytes());
        Ok(key)
    }
}
