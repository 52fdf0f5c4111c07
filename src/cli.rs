//! What the command-line tools share: .npy files, how errors reach the user, and the
//! progress bar of a long run.

use crate::mpc::Protocol;
use crate::serve::{Mode, Progress};
use anyhow::{Context, Result, anyhow, bail};
use ndarray::ArrayD;
use ndarray_npy::{ReadNpyError, ReadNpyExt, WriteNpyExt};
use std::io::{BufWriter, IsTerminal};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// `--mode`: which interpreter runs, for the tools that offer all three.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum ModeArg {
    /// secret sharing under --protocol: no party sees the inputs or the weights
    Mpc,
    /// plaintext fixed point (the MPC arithmetic without the sharing)
    Fixed,
    /// plaintext f32 reference
    Float,
}

impl ModeArg {
    /// The interpreter, with `protocol` (`--protocol`) for mpc.
    pub fn with(self, protocol: Protocol) -> Mode {
        match self {
            ModeArg::Mpc => Mode::Mpc(protocol),
            ModeArg::Fixed => Mode::Fixed,
            ModeArg::Float => Mode::Float,
        }
    }
}

/// Runs a tool's body: on error prints one paragraph to stderr and exits with 1. A panic is
/// a bug; it is reported the same way rather than as a crash with exit code 101.
pub fn run(body: impl FnOnce() -> Result<()>) -> ! {
    std::panic::set_hook(Box::new(|info| {
        eprintln!(
            "error: internal error in tfe ({info}); this is a bug, please report it together with the model or plan that triggered it"
        );
    }));
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(body)) {
        Ok(Ok(())) => std::process::exit(0),
        Ok(Err(e)) => {
            eprintln!("error: {e:#}");
            std::process::exit(1)
        }
        Err(_) => std::process::exit(1),
    }
}

/// An input .npy file as reals: float32 as stored; float64, int32, int64 and bool (token
/// ids, masks, labels) converted, integers only while float32 holds them exactly.
pub fn read_npy(path: &Path) -> Result<ArrayD<f32>> {
    let bytes = std::fs::read(path)
        .with_context(|| format!("cannot open input file {}", path.display()))?;
    check_npy_sizes(&bytes, path)?;
    let unreadable = |e: ReadNpyError| {
        anyhow!(
            "{} is not a readable .npy file ({e}); save the input with numpy.save",
            path.display()
        )
    };
    let descriptor = match ArrayD::<f32>::read_npy(bytes.as_slice()) {
        Ok(a) => return Ok(a),
        Err(ReadNpyError::WrongDescriptor(d)) => d,
        Err(e) => return Err(unreadable(e)),
    };
    let read = |bytes: &[u8]| -> Option<Result<ArrayD<f32>>> {
        if let Ok(a) = ArrayD::<f64>::read_npy(bytes) {
            return Some(Ok(a.mapv(|v| v as f32)));
        }
        if let Ok(a) = ArrayD::<bool>::read_npy(bytes) {
            return Some(Ok(a.mapv(|v| if v { 1.0 } else { 0.0 })));
        }
        let ints = ArrayD::<i64>::read_npy(bytes).ok().or_else(|| {
            ArrayD::<i32>::read_npy(bytes)
                .ok()
                .map(|a| a.mapv(i64::from))
        })?;
        Some(exact_floats(ints, path))
    };
    read(&bytes).unwrap_or_else(|| {
        bail!(
            "{} holds {descriptor}; save the input as float32, float64, int32, int64 or bool (for example np.save(path, x.astype(np.float32)))",
            path.display()
        )
    })
}

/// The sizes a .npy header declares fit in the file, checked before the reader allocates
/// by them: the header's length, and the shape's element count (at least a byte each). A
/// header this cannot read is left to the reader's own error.
fn check_npy_sizes(bytes: &[u8], path: &Path) -> Result<()> {
    let Some((preamble, header_len)) = (match bytes {
        [0x93, b'N', b'U', b'M', b'P', b'Y', 1, _, a, b, ..] => {
            Some((10, u16::from_le_bytes([*a, *b]) as usize))
        }
        [0x93, b'N', b'U', b'M', b'P', b'Y', 2 | 3, _, a, b, c, d, ..] => {
            Some((12, u32::from_le_bytes([*a, *b, *c, *d]) as usize))
        }
        _ => None,
    }) else {
        return Ok(());
    };
    let held = bytes.len() - preamble;
    let damaged = |what: String| {
        anyhow!(
            "{} is not a readable .npy file ({what}); it is cut short or damaged, save the input again with numpy.save",
            path.display()
        )
    };
    if header_len > held {
        return Err(damaged(format!(
            "its header declares {header_len} bytes, the file holds {held} after the magic"
        )));
    }
    let header = String::from_utf8_lossy(&bytes[preamble..preamble + header_len]);
    let Some(dims) = declared_shape(&header) else {
        return Ok(());
    };
    let values = dims
        .iter()
        .try_fold(1u64, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= (held - header_len) as u64)
        .ok_or_else(|| {
            damaged(format!(
                "its shape {dims:?} declares more values than its {} bytes of data hold",
                held - header_len
            ))
        });
    values.map(|_| ())
}

/// The dimensions of a .npy header's `'shape': (…)` entry, when it reads as one.
fn declared_shape(header: &str) -> Option<Vec<u64>> {
    let after = &header[header.find("'shape'")? + "'shape'".len()..];
    let open = after.find('(')?;
    let close = open + after[open..].find(')')?;
    after[open + 1..close]
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.trim_end_matches('L').parse().ok())
        .collect()
}

/// Integers as float32, which holds every integer up to 2^24 exactly.
fn exact_floats(ints: ArrayD<i64>, path: &Path) -> Result<ArrayD<f32>> {
    const EXACT: i64 = 1 << 24;
    if let Some(v) = ints.iter().find(|v| v.abs() > EXACT) {
        bail!(
            "{} holds the integer {v}, beyond the 2^24 that tfe's float32 inputs hold exactly",
            path.display()
        );
    }
    Ok(ints.mapv(|v| v as f32))
}

pub fn write_npy(path: &Path, array: &ArrayD<f32>) -> Result<()> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("cannot create output file {}", path.display()))?;
    array
        .write_npy(BufWriter::new(file))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// On an interactive terminal only (never in a pipe or a file, so that logs stay clean): a
/// bar on stderr, spinning with `waiting` until a request runs, then showing its steps done
/// out of the plan's total, and the [`Progress`] that moves it. The bar clears itself when a
/// request's last step is done; the caller clears it on any other ending.
pub fn step_bar(waiting: &str) -> Option<(indicatif::ProgressBar, Progress)> {
    use indicatif::{ProgressBar, ProgressStyle};
    if !std::io::stderr().is_terminal() {
        return None;
    }
    let bar = ProgressBar::new_spinner().with_message(waiting.to_string());
    bar.enable_steady_tick(Duration::from_millis(120));
    let steps = ProgressStyle::with_template(
        "{spinner} step {pos}/{len} [{bar:40}] {elapsed} elapsed, about {eta} left",
    )
    .expect("the template is valid")
    .progress_chars("=> ");
    let drawn = bar.clone();
    let progress: Progress = Arc::new(move |done, total| {
        if done == 1 {
            drawn.reset();
            drawn.set_style(steps.clone());
            drawn.set_length(total as u64);
        }
        drawn.set_position(done as u64);
        if done == total {
            drawn.finish_and_clear();
        }
    });
    Some((bar, progress))
}
