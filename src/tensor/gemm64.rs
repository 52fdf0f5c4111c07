//! Matrix multiply over Z_2^64.
//!
//! Written by hand because no maintained crate multiplies wrapping 64-bit integers: `gemm`
//! and `matrixmultiply` are float-only and ndarray's integer `dot` is a naive loop that
//! panics on overflow in debug builds.
//!
//! The structure is BLIS's: for each block of columns and of the inner dimension, B is packed
//! once into panels `NR` columns wide; the output is then cut into tasks (row blocks, and
//! column ranges when there are too few rows to keep every worker busy), each of which packs
//! its rows of A into `MR`-row panels and runs a register-tiled micro-kernel over every
//! (A panel, B panel) pair. A product with fewer rows than one tile skips packing: its tasks
//! are column strips of C that B streams past once. Only the kernels depend on the
//! instruction set:
//! - AVX-512DQ: plain wrapping Rust compiled with `vpmullq` (64-bit low multiply) available;
//! - AVX2: no 64-bit multiply, so each product is built from 32-bit halves (see [`x86`]);
//! - portable: the same plain Rust as AVX-512, for any other CPU.
//!
//! The path is picked once per call at run time; the build itself stays portable.

use rayon::prelude::*;
use std::cell::Cell;

/// Below this many multiply-adds the whole product runs on the calling thread.
const PARALLEL_THRESHOLD: usize = 1 << 17;
/// Bytes of one packed B micro-panel (`kc` packed rows): it is reused for every A panel of a task,
/// so it must stay in L1 (32 KiB data cache per core) next to the A panel streaming past.
const B_PANEL_BYTES: usize = 16 << 10;
/// Bytes of a task's packed A block: read once per B panel, so it should stay in L2.
const A_BLOCK_BYTES: usize = 192 << 10;
/// Widest column block: bounds the packed B buffer (`kc x NC` words).
const NC: usize = 4096;
/// Widest strip of C an unpacked task covers, so that its rows of C (fewer than `MR`) stay
/// in L1.
const STRIP: usize = 512;
/// Tasks per worker when running in parallel: more than one so that rayon can balance them.
const TASKS_PER_THREAD: usize = 4;

/// The instruction set a micro-kernel is written for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Path {
    Avx512,
    Avx2,
    Portable,
}

impl Path {
    /// The fastest path this CPU runs.
    pub fn detect() -> Path {
        [Path::Avx512, Path::Avx2]
            .into_iter()
            .find(|p| p.available())
            .unwrap_or(Path::Portable)
    }

    pub fn available(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Path::Avx512 => x86::Avx512::new().is_some(),
            #[cfg(target_arch = "x86_64")]
            Path::Avx2 => x86::Avx2::new().is_some(),
            Path::Portable => true,
            #[cfg(not(target_arch = "x86_64"))]
            _ => false,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Path::Avx512 => "AVX-512DQ (vpmullq)",
            Path::Avx2 => "AVX2 (32-bit halves)",
            Path::Portable => "portable",
        }
    }
}

/// The path [`gemm`] takes on this CPU, for reports.
pub fn gemm_path() -> &'static str {
    Path::detect().name()
}

/// `c += a * b` for row-major `a: [m,k]`, `b: [k,n]`, `c: [m,n]`, all wrapping.
pub fn gemm(m: usize, k: usize, n: usize, a: &[u64], b: &[u64], c: &mut [u64]) {
    gemm_with(Path::detect(), m, k, n, a, b, c);
}

/// [`gemm`] on a given path; panics if this CPU cannot run it.
fn gemm_with(path: Path, m: usize, k: usize, n: usize, a: &[u64], b: &[u64], c: &mut [u64]) {
    assert!(
        a.len() == m * k && b.len() == k * n && c.len() == m * n,
        "gemm operand sizes"
    );
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    match path {
        #[cfg(target_arch = "x86_64")]
        Path::Avx512 => {
            let kernel = x86::Avx512::new().expect("the AVX-512 path needs AVX-512F and DQ");
            product(kernel, m, k, n, a, b, c)
        }
        #[cfg(target_arch = "x86_64")]
        Path::Avx2 => {
            let kernel = x86::Avx2::new().expect("the AVX2 path needs AVX2");
            product(kernel, m, k, n, a, b, c)
        }
        Path::Portable => product(Portable, m, k, n, a, b, c),
        #[cfg(not(target_arch = "x86_64"))]
        _ => panic!("the {path:?} GEMM path needs an x86-64 CPU"),
    }
}

/// A register-tiled micro-kernel: what differs between instruction sets.
trait Kernel: Copy + Send + Sync {
    /// Rows of A (and C) per tile.
    const MR: usize;
    /// Columns of B (and C) per tile.
    const NR: usize;
    /// Words one row of a B panel takes once packed.
    const B_STEP: usize = Self::NR;

    /// Packs one row of a B panel: `row` holds its first columns, the rest are zero.
    #[inline]
    fn pack_b_step(row: &[u64], out: &mut [u64]) {
        let (values, padding) = out.split_at_mut(row.len());
        values.copy_from_slice(row);
        padding.fill(0);
    }

    /// `out[r * NR + j] = sum_p A[p][r] * B[p][j]` for `r < rows <= MR`, `j < NR`, where the
    /// A panel holds `kc` steps of `rows` elements and the B panel `kc` packed rows.
    fn tile(self, rows: usize, a: &[u64], b: &[u64], out: &mut [u64]);

    /// `C += A * B` on the task's rectangle of C, from A and B as they are (`k` and `n` their
    /// row lengths), for products with too few rows to repay packing B.
    fn strip(self, a: &[u64], k: usize, b: &[u64], n: usize, task: &mut Task) {
        strip_wrapping(a, k, b, n, task);
    }
}

/// Plain wrapping Rust, for CPUs without a faster path.
#[derive(Clone, Copy)]
struct Portable;

impl Kernel for Portable {
    const MR: usize = 4;
    const NR: usize = 4;

    fn tile(self, rows: usize, a: &[u64], b: &[u64], out: &mut [u64]) {
        tile_rows::<4>(rows, a, b, out);
    }
}

/// [`tile_wrapping`] for the row counts of a 4-row kernel.
#[inline(always)]
fn tile_rows<const NR: usize>(rows: usize, a: &[u64], b: &[u64], out: &mut [u64]) {
    match rows {
        1 => tile_wrapping::<1, NR>(a, b, out),
        2 => tile_wrapping::<2, NR>(a, b, out),
        3 => tile_wrapping::<3, NR>(a, b, out),
        _ => tile_wrapping::<4, NR>(a, b, out),
    }
}

/// The micro-kernel in plain wrapping arithmetic. Fixed-size accumulators let LLVM keep the
/// tile in registers and vectorise the `NR` loop with whatever the caller's target features
/// offer (`vpmullq` under AVX-512DQ).
#[inline(always)]
fn tile_wrapping<const R: usize, const NR: usize>(a: &[u64], b: &[u64], out: &mut [u64]) {
    let mut acc = [[0u64; NR]; R];
    for (a, b) in a.chunks_exact(R).zip(b.chunks_exact(NR)) {
        for (acc, &a) in acc.iter_mut().zip(a) {
            for (acc, &b) in acc.iter_mut().zip(b) {
                *acc = acc.wrapping_add(a.wrapping_mul(b));
            }
        }
    }
    for (out, acc) in out.chunks_exact_mut(NR).zip(&acc) {
        out.copy_from_slice(acc);
    }
}

/// The unpacked product in plain wrapping arithmetic, one row of B at a time against every
/// row of the task, so that the task's C stays in L1 while B streams past once.
#[inline(always)]
fn strip_wrapping(a: &[u64], k: usize, b: &[u64], n: usize, task: &mut Task) {
    let width = task.rows[0].len();
    for (p, b) in b.chunks_exact(n).enumerate() {
        let b = &b[task.col0..task.col0 + width];
        for (i, c) in task.rows.iter_mut().enumerate() {
            let x = a[(task.row0 + i) * k + p];
            for (c, &b) in c.iter_mut().zip(b) {
                *c = c.wrapping_add(x.wrapping_mul(b));
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    //! x86-64 micro-kernels. Each kernel type has a private field and a constructor that
    //! checks the CPU, so holding a value proves the features of its `#[target_feature]`
    //! functions are present: that is the whole safety argument for calling them.

    use super::{Kernel, Task, strip_wrapping, tile_rows};
    use std::arch::x86_64::*;

    /// 4x32 tiles of plain wrapping Rust, which LLVM turns into 512-bit `vpmullq`.
    #[derive(Clone, Copy)]
    pub struct Avx512(());

    impl Avx512 {
        pub fn new() -> Option<Self> {
            (is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512dq"))
                .then_some(Avx512(()))
        }
    }

    impl Kernel for Avx512 {
        const MR: usize = 4;
        const NR: usize = 32;

        fn tile(self, rows: usize, a: &[u64], b: &[u64], out: &mut [u64]) {
            // SAFETY: an `Avx512` exists only once `new` has detected AVX-512F and DQ, the
            // features `tile_avx512` is compiled for; it indexes only through slices.
            unsafe { tile_avx512(rows, a, b, out) }
        }

        fn strip(self, a: &[u64], k: usize, b: &[u64], n: usize, task: &mut Task) {
            // SAFETY: as for `tile`: `self` proves AVX-512F and DQ, and the callee is safe
            // Rust apart from its target features.
            unsafe { strip_avx512(a, k, b, n, task) }
        }
    }

    #[target_feature(enable = "avx512f,avx512dq")]
    fn tile_avx512(rows: usize, a: &[u64], b: &[u64], out: &mut [u64]) {
        tile_rows::<32>(rows, a, b, out);
    }

    #[target_feature(enable = "avx512f,avx512dq")]
    fn strip_avx512(a: &[u64], k: usize, b: &[u64], n: usize, task: &mut Task) {
        strip_wrapping(a, k, b, n, task);
    }

    /// 6x4 tiles with the 64-bit product split into 32-bit halves. With `a = ah:al` and
    /// `b = bh:bl`, `a * b mod 2^64 = al*bl + ((al*bh + ah*bl) mod 2^32) << 32`. Per 4 lanes
    /// and k-step the kernel issues two multiplies: `vpmuludq` accumulates the full 64-bit
    /// `al*bl`, and `vpmulld` of `a` by B packed rotated (`bl:bh`) puts `al*bh` in the low
    /// and `ah*bl` in the high 32-bit half of a second accumulator. The halves are summed and
    /// shifted into place once per tile, not per step. The naive split takes three
    /// `vpmuludq` and measured half as fast.
    #[derive(Clone, Copy)]
    pub struct Avx2(());

    impl Avx2 {
        pub fn new() -> Option<Self> {
            is_x86_feature_detected!("avx2").then_some(Avx2(()))
        }
    }

    impl Kernel for Avx2 {
        const MR: usize = 6;
        const NR: usize = 4;
        const B_STEP: usize = 8;

        #[inline]
        fn pack_b_step(row: &[u64], out: &mut [u64]) {
            let (plain, rotated) = out.split_at_mut(4);
            for (j, (plain, rotated)) in plain.iter_mut().zip(rotated).enumerate() {
                *plain = row.get(j).copied().unwrap_or(0);
                *rotated = plain.rotate_left(32);
            }
        }

        fn tile(self, rows: usize, a: &[u64], b: &[u64], out: &mut [u64]) {
            // SAFETY: an `Avx2` exists only once `new` has detected AVX2, the feature the
            // kernels are compiled for; they index only through slices.
            unsafe {
                match rows {
                    1 => tile_avx2::<1>(a, b, out),
                    2 => tile_avx2::<2>(a, b, out),
                    3 => tile_avx2::<3>(a, b, out),
                    4 => tile_avx2::<4>(a, b, out),
                    5 => tile_avx2::<5>(a, b, out),
                    _ => tile_avx2::<6>(a, b, out),
                }
            }
        }

        fn strip(self, a: &[u64], k: usize, b: &[u64], n: usize, task: &mut Task) {
            // SAFETY: as for `tile`: `self` proves AVX2, and the callee is safe Rust apart
            // from its target feature.
            unsafe { strip_avx2(a, k, b, n, task) }
        }
    }

    /// LLVM builds each 4-lane product from three `vpmuludq`; B streams from memory here, so
    /// the multiplies are not what bounds it.
    #[target_feature(enable = "avx2")]
    fn strip_avx2(a: &[u64], k: usize, b: &[u64], n: usize, task: &mut Task) {
        strip_wrapping(a, k, b, n, task);
    }

    /// `R` rows by 4 columns, each row with a low and a cross accumulator: at `R = 6`, 12
    /// registers, plus 2 for the B row and 1 for the broadcast of A, out of 16.
    #[target_feature(enable = "avx2")]
    fn tile_avx2<const R: usize>(a: &[u64], b: &[u64], out: &mut [u64]) {
        let zero = _mm256_setzero_si256();
        let mut low = [zero; R];
        let mut cross = [zero; R];
        for (a, b) in a.chunks_exact(R).zip(b.chunks_exact(8)) {
            let [b, b_rotated]: [__m256i; 2] =
                bytemuck::cast(<[u64; 8]>::try_from(b).expect("8 words a row"));
            for ((low, cross), &a) in low.iter_mut().zip(&mut cross).zip(a) {
                let a = _mm256_set1_epi64x(a as i64);
                *low = _mm256_add_epi64(*low, _mm256_mul_epu32(a, b));
                *cross = _mm256_add_epi32(*cross, _mm256_mullo_epi32(a, b_rotated));
            }
        }
        for ((out, low), cross) in out.chunks_exact_mut(4).zip(low).zip(cross) {
            let halves = _mm256_add_epi32(cross, _mm256_srli_epi64::<32>(cross));
            let tile = _mm256_add_epi64(low, _mm256_slli_epi64::<32>(halves));
            out.copy_from_slice(&bytemuck::cast::<_, [u64; 4]>(tile));
        }
    }
}

thread_local! {
    /// Packed A of the task running on this thread, kept to avoid an allocation per task.
    static A_PACK: Cell<Vec<u64>> = const { Cell::new(Vec::new()) };
    /// Packed B of the product running on this thread (megabytes for a large conv), kept
    /// to avoid an allocation and a zero fill per product.
    static B_PACK: Cell<Vec<u64>> = const { Cell::new(Vec::new()) };
}

/// A rectangle of C one task owns: its first row, its first column as an offset into the
/// column block, and one mutable slice per row.
struct Task<'c> {
    row0: usize,
    col0: usize,
    rows: Vec<&'c mut [u64]>,
}

/// The product on one micro-kernel: unpacked when A has fewer rows than one tile, as packing
/// B would then cost about as much as the product itself; blocked otherwise, in about
/// `tasks_wanted` tasks per block of B.
fn product<K: Kernel>(
    kernel: K,
    m: usize,
    k: usize,
    n: usize,
    a: &[u64],
    b: &[u64],
    c: &mut [u64],
) {
    let threads = rayon::current_num_threads();
    let parallel = m * k * n >= PARALLEL_THRESHOLD && threads > 1;
    let tasks_wanted = if parallel {
        TASKS_PER_THREAD * threads
    } else {
        1
    };
    if m < K::MR {
        let width = n.div_ceil(tasks_wanted).next_multiple_of(8).min(STRIP);
        let tasks = split_output(c, n, 0..n, m, width);
        run_all(parallel, tasks, |mut task| {
            kernel.strip(a, k, b, n, &mut task)
        });
        return;
    }
    // Even blocks: the k blocks, and the row blocks in whole A panels.
    let k_blocks = k.div_ceil((B_PANEL_BYTES / (8 * K::B_STEP)).max(1));
    let kc_max = k.div_ceil(k_blocks);
    let mc_max = (A_BLOCK_BYTES / (8 * kc_max)).max(K::MR);
    let m_panels = m.div_ceil(K::MR);
    let row_blocks = m.div_ceil(mc_max).max(tasks_wanted.min(m_panels));
    let mc = m_panels.div_ceil(row_blocks) * K::MR;
    let row_blocks = m.div_ceil(mc);
    let mut b_pack = B_PACK.take();
    for j0 in (0..n).step_by(NC) {
        let nc = NC.min(n - j0);
        let n_panels = nc.div_ceil(K::NR);
        let col_splits = tasks_wanted.div_ceil(row_blocks).min(n_panels);
        let split_width = n_panels.div_ceil(col_splits) * K::NR;
        let mut tasks = split_output(c, n, j0..j0 + nc, mc, split_width);
        for p0 in (0..k).step_by(kc_max) {
            let kc = kc_max.min(k - p0);
            let panel_len = kc * K::B_STEP;
            b_pack.resize(n_panels * panel_len, 0);
            let panels = b_pack.chunks_mut(panel_len).enumerate().collect();
            run_all(parallel, panels, |(panel, out)| {
                let col = panel * K::NR;
                pack_b::<K>(b, n, p0, j0 + col, (nc - col).min(K::NR), out);
            });
            run_all(parallel, tasks.iter_mut().collect(), |task| {
                run_task(kernel, a, k, p0, kc, &b_pack, task)
            });
        }
    }
    B_PACK.set(b_pack);
}

/// Runs `f` on every item, spread over the rayon pool if `parallel`.
fn run_all<T: Send>(parallel: bool, items: Vec<T>, f: impl Fn(T) + Send + Sync) {
    if parallel {
        items.into_par_iter().for_each(f);
    } else {
        items.into_iter().for_each(f);
    }
}

/// Cuts columns `cols` of C into tasks of `mc` rows by `width` columns, each holding its own
/// mutable row slices, so that the tasks can run in parallel without sharing C.
fn split_output(
    c: &mut [u64],
    n: usize,
    cols: std::ops::Range<usize>,
    mc: usize,
    width: usize,
) -> Vec<Task<'_>> {
    let mut tasks = Vec::new();
    for (block, c) in c.chunks_mut(mc * n).enumerate() {
        let first = tasks.len();
        tasks.extend((0..cols.len()).step_by(width).map(|col0| Task {
            row0: block * mc,
            col0,
            rows: Vec::with_capacity(mc),
        }));
        for row in c.chunks_exact_mut(n) {
            let mut rest = &mut row[cols.clone()];
            for task in &mut tasks[first..] {
                let (mine, others) = rest.split_at_mut(width.min(rest.len()));
                task.rows.push(mine);
                rest = others;
            }
        }
    }
    tasks
}

/// Rows `p0..` and columns `col..col + width` of B as one panel, as many rows as `out` holds.
fn pack_b<K: Kernel>(b: &[u64], n: usize, p0: usize, col: usize, width: usize, out: &mut [u64]) {
    for (out, row) in out
        .chunks_exact_mut(K::B_STEP)
        .zip(b[p0 * n..].chunks_exact(n))
    {
        K::pack_b_step(&row[col..col + width], out);
    }
}

/// Rows `row0..` and columns `p0..` of A as panels of `MR` rows (the last one shorter when
/// `out` ends there), each `kc` steps of one element per row.
fn pack_a<K: Kernel>(a: &[u64], k: usize, row0: usize, p0: usize, kc: usize, out: &mut [u64]) {
    for (panel, out) in out.chunks_mut(K::MR * kc).enumerate() {
        let rows = out.len() / kc;
        let first = (row0 + panel * K::MR) * k + p0;
        for (p, out) in out.chunks_exact_mut(rows).enumerate() {
            for (r, out) in out.iter_mut().enumerate() {
                *out = a[first + r * k + p];
            }
        }
    }
}

/// Largest `MR x NR` of the kernels, for the tile buffer on the stack.
const MAX_TILE: usize = 128;

/// One task: packs its rows of A for this k block, then multiplies every A panel by every B
/// panel it covers and adds the tiles into its part of C.
fn run_task<K: Kernel>(
    kernel: K,
    a: &[u64],
    k: usize,
    p0: usize,
    kc: usize,
    b_pack: &[u64],
    task: &mut Task,
) {
    const { assert!(K::MR * K::NR <= MAX_TILE) };
    let Task { row0, col0, rows } = task;
    let mut a_pack = A_PACK.take();
    a_pack.resize(rows.len() * kc, 0);
    pack_a::<K>(a, k, *row0, p0, kc, &mut a_pack);
    let width = rows[0].len();
    let b_panels = b_pack[*col0 / K::NR * kc * K::B_STEP..].chunks_exact(kc * K::B_STEP);
    let mut tile = [0u64; MAX_TILE];
    for (j, b_panel) in (0..width).step_by(K::NR).zip(b_panels) {
        let cols = j..width.min(j + K::NR);
        for (a_panel, rows) in a_pack.chunks(K::MR * kc).zip(rows.chunks_mut(K::MR)) {
            kernel.tile(rows.len(), a_panel, b_panel, &mut tile);
            for (row, tile) in rows.iter_mut().zip(tile.chunks_exact(K::NR)) {
                for (c, &t) in row[cols.clone()].iter_mut().zip(tile) {
                    *c = c.wrapping_add(t);
                }
            }
        }
    }
    A_PACK.set(a_pack);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(m: usize, k: usize, n: usize, a: &[u64], b: &[u64], c: &mut [u64]) {
        for i in 0..m {
            for j in 0..n {
                for p in 0..k {
                    c[i * n + j] =
                        c[i * n + j].wrapping_add(a[i * k + p].wrapping_mul(b[p * n + j]));
                }
            }
        }
    }

    /// Full-range pseudo-random words, so that products wrap and carry through every bit.
    fn words(len: usize, seed: u64) -> Vec<u64> {
        (0..len as u64)
            .map(|i| {
                let z = (i ^ seed.rotate_left(17))
                    .wrapping_add(seed)
                    .wrapping_mul(0x9e37_79b9_7f4a_7c15);
                (z ^ (z >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9)
            })
            .collect()
    }

    fn paths() -> Vec<Path> {
        let paths: Vec<Path> = [Path::Avx512, Path::Avx2, Path::Portable]
            .into_iter()
            .filter(|p| p.available())
            .collect();
        eprintln!("testing GEMM paths {paths:?}");
        paths
    }

    /// The AVX-512 kernel's code and 4x32 tile without its target features, so that the
    /// blocking and packing that path relies on are tested on CPUs without AVX-512 too.
    #[derive(Clone, Copy)]
    struct Wide;

    impl Kernel for Wide {
        const MR: usize = 4;
        const NR: usize = 32;

        fn tile(self, rows: usize, a: &[u64], b: &[u64], out: &mut [u64]) {
            tile_rows::<32>(rows, a, b, out);
        }
    }

    /// Every path, and the AVX-512 tile shape, against the naive triple loop, accumulating
    /// into a non-zero C.
    fn check(shapes: &[(usize, usize, usize)]) {
        for &(m, k, n) in shapes {
            let (a, b) = (words(m * k, 1), words(k * n, 2));
            let mut expect = words(m * n, 3);
            let start = expect.clone();
            naive(m, k, n, &a, &b, &mut expect);
            for path in paths() {
                let mut got = start.clone();
                gemm_with(path, m, k, n, &a, &b, &mut got);
                assert!(got == expect, "{path:?} differs at {m}x{k}x{n}");
            }
            if m * k * n > 0 {
                let mut got = start.clone();
                product(Wide, m, k, n, &a, &b, &mut got);
                assert!(got == expect, "the 4x32 tile differs at {m}x{k}x{n}");
            }
        }
    }

    #[test]
    fn edge_tiles_and_degenerate_shapes() {
        check(&[
            (1, 1, 1),
            (3, 5, 7),
            (1, 37, 1),
            (0, 4, 5),
            (4, 0, 5),
            (4, 5, 0),
            (2, 3, 4),
            (5, 7, 9),
            (3, 8, 8),
            (4, 32, 32),
            (7, 33, 31),
            (13, 17, 65),
            (1, 784, 10),
        ]);
    }

    #[test]
    fn several_k_row_and_column_blocks() {
        // k beyond one k block on every kernel, rows beyond one row block, columns beyond NC
        // (blocked and unpacked), and a long k on both routes.
        check(&[
            (9, 700, 11),
            (150, 260, 9),
            (3, 5, NC + 37),
            (8, 5, NC + 37),
            (2, 5000, 3),
            (10, 3001, 17),
        ]);
    }

    #[test]
    fn parallel_row_and_column_splits() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(3)
            .build()
            .unwrap();
        // Many rows (row blocks only), a few rows (column splits only), a mix of both, and one
        // row (the unpacked route in column strips).
        pool.install(|| check(&[(256, 64, 70), (8, 300, 129), (7, 300, 129), (1, 400, 333)]));
    }

    #[test]
    fn dispatch_takes_the_widest_path_the_cpu_has() {
        let detected = Path::detect();
        assert!(detected.available());
        assert_eq!(Some(detected), paths().first().copied());
        #[cfg(target_arch = "x86_64")]
        {
            let avx512 =
                is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512dq");
            let avx2 = is_x86_feature_detected!("avx2");
            assert_eq!(Path::Avx512.available(), avx512);
            assert_eq!(Path::Avx2.available(), avx2);
            let expect = if avx512 {
                Path::Avx512
            } else if avx2 {
                Path::Avx2
            } else {
                Path::Portable
            };
            assert_eq!(detected, expect);
        }
        // A path the CPU lacks is refused, never run.
        for path in [Path::Avx512, Path::Avx2]
            .into_iter()
            .filter(|p| !p.available())
        {
            let refused =
                std::panic::catch_unwind(|| gemm_with(path, 1, 1, 1, &[1], &[1], &mut [0]));
            assert!(refused.is_err(), "{path:?} ran without its CPU features");
        }
    }

    #[test]
    fn wraps_like_the_ring() {
        // (2^64 - 1)^2 = 1 mod 2^64, and 2^32 * 2^32 = 0: both lost if a carry were dropped.
        for path in paths() {
            let a = [u64::MAX, 1 << 32];
            let b = [u64::MAX, 1 << 32];
            let mut c = [0u64; 1];
            gemm_with(path, 1, 2, 1, &a, &b, &mut c);
            assert_eq!(c, [1], "{path:?}");
        }
    }
}
