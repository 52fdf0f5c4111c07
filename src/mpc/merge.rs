//! Merging the (generate, propagate) pairs of adjacent runs of bits into the pair of the
//! whole run, by masked evaluation between two parties with a dealer.
//!
//! Runs 0..k of a group, lowest first, merge into G = Σ_i G_i Π_{j>i} P_j and
//! P = Π_j P_j (at most one term of G is set, so the sum is an XOR). Each input X is
//! XOR-shared between two parties and opened as e = X ⊕ λ, where the dealer knows λ and
//! gives each of them half of it. A product of inputs is then
//! Π_k (e_k ⊕ λ_k) = ⊕_S (Π_{k∉S} e_k) Λ_S over the subsets S of its factors, with Λ_S the
//! product of their masks: public e, so each party evaluates it on its XOR share of every
//! Λ_S. The dealer deals the shares of the Λ_S with two or more factors; the evaluating
//! party takes the public term (S empty).

use std::collections::BTreeSet;

/// Inputs of one merge: a run is one plane (G) if it is the lowest run, whose propagate
/// never matters, and two (G, P) otherwise.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Group {
    pub runs: usize,
    pub lowest: bool,
}

impl Group {
    /// Planes in, planes out.
    pub fn vars(self) -> usize {
        2 * self.runs - usize::from(self.lowest)
    }

    pub fn outputs(self) -> usize {
        if self.lowest { 1 } else { 2 }
    }

    fn g(self, run: usize) -> usize {
        2 * run - usize::from(self.lowest && run > 0)
    }

    fn p(self, run: usize) -> usize {
        self.g(run) + 1
    }

    /// The products each output sums, as sets of input planes (bit i = plane i).
    fn monomials(self) -> Vec<Vec<u16>> {
        let above = |i: usize| (i + 1..self.runs).fold(0u16, |m, j| m | 1 << self.p(j));
        let generate = (0..self.runs).map(|i| 1 << self.g(i) | above(i)).collect();
        if self.lowest {
            vec![generate]
        } else {
            let all = (0..self.runs).fold(0u16, |m, j| m | 1 << self.p(j));
            vec![generate, vec![all]]
        }
    }

    /// The mask products the dealer deals: every subset of two or more factors of some
    /// monomial, in increasing order.
    pub fn dealt(self) -> Vec<u16> {
        let mut subsets = BTreeSet::new();
        for monomial in self.monomials().into_iter().flatten() {
            for s in submasks(monomial) {
                if s.count_ones() >= 2 {
                    subsets.insert(s);
                }
            }
        }
        subsets.into_iter().collect()
    }

    /// How each output is evaluated from the opened planes and the mask shares.
    pub fn terms(self) -> Vec<Vec<Term>> {
        let dealt = self.dealt();
        self.monomials()
            .into_iter()
            .map(|sums| {
                sums.into_iter()
                    .flat_map(|monomial| {
                        submasks(monomial)
                            .map(move |s| (monomial & !s, s))
                            .collect::<Vec<_>>()
                    })
                    .map(|(open, s)| Term {
                        open,
                        mask: match s.count_ones() {
                            0 => Mask::One,
                            1 => Mask::Single(s.trailing_zeros() as usize),
                            _ => {
                                Mask::Dealt(dealt.binary_search(&s).expect("every subset is dealt"))
                            }
                        },
                    })
                    .collect()
            })
            .collect()
    }
}

/// All submasks of `m`, `m` and 0 included.
fn submasks(m: u16) -> impl Iterator<Item = u16> {
    let mut next = Some(m);
    std::iter::from_fn(move || {
        let s = next?;
        next = (s != 0).then(|| (s - 1) & m);
        Some(s)
    })
}

/// One term of an output: the product of the opened planes in `open` and a mask share.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Term {
    open: u16,
    mask: Mask,
}

#[derive(Clone, Copy, Debug)]
enum Mask {
    /// No mask: the public term, which only the evaluating party adds.
    One,
    /// This party's half of one input's mask.
    Single(usize),
    /// This party's share of a dealt product, by its index in [`Group::dealt`].
    Dealt(usize),
}

/// This party's XOR shares of a group's outputs for word `w` of planes `words` long: from
/// the opened planes `open`, its mask halves `masks` and dealt shares `dealt` (all the
/// group's, plane-major); `public` for the party that adds the public terms.
pub(crate) fn evaluate(
    terms: &[Vec<Term>],
    open: &[u64],
    masks: &[u64],
    dealt: &[u64],
    words: usize,
    w: usize,
    public: bool,
) -> [u64; 2] {
    let mut out = [0u64; 2];
    for (o, sum) in terms.iter().enumerate() {
        for term in sum {
            let mask = match term.mask {
                Mask::One if public => !0,
                Mask::One => continue,
                Mask::Single(k) => masks[k * words + w],
                Mask::Dealt(d) => dealt[d * words + w],
            };
            let mut product = mask;
            let mut rest = term.open;
            while rest != 0 {
                let k = rest.trailing_zeros() as usize;
                product &= open[k * words + w];
                rest &= rest - 1;
            }
            out[o] ^= product;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The carry of every combination of input states, through shares and masks chosen at
    /// random, equals the merged (generate, propagate) pair.
    #[test]
    fn masked_evaluation_merges_runs() {
        let mut state = 0x5eed_u64;
        let mut random = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state
        };
        for group in [1, 2, 3, 4]
            .into_iter()
            .flat_map(|runs| [true, false].map(|lowest| Group { runs, lowest }))
        {
            let vars = group.vars();
            let terms = group.terms();
            let dealt = group.dealt();
            // Run states: 0 kill, 1 generate, 2 propagate (not for the lowest run).
            let states: usize = if group.lowest { 2 } else { 3 };
            for combo in 0..states.pow(group.runs as u32) {
                let run_states: Vec<usize> = (0..group.runs)
                    .map(|i| {
                        let s = combo / states.pow(i as u32) % states;
                        if i == 0 && group.lowest { s.min(1) } else { s }
                    })
                    .collect();
                let mut x = vec![0u64; vars];
                for (i, &s) in run_states.iter().enumerate() {
                    x[group.g(i)] = if s == 1 { !0 } else { 0 };
                    if !(group.lowest && i == 0) {
                        x[group.p(i)] = if s == 2 { !0 } else { 0 };
                    }
                }
                let lambda_a: Vec<u64> = (0..vars).map(|_| random()).collect();
                let lambda_b: Vec<u64> = (0..vars).map(|_| random()).collect();
                let lambda: Vec<u64> = (0..vars).map(|k| lambda_a[k] ^ lambda_b[k]).collect();
                let open: Vec<u64> = (0..vars).map(|k| x[k] ^ lambda[k]).collect();
                let products: Vec<u64> = dealt
                    .iter()
                    .map(|&s| {
                        (0..vars)
                            .filter(|k| s >> k & 1 == 1)
                            .fold(!0, |p, k| p & lambda[k])
                    })
                    .collect();
                let dealt_a: Vec<u64> = dealt.iter().map(|_| random()).collect();
                let dealt_b: Vec<u64> = products.iter().zip(&dealt_a).map(|(p, a)| p ^ a).collect();
                let a = evaluate(&terms, &open, &lambda_a, &dealt_a, 1, 0, true);
                let b = evaluate(&terms, &open, &lambda_b, &dealt_b, 1, 0, false);
                let top = run_states.iter().rposition(|&s| s != 2);
                let generate = top.is_some_and(|i| run_states[i] == 1);
                assert_eq!(
                    a[0] ^ b[0],
                    if generate { !0 } else { 0 },
                    "{group:?} {run_states:?}"
                );
                if !group.lowest {
                    let propagate = run_states.iter().all(|&s| s == 2);
                    assert_eq!(
                        a[1] ^ b[1],
                        if propagate { !0 } else { 0 },
                        "{group:?} {run_states:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn dealt_products_per_group_of_four() {
        assert_eq!(
            Group {
                runs: 4,
                lowest: true
            }
            .dealt()
            .len(),
            15
        );
        assert_eq!(
            Group {
                runs: 4,
                lowest: false
            }
            .dealt()
            .len(),
            22
        );
    }
}
