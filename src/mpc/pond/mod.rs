//! Pond (TF Encrypted's two-server protocol): two servers hold 2-out-of-2 additive shares over
//! Z_2^64, x = x_0 + x_1, and a third party, the crypto producer, deals the correlated
//! randomness the servers consume. The producer derives its half of every correlation from
//! the PRF key it shares with each server, so it sends only what no key can give (one
//! share of each product of masks, the truncation's corrections, the comparison's tables),
//! and it never receives anything: no masked or unmasked secret reaches it.
//!
//! The parties are the ABY3 parties' [`Party`] (one transport, keys agreed pairwise, one
//! nonce counter): server 0 is party 0, server 1 party 1, the producer party 2. A Pond
//! secret travels through the interpreter as an [`ArithShare`] whose `cur` is the server's
//! additive share ([`to_share`]), so that owners deal, parties reveal and linear maps apply
//! to both protocols alike, and [`Party`]'s protocol calls (products, truncation, gates,
//! the top-bit one-hot) run the protocol the party was set up for. Products of secrets use Beaver triples ([`beaver`]); truncation
//! and comparison are ABY3's dealer-assisted protocols with the producer as their fixed
//! dealer ([`super::arith`], [`super::sign`]), the comparison after the servers open x + r
//! under a mask r the producer knows ([`compare`]).

mod beaver;
mod compare;

use super::Party;
use super::party::Link;
use super::share::ArithShare;
use ndarray::{ArrayD, Zip};

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

/// A Pond secret as the interpreter holds it: the server's additive share in `cur`, zeros
/// in `next` (and zeros at the producer, which holds only shapes).
pub fn to_share(share: ArrayD<u64>) -> ArithShare {
    ArithShare {
        next: ArrayD::zeros(share.raw_dim()),
        cur: share,
    }
}

/// The Pond share of a value an owner dealt as ABY3 components (server 0 holding components
/// 0 and 1, server 1 components 1 and 2 of x = x_0 + x_1 + x_2): x_0 + x_1 at server 0,
/// x_2 at server 1, so that the two sum to x and neither alone says anything about it.
pub(crate) fn from_dealt(party: &Party, dealt: ArithShare) -> ArithShare {
    match party.id() {
        0 => to_share(
            Zip::from(&dealt.cur)
                .and(&dealt.next)
                .map_collect(|a, b| a.wrapping_add(*b)),
        ),
        1 => to_share(dealt.next),
        _ => to_share(ArrayD::zeros(dealt.cur.raw_dim())),
    }
}
