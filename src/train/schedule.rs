//! Which rows each training step reads: a public function of the row count, the batch
//! size, the epochs and the seed, the same in every mode. Each epoch is a permutation of all
//! rows (Fisher–Yates driven by SplitMix64), cut into whole batches; a last partial batch
//! is left out, since the batch size is a constant of the training plan.

use anyhow::{Result, ensure};

pub struct Schedule {
    /// Per epoch, per step, the rows of the batch (indices into all owners' rows in order).
    pub epochs: Vec<Vec<Vec<usize>>>,
}

/// SplitMix64 (Steele, Lea and Flood): a public, portable stream; nothing secret depends
/// on it.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform below `n` (n ≤ 2^32: the modulo bias is below 2^-32).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

impl Schedule {
    pub fn new(rows: usize, batch: usize, epochs: usize, seed: u64) -> Result<Schedule> {
        ensure!(batch > 0, "the batch size must be at least 1");
        ensure!(
            rows >= batch,
            "the data owners hold {rows} rows in all, fewer than one batch of {batch}; lower --batch"
        );
        let mut rng = SplitMix64(seed);
        let epochs = (0..epochs)
            .map(|_| {
                let mut order: Vec<usize> = (0..rows).collect();
                for i in (1..rows).rev() {
                    order.swap(i, rng.below(i + 1));
                }
                order.chunks_exact(batch).map(<[usize]>::to_vec).collect()
            })
            .collect();
        Ok(Schedule { epochs })
    }

    pub fn steps(&self) -> usize {
        self.epochs.iter().map(Vec::len).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_epoch_permutes_the_rows_and_the_seed_decides() {
        let s = Schedule::new(10, 3, 2, 7).unwrap();
        assert_eq!(s.steps(), 6);
        for epoch in &s.epochs {
            let mut seen: Vec<usize> = epoch.concat();
            assert_eq!(seen.len(), 9);
            seen.sort();
            seen.dedup();
            assert_eq!(seen.len(), 9, "no row twice in an epoch");
        }
        assert_ne!(s.epochs[0], s.epochs[1]);
        assert_eq!(Schedule::new(10, 3, 2, 7).unwrap().epochs, s.epochs);
        assert_ne!(Schedule::new(10, 3, 2, 8).unwrap().epochs, s.epochs);
        assert!(Schedule::new(2, 3, 1, 0).is_err());
    }
}
