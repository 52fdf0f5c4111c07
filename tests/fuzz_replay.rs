//! The fuzz targets' inputs replayed in every test run: the seeds (fuzz/seeds/, made by
//! `scripts/fuzz.sh seeds`), every crash the fuzzer found (fuzz/regressions/, kept with its
//! fix), and each seed cut short at a spread of lengths, through the same code the targets
//! run (fuzz/src/lib.rs). Each must end in an error or a result, never a panic.

#[path = "../fuzz/src/lib.rs"]
mod bodies;

use std::path::Path;

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
                let replay = std::panic::catch_unwind(|| body(&data[..len]));
                assert!(
                    replay.is_ok(),
                    "{target} panicked on {name} cut to {len} bytes"
                );
            }
        }
    }
}
