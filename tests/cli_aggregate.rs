//! tfe-aggregate run as the user runs it: the mean and the weighted sum against the
//! plaintext ones, the --json report, and one refusal (exit 1, the file named) per rule.

mod common;

use common::tool::{Run, expect_error, expect_ok, run};
use common::{random, read_npy, temp_dir};
use ndarray::ArrayD;
use ndarray_npy::WriteNpyExt;
use std::path::{Path, PathBuf};

const AGGREGATE: &str = env!("CARGO_BIN_EXE_tfe-aggregate");

fn aggregate(args: &[&str]) -> Run {
    run(AGGREGATE, args)
}

/// Writes `arrays` as in0.npy, in1.npy, ... in a fresh directory; returns their paths.
fn write_inputs(test: &str, arrays: &[ArrayD<f32>]) -> (PathBuf, Vec<String>) {
    let dir = temp_dir(test);
    let paths = arrays
        .iter()
        .enumerate()
        .map(|(k, a)| {
            let path = dir.join(format!("in{k}.npy"));
            a.write_npy(std::fs::File::create(&path).unwrap()).unwrap();
            path.display().to_string()
        })
        .collect();
    (dir, paths)
}

fn with<'a>(head: &[&'a str], paths: &'a [String], tail: &[&'a str]) -> Vec<&'a str> {
    let mut args = head.to_vec();
    args.extend(paths.iter().map(String::as_str));
    args.extend(tail);
    args
}

fn arrays(n: usize, shape: &[usize], scale: f32) -> Vec<ArrayD<f32>> {
    (0..n).map(|k| random(shape, 7 + k as u64, scale)).collect()
}

#[test]
fn mean_to_a_file_matches_the_plaintext_mean() {
    let xs = arrays(4, &[2, 9], 3.0);
    let (dir, paths) = write_inputs("agg_mean", &xs);
    let out = dir.join("mean.npy");
    let out_s = out.display().to_string();
    let r = aggregate(&with(&["mean"], &paths, &["-o", &out_s]));
    expect_ok(&r);
    assert!(r.stdout.is_empty(), "{r}");
    assert!(
        r.stderr.contains("4 inputs x 18 values in a 32-bit ring"),
        "{r}"
    );
    let got = read_npy(&out);
    for (i, g) in got.iter().enumerate() {
        let want: f64 = xs
            .iter()
            .map(|x| x.iter().nth(i).copied().unwrap() as f64)
            .sum::<f64>()
            / 4.0;
        assert!(
            (*g as f64 - want).abs() < 1.6e-5,
            "element {i}: {g} vs {want}"
        );
    }
    assert_eq!(got.shape(), &[2, 9]);
}

#[test]
fn weighted_sum_json_reports_the_figures() {
    let xs = arrays(3, &[5], 2.0);
    let (_dir, paths) = write_inputs("agg_json", &xs);
    let r = aggregate(&with(
        &["sum"],
        &paths,
        &[
            "--weights",
            "1,2,3",
            "--min-inputs",
            "3",
            "--clip",
            "2",
            "--json",
        ],
    ));
    expect_ok(&r);
    let report: serde_json::Value = serde_json::from_str(r.stdout.trim()).expect("one JSON object");
    assert_eq!(report["op"], "sum");
    assert_eq!(report["inputs"], 3);
    assert_eq!(report["values"], 5);
    assert_eq!(report["rounds"], 1);
    assert!(report["seconds"].as_f64().unwrap() > 0.0);
    // 5 values in 3 words and a key per inputter, bitmaps (6 words), terms (3 x 4 words),
    // the parties' key agreement (6 words).
    assert_eq!(report["bytes_sent"], 8 * (3 * (3 + 2) + 6 + 12 + 6));
    assert_eq!(report["protocol"], "aby3");
    // Printed without -o: the weighted sum, under either protocol.
    for protocol in ["aby3", "pond"] {
        let flags = ["--weights", "1,2,3", "--protocol", protocol];
        let r = aggregate(&with(&["sum"], &paths, &flags));
        expect_ok(&r);
        let printed = common::printed_numbers(r.stdout.split_once(':').unwrap().1);
        assert_eq!(printed.len(), 5, "{}", r.stdout);
        for (i, g) in printed.iter().enumerate() {
            let want: f64 = (0..3).map(|k| (k + 1) as f64 * xs[k][[i]] as f64).sum();
            assert!(
                (*g as f64 - want).abs() < 1e-4,
                "{protocol}, element {i}: {g} vs {want}"
            );
        }
        assert!(
            r.stderr
                .contains(&format!("mpc ({protocol}): sum of 3 inputs")),
            "{}",
            r.stderr
        );
    }
}

#[test]
fn refusals_exit_1_naming_the_rule_and_the_file() {
    let xs = arrays(3, &[4], 1.0);
    let (dir, paths) = write_inputs("agg_refuse", &xs);
    let write = |name: &str, a: ArrayD<f32>| -> String {
        let p: PathBuf = dir.join(name);
        a.write_npy(std::fs::File::create(&p).unwrap()).unwrap();
        p.display().to_string()
    };
    let r = aggregate(&with(&["mean"], &paths, &["--min-inputs", "4"]));
    expect_error(&r, 1, &["3 input(s) given, fewer than the minimum of 4"]);

    let wide = write("wide.npy", random(&[5], 1, 1.0));
    let r = aggregate(&["mean", &paths[0], &paths[1], &wide]);
    expect_error(
        &r,
        1,
        &["wide.npy", "has shape [5]", "the first input has shape [4]"],
    );

    let mut bad = xs[0].clone();
    bad[[2]] = f32::NAN;
    let nan = write("nan.npy", bad.clone());
    let r = aggregate(&["sum", &paths[0], &nan]);
    expect_error(&r, 1, &["nan.npy", "element 2 is NaN", "finite"]);
    bad[[2]] = f32::NEG_INFINITY;
    let inf = write("inf.npy", bad.clone());
    let r = aggregate(&["sum", &inf, &paths[0]]);
    expect_error(&r, 1, &["inf.npy", "element 2 is -inf"]);

    bad[[2]] = 1e14;
    let huge = write("huge.npy", bad);
    let r = aggregate(&["mean", &paths[0], &huge]);
    expect_error(
        &r,
        1,
        &[
            "overflow",
            "inputs x clip x 2^f",
            "2 x 100000000376832 x 2^16",
            "--clip",
        ],
    );
    let r = aggregate(&with(&["sum"], &paths, &["--clip", "1e14"]));
    expect_error(&r, 1, &["overflow", "3 x 100000000376832 x 2^16"]);

    let r = aggregate(&with(&["mean"], &paths, &["--weights", "1,2"]));
    expect_error(&r, 1, &["2 weight(s) given for 3 input(s)"]);
    let r = aggregate(&[
        "mean",
        &paths[0],
        Path::new("missing.npy").to_str().unwrap(),
    ]);
    expect_error(&r, 1, &["missing.npy"]);
    let r = aggregate(&["median", &paths[0]]);
    assert_eq!(r.code, 2, "{r}");
}
