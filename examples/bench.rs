//! Benchmark table: for each fixture model and batch size, private inference latency (min and
//! median of several runs), online bytes and rounds, one-time setup bytes, accuracy against
//! the plaintext model, and tract's plaintext latency measured in the same run.
//!
//!     cargo run --release --example bench [-- --runs 5 --batches 1,32 --models mlp,cnn]

use ndarray::{ArrayD, Axis};
use std::path::Path;
use std::time::{Duration, Instant};
use tfe::cli::human_bytes;
use tfe::exec::{Mode, predict};
use tfe::lower::{Options, convert};
use tract_onnx::prelude::*;

struct Args {
    runs: usize,
    batches: Vec<usize>,
    models: Vec<String>,
}

fn parse_args() -> Args {
    let mut args = Args {
        runs: 5,
        batches: vec![1, 32],
        models: ["mlp", "cnn_dynamic", "bn_depthwise", "mlp_a", "lenet"]
            .map(String::from)
            .to_vec(),
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    for pair in argv.chunks(2) {
        let value = pair.get(1).map(String::as_str).unwrap_or("");
        match pair[0].as_str() {
            "--runs" => args.runs = value.parse().expect("--runs takes a number"),
            "--batches" => {
                args.batches = value
                    .split(',')
                    .map(|b| b.parse().expect("--batches takes numbers"))
                    .collect()
            }
            "--models" => args.models = value.split(',').map(String::from).collect(),
            other => panic!("unknown option {other}; see the doc comment of examples/bench.rs"),
        }
    }
    args
}

/// `batch` rows taken cyclically from the fixture's batch-32 input.
fn input(dir: &Path, batch: usize) -> ArrayD<f32> {
    use ndarray_npy::ReadNpyExt;
    let x =
        ArrayD::<f32>::read_npy(std::fs::File::open(dir.join("input_b32.npy")).unwrap()).unwrap();
    let rows: Vec<_> = (0..batch)
        .map(|i| x.index_axis(Axis(0), i % x.shape()[0]).insert_axis(Axis(0)))
        .collect();
    ndarray::concatenate(Axis(0), &rows).unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn tract_runner(model: &Path, shape: &[usize]) -> std::sync::Arc<TypedRunnableModel> {
    let mut m = tract_onnx::onnx().model_for_path(model).unwrap();
    m.set_input_fact(0, InferenceFact::dt_shape(f32::datum_type(), shape))
        .unwrap();
    m.into_optimized().unwrap().into_runnable().unwrap()
}

fn main() {
    let args = parse_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    println!(
        "| model | batch | tfe mpc min | median | online sent | rounds | setup sent | tract plaintext | mpc / plaintext | max abs err | top-1 agree |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for name in &args.models {
        let dir = root.join(name);
        let model = dir.join("model.onnx");
        let plan = convert(&model, Options::default()).unwrap().plan;
        for &batch in &args.batches {
            let x = input(&dir, batch);
            let reference = tract_runner(&model, x.shape());
            let tv: TVec<TValue> = tvec![Tensor::from(x.clone()).into()];
            let expected = reference.run(tv.clone()).unwrap()[0]
                .to_plain_array_view::<f32>()
                .unwrap()
                .to_owned();
            let mut plain = vec![];
            for _ in 0..args.runs.max(20) {
                let t = Instant::now();
                reference.run(tv.clone()).unwrap();
                plain.push(t.elapsed());
            }
            let mut times = vec![];
            let mut last = None;
            for _ in 0..args.runs {
                let t = Instant::now();
                let p = predict(&plan, std::slice::from_ref(&x), Mode::Mpc).unwrap();
                times.push(t.elapsed());
                last = Some(p);
            }
            let p = last.unwrap();
            let got = &p.outputs[0];
            let err = got
                .iter()
                .zip(expected.iter())
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            let argmax = |a: &ArrayD<f32>| -> Vec<usize> {
                a.rows()
                    .into_iter()
                    .map(|r| {
                        r.iter()
                            .enumerate()
                            .fold(0, |b, (i, v)| if *v > r[b] { i } else { b })
                    })
                    .collect()
            };
            let agree = argmax(got)
                .iter()
                .zip(argmax(&expected))
                .filter(|(a, b)| **a == *b)
                .count();
            let (min, med, plain_med) =
                (*times.iter().min().unwrap(), median(times), median(plain));
            println!(
                "| {name} | {batch} | {:.2} ms | {:.2} ms | {} | {} | {} | {:.3} ms | {:.0}x | {err:.1e} | {agree}/{batch} |",
                min.as_secs_f64() * 1e3,
                med.as_secs_f64() * 1e3,
                human_bytes(p.traffic.online.bytes_sent),
                p.traffic.online.rounds,
                human_bytes(p.traffic.setup.bytes_sent),
                plain_med.as_secs_f64() * 1e3,
                med.as_secs_f64() / plain_med.as_secs_f64(),
            );
        }
    }
}
