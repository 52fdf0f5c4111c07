//! What each protocol call costs on the wire, in closed form: the words all three parties
//! send together and the synchronous rounds on the critical path, for ABY3 and (the `pond_`
//! functions) for Pond. The protocols are data-oblivious, so these depend only on sizes;
//! tests/protocol.rs checks every formula against the metered transport, word for word.

use super::arith::corrections_words;
use super::bits::fields_words;
use super::sign::SignPlan;
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

    /// A product's terms to a replicated sharing rescaled by 2^-f: [`Cost::truncate_open`]
    /// then [`Cost::settle`].
    pub fn truncate(n: u64, f: u32) -> Cost {
        Cost::truncate_open(n, f) + Cost::settle(n)
    }

    /// A truncation's first round: the masked opening to two parties (four elements per
    /// value) plus the dealer's corrections to B, 81 bits per value at f = 16, packed.
    pub fn truncate_open(n: u64, f: u32) -> Cost {
        Cost {
            words: 4 * n + corrections_words(n as usize, f) as u64,
            rounds: 1,
        }
    }

    /// A pending truncation's re-randomisation, in a round of its own.
    pub fn settle(n: u64) -> Cost {
        Cost {
            words: 2 * n,
            rounds: 1,
        }
    }

    /// ReLU of a pending truncation: the gate, with the re-randomisation riding its first
    /// round.
    pub fn relu_pending(n: u64, width: u32) -> Cost {
        let gate = Cost::gate(n, width, 1);
        Cost {
            words: gate.words + Cost::settle(n).words,
            rounds: gate.rounds,
        }
    }

    /// `y [x >= 0]` for `gated` values y over `n` elements at `width` bits: the
    /// dealer-assisted comparison that opens the sign under daBits, and the daBits and y ρ
    /// products that ride its rounds.
    pub fn gate(n: u64, width: u32, gated: u64) -> Cost {
        let sign = SignPlan::new(width);
        // daBits: dealt t (n) and the product t ρ2 from parties 1 and 2 (2n), in rounds 0
        // and 1; the products y ρ are reshared in round 2.
        Cost {
            words: sign.words(n) + 3 * n + 3 * n * gated,
            rounds: sign.rounds().max(3) as u64,
        }
    }

    /// One-hot of the top set bit of `n` values below 2^width: `width` comparisons per
    /// value at `width + 1` bits, with as many daBits riding them.
    pub fn msb_onehot(n: u64, width: u32) -> Cost {
        let count = u64::from(width) * n;
        let sign = SignPlan::new(width + 1);
        Cost {
            words: sign.words(count) + 3 * count,
            rounds: sign.rounds().max(2) as u64,
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

    /// Pond: Beaver products of pairs with `operands` elements opened in all (both operands
    /// of every pair, but for those masked for the session) into `n` elements: each server
    /// opens its share of those operands to the other, the producer sends server 1 its
    /// share of the masks' product.
    pub fn pond_products(operands: u64, n: u64) -> Cost {
        Cost {
            words: 2 * operands + n,
            rounds: 1,
        }
    }

    /// Pond: a secret of `n` elements masked once for the session (a weight, when a
    /// session starts): each server opens its share to the other.
    pub fn pond_mask(n: u64) -> Cost {
        Cost {
            words: 2 * n,
            rounds: 1,
        }
    }

    /// Pond: a truncation by 2^f, whose result is the servers' sharing: each server opens
    /// its masked term to the other, the producer sends server 1 its corrections.
    pub fn pond_truncate(n: u64, f: u32) -> Cost {
        Cost {
            words: 2 * n + corrections_words(n as usize, f) as u64,
            rounds: 1,
        }
    }

    /// Pond: `y [x >= 0]` for `gated` values y over `n` elements at `width` bits: the
    /// opening of x + r (`width` bits per value) and of each y - a, the producer's shares
    /// (v's top bit, ρ, each a ρ) to server 1, then the comparison with the producer as
    /// dealer, its bits opened to the servers only.
    pub fn pond_gate(n: u64, width: u32, gated: u64) -> Cost {
        let sign = SignPlan::new(width);
        let words = n.div_ceil(64);
        let opened = 2 * (fields_words(n as usize, width) as u64 + gated * n);
        let dealt = words + n * (1 + gated);
        Cost {
            words: opened + dealt + sign.words(n) - 2 * words,
            rounds: 1 + sign.rounds() as u64,
        }
    }

    /// Pond: the top bit's one-hot: `width` comparisons per value at `width + 1` bits.
    pub fn pond_msb_onehot(n: u64, width: u32) -> Cost {
        Cost::pond_gate(u64::from(width) * n, width + 1, 0)
    }

    /// Pond: an owner dealing a secret of `n` elements: component 2 to server 1 alone.
    pub fn pond_input(n: u64) -> Cost {
        Cost {
            words: n,
            rounds: 0,
        }
    }

    /// Pond: both servers sending their share to the receiver.
    pub fn pond_reveal(n: u64) -> Cost {
        Cost {
            words: 2 * n,
            rounds: 0,
        }
    }
}
