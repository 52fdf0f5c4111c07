//! Pond (TF Encrypted's two-server protocol): two servers hold 2-out-of-2 additive shares over
//! Z_2^64, x = x_0 + x_1, and a third party, the crypto producer, deals the correlated
//! randomness the servers consume. The producer derives its half of every correlation from
//! the PRF key it shares with each server, so it sends only what no key can give (one
//! share of each product of masks, the truncation's corrections, the comparison's tables),
//! and it never receives anything: no masked or unmasked secret reaches it.
//!
//! The parties are the ABY3 parties' [`Party`](super::Party) (one transport, keys agreed
//! pairwise, one nonce counter): server 0 is party 0, server 1 party 1, the producer
//! party 2. A Pond secret travels through the interpreter as an
//! [`ArithShare`](super::ArithShare) whose `cur` is the server's additive share
//! (`ArithShare::additive`), so that owners deal, parties reveal and linear maps apply to
//! both protocols alike, and the party's protocol calls (products, truncation, gates, the
//! top-bit one-hot) run the protocol it was set up for. Products of secrets use Beaver
//! triples ([`beaver`]); truncation and comparison are ABY3's dealer-assisted protocols with
//! the producer as their fixed dealer ([`super::arith`], [`super::sign`]), the comparison
//! after the servers open x + r under a mask r the producer knows ([`compare`]).

mod beaver;
mod compare;

pub use beaver::SessionMasked;

use super::party::Link;

/// The crypto producer's party index.
pub const PRODUCER: usize = 2;

/// The key a server shares with the producer, or the producer with server `server`.
fn producer_link(id: usize, server: usize) -> Link {
    match (id, server) {
        (0, _) => Link::Prev,
        (1, _) => Link::Next,
        (_, 0) => Link::Next,
        _ => Link::Prev,
    }
}
