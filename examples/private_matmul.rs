//! TF Encrypted's first example: a private 5x10 input times a private 10x10 variable, the
//! product revealed to one party only. The client secret-shares x, the model owner
//! secret-shares w, the three parties multiply shares, and only the client learns x·w.
//!
//!     cargo run --example private_matmul

use anyhow::{Result, ensure};
use ndarray::{ArrayD, IxDyn};
use tfe::mpc::Protocol;
use tfe::plan::{Dim, Op, PlanBuilder, Shape, Source, Visibility};
use tfe::serve::{Mode, predict};
use tfe::tensor::FixedPoint;

fn main() -> Result<()> {
    let x = ArrayD::from_shape_fn(IxDyn(&[5, 10]), |i| {
        (i[0] as f32 - 2.0) * 0.5 + i[1] as f32 * 0.1
    });
    let w = ArrayD::from_shape_fn(IxDyn(&[10, 10]), |i| {
        ((i[0] * 7 + i[1] * 3) % 11) as f32 * 0.2 - 1.0
    });

    let source = Source {
        file_name: "private_matmul".into(),
        sha256: String::new(),
    };
    let mut b = PlanBuilder::new(FixedPoint::default(), source);
    let input = b.input("x", Shape(vec![Dim::Fixed(5), Dim::Fixed(10)]));
    let variable = b.weight("w", w.clone(), Visibility::Secret);
    let product = b.step(
        "matmul",
        Op::MatMul,
        &[input, variable],
        "y",
        Shape(vec![Dim::Fixed(5), Dim::Fixed(10)]),
    );
    b.output(product);
    let result = predict(
        &b.build()?,
        std::slice::from_ref(&x),
        Mode::Mpc(Protocol::Aby3),
    )?;

    let y = &result.outputs[0];
    let plain = x
        .into_dimensionality::<ndarray::Ix2>()?
        .dot(&w.into_dimensionality::<ndarray::Ix2>()?);
    let err = y
        .iter()
        .zip(plain.iter())
        .map(|(a, b)| (a - b).abs())
        .fold(0f32, f32::max);
    println!(
        "x·w revealed to the client (shape {:?}):\n{y:.4}",
        y.shape()
    );
    println!(
        "{} bytes sent in {} rounds; max |error| against the plaintext product {err:.1e}",
        result.online.bytes_sent, result.online.rounds
    );
    ensure!(err < 1e-3, "the private product is off by {err}");
    Ok(())
}

#[test]
fn runs() {
    main().unwrap()
}
