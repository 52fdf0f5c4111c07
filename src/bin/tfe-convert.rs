//! tfe-convert: lowers an ONNX model to a plan for private inference, or reports operator
//! coverage (--check).

use anyhow::Result;
use clap::Parser;
use std::path::Path;
use std::path::PathBuf;
use tfe::calibrate::{Calibration, limit};
use tfe::cli;
use tfe::exec::{Estimate, estimate, human_bytes};
use tfe::import::{BatchMode, BatchPolicy, GraphNames};
use tfe::lower::{GeluMethod, Options, SigmoidMethod, check, convert};
use tfe::mpc::Protocol;
use tfe::plan::{MAGIC, Plan};
use tfe::serve::deal;
use tfe::tensor::FixedPoint;

#[derive(Clone, Copy, clap::ValueEnum)]
enum SigmoidArg {
    /// polynomials of the input clamped to [-10, 10], split at ±2: error within 7e-5
    /// (SiLU 4.6e-4), 15 rounds; Sigmoid followed by a Mul by its input becomes one SiLU
    Polynomial,
    /// 1/(1 + exp(-|x|)) reflected: error within 2e-5, 49 rounds
    Exact,
    /// linear interpolation on knots every 0.5: error within 3e-3, 11 rounds
    Piecewise,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum GeluArg {
    /// one piecewise polynomial (PUMA's design): error within 1.3e-4, 17 rounds
    Piecewise,
    /// x (1 + erf(x/√2)) / 2 with the accurate erf: error within 2e-5, about 80 rounds and
    /// 4.5 times the bytes
    Erf,
}

#[derive(Parser)]
#[command(
    name = "tfe-convert",
    version,
    about = "Convert an ONNX model into a plan for three-party private inference",
    long_about = "Reads a trained ONNX model, checks every operator, lowers each one to its secure \
equivalent and writes a versioned plan file that tfe-predict runs.\n\n\
Exit status: 0 on success (with --check: every operator is supported), 1 when the model cannot be \
converted (every unsupported operator is listed at once), 2 for command-line mistakes.",
    after_help = "Examples:\n  tfe-convert model.onnx -o model.plan\n  tfe-convert model.onnx --share -o model.plan\n  tfe-convert model.onnx --check --json\n  tfe-convert model.onnx --check --batch 64\n  tfe-convert model.onnx --calibrate samples.npy"
)]
struct Args {
    /// The model to convert: ONNX, or a TensorFlow frozen graph (.pb).
    model: PathBuf,
    /// Where to write the plan [default: the model's path with extension .plan].
    #[arg(short, long, value_name = "PLAN")]
    output: Option<PathBuf>,
    /// Only report operator coverage: one line per node (lowered, folded or unsupported),
    /// then the estimated online cost of one inference per node.
    #[arg(long)]
    check: bool,
    /// Batch size for the cost estimate (bytes grow with it; rounds do not).
    #[arg(long, value_name = "N", default_value_t = 1,
          value_parser = clap::value_parser!(u64).range(1..=1 << 20))]
    batch: u64,
    /// The protocol whose cost the estimate gives, and that --share deals for: aby3 (three
    /// computing parties) or pond (two servers and a crypto producer). The plan is the
    /// same for both.
    #[arg(long, value_enum, default_value = "aby3")]
    protocol: Protocol,
    /// Print machine-readable JSON instead of text.
    #[arg(long)]
    json: bool,
    /// Fractional bits of the fixed-point encoding (values must stay below 2^(62-2f)).
    #[arg(long, value_name = "N", default_value_t = FixedPoint::DEFAULT_FRAC_BITS,
          value_parser = clap::value_parser!(u32).range(1..=FixedPoint::MAX_FRAC_BITS as i64))]
    frac_bits: u32,
    /// Keep every input dimension as the model declares it, instead of making axis 0 a
    /// symbolic batch; the plan then accepts exactly those shapes.
    #[arg(long)]
    fixed_shapes: bool,
    /// How Sigmoid is approximated (see docs/APPROXIMATIONS.md).
    #[arg(long, value_enum, default_value = "polynomial")]
    sigmoid: SigmoidArg,
    /// How Gelu is approximated (see docs/APPROXIMATIONS.md).
    #[arg(long, value_enum, default_value = "piecewise")]
    gelu: GeluArg,
    /// Write the files of a networked deployment instead of the plan: one per compute party
    /// (MODEL.party0.plan ...: its two share components of every secret weight, from the OS
    /// CSPRNG) and MODEL.client.plan (the public plan, no weights). MODEL may also be a plan
    /// already written by tfe-convert.
    #[arg(long, conflicts_with = "check")]
    share: bool,
    /// Run the float interpreter on sample inputs (a .npy per graph input, the samples along
    /// the batch axis) and report per node the largest magnitude against the fixed-point
    /// range, with the --frac-bits to use. Writes no plan; exits 1 when a node would
    /// overflow at --frac-bits.
    #[arg(long, value_name = "SAMPLES.npy", conflicts_with_all = ["check", "share"])]
    calibrate: Vec<PathBuf>,
    /// TensorFlow frozen graphs: the input tensors (default: every Placeholder).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    inputs: Vec<String>,
    /// TensorFlow frozen graphs: the output tensors (default: the nodes nothing reads).
    #[arg(long, value_delimiter = ',', value_name = "NAMES")]
    outputs: Vec<String>,
}

fn main() {
    let args = Args::parse();
    cli::run(|| {
        let options = Options {
            fixed_point: FixedPoint::new(args.frac_bits).map_err(anyhow::Error::msg)?,
            batch: if args.fixed_shapes {
                BatchPolicy::AsDeclared
            } else {
                BatchPolicy::Symbolic
            },
            graph_names: GraphNames {
                inputs: args.inputs.clone(),
                outputs: args.outputs.clone(),
            },
            sigmoid: match args.sigmoid {
                SigmoidArg::Polynomial => SigmoidMethod::Polynomial,
                SigmoidArg::Exact => SigmoidMethod::Exact,
                SigmoidArg::Piecewise => SigmoidMethod::Piecewise,
            },
            gelu: match args.gelu {
                GeluArg::Piecewise => GeluMethod::Piecewise,
                GeluArg::Erf => GeluMethod::Erf,
            },
        };
        if args.check {
            run_check(&args, options)
        } else if !args.calibrate.is_empty() {
            run_calibrate(&args, options)
        } else {
            run_convert(&args, options)
        }
    })
}

fn run_check(args: &Args, options: Options) -> Result<()> {
    let (coverage, plan) = check(&args.model, options)?;
    let estimate = plan
        .map(|plan| estimate(&plan, args.batch as usize, args.protocol))
        .transpose()?;
    if args.json {
        let mut report = coverage.json();
        report["estimate"] = estimate.as_ref().map(Estimate::json).into();
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", coverage.text());
        if let Some(estimate) = &estimate {
            print!("\n{}", estimate.text());
        }
    }
    if !coverage.is_supported() {
        std::process::exit(1);
    }
    Ok(())
}

/// Converts in memory, runs the samples and reports; refuses (exit 1, naming the nodes)
/// when a value leaves the range at the chosen fractional bits.
fn run_calibrate(args: &Args, options: Options) -> Result<()> {
    let plan = convert(&args.model, options)?.plan;
    let samples = args
        .calibrate
        .iter()
        .map(|p| cli::read_npy(p))
        .collect::<Result<Vec<_>>>()?;
    let calibration = Calibration::run(&plan, &samples)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&calibration.json())?);
    } else {
        print!("{}", calibration.text());
    }
    let over = calibration.overflowing();
    if let Some(first) = over.first() {
        let fix = match calibration.recommended() {
            Some(f) => format!("convert with --frac-bits {f}"),
            None => "no number of fractional bits holds it: scale the inputs or weights".into(),
        };
        anyhow::bail!(
            "{} node(s) leave the fixed-point range on these samples, first {} ({} reaches {:.4e}, the limit at {} fractional bits is {:.4e}); mpc would give wrong answers: {fix}",
            over.len(),
            first.node,
            first.ops.join("+"),
            first.max_abs,
            calibration.frac_bits,
            limit(calibration.frac_bits)
        );
    }
    Ok(())
}

/// Whether `path` starts like a plan file (and so is shared rather than converted).
fn is_plan(path: &Path) -> bool {
    use std::io::Read;
    let mut magic = [0; 8];
    std::fs::File::open(path)
        .and_then(|mut f| f.read_exact(&mut magic))
        .is_ok_and(|()| &magic == MAGIC)
}

/// Deals `plan` into one file per compute party and one for the client, next to `out`, and
/// says what was written.
fn write_shares(plan: &Plan, out: &Path, protocol: Protocol) -> Result<String> {
    let stem = out.with_extension("");
    let mut names = vec![];
    for file in deal(plan, protocol)? {
        let path = stem.with_extension(format!("{}.plan", file.holder.name()));
        file.write(&path)?;
        names.push(path.display().to_string());
    }
    let held = match protocol {
        Protocol::Aby3 => "one per compute party: its two share components of every secret weight",
        Protocol::Pond => {
            "for Pond's server 0, server 1 (each its additive share of every secret weight) and crypto producer (no shares)"
        }
    };
    Ok(format!(
        "{} ({held}) and {} (the public plan, no weights)",
        names[..3].join(", "),
        names[3]
    ))
}

fn run_convert(args: &Args, options: Options) -> Result<()> {
    let out = args
        .output
        .clone()
        .unwrap_or_else(|| args.model.with_extension("plan"));
    if args.share && is_plan(&args.model) {
        println!(
            "wrote {}",
            write_shares(&Plan::read(&args.model)?, &out, args.protocol)?
        );
        return Ok(());
    }
    let converted = convert(&args.model, options)?;
    let written = if args.share {
        write_shares(&converted.plan, &out, args.protocol)?
    } else {
        converted.plan.write(&out)?;
        out.display().to_string()
    };
    let plan = &converted.plan;
    let parameters: usize = plan.weights.iter().map(|w| w.data.len()).sum();
    let batch = match converted.batch {
        BatchMode::Symbolic => "any batch size".to_string(),
        BatchMode::AsDeclared => "the declared input shapes only".to_string(),
        BatchMode::Fixed(b) => format!(
            "batch size {b} only (the model hard-codes it; re-export with a dynamic batch axis to serve any batch)"
        ),
    };
    let cost = estimate(plan, args.batch as usize, args.protocol)?;
    if args.json {
        let summary = serde_json::json!({
            "estimate": cost.json(),
            "plan": written,
            "steps": plan.steps.len(),
            "weights": plan.weights.len(),
            "parameters": parameters,
            "frac_bits": plan.fixed_point.frac_bits,
            "batch": match converted.batch { BatchMode::Symbolic => serde_json::Value::Null, BatchMode::Fixed(b) => b.into(), BatchMode::AsDeclared => "as declared".into() },
            "coverage": converted.coverage.json(),
        });
        println!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        if converted.batch != BatchMode::Symbolic && !args.fixed_shapes {
            eprintln!("warning: the plan serves {batch}");
        }
        println!(
            "wrote {written}: {} steps, {} weights ({parameters} parameters, secret-shared at run time), Z_2^64 with {} fractional bits, {batch}",
            plan.steps.len(),
            plan.weights.len(),
            plan.fixed_point.frac_bits
        );
        let total = cost.total();
        println!(
            "estimated online cost at batch {}: {} rounds, {} sent (tfe-convert --check itemises it)",
            args.batch,
            total.rounds,
            human_bytes(total.bytes_sent)
        );
    }
    Ok(())
}
