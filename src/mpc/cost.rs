//! What each protocol call costs on the wire, in closed form: the words all three parties
//! send together and the synchronous rounds on the critical path. The protocol is
//! data-oblivious, so these depend only on sizes; tests/protocol.rs checks every formula
//! against the metered transport, word for word.

use std::ops::{Add, AddAssign};

/// Words sent by all parties together, and rounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Cost {
    pub words: u64,
    pub rounds: u64,
}

impl Add for Cost {
    type Output = Cost;
    fn add(self, o: Cost) -> Cost {
        Cost {
            words: self.words + o.words,
            rounds: self.rounds + o.rounds,
        }
    }
}

impl AddAssign for Cost {
    fn add_assign(&mut self, o: Cost) {
        *self = *self + o;
    }
}

/// Words to pack `bits` bits 64 to a word.
fn packed(bits: u64) -> u64 {
    bits.div_ceil(64)
}

impl Cost {
    pub const FREE: Cost = Cost {
        words: 0,
        rounds: 0,
    };

    pub fn bytes(self) -> u64 {
        8 * self.words
    }

    /// A product's additive terms to a replicated sharing: each party sends one element per
    /// value.
    pub fn reshare(n: u64) -> Cost {
        Cost {
            words: 3 * n,
            rounds: 1,
        }
    }

    /// A product's terms to a replicated sharing rescaled by 2^-f: the masked opening to two
    /// parties plus the dealer's corrections (6n), then their re-randomisation (2n).
    pub fn truncate(n: u64) -> Cost {
        Cost {
            words: 8 * n,
            rounds: 2,
        }
    }

    /// `y [x >= 0]` for `gated` values y over `n` elements at `width` bits: the sign's
    /// carry tree, the daBits and y ρ products that ride its rounds, and the masked
    /// opening of the sign.
    pub fn gate(n: u64, width: u32, gated: u64) -> Cost {
        let sign = sign_bits(n, width);
        // daBits: dealt t (n) and the product t ρ2 from parties 1 and 2 (2n), in rounds 0
        // and 1; the products y ρ are reshared in round 2.
        let riders = 3 * n + 3 * n * gated;
        Cost {
            words: sign.words + riders + 3 * packed(n),
            rounds: sign.rounds.max(3) + 1,
        }
    }

    /// One-hot of the top set bit of `n` values below 2^width: a full bit decomposition
    /// with `width * n` daBits riding it, a six-level prefix OR, one masked opening.
    pub fn msb_onehot(n: u64, width: u32) -> Cost {
        let bits = width as u64 * n;
        // Bit decomposition on bit-sliced words: the dealt sum (n), the first AND from
        // parties 1 and 2 (2n), five levels of two ANDs and a last level of one (33n).
        let decompose = n + 2 * n + 5 * 6 * n + 3 * n;
        Cost {
            words: decompose + 3 * bits + 6 * 3 * n + 3 * packed(bits),
            rounds: 8 + 6 + 1,
        }
    }

    /// An owner dealing a secret of `n` elements: component 2 to parties 1 and 2 (the
    /// others come from seeds sent once per owner).
    pub fn input(n: u64) -> Cost {
        Cost {
            words: 2 * n,
            rounds: 0,
        }
    }

    /// Every party sending its first component to the receiver.
    pub fn reveal(n: u64) -> Cost {
        Cost {
            words: 3 * n,
            rounds: 0,
        }
    }
}

/// The sign bit of `n` values in bit planes: party 0 deals the planes of x0 + x1
/// (`width` planes), parties 1 and 2 the first generate plane's AND (`width - 1` planes);
/// then a tree that halves the carry groups each round, computing only the groups that
/// reach the top carry (a generate and, except for the lowest pair, a propagate per pair).
fn sign_bits(n: u64, width: u32) -> Cost {
    let words = packed(n);
    let top = u64::from(width) - 1;
    let mut cost = Cost {
        words: (u64::from(width) + 2 * top) * words,
        rounds: 2,
    };
    let mut groups = top;
    while groups > 1 {
        let pairs = groups / 2;
        cost += Cost {
            words: 3 * (2 * pairs - 1) * words,
            rounds: 1,
        };
        groups = pairs + groups % 2;
    }
    cost
}
