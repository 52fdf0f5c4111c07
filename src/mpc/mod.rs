//! The three-party protocol: 2-out-of-3 replicated secret sharing over Z_2^64 (ABY3-style,
//! semi-honest, honest majority), with PRF-derived correlated randomness, one-round
//! multiplication, exact-to-one-ulp truncation and exact comparison.

mod a2b;
pub mod arith;
mod bits;
pub mod compare;
pub mod cost;
mod dabit;
pub mod party;
pub mod prf;
mod round;
pub mod share;

pub use party::Party;
pub use share::ArithShare;

use crate::net::{Role, Transport, local::LocalTransport, local::network};
use anyhow::Result;

/// Runs `party_fn` on three compute parties, each on its own thread, and `outside` on the
/// calling thread with the client's and the model owner's endpoints. When any side fails
/// the others see their links close, so a run always ends; the root cause is reported.
pub fn run_local<T: Send, U>(
    party_fn: impl Fn(&mut Party) -> Result<T> + Sync,
    outside: impl FnOnce(&mut LocalTransport, &mut LocalTransport) -> Result<U>,
) -> Result<([T; 3], U)> {
    run_local_wrapped(&|end| Box::new(end), party_fn, outside)
}

/// [`run_local`] with each party's endpoint passed through `wrap` first (to observe it).
pub fn run_local_wrapped<T: Send, U>(
    wrap: &(dyn Fn(LocalTransport) -> Box<dyn Transport> + Sync),
    party_fn: impl Fn(&mut Party) -> Result<T> + Sync,
    outside: impl FnOnce(&mut LocalTransport, &mut LocalTransport) -> Result<U>,
) -> Result<([T; 3], U)> {
    let mut ends = network(&Role::ALL);
    let mut owner = ends.pop().expect("model owner endpoint");
    let mut client = ends.pop().expect("client endpoint");
    let (results, outside_result) = std::thread::scope(|scope| {
        let handles: Vec<_> = ends
            .into_iter()
            .map(|end| {
                let party_fn = &party_fn;
                std::thread::Builder::new()
                    .name(format!("party-{}", end.me().index()))
                    .spawn_scoped(scope, move || {
                        Party::setup(wrap(end)).and_then(|mut p| party_fn(&mut p))
                    })
                    .expect("spawn party thread")
            })
            .collect();
        let outside_result = outside(&mut client, &mut owner);
        drop(client);
        drop(owner);
        let results: Vec<Result<T>> = handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a party thread panicked")))
            })
            .collect();
        (results, outside_result)
    });
    let mut errors = vec![];
    let mut oks = vec![];
    for r in results {
        match r {
            Ok(v) => oks.push(v),
            Err(e) => errors.push(e),
        }
    }
    let outside_value = match outside_result {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push(e);
            None
        }
    };
    if let Some(first) = pick_root_cause(errors) {
        return Err(first);
    }
    let oks: [T; 3] = oks.try_into().ok().expect("three party results");
    Ok((oks, outside_value.expect("outside result")))
}

/// A failure is usually reported by every side; the one that is not just "a peer went away"
/// is the cause.
fn pick_root_cause(errors: Vec<anyhow::Error>) -> Option<anyhow::Error> {
    let is_echo = |e: &anyhow::Error| {
        let s = format!("{e:#}");
        s.contains("stopped before sending") || s.contains("has stopped;")
    };
    let mut errors = errors;
    let index = errors.iter().position(|e| !is_echo(e)).unwrap_or(0);
    (!errors.is_empty()).then(|| errors.swap_remove(index))
}
