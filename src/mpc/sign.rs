//! [x >= 0] of a shared x in four rounds at the default width, with one party dealing
//! correlated randomness (rotating per call) and the other two computing.
//!
//! Dealer D holds (x_D, x_A), A holds (x_A, x_B) and B holds (x_B, x_D): A knows
//! u = x_A + x_B, and D and B both know v = x_D, so x = u + v with no communication. For
//! |x| < 2^(w-1) the sign of x is bit w-1 of u + v mod 2^w: the top bits of u and v xor the
//! carry out of the low w-1 bits.
//!
//! - Round 1: the low bits are cut into runs of a few bits. For each run D builds the table
//!   of its (generate, propagate) pair for every value of u's bits, rows permuted by π
//!   (a stream D shares with A) and every entry masked by its own m (shared with B), and
//!   sends it to A; A sends its row, u ⊕ π, to B. A reads the entry, B its masks: an XOR
//!   sharing of every run's pair between A and B. A sees only masked entries, B only a
//!   permuted row, D nothing.
//! - Then one round per level: groups of up to four adjacent pairs merge into one
//!   ([`super::merge`]), A and B opening their inputs under masks D knows and evaluating
//!   on the mask products D dealt in round 1. Two levels take sixteen runs to the carry.
//! - Last round: [x >= 0] xor a daBit ρ, which no party knows, is opened to all three.
//!
//! No party receives anything that is not masked by randomness it does not know, so each
//! party's view is independent of x.

use super::Protocol;
use super::bits::{BoolShare, pack_bits, to_planes};
use super::hooks::{self, Fault};
use super::merge::{self, Group};
use super::party::{Dealing, Label, Link, Party};
use super::prf::Stream;
use super::round::{Direct, Pair, Rider};
use anyhow::{Result, ensure};

/// Most bits a run looked up in one table covers (a table has 2^bits rows).
const MAX_RUN: u32 = 4;
/// Most items one group merges into one (its dealt products grow as 2^(2 items)).
const FAN_IN: usize = 5;

/// How a comparison of `width` bits splits its low bits into runs, and how levels of
/// groups merge them.
pub(crate) struct SignPlan {
    width: u32,
    /// Bits of each run, lowest first.
    runs: Vec<u32>,
    /// Per level, its groups in order (each a number of adjacent items of the level below;
    /// the first contains the lowest).
    levels: Vec<Vec<usize>>,
}

/// `items` in `groups` groups as even as possible, the larger groups lowest.
fn even(items: usize, groups: usize) -> Vec<usize> {
    (0..groups)
        .map(|g| items / groups + usize::from(g < items % groups))
        .collect()
}

impl SignPlan {
    /// The fewest rounds, then the fewest bytes, over runs of up to [`MAX_RUN`] bits (the
    /// lowest run full length, since its table holds only generate bits; the next one
    /// short) and the number of groups on the first level (later levels as few as
    /// [`FAN_IN`] allows). At 48 bits: a 3-bit run, a 2-bit run, 14 of 3 bits; groups of
    /// 4, 3, 3, 3, 3, then one of 5. Widths outside 2..=64 are clamped here for cost
    /// estimates; [`Party::open_nonnegative`] refuses them.
    pub fn new(width: u32) -> SignPlan {
        let width = width.clamp(2, 64);
        let low = width - 1;
        let mut best: Option<SignPlan> = None;
        for bits in 1..=MAX_RUN.min(low) {
            let count = low.div_ceil(bits) as usize;
            let mut runs = vec![bits; count];
            if count > 1 {
                runs[1] = low - bits * (count as u32 - 1);
            }
            for first in count.div_ceil(FAN_IN).max(1)..=FAN_IN.min(count) {
                let mut levels = vec![];
                let mut items = count;
                while items > 1 {
                    let groups = if levels.is_empty() {
                        first
                    } else {
                        items.div_ceil(FAN_IN)
                    };
                    levels.push(even(items, groups));
                    items = groups;
                }
                let plan = SignPlan {
                    width,
                    runs: runs.clone(),
                    levels,
                };
                let key = |p: &SignPlan| (p.rounds(), p.words(64));
                if best.as_ref().is_none_or(|b| key(&plan) < key(b)) {
                    best = Some(plan);
                }
            }
        }
        best.expect("every width has a plan")
    }

    /// Rounds, the opening of [x >= 0] ⊕ ρ included.
    pub fn rounds(&self) -> usize {
        self.levels.len() + 2
    }

    /// Table planes, per run: a row per value of its bits, one plane per output.
    fn table_planes(&self) -> usize {
        self.runs
            .iter()
            .enumerate()
            .map(|(i, &bits)| (1 << bits) * outputs(i))
            .sum()
    }

    /// The groups of `level`.
    fn groups(&self, level: usize) -> impl Iterator<Item = Group> + '_ {
        self.levels[level]
            .iter()
            .enumerate()
            .map(|(g, &runs)| Group {
                runs,
                lowest: g == 0,
            })
    }

    /// Planes entering `level` (the level's opened planes per party).
    fn level_vars(&self, level: usize) -> usize {
        self.groups(level).map(Group::vars).sum()
    }

    fn level_dealt(&self, level: usize) -> usize {
        self.groups(level).map(|g| g.dealt().len()).sum()
    }

    fn dealt_planes(&self) -> usize {
        (0..self.levels.len()).map(|l| self.level_dealt(l)).sum()
    }

    /// Words all parties send for `n` values, the bit opened to the dealer too.
    pub fn words(&self, n: u64) -> u64 {
        self.parts(n, true).iter().sum()
    }

    /// Words each part sends for `n` values, as [dealer, reader, masker]: the dealer its
    /// tables and dealt products; the reader its rows, its half of each level's openings
    /// and its share of the bit (to the masker, and to the dealer when `to_dealer`); the
    /// masker its halves and its share of the bit likewise.
    pub fn parts(&self, n: u64, to_dealer: bool) -> [u64; 3] {
        let opened: usize = (0..self.levels.len()).map(|l| self.level_vars(l)).sum();
        let bit = 1 + usize::from(to_dealer);
        [
            self.table_planes() + self.dealt_planes(),
            (self.width as usize - 1) + opened + bit,
            opened + bit,
        ]
        .map(|planes| planes as u64 * n.div_ceil(64))
    }
}

/// Planes a run's table entries hold: the lowest run's propagate never matters.
fn outputs(run: usize) -> usize {
    if run == 0 { 1 } else { 2 }
}

/// The next `planes` planes of `words` words of a stream.
fn read(stream: &mut Stream, planes: usize, words: usize) -> Vec<u64> {
    let mut out = vec![0u64; planes * words];
    stream.fill(&mut out);
    out
}

/// Planes `first..first + count` of planes `words` long.
fn planes(v: &[u64], first: usize, count: usize, words: usize) -> &[u64] {
    &v[first * words..(first + count) * words]
}

/// Selectors of a run's rows: plane j is set where the row index (planes `index`, low bit
/// first) equals j.
fn row_selectors(index: &[u64], bits: u32, words: usize) -> Vec<u64> {
    let rows = 1usize << bits;
    let mut selectors = vec![!0u64; rows * words];
    for j in 0..rows {
        for i in 0..bits as usize {
            let plane = &index[i * words..(i + 1) * words];
            let on = j >> i & 1 == 1;
            for (s, &b) in selectors[j * words..(j + 1) * words].iter_mut().zip(plane) {
                *s &= if on { b } else { !b };
            }
        }
    }
    selectors
}

/// The entries of `table` (rows of `outs` planes) that `selectors` pick, one per value.
fn pick(table: &[u64], selectors: &[u64], outs: usize, words: usize, into: &mut Vec<u64>) {
    let rows = selectors.len() / words;
    for o in 0..outs {
        into.extend((0..words).map(|w| {
            (0..rows).fold(0, |acc, j| {
                acc ^ (selectors[j * words + w] & table[(j * outs + o) * words + w])
            })
        }));
    }
}

/// What a comparison compares.
#[derive(Clone, Copy)]
pub(crate) enum Operand<'a> {
    Replicated(Pair<'a>),
    /// A truncation's result before its second round ([`super::arith::Pending`]), with its
    /// dealer: the party after the dealer holds u, the one after that v, and the dealer
    /// holds v mod 2^(64 - f), all a comparison of up to 64 - f bits reads. The dealer
    /// then deals, the party after it reads and the other masks, each from its own term.
    Additive {
        dealer: usize,
        term: &'a [u64],
    },
}

impl Operand<'_> {
    pub(crate) fn len(&self) -> usize {
        match self {
            Operand::Replicated(x) => x.cur.len(),
            Operand::Additive { term, .. } => term.len(),
        }
    }
}

/// Which part a party plays in one comparison.
enum Part {
    Dealer,
    /// Knows u, reads the tables.
    Reader,
    /// Knows v, holds the masks of the rows read.
    Masker,
}

impl Party {
    /// Opens [x >= 0] ⊕ ρ to every party, for XOR-shared bits ρ (packed 64 to a word), at
    /// `width` bits: exact for |x| < 2^(width-1). Returns the opened bits, packed.
    pub(crate) fn open_nonnegative(
        &mut self,
        x: Operand,
        width: u32,
        rho: &BoolShare,
        rider: &mut Rider,
    ) -> Result<Vec<u64>> {
        ensure!(
            (2..=64).contains(&width),
            "comparison width {width} is outside 2..=64"
        );
        let plan = SignPlan::new(width);
        let n = x.len();
        let words = n.div_ceil(64);
        let unmasked;
        let rho = if hooks::broken(Fault::UnmaskedComparison) {
            unmasked = BoolShare {
                cur: vec![0; words],
                next: vec![0; words],
            };
            &unmasked
        } else {
            rho
        };
        let nonce = self.begin_call();
        let dealer = match x {
            Operand::Replicated(_) => self.next_dealer(Dealing::Comparison),
            Operand::Additive { dealer, .. } => dealer,
        };
        let part = match (self.id() + 3 - dealer) % 3 {
            0 => Part::Dealer,
            1 => Part::Reader,
            _ => Part::Masker,
        };
        let top = |v: &[u64]| pack_bits(&v.iter().map(|x| x >> (width - 1)).collect::<Vec<_>>());
        // Under ABY3 the dealer learns the opened bits too (ρ is no party's); Pond's producer
        // knows ρ, so the bits are opened to the two servers alone.
        let to_dealer = if self.protocol() == Protocol::Aby3 {
            words
        } else {
            0
        };
        // The reader's and the masker's XOR shares of [x >= 0] go to each other with their
        // halves of ρ, and to the dealer masked by a stream the two share, so that the
        // dealer learns only their sum ⊕ ρ.
        let (share, direct) = match part {
            Part::Dealer => {
                let v = match x {
                    Operand::Replicated(x) => x.cur,
                    Operand::Additive { term, .. } => term,
                };
                self.deal_sign(v, &plan, nonce, words, rider)?;
                let direct = Direct {
                    from_prev: to_dealer,
                    from_next: to_dealer,
                    ..Direct::default()
                };
                (vec![0; words], direct)
            }
            Part::Reader => {
                let u: Vec<u64> = match x {
                    Operand::Replicated(x) => x
                        .cur
                        .iter()
                        .zip(x.next)
                        .map(|(a, b)| a.wrapping_add(*b))
                        .collect(),
                    Operand::Additive { term, .. } => term.to_vec(),
                };
                let carry = self.read_sign(&u, &plan, nonce, words, rider)?;
                // [x >= 0] is the complement of the sign: the reader flips its share.
                let share: Vec<u64> = carry.iter().zip(top(&u)).map(|(c, t)| !(c ^ t)).collect();
                let mask = self.stream(Link::Next, nonce, Label::SignOpen, words);
                let direct = Direct {
                    to_next: share.iter().zip(&rho.cur).map(|(s, r)| s ^ r).collect(),
                    to_prev: (0..to_dealer)
                        .map(|k| share[k] ^ rho.next[k] ^ mask[k])
                        .collect(),
                    from_next: words,
                    from_prev: 0,
                };
                (share, direct)
            }
            Part::Masker => {
                let carry = self.mask_sign(&plan, nonce, words, rider)?;
                let v = match x {
                    Operand::Replicated(x) => x.next,
                    Operand::Additive { term, .. } => term,
                };
                let share: Vec<u64> = carry.iter().zip(top(v)).map(|(c, t)| c ^ t).collect();
                let mask = self.stream(Link::Prev, nonce, Label::SignOpen, words);
                let direct = Direct {
                    to_prev: share.iter().zip(&rho.next).map(|(s, r)| s ^ r).collect(),
                    to_next: (0..to_dealer).map(|k| share[k] ^ mask[k]).collect(),
                    from_prev: words,
                    from_next: 0,
                };
                (share, direct)
            }
        };
        let (_, got) = rider.round_with(self, vec![], direct)?;
        let received = |from: &[u64], k: usize| from.get(k).copied().unwrap_or(0);
        let mut opened: Vec<u64> = (0..words)
            .map(|k| {
                received(&got.from_prev, k)
                    ^ received(&got.from_next, k)
                    ^ share[k]
                    ^ rho.cur[k]
                    ^ rho.next[k]
            })
            .collect();
        // Bits past n pad the last word; they are no one's value.
        if let (Some(last), tail @ 1..) = (opened.last_mut(), n % 64) {
            *last &= (1 << tail) - 1;
        }
        if to_dealer > 0 || !matches!(part, Part::Dealer) {
            self.opened(&opened);
        }
        Ok(opened)
    }

    /// The dealer's rounds: the tables to the reader and the mask products to the masker in
    /// the first, then nothing of its own while the other two merge.
    fn deal_sign(
        &mut self,
        v: &[u64],
        plan: &SignPlan,
        nonce: u64,
        words: usize,
        rider: &mut Rider,
    ) -> Result<()> {
        let low = plan.width - 1;
        let v = to_planes(v, low);
        let mut with_reader = self.stream_reader(Link::Next, nonce, Label::Sign);
        let mut with_masker = self.stream_reader(Link::Prev, nonce, Label::Sign);
        let mut tables = Vec::with_capacity(plan.table_planes() * words);
        let mut first_bit = 0usize;
        for (run, &bits) in plan.runs.iter().enumerate() {
            let (rows, outs) = (1usize << bits, outputs(run));
            let perm = read(&mut with_reader, bits as usize, words);
            let masks = read(&mut with_masker, rows * outs, words);
            let mut entry = vec![0u64; outs * words];
            for j in 0..rows {
                for w in 0..words {
                    // The run's generate and propagate for u's bits = j ⊕ π.
                    let (mut generate, mut propagate) = (0u64, !0u64);
                    for i in 0..bits as usize {
                        let flip = if j >> i & 1 == 1 { !0 } else { 0 };
                        let a = perm[i * words + w] ^ flip;
                        let b = v[(first_bit + i) * words + w];
                        generate = (a & b) | ((a ^ b) & generate);
                        propagate &= a ^ b;
                    }
                    entry[w] = generate;
                    if outs == 2 {
                        entry[words + w] = propagate;
                    }
                }
                let unmasked = hooks::broken(Fault::UnmaskedTables);
                for (o, e) in entry.iter().enumerate() {
                    tables.push(if unmasked {
                        *e
                    } else {
                        e ^ masks[(j * outs) * words + o]
                    });
                }
            }
            first_bit += bits as usize;
        }
        let mut dealt = Vec::with_capacity(plan.dealt_planes() * words);
        for level in 0..plan.levels.len() {
            let vars = plan.level_vars(level);
            let reader_half = read(&mut with_reader, vars, words);
            let masker_half = read(&mut with_masker, vars, words);
            let reader_dealt = read(&mut with_reader, plan.level_dealt(level), words);
            let mut first_var = 0;
            let mut at = 0;
            for group in plan.groups(level) {
                for subset in group.dealt() {
                    for w in 0..words {
                        let mut product = !0u64;
                        for k in (0..group.vars()).filter(|k| subset >> k & 1 == 1) {
                            let plane = (first_var + k) * words + w;
                            product &= reader_half[plane] ^ masker_half[plane];
                        }
                        dealt.push(product ^ reader_dealt[at * words + w]);
                    }
                    at += 1;
                }
                first_var += group.vars();
            }
        }
        rider.round_with(
            self,
            vec![],
            Direct {
                to_next: tables,
                to_prev: dealt,
                ..Direct::default()
            },
        )?;
        for _ in &plan.levels {
            rider.round(self, vec![])?;
        }
        Ok(())
    }

    /// The reader's rounds: its rows to the masker and the tables in, then the merges.
    /// Returns its XOR share of the carry into the top bit.
    fn read_sign(
        &mut self,
        u: &[u64],
        plan: &SignPlan,
        nonce: u64,
        words: usize,
        rider: &mut Rider,
    ) -> Result<Vec<u64>> {
        let u = to_planes(u, plan.width - 1);
        let mut with_dealer = self.stream_reader(Link::Prev, nonce, Label::Sign);
        let mut rows = Vec::with_capacity((plan.width as usize - 1) * words);
        for bits in &plan.runs {
            let first = rows.len();
            let perm = read(&mut with_dealer, *bits as usize, words);
            rows.extend(
                perm.iter()
                    .zip(&u[first..first + perm.len()])
                    .map(|(p, b)| p ^ b),
            );
        }
        let (_, got) = rider.round_with(
            self,
            vec![],
            Direct {
                to_next: rows.clone(),
                from_prev: plan.table_planes() * words,
                ..Direct::default()
            },
        )?;
        let mut shares = Vec::new();
        let (mut first_row, mut first_entry) = (0, 0);
        for (run, &bits) in plan.runs.iter().enumerate() {
            let selectors = row_selectors(&rows[first_row * words..], bits, words);
            let size = (1 << bits) * outputs(run) * words;
            let table = &got.from_prev[first_entry..first_entry + size];
            pick(table, &selectors, outputs(run), words, &mut shares);
            first_row += bits as usize;
            first_entry += size;
        }
        // What the reader learns: its entries, under masks it does not know.
        self.opened(&shares);
        for level in 0..plan.levels.len() {
            let half = read(&mut with_dealer, plan.level_vars(level), words);
            let dealt = read(&mut with_dealer, plan.level_dealt(level), words);
            shares = self.merge_level(plan, level, shares, &half, &dealt, words, true, rider)?;
        }
        Ok(shares)
    }

    /// The masker's rounds: the reader's rows and the dealt products in, then the merges.
    /// Returns its XOR share of the carry into the top bit.
    fn mask_sign(
        &mut self,
        plan: &SignPlan,
        nonce: u64,
        words: usize,
        rider: &mut Rider,
    ) -> Result<Vec<u64>> {
        let (_, got) = rider.round_with(
            self,
            vec![],
            Direct {
                from_prev: (plan.width as usize - 1) * words,
                from_next: plan.dealt_planes() * words,
                ..Direct::default()
            },
        )?;
        let mut with_dealer = self.stream_reader(Link::Next, nonce, Label::Sign);
        let mut shares = Vec::new();
        let mut first_row = 0;
        for (run, &bits) in plan.runs.iter().enumerate() {
            let outs = outputs(run);
            let masks = read(&mut with_dealer, (1 << bits) * outs, words);
            let selectors = row_selectors(&got.from_prev[first_row * words..], bits, words);
            pick(&masks, &selectors, outs, words, &mut shares);
            first_row += bits as usize;
        }
        let mut first_dealt = 0;
        for level in 0..plan.levels.len() {
            let half = read(&mut with_dealer, plan.level_vars(level), words);
            let size = plan.level_dealt(level) * words;
            let dealt = &got.from_next[first_dealt..first_dealt + size];
            shares = self.merge_level(plan, level, shares, &half, dealt, words, false, rider)?;
            first_dealt += size;
        }
        Ok(shares)
    }

    /// One level of merges between the reader and the masker: each opens its shares under
    /// its mask halves to the other, then evaluates every group on the opened planes.
    #[allow(clippy::too_many_arguments)]
    fn merge_level(
        &mut self,
        plan: &SignPlan,
        level: usize,
        shares: Vec<u64>,
        half: &[u64],
        dealt: &[u64],
        words: usize,
        reader: bool,
        rider: &mut Rider,
    ) -> Result<Vec<u64>> {
        let masked: Vec<u64> = shares.iter().zip(half).map(|(s, m)| s ^ m).collect();
        let len = masked.len();
        let direct = if reader {
            Direct {
                to_next: masked.clone(),
                from_next: len,
                ..Direct::default()
            }
        } else {
            Direct {
                to_prev: masked.clone(),
                from_prev: len,
                ..Direct::default()
            }
        };
        let (_, got) = rider.round_with(self, vec![], direct)?;
        let other = if reader { got.from_next } else { got.from_prev };
        let open: Vec<u64> = masked.iter().zip(&other).map(|(a, b)| a ^ b).collect();
        // What this party learns: the inputs under the other party's mask halves alone.
        self.opened(
            &open
                .iter()
                .zip(half)
                .map(|(o, m)| o ^ m)
                .collect::<Vec<_>>(),
        );
        let mut out = Vec::new();
        let (mut first_var, mut first_dealt) = (0, 0);
        for group in plan.groups(level) {
            let (vars, count) = (group.vars(), group.dealt().len());
            let terms = group.terms();
            let (open, half, dealt) = (
                planes(&open, first_var, vars, words),
                planes(half, first_var, vars, words),
                planes(dealt, first_dealt, count, words),
            );
            let merged: Vec<[u64; 2]> = (0..words)
                .map(|w| merge::evaluate(&terms, open, half, dealt, words, w, reader))
                .collect();
            for o in 0..group.outputs() {
                out.extend(merged.iter().map(|m| m[o]));
            }
            first_var += vars;
            first_dealt += count;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The default width's plan: four rounds, 455 bits per value on the wire.
    #[test]
    fn plan_at_the_default_width() {
        let plan = SignPlan::new(48);
        assert_eq!(plan.runs.iter().sum::<u32>(), 47);
        assert_eq!(plan.rounds(), 4);
        assert_eq!(plan.words(64), 455);
        for width in 2..=64 {
            let plan = SignPlan::new(width);
            assert_eq!(plan.runs.iter().sum::<u32>(), width - 1, "width {width}");
            assert!(plan.levels.iter().flatten().all(|&g| g <= FAN_IN));
        }
    }
}
