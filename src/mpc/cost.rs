//! What each protocol call costs on the wire, in closed form: the words each party sends
//! (and the owners outside them), and the synchronous rounds on the critical path, for ABY3
//! and (the `pond_` functions) for Pond. The protocols are data-oblivious, so these depend
//! only on sizes and on which party deals; tests/protocol.rs checks every formula against
//! the metered transport, word for word and party by party.

use super::arith::corrections_words;
use super::bits::fields_words;
use super::pond::PRODUCER;
use super::sign::SignPlan;
use std::ops::{Add, AddAssign};

/// Words sent, by sender, and rounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    /// Words each compute party sends, by party id (under Pond: server 0, server 1, the
    /// crypto producer).
    pub sent: [u64; 3],
    /// Words roles outside the parties send: an owner or the client dealing a secret.
    pub outside: u64,
    pub rounds: u64,
}

impl Add for Cost {
    type Output = Cost;
    /// Two calls one after the other.
    fn add(self, o: Cost) -> Cost {
        Cost {
            rounds: self.rounds + o.rounds,
            ..self.alongside(o)
        }
    }
}

impl AddAssign for Cost {
    fn add_assign(&mut self, o: Cost) {
        *self = *self + o;
    }
}

impl Cost {
    pub const FREE: Cost = Cost {
        sent: [0; 3],
        outside: 0,
        rounds: 0,
    };

    /// Words all roles send together.
    pub fn words(self) -> u64 {
        self.sent.iter().sum::<u64>() + self.outside
    }

    pub fn bytes(self) -> u64 {
        8 * self.words()
    }

    /// Bytes each compute party sends, by party id.
    pub fn party_bytes(self) -> [u64; 3] {
        self.sent.map(|w| 8 * w)
    }

    /// Work riding another's rounds: the words add up, the rounds are the longer's.
    fn alongside(self, o: Cost) -> Cost {
        Cost {
            sent: [0, 1, 2].map(|i| self.sent[i] + o.sent[i]),
            outside: self.outside + o.outside,
            rounds: self.rounds.max(o.rounds),
        }
    }

    /// Every party sending `words`.
    fn each(words: u64, rounds: u64) -> Cost {
        Cost {
            sent: [words; 3],
            outside: 0,
            rounds,
        }
    }

    /// A dealer-assisted call's `parts`: what the dealer sends, then A (the party after it)
    /// and B (the one after that).
    fn dealt(dealer: usize, parts: [u64; 3], rounds: u64) -> Cost {
        let mut sent = [0; 3];
        for (k, words) in parts.into_iter().enumerate() {
            sent[(dealer + k) % 3] = words;
        }
        Cost {
            sent,
            outside: 0,
            rounds,
        }
    }

    /// Pond: each server sending `servers`, the producer `producer`.
    fn pond(servers: u64, producer: u64, rounds: u64) -> Cost {
        Cost::dealt(PRODUCER, [producer, servers, servers], rounds)
    }

    /// An owner outside the parties sending `words`.
    fn outside(words: u64) -> Cost {
        Cost {
            outside: words,
            ..Cost::FREE
        }
    }

    /// A product's additive terms to a replicated sharing: each party sends one element per
    /// value.
    pub fn reshare(n: u64) -> Cost {
        Cost::each(n, 1)
    }

    /// A product's terms to a replicated sharing rescaled by 2^-f, with `dealer` dealing:
    /// [`Cost::truncate_open`] then [`Cost::settle`].
    pub fn truncate(n: u64, f: u32, dealer: usize) -> Cost {
        Cost::truncate_open(n, f, dealer) + Cost::settle(n, dealer)
    }

    /// A truncation's first round: A and B open the masked value to each other, the dealer
    /// sends them its term and B its corrections, 81 bits per value at f = 16, packed.
    pub fn truncate_open(n: u64, f: u32, dealer: usize) -> Cost {
        Cost::opening(n, f, dealer, n)
    }

    /// The masked opening of a truncation whose dealer holds a term of `dealer_term`
    /// elements (none under Pond), which it sends to both A and B.
    fn opening(n: u64, f: u32, dealer: usize, dealer_term: u64) -> Cost {
        let corrections = corrections_words(n as usize, f) as u64;
        Cost::dealt(dealer, [2 * dealer_term + corrections, n, n], 1)
    }

    /// A pending truncation's re-randomisation, in a round of its own: A and B exchange
    /// their masked terms.
    pub fn settle(n: u64, dealer: usize) -> Cost {
        Cost::dealt(dealer, [0, n, n], 1)
    }

    /// ReLU of a truncation pending on `dealer`: the gate (the same dealer deals its
    /// comparison), with the re-randomisation riding its first round.
    pub fn relu_pending(n: u64, width: u32, dealer: usize) -> Cost {
        Cost::gate(n, width, 1, dealer).alongside(Cost::settle(n, dealer))
    }

    /// The comparison of `n` values at `width` bits dealt by `dealer`: its tables and mask
    /// products from the dealer, the reader's rows and both merging parties' openings and
    /// opened bits (to the dealer too under ABY3).
    fn comparison(n: u64, width: u32, dealer: usize, to_dealer: bool) -> Cost {
        let sign = SignPlan::new(width);
        Cost::dealt(dealer, sign.parts(n, to_dealer), sign.rounds() as u64)
    }

    /// What rides an ABY3 comparison of `n` values: the daBits in its first two rounds
    /// (party 0 deals t, parties 1 and 2 reshare t ρ2: one element each), and the
    /// products y ρ of `gated` values reshared in the third.
    fn dabits(n: u64, gated: u64) -> Cost {
        let products = match gated {
            0 => Cost::FREE,
            g => Cost::each(g * n, 3),
        };
        Cost::each(n, 2).alongside(products)
    }

    /// `y [x >= 0]` for `gated` values y over `n` elements at `width` bits, the comparison
    /// dealt by `dealer`: it opens the sign under daBits, with the daBits and y ρ products
    /// riding its rounds.
    pub fn gate(n: u64, width: u32, gated: u64, dealer: usize) -> Cost {
        Cost::comparison(n, width, dealer, true).alongside(Cost::dabits(n, gated))
    }

    /// One-hot of the top set bit of `n` values below 2^width: `width` comparisons per
    /// value at `width + 1` bits, dealt by `dealer`, with as many daBits riding them.
    pub fn msb_onehot(n: u64, width: u32, dealer: usize) -> Cost {
        let count = u64::from(width) * n;
        Cost::comparison(count, width + 1, dealer, true).alongside(Cost::dabits(count, 0))
    }

    /// An owner dealing a secret of `n` elements: component 2 to parties 1 and 2 (the
    /// others come from seeds sent once per owner).
    pub fn input(n: u64) -> Cost {
        Cost::outside(2 * n)
    }

    /// Every party sending its first component to the receiver.
    pub fn reveal(n: u64) -> Cost {
        Cost::each(n, 0)
    }

    /// Pond: Beaver products of pairs with `operands` elements opened in all (both operands
    /// of every pair, but for those masked for the session) into `n` elements: each server
    /// opens its share of those operands to the other, the producer sends server 1 its
    /// share of the masks' product.
    pub fn pond_products(operands: u64, n: u64) -> Cost {
        Cost::pond(operands, n, 1)
    }

    /// Pond: a secret of `n` elements masked once for the session (a weight, when a
    /// session starts): each server opens its share to the other.
    pub fn pond_mask(n: u64) -> Cost {
        Cost::pond(n, 0, 1)
    }

    /// Pond: a truncation by 2^f, whose result is the servers' sharing: ABY3's opening
    /// with the producer dealing and holding no term.
    pub fn pond_truncate(n: u64, f: u32) -> Cost {
        Cost::opening(n, f, PRODUCER, 0)
    }

    /// Pond: `y [x >= 0]` for `gated` values y over `n` elements at `width` bits: each
    /// server opens its share of x + r (`width` bits per value) and of each y - a, the
    /// producer sends server 1 its shares (v's top bit, ρ, each a ρ); then the comparison
    /// with the producer as dealer, server 0 reading, its bits opened to the servers only.
    pub fn pond_gate(n: u64, width: u32, gated: u64) -> Cost {
        let opened = fields_words(n as usize, width) as u64 + gated * n;
        let dealt = n.div_ceil(64) + n * (1 + gated);
        Cost::pond(opened, dealt, 1) + Cost::comparison(n, width, PRODUCER, false)
    }

    /// Pond: the top bit's one-hot: `width` comparisons per value at `width + 1` bits.
    pub fn pond_msb_onehot(n: u64, width: u32) -> Cost {
        Cost::pond_gate(u64::from(width) * n, width + 1, 0)
    }

    /// Pond: an owner dealing a secret of `n` elements: component 2 to server 1 alone.
    pub fn pond_input(n: u64) -> Cost {
        Cost::outside(n)
    }

    /// Pond: both servers sending their share to the receiver.
    pub fn pond_reveal(n: u64) -> Cost {
        Cost::pond(n, 0, 0)
    }
}
