//! The two element types a plan is evaluated over: `f32` for the float reference and `u64`
//! read as Z_2^64 for fixed point and for shares.
//!
//! Every kernel in this crate is written once, generic over [`Elem`], so that the float,
//! fixed-point and MPC interpreters share the same data movement and linear algebra. Ring
//! arithmetic must wrap, which is why `u64` is never combined with the `+`/`*` operators.

use rayon::prelude::*;
use std::fmt::Debug;

pub trait Elem: Copy + Send + Sync + Default + PartialEq + Debug + 'static {
    const ZERO: Self;
    fn add(self, other: Self) -> Self;
    fn sub(self, other: Self) -> Self;
    fn mul(self, other: Self) -> Self;
    fn neg(self) -> Self;
    /// An integer as an element (two's complement in the ring).
    fn from_i64(v: i64) -> Self;

    /// `c += a * b` over rows: the inner loop of every matrix kernel.
    #[inline]
    fn axpy(c: &mut [Self], a: Self, b: &[Self]) {
        for (c, &b) in c.iter_mut().zip(b) {
            *c = c.add(a.mul(b));
        }
    }

    /// Row-major `[m,k] x [k,n] -> [m,n]`; the default is a cache-friendly i-k-j loop, and a
    /// type may override it with a faster kernel.
    fn gemm(m: usize, k: usize, n: usize, a: &[Self], b: &[Self], c: &mut [Self]) {
        debug_assert_eq!(a.len(), m * k);
        debug_assert_eq!(b.len(), k * n);
        debug_assert_eq!(c.len(), m * n);
        for i in 0..m {
            let c_row = &mut c[i * n..(i + 1) * n];
            for (p, &a_ip) in a[i * k..(i + 1) * k].iter().enumerate() {
                if a_ip != Self::ZERO {
                    Self::axpy(c_row, a_ip, &b[p * n..(p + 1) * n]);
                }
            }
        }
    }
}

impl Elem for f32 {
    const ZERO: Self = 0.0;
    #[inline]
    fn add(self, other: Self) -> Self {
        self + other
    }
    #[inline]
    fn sub(self, other: Self) -> Self {
        self - other
    }
    #[inline]
    fn mul(self, other: Self) -> Self {
        self * other
    }
    #[inline]
    fn neg(self) -> Self {
        -self
    }
    fn from_i64(v: i64) -> Self {
        v as f32
    }

    /// matrixmultiply's sgemm (through ndarray), far faster than the generic loop. It runs on
    /// one thread, so a large product is cut along its longer output side into one sgemm per
    /// rayon worker.
    fn gemm(m: usize, k: usize, n: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
        use ndarray::{ArrayView2, ArrayViewMut2, Axis, linalg::general_mat_mul, s};
        let a = ArrayView2::from_shape((m, k), a).expect("gemm lhs shape");
        let b = ArrayView2::from_shape((k, n), b).expect("gemm rhs shape");
        let mut c = ArrayViewMut2::from_shape((m, n), c).expect("gemm out shape");
        let threads = rayon::current_num_threads();
        if m * k * n < F32_PARALLEL_THRESHOLD || threads == 1 {
            general_mat_mul(1.0, &a, &b, 1.0, &mut c);
            return;
        }
        let axis = if m >= n { Axis(0) } else { Axis(1) };
        let chunk = c.len_of(axis).div_ceil(threads);
        c.axis_chunks_iter_mut(axis, chunk)
            .into_par_iter()
            .enumerate()
            .for_each(|(i, mut c)| {
                let part = i * chunk..i * chunk + c.len_of(axis);
                if axis == Axis(0) {
                    general_mat_mul(1.0, &a.slice(s![part, ..]), &b, 1.0, &mut c);
                } else {
                    general_mat_mul(1.0, &a, &b.slice(s![.., part]), 1.0, &mut c);
                }
            });
    }
}

/// Below this many multiply-adds an f32 product stays on the calling thread: sgemm is fast
/// enough that splitting smaller products costs more in scheduling than it saves.
const F32_PARALLEL_THRESHOLD: usize = 1 << 20;

impl Elem for u64 {
    const ZERO: Self = 0;
    #[inline]
    fn add(self, other: Self) -> Self {
        self.wrapping_add(other)
    }
    #[inline]
    fn sub(self, other: Self) -> Self {
        self.wrapping_sub(other)
    }
    #[inline]
    fn mul(self, other: Self) -> Self {
        self.wrapping_mul(other)
    }
    #[inline]
    fn neg(self) -> Self {
        self.wrapping_neg()
    }
    fn from_i64(v: i64) -> Self {
        v as u64
    }

    fn gemm(m: usize, k: usize, n: usize, a: &[u64], b: &[u64], c: &mut [u64]) {
        super::gemm64::gemm(m, k, n, a, b, c);
    }
}
