//! The whole conversion: read, infer shapes, lower; and the coverage check.

use super::scan;
use super::{Coverage, Options, lower_graph, registry_coverage};
use crate::import::{BatchMode, BatchPolicy, Graph, Model, analyse, read_model};
use crate::plan::Plan;
use anyhow::{Result, bail};
use std::path::Path;

pub struct Converted {
    pub plan: Plan,
    pub coverage: Coverage,
    pub batch: BatchMode,
}

pub fn convert(path: &Path, options: Options) -> Result<Converted> {
    let model = read_model(path, &options.graph_names)?;
    let registry = registry_coverage(&model);
    if !registry.is_supported() {
        bail!(
            "{} cannot be converted:\n{}",
            path.display(),
            registry.problems()
        );
    }
    let (batch, plan, coverage) = lower_model(path, model, &options)
        .map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))?;
    match plan {
        Some(plan) => Ok(Converted {
            plan,
            coverage,
            batch,
        }),
        None => bail!(
            "{} cannot be converted:\n{}",
            path.display(),
            coverage.problems()
        ),
    }
}

/// Per-node coverage, and the plan when every node lowered (for its cost estimate); never
/// fails on an unsupported model, only on an unreadable file. Shape inference is tried even
/// when some ops have no lowering, so that every node gets its most precise status; when it
/// fails, the registry alone decides.
pub fn check(path: &Path, options: Options) -> Result<(Coverage, Option<Plan>)> {
    let model = read_model(path, &options.graph_names)?;
    let registry = registry_coverage(&model);
    match lower_model(path, model, &options) {
        Ok((_, plan, coverage)) => Ok((coverage, plan)),
        Err(e) if registry.is_supported() => {
            let mut coverage = registry;
            coverage.graph_error = Some(format!("{e:#}"));
            Ok((coverage, None))
        }
        Err(_) => Ok((registry, None)),
    }
}

/// Shape inference and lowering. When a free batch fails because a constant is tied to the
/// exported batch size (only broadcasting shows it), the model is lowered again at its
/// declared shapes, as `--fixed-shapes` would; if that fails too, the first failure stands.
fn lower_model(
    path: &Path,
    model: Model,
    options: &Options,
) -> Result<(BatchMode, Option<Plan>, Coverage)> {
    let graph = analysed(model, options.batch)?;
    let (plan, coverage) = lower_graph(&graph, options.clone(), true);
    if plan.is_some() || !coverage.tied_to_batch || options.batch != BatchPolicy::Symbolic {
        return Ok((graph.batch, plan, coverage));
    }
    let declared = Options {
        batch: BatchPolicy::AsDeclared,
        ..options.clone()
    };
    let retried = read_model(path, &declared.graph_names)
        .and_then(|model| analysed(model, declared.batch))
        .map(|graph| (graph.batch, lower_graph(&graph, declared, true)));
    match retried {
        Ok((batch, (Some(plan), coverage))) => Ok((batch, Some(plan), coverage)),
        _ => Ok((graph.batch, plan, coverage)),
    }
}

/// Shape inference, then again with the Scans whose iterations are independent replaced by
/// their bodies run over all iterations (`scan.rs`).
fn analysed(model: Model, policy: BatchPolicy) -> Result<Graph> {
    scan::check_opset(&model)?;
    scan::batched_scans(analyse(model, policy)?, policy)
}
