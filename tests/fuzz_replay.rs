//! The fuzz targets' inputs replayed in every test run: the seeds (fuzz/seeds/, made by
//! `scripts/fuzz.sh seeds`), every crash the fuzzer found (fuzz/regressions/, kept with its
//! fix), and each seed cut short at a spread of lengths, through the same code the targets
//! run (fuzz/src/lib.rs). Each must end in an error or a result, never a panic (even one
//! tfe catches, as libFuzzer counts it, but for a panic inside tract that the onnx body
//! lets tfe report) nor an allocation over 1 GiB (libFuzzer's limit is 2 GiB; a lazily
//! zeroed allocation would not show in this process's memory).

#[path = "../fuzz/src/lib.rs"]
mod bodies;

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, recording the largest single allocation asked of it.
struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; recording the size
// touches only an atomic.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: the caller's contract for `layout` is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: as for `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: `ptr` and `layout` came from this allocator, which is the system's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

/// Panics seen by the hook, caught or not.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn inputs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut files: Vec<_> = entries
        .map(|e| e.expect("a readable directory").path())
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            (
                p.display().to_string(),
                std::fs::read(&p).expect("a readable file"),
            )
        })
        .collect()
}

#[test]
fn seeds_regressions_and_their_prefixes_read_without_a_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::Relaxed);
        report(info);
    }));
    for (target, body) in bodies::TARGETS {
        let seeds = inputs(&root.join("seeds").join(target));
        assert!(
            !seeds.is_empty(),
            "no seeds for {target}: run scripts/fuzz.sh seeds"
        );
        let regressions = inputs(&root.join("regressions").join(target));
        for (name, data) in seeds.iter().chain(&regressions) {
            let cuts = (0..16).map(|k| data.len() * k / 16);
            for len in cuts.chain([data.len()]) {
                LARGEST.store(0, Ordering::Relaxed);
                let replay = std::panic::catch_unwind(|| body(&data[..len]));
                assert!(
                    replay.is_ok() && PANICS.load(Ordering::Relaxed) == 0,
                    "{target} panicked on {name} cut to {len} bytes"
                );
                let largest = LARGEST.load(Ordering::Relaxed);
                assert!(
                    largest < 1 << 30,
                    "{target} allocated {largest} bytes at once on {name} cut to {len} bytes"
                );
            }
        }
    }
    onnx_findings_are_refused_by_name();
}

/// The ONNX findings are refused by tfe's own checks, naming what is wrong, rather than by
/// the catch around tract (which the replay accepts): each check's message, or for the
/// one no check before tract can see (a pooling fed a scalar), the caught panic's. Called
/// by the replay test, since both set the process's panic hook.
fn onnx_findings_are_refused_by_name() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions/onnx");
    for (file, expected) in [
        (
            "crash-04a9c654c83d0defea81f074482ede9621670cc3",
            "kernel_shape covers 1 spatial axes but strides covers 2",
        ),
        (
            "crash-ed4acb2c3f43ff5d2ec456cec908e863e67073f1",
            "is not computed by any node",
        ),
        (
            "crash-5b6261a93524ef8d12e936b6e4b08fe902d87808",
            "raw data of ONNX element type 8",
        ),
        (
            "crash-90a80ff23671d6ed63b839316028a7c7ad6a3f6f",
            "tract's shape inference stopped on an internal error",
        ),
    ] {
        let hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let converted = tfe::lower::convert(&dir.join(file), tfe::lower::Options::default());
        std::panic::set_hook(hook);
        let e = format!("{:#}", converted.err().expect("refused"));
        assert!(e.contains(expected), "{file}: {e}");
    }
}
