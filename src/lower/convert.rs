//! The whole conversion: read, infer shapes, lower; and the coverage check.

use super::{Coverage, Options, lower_graph, registry_coverage};
use crate::import::{BatchMode, analyse, read_model};
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
    let graph =
        analyse(model, options.batch).map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))?;
    let (plan, coverage) = lower_graph(&graph, options, true);
    match plan {
        Some(plan) => Ok(Converted {
            plan,
            coverage,
            batch: graph.batch,
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
    match analyse(model, options.batch) {
        Ok(graph) => {
            let (plan, coverage) = lower_graph(&graph, options, true);
            Ok((coverage, plan))
        }
        Err(e) if registry.is_supported() => {
            let mut coverage = registry;
            coverage.graph_error = Some(format!("{e:#}"));
            Ok((coverage, None))
        }
        Err(_) => Ok((registry, None)),
    }
}
