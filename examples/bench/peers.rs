//! The peers beside tfe: SecretFlow SPU measured on this machine in the same session
//! (scripts/peers/spu_bench.py writes one JSON object per row), and the published figures of
//! those that cannot run here, quoted with their hardware; this project's targets.

use super::measure::Measured;
use anyhow::{Context, Result};
use serde::Deserialize;
use std::collections::HashMap;
use std::path::Path;
use tfe::exec::human_bytes;

/// A row of scripts/peers/spu_bench.py's output.
#[derive(Deserialize)]
struct SpuRow {
    model: String,
    batch: u64,
    online_median_ms: f64,
    bytes: Option<u64>,
}

/// SPU's measured median latency (ms) and bytes, by (model, batch).
pub struct Spu(HashMap<(String, u64), (f64, Option<u64>)>);

impl Spu {
    pub fn read(path: &Path) -> Result<Spu> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read SPU's measurements {}", path.display()))?;
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let r: SpuRow = serde_json::from_str(l)
                    .with_context(|| format!("{}: a row is not SPU's JSON", path.display()))?;
                Ok(((r.model, r.batch), (r.online_median_ms, r.bytes)))
            })
            .collect::<Result<_>>()
            .map(Spu)
    }
}

/// Published figures of peers that cannot run here: TF Encrypted and CrypTen with three
/// parties in one process on this machine kind as an earlier session recorded them (weights
/// and input both secret; KB and MB decimal), and this project's latency target in ms.
#[rustfmt::skip]
const PUBLISHED: [(&str, u64, [&str; 2], f64); 5] = [
    ("mlp_a", 1, ["164 ms", "430 ms, 6.4 MB"], 5.0),
    ("mlp_a", 64, ["350 ms", "482 ms"], 60.0),
    ("lenet", 1, ["1.15 s", "3.3 s, 239 MB"], 80.0),
    ("lenet", 64, ["11.8 s", "67 s, 14 GB"], 1200.0),
    ("cnn_bn", 1, ["0.83 s", "1.5 s"], 10.0),
];

/// The comparison table's header.
pub const HEADER: &str = "| model | batch | tfe | SecretFlow SPU (measured here) | TF Encrypted (published) | CrypTen (published) | tfe vs SPU | targets |\n|---|---|---|---|---|---|---|---|";

/// LeNet's peak memory target.
const LENET_MAX_MEMORY: u64 = 1 << 30;

/// Our median beside SPU's measurement and the published figures, the speed-up over SPU,
/// and which targets are met (latency, bytes no more than SPU's, LeNet's peak memory).
pub fn comparison(
    model: &str,
    title: &str,
    batch: u64,
    m: &Measured,
    spu: Option<&Spu>,
) -> Option<String> {
    let &(_, _, figures, target_ms) = PUBLISHED.iter().find(|r| r.0 == model && r.1 == batch)?;
    let ours_ms = m.online_median.as_secs_f64() * 1e3;
    let measured = spu.and_then(|s| s.0.get(&(model.to_string(), batch)));
    let verdict = |ok: bool| if ok { "met" } else { "**missed**" };
    let mut targets = vec![format!(
        "≤ {target_ms} ms {}",
        verdict(ours_ms <= target_ms)
    )];
    if let Some((_, Some(bytes))) = measured {
        targets.push(format!(
            "bytes ≤ SPU's {}",
            verdict(m.online_bytes <= *bytes)
        ));
    }
    if model == "lenet" {
        let ok = m.peak_memory.is_some_and(|p| p <= LENET_MAX_MEMORY);
        targets.push(format!(
            "peak ≤ {} {}",
            human_bytes(LENET_MAX_MEMORY),
            verdict(ok)
        ));
    }
    let (spu_cell, speedup) = match measured {
        Some((ms, bytes)) => (
            format!(
                "{ms:.2} ms{}",
                bytes.map_or(String::new(), |b| format!(", {}", human_bytes(b)))
            ),
            format!("{:.1}x", ms / ours_ms),
        ),
        None => (
            "not measured (run scripts/peers/spu_bench.py, then --peers)".into(),
            "–".into(),
        ),
    };
    Some(format!(
        "| {title} | {batch} | {ours_ms:.2} ms, {} | {spu_cell} | {} | {speedup} | {} |",
        human_bytes(m.online_bytes),
        figures.join(" | "),
        targets.join(", "),
    ))
}
