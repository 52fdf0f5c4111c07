//! The protocols, over one transport and one party state: ABY3 (2-out-of-3 replicated
//! secret sharing over Z_2^64, semi-honest, honest majority), with PRF-derived correlated
//! randomness, one-round multiplication, exact-to-one-ulp truncation and exact comparison;
//! and Pond ([`pond`]: two servers holding 2-out-of-2 additive shares, the third party a
//! crypto producer that only deals correlated randomness), which reuses the truncation and
//! comparison with the producer as their fixed dealer.

pub mod arith;
mod bits;
pub mod compare;
pub mod cost;
mod dabit;
pub mod hooks;
mod merge;
pub mod party;
pub mod pond;
pub mod prf;
mod round;
pub mod share;
mod sign;

pub use party::Party;
pub use share::ArithShare;

use crate::net::{Role, Transport, local::LocalTransport, local::network};
use anyhow::{Result, anyhow};
use std::thread::{Builder, JoinHandle};

/// Which protocol the three parties run; the plan and the lowering are the same for both.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    /// Three-party replicated secret sharing: every party computes, any two hold the secret.
    #[default]
    Aby3,
    /// Two servers holding additive shares and a crypto producer dealing correlated
    /// randomness, which never receives a masked or unmasked secret.
    Pond,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Aby3 => "aby3",
            Protocol::Pond => "pond",
        }
    }

    /// What each compute party is called under the protocol, in party order.
    pub fn party_names(self) -> [&'static str; 3] {
        match self {
            Protocol::Aby3 => ["party 0", "party 1", "party 2"],
            Protocol::Pond => ["server 0", "server 1", "crypto producer"],
        }
    }

    /// How many parties (the first ones) hold shares of a secret: all three, or Pond's two
    /// servers.
    pub fn holders(self) -> usize {
        match self {
            Protocol::Aby3 => 3,
            Protocol::Pond => 2,
        }
    }

    /// Whether party `id` holds shares of secrets (every party but Pond's producer).
    pub fn holds(self, id: usize) -> bool {
        id < self.holders()
    }
}

/// Each party's endpoint passes through this before use (to observe a party's view).
pub type WrapTransport = dyn Fn(LocalTransport) -> Box<dyn Transport> + Sync;

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
    wrap: &WrapTransport,
    party_fn: impl Fn(&mut Party) -> Result<T> + Sync,
    outside: impl FnOnce(&mut LocalTransport, &mut LocalTransport) -> Result<U>,
) -> Result<([T; 3], U)> {
    let roles = [Role::Client, Role::ModelOwner];
    run_local_roles(
        wrap,
        Protocol::Aby3,
        &roles,
        party_fn,
        |mut ends: Vec<LocalTransport>| {
            let mut owner = ends.pop().expect("model owner endpoint");
            let mut client = ends.pop().expect("client endpoint");
            outside(&mut client, &mut owner)
        },
    )
}

/// [`run_local_wrapped`] with any roles outside the parties (inputters, a result receiver):
/// `outside` gets their endpoints in the order of `roles`, and the parties' links to them
/// close when it drops them.
pub fn run_local_roles<T: Send, U>(
    wrap: &WrapTransport,
    protocol: Protocol,
    roles: &[Role],
    party_fn: impl Fn(&mut Party) -> Result<T> + Sync,
    outside: impl FnOnce(Vec<LocalTransport>) -> Result<U>,
) -> Result<([T; 3], U)> {
    let mut ends = network(&[&Role::PARTIES[..], roles].concat());
    let outside_ends = ends.split_off(3);
    let ends: Vec<Box<dyn Transport>> = ends.into_iter().map(wrap).collect();
    std::thread::scope(|scope| {
        let party_fn = &party_fn;
        let handles: Vec<_> = ends
            .into_iter()
            .map(|net| {
                party_thread(&*net).spawn_scoped(scope, move || party_main(net, protocol, party_fn))
            })
            .collect();
        let outside_result = outside(outside_ends);
        let results = handles
            .into_iter()
            .map(|h| joined(h.map(|h| h.join())))
            .collect();
        combine(results, outside_result)
    })
}

/// Three compute parties running on their own threads, not bound to the caller's scope (a
/// long-running session), with the client's and the model owner's endpoints.
pub struct LocalParties<T> {
    pub client: LocalTransport,
    pub owner: LocalTransport,
    threads: Vec<std::io::Result<JoinHandle<Result<T>>>>,
}

/// Starts the three compute parties: each agrees on keys with its neighbours through its
/// endpoint wrapped by `wrap`, then runs the body `party_fn` makes for its index.
pub fn spawn_local<T, F>(
    wrap: &WrapTransport,
    protocol: Protocol,
    party_fn: impl Fn(usize) -> F,
) -> LocalParties<T>
where
    T: Send + 'static,
    F: FnOnce(&mut Party) -> Result<T> + Send + 'static,
{
    let (ends, client, owner) = endpoints(wrap);
    let threads = ends
        .into_iter()
        .enumerate()
        .map(|(id, net)| {
            let body = party_fn(id);
            party_thread(&*net).spawn(move || party_main(net, protocol, body))
        })
        .collect();
    LocalParties {
        client,
        owner,
        threads,
    }
}

impl<T> LocalParties<T> {
    /// Closes the client's and the model owner's endpoints and waits for the parties: their
    /// results with `outside`'s, or the root cause when any side failed.
    pub fn join<U>(self, outside: Result<U>) -> Result<([T; 3], U)> {
        let LocalParties {
            client,
            owner,
            threads,
        } = self;
        drop(client);
        drop(owner);
        let results = threads
            .into_iter()
            .map(|h| joined(h.map(JoinHandle::join)))
            .collect();
        combine(results, outside)
    }

    /// [`LocalParties::join`] after a failure seen outside: the root cause among every
    /// side's errors.
    pub fn fail(self, cause: anyhow::Error) -> anyhow::Error {
        match self.join::<()>(Err(cause)) {
            Err(e) => e,
            Ok(_) => anyhow!("a failed run reported success"),
        }
    }
}

/// The parties' endpoints (wrapped), then the client's and the model owner's.
fn endpoints(wrap: &WrapTransport) -> (Vec<Box<dyn Transport>>, LocalTransport, LocalTransport) {
    let mut ends = network(&Role::ALL);
    let owner = ends.pop().expect("model owner endpoint");
    let client = ends.pop().expect("client endpoint");
    (ends.into_iter().map(wrap).collect(), client, owner)
}

fn party_thread(net: &dyn Transport) -> Builder {
    Builder::new().name(format!("party-{}", net.me().index()))
}

fn party_main<T>(
    net: Box<dyn Transport>,
    protocol: Protocol,
    body: impl FnOnce(&mut Party) -> Result<T>,
) -> Result<T> {
    Party::setup(net, protocol).and_then(|mut p| body(&mut p))
}

/// A party thread's result: its own, or why it did not start or did not finish.
fn joined<T>(outcome: std::io::Result<std::thread::Result<Result<T>>>) -> Result<T> {
    match outcome {
        Err(e) => Err(anyhow!("cannot start a party thread: {e}")),
        Ok(Err(panic)) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(anyhow!("a party thread panicked: {what}"))
        }
        Ok(Ok(result)) => result,
    }
}

/// The three parties' values and the outside's, or the root cause of a failure.
fn combine<T, U>(results: Vec<Result<T>>, outside: Result<U>) -> Result<([T; 3], U)> {
    let mut errors = vec![];
    let mut oks = vec![];
    for r in results {
        match r {
            Ok(v) => oks.push(v),
            Err(e) => errors.push(e),
        }
    }
    let outside_value = match outside {
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
