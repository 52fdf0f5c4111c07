//! What the two command-line tools share: .npy files and how errors reach the user.

use anyhow::{Context, Result, bail};
use ndarray::ArrayD;
use ndarray_npy::{ReadNpyError, ReadNpyExt, WriteNpyExt};
use std::io::BufWriter;
use std::path::Path;

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

pub fn read_npy(path: &Path) -> Result<ArrayD<f32>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("cannot open input file {}", path.display()))?;
    match ArrayD::<f32>::read_npy(std::io::BufReader::new(file)) {
        Ok(a) => Ok(a),
        Err(ReadNpyError::WrongDescriptor(d)) => bail!(
            "{} holds {d}, not float32; save the input as float32 (for example np.save(path, x.astype(np.float32)))",
            path.display()
        ),
        Err(e) => bail!(
            "{} is not a readable .npy file ({e}); save the input with numpy.save",
            path.display()
        ),
    }
}

pub fn write_npy(path: &Path, array: &ArrayD<f32>) -> Result<()> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("cannot create output file {}", path.display()))?;
    array
        .write_npy(BufWriter::new(file))
        .with_context(|| format!("cannot write {}", path.display()))
}
