//! TF Encrypted's secure-aggregation example: five inputters each secret-share a private
//! vector, the three parties add the shares, and only the result receiver (this caller)
//! learns the average. No party ever holds more than a masked piece of any vector.
//!
//!     cargo run --example average

use anyhow::{Result, ensure};
use ndarray::{ArrayD, IxDyn};
use tfe::serve::{AggregateOp, Aggregation};

fn main() -> Result<()> {
    let vectors: Vec<ArrayD<f32>> = (0..5)
        .map(|k| ArrayD::from_shape_fn(IxDyn(&[10]), |i| (k * 10 + i[0]) as f32 * 0.25 - 3.0))
        .collect();
    let average = Aggregation {
        min_inputs: 5,
        ..Aggregation::new(AggregateOp::Mean)
    }
    .run(&vectors)?;

    let plain = vectors
        .iter()
        .fold(ArrayD::<f32>::zeros(IxDyn(&[10])), |s, v| s + v)
        / 5.0;
    let err = (&average.values - &plain)
        .iter()
        .fold(0f32, |m, d| m.max(d.abs()));
    println!(
        "average of {} inputters: {:.4}",
        average.included, average.values
    );
    println!(
        "{} bytes sent in all ({}-bit ring), {} round; max |error| {err:.1e}",
        average.traffic.bytes_sent,
        average.ring.bits(),
        average.traffic.rounds
    );
    ensure!(err < 2e-5, "the secure average is off by {err}");
    Ok(())
}

#[test]
fn runs() {
    main().unwrap()
}
