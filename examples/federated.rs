//! Federated learning as in TF Encrypted's example: three data owners (hospitals, banks)
//! hold parts of scikit-learn's digits and may not pool them. Every step the model owner
//! sends the current softmax-regression weights to the data owners; each computes the
//! gradient (and loss) on its own rows, in plaintext, and secret-shares it; the three
//! parties compute the mean weighted by the owners' row counts, and only the model owner
//! learns it and updates the model. The same steps on the pooled data are the reference.
//!
//!     cargo run --release --example federated [-- --protocol aby3|pond]
//!
//! Under Pond the gradients' pieces go to the two servers and the crypto producer only
//! agrees on who submitted.
//!
//! Data: examples/data/digits (written by make_digits.py there).

use anyhow::{Result, bail, ensure};
use clap::ValueEnum;
use ndarray::{Array1, Array2, ArrayD, Axis, IxDyn, concatenate};
use ndarray_npy::read_npy;
use std::path::Path;
use tfe::mpc::Protocol;
use tfe::serve::{AggregateOp, Aggregation};

const CLASSES: usize = 10;
const STEPS: usize = 100;
const LEARNING_RATE: f64 = 1.0;
/// Every gradient entry is at most max |pixel| = 1 and the loss stays below 8: a public
/// bound that keeps the secure sum in the 4-byte ring.
const CLIP: f32 = 8.0;

/// One data owner's rows.
struct Rows {
    x: Array2<f64>,
    y: Array1<i64>,
}

/// Softmax regression: logits = x·w + b.
struct Model {
    w: Array2<f64>,
    b: Array1<f64>,
}

fn load(dir: &Path, name: &str) -> Result<Rows> {
    let x: Array2<f32> = read_npy(dir.join(format!("{name}_x.npy")))?;
    Ok(Rows {
        x: x.mapv(f64::from),
        y: read_npy(dir.join(format!("{name}_y.npy")))?,
    })
}

impl Model {
    fn new(features: usize) -> Model {
        Model {
            w: Array2::zeros((features, CLASSES)),
            b: Array1::zeros(CLASSES),
        }
    }

    fn probabilities(&self, x: &Array2<f64>) -> Array2<f64> {
        let mut p = x.dot(&self.w) + &self.b;
        for mut row in p.rows_mut() {
            let max = row.fold(f64::MIN, |m, &v| m.max(v));
            row.mapv_inplace(|v| (v - max).exp());
            let sum = row.sum();
            row /= sum;
        }
        p
    }

    /// A data owner's step: the mean cross-entropy gradient on its rows, flattened (w, then
    /// b), with the mean loss appended.
    fn gradient(&self, rows: &Rows) -> Vec<f64> {
        let n = rows.x.nrows() as f64;
        let mut d = self.probabilities(&rows.x);
        let mut loss = 0.0;
        for (mut row, &label) in d.rows_mut().into_iter().zip(&rows.y) {
            loss -= row[label as usize].max(1e-12).ln();
            row[label as usize] -= 1.0;
        }
        let gw = rows.x.t().dot(&d) / n;
        let gb = d.sum_axis(Axis(0)) / n;
        gw.iter().chain(&gb).copied().chain([loss / n]).collect()
    }

    /// The model owner's update from a mean gradient; returns the loss that came with it.
    fn update(&mut self, mean: &[f64]) -> f64 {
        let (gw, rest) = mean.split_at(self.w.len());
        for (w, g) in self.w.iter_mut().zip(gw) {
            *w -= LEARNING_RATE * g;
        }
        for (b, g) in self.b.iter_mut().zip(rest) {
            *b -= LEARNING_RATE * g;
        }
        rest[CLASSES]
    }

    fn accuracy(&self, rows: &Rows) -> f64 {
        let p = self.probabilities(&rows.x);
        let right = p
            .rows()
            .into_iter()
            .zip(&rows.y)
            .filter(|(row, label)| {
                let best = (0..CLASSES).fold(0, |b, c| if row[c] > row[b] { c } else { b });
                best as i64 == **label
            })
            .count();
        right as f64 / rows.y.len() as f64
    }
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let protocol = match args.as_slice() {
        [] => Protocol::default(),
        [flag, name] if flag == "--protocol" => Protocol::from_str(name, true).map_err(|_| {
            anyhow::anyhow!("unknown protocol {name:?}: give --protocol aby3 or --protocol pond")
        })?,
        _ => bail!("usage: cargo run --release --example federated [-- --protocol aby3|pond]"),
    };
    run(protocol)
}

/// Trains for `STEPS` steps with the secure mean under `protocol`, then checks the model
/// against the same steps on the pooled data.
fn run(protocol: Protocol) -> Result<()> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/digits");
    let owners = (0..3)
        .map(|k| load(&dir, &format!("owner{k}")))
        .collect::<Result<Vec<_>>>()?;
    let test = load(&dir, "test")?;
    let features = test.x.ncols();
    // Public: how many rows each owner has, the weights of the mean.
    let secure_mean = Aggregation {
        weights: Some(owners.iter().map(|o| o.y.len() as f64).collect()),
        min_inputs: owners.len(),
        clip: Some(CLIP),
        protocol,
        ..Aggregation::new(AggregateOp::Mean)
    };

    let mut model = Model::new(features);
    let mut bytes = 0;
    for step in 1..=STEPS {
        // The model owner sends `model` to the data owners; each shares its gradient.
        let gradients: Vec<ArrayD<f32>> = owners
            .iter()
            .map(|rows| {
                let g = model.gradient(rows);
                ArrayD::from_shape_vec(IxDyn(&[g.len()]), g.iter().map(|&v| v as f32).collect())
            })
            .collect::<Result<_, _>>()?;
        let mean = secure_mean.run(&gradients)?;
        bytes += mean.traffic.bytes_sent;
        let mean: Vec<f64> = mean.values.iter().map(|&v| v as f64).collect();
        let loss = model.update(&mean);
        println!("step {step:3}: loss {loss:.4}");
    }

    let pooled = Rows {
        x: concatenate(
            Axis(0),
            &owners.iter().map(|o| o.x.view()).collect::<Vec<_>>(),
        )?,
        y: concatenate(
            Axis(0),
            &owners.iter().map(|o| o.y.view()).collect::<Vec<_>>(),
        )?,
    };
    let mut reference = Model::new(features);
    for _ in 0..STEPS {
        let g = reference.gradient(&pooled);
        reference.update(&g);
    }
    let (federated, pooled) = (model.accuracy(&test), reference.accuracy(&test));
    let drift = (model.w.iter().zip(&reference.w))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f64::max);
    println!(
        "test accuracy after {STEPS} steps: federated ({}) {:.2}%, pooled {:.2}%; weights differ by at most {drift:.1e} ({} bytes sent in all, {} per step)",
        protocol.name(),
        100.0 * federated,
        100.0 * pooled,
        bytes,
        bytes / STEPS as u64
    );
    ensure!(
        (federated - pooled).abs() <= 0.01,
        "federated training is more than one point from pooled training"
    );
    Ok(())
}

#[test]
fn runs_under_aby3() {
    run(Protocol::Aby3).unwrap()
}

#[test]
fn runs_under_pond() {
    run(Protocol::Pond).unwrap()
}
