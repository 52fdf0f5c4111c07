//! Matrix multiply over Z_2^64.
//!
//! Written by hand because no maintained crate multiplies wrapping 64-bit integers: `gemm`
//! and `matrixmultiply` are float-only and ndarray's integer `dot` is a naive loop that
//! panics on overflow in debug builds. Rows of the output are split across rayon workers;
//! each worker runs an i-k-j loop that LLVM vectorises (512-bit `vpmullq` when the CPU has
//! AVX-512DQ, picked at run time by `multiversion`).

use rayon::prelude::*;

/// Output rows per rayon task: enough work to amortise scheduling, small enough to balance.
const ROWS_PER_TASK: usize = 16;
/// Below this many multiply-adds the whole product runs on the calling thread.
const PARALLEL_THRESHOLD: usize = 1 << 16;

/// `c += a * b` for row-major `a: [m,k]`, `b: [k,n]`, `c: [m,n]`, all wrapping.
pub fn gemm(m: usize, k: usize, n: usize, a: &[u64], b: &[u64], c: &mut [u64]) {
    assert!(
        a.len() == m * k && b.len() == k * n && c.len() == m * n,
        "gemm operand sizes"
    );
    if n == 0 || k == 0 {
        return;
    }
    if m * k * n < PARALLEL_THRESHOLD {
        rows(k, n, a, b, c);
    } else {
        c.par_chunks_mut(ROWS_PER_TASK * n)
            .zip(a.par_chunks(ROWS_PER_TASK * k))
            .for_each(|(c, a)| rows(k, n, a, b, c));
    }
}

#[multiversion::multiversion(targets("x86_64+avx512f+avx512dq", "x86_64+avx2"))]
fn rows(k: usize, n: usize, a: &[u64], b: &[u64], c: &mut [u64]) {
    for (c_row, a_row) in c.chunks_exact_mut(n).zip(a.chunks_exact(k)) {
        for (&a_ip, b_row) in a_row.iter().zip(b.chunks_exact(n)) {
            for (c, &b) in c_row.iter_mut().zip(b_row) {
                *c = c.wrapping_add(a_ip.wrapping_mul(b));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, k: usize, n: usize, a: &[u64], b: &[u64]) -> Vec<u64> {
        let mut c = vec![0u64; m * n];
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    c[i * n + j] =
                        c[i * n + j].wrapping_add(a[i * k + p].wrapping_mul(b[p * n + j]));
                }
            }
        }
        c
    }

    #[test]
    fn matches_naive_product_with_wraparound() {
        for &(m, k, n) in &[(1, 1, 1), (3, 5, 7), (40, 33, 17), (70, 64, 65)] {
            let a: Vec<u64> = (0..m * k)
                .map(|i| (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
                .collect();
            let b: Vec<u64> = (0..k * n)
                .map(|i| (i as u64 + 7).wrapping_mul(0xc2b2_ae3d_27d4_eb4f))
                .collect();
            let mut c = vec![0u64; m * n];
            gemm(m, k, n, &a, &b, &mut c);
            assert_eq!(c, naive(m, k, n, &a, &b), "shape {m}x{k}x{n}");
        }
    }
}
