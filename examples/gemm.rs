//! Matrix-multiply kernel table: GMAC/s of the Z_2^64 GEMM and of the f32 GEMM (the float
//! reference) on one thread and on all threads, and their ratio, for the shapes inference
//! runs. Configurations are sampled in turn and each reports its fastest sample, so that load
//! from other processes hits the u64 and f32 figures alike.
//!
//!     cargo run --release --example gemm [-- --samples 30]

use std::hint::black_box;
use std::time::{Duration, Instant};
use tfe::tensor::{Elem, gemm_path};

/// `(m, k, n, what)`: `[m,k] x [k,n]`.
const SHAPES: &[(usize, usize, usize, &str)] = &[
    (256, 256, 256, "square"),
    (64, 784, 128, "MLP layer, batch 64"),
    (1, 784, 128, "MLP layer, batch 1"),
    (20, 25, 576, "conv im2col, 5x5x1 -> 20 ch, 24x24"),
    (576, 25, 20, "the same conv, positions as rows"),
    (50, 500, 64, "conv im2col, 5x5x20 -> 50 ch, 8x8"),
];

/// Shortest time one sample runs: long enough for the clock, short enough that on a busy
/// machine many samples run whole between the scheduler's preemptions.
const SAMPLE: Duration = Duration::from_millis(3);

/// One operand set and how many products fit in a sample.
struct Case<E> {
    m: usize,
    k: usize,
    n: usize,
    a: Vec<E>,
    b: Vec<E>,
    c: Vec<E>,
    reps: usize,
}

impl<E: Elem> Case<E> {
    fn new(m: usize, k: usize, n: usize, value: impl Fn(u64) -> E) -> Self {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            // splitmix64: enough for operands that wrap and carry in every bit position.
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            value(z ^ (z >> 31))
        };
        let a = (0..m * k).map(|_| next()).collect();
        let b = (0..k * n).map(|_| next()).collect();
        Case {
            m,
            k,
            n,
            a,
            b,
            c: vec![E::ZERO; m * n],
            reps: 1,
        }
    }

    fn run(&mut self) {
        E::gemm(self.m, self.k, self.n, &self.a, &self.b, &mut self.c);
        black_box(&mut self.c);
    }

    /// Warms up and sizes `reps` so that one sample lasts at least [`SAMPLE`].
    fn calibrate(&mut self) {
        for _ in 0..3 {
            self.run();
        }
        while self.sample() < SAMPLE {
            self.reps *= 2;
        }
    }

    fn sample(&mut self) -> Duration {
        let start = Instant::now();
        for _ in 0..self.reps {
            self.run();
        }
        start.elapsed()
    }

    fn gmacs(&self, best: Duration) -> f64 {
        (self.m * self.k * self.n * self.reps) as f64 / best.as_secs_f64() / 1e9
    }
}

/// A case of either element type, so that the configurations of one shape sit in one list.
trait Sampled: Send {
    fn calibrate(&mut self);
    fn sample(&mut self) -> Duration;
    fn gmacs(&self, best: Duration) -> f64;
}

impl<E: Elem> Sampled for Case<E> {
    fn calibrate(&mut self) {
        Case::calibrate(self)
    }
    fn sample(&mut self) -> Duration {
        Case::sample(self)
    }
    fn gmacs(&self, best: Duration) -> f64 {
        Case::gmacs(self, best)
    }
}

/// A case on a thread pool, with its fastest sample so far.
struct Config {
    pool: rayon::ThreadPool,
    case: Box<dyn Sampled>,
    best: Duration,
}

fn config(threads: usize, mut case: Box<dyn Sampled>) -> Config {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool");
    pool.install(|| case.calibrate());
    Config {
        pool,
        case,
        best: Duration::MAX,
    }
}

fn main() {
    let mut samples = 30;
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match argv.as_slice() {
        [] => {}
        [flag, value] if flag == "--samples" => {
            samples = value.parse().expect("--samples takes a number")
        }
        _ => panic!("usage: gemm [--samples N]"),
    }
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get());
    println!(
        "Z_2^64 kernel: {}; {threads} threads; min of {samples} samples of >= {} ms each\n",
        gemm_path(),
        SAMPLE.as_millis()
    );
    println!(
        "| m x k x n | shape | u64 1T | f32 1T | u64/f32 1T | u64 {threads}T | f32 {threads}T | u64/f32 {threads}T |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|");
    for &(m, k, n, what) in SHAPES {
        let u64_case = || Box::new(Case::new(m, k, n, |z| z));
        // Floats in [-1, 1): sums stay far from overflow and subnormals over many repetitions.
        let f32_case = || {
            Box::new(Case::new(m, k, n, |z| {
                (z >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            }))
        };
        let mut configs = [
            config(1, u64_case()),
            config(1, f32_case()),
            config(threads, u64_case()),
            config(threads, f32_case()),
        ];
        for _ in 0..samples {
            for c in &mut configs {
                let took = c.pool.install(|| c.case.sample());
                c.best = c.best.min(took);
            }
        }
        let rate: Vec<f64> = configs.iter().map(|c| c.case.gmacs(c.best)).collect();
        println!(
            "| {m}x{k}x{n} | {what} | {:.2} | {:.2} | {:.3} | {:.2} | {:.2} | {:.3} |",
            rate[0],
            rate[1],
            rate[0] / rate[1],
            rate[2],
            rate[3],
            rate[2] / rate[3]
        );
    }
    println!("\nGMAC/s: 10^9 multiply-adds per second.");
}
