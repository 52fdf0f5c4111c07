//! The plan file: a binary container with a JSON graph section and a raw weights section,
//! each followed by its SHA-256.
//!
//! ```text
//! magic "TFEPLAN\0" | format version: u32 LE
//! graph length: u64 LE | graph (JSON, the `Plan` without weight data) | SHA-256(graph)
//! weights length: u64 LE | weights (f32 LE, in `Plan::weights` order) | SHA-256(weights)
//! ```
//! The graph section is JSON so that a plan can be inspected with standard tools; weights are
//! binary because they are most of the bytes.

use super::{Plan, Weight};
use ndarray::{ArrayD, IxDyn};
use sha2::{Digest, Sha256};
use std::path::Path;

pub const MAGIC: &[u8; 8] = b"TFEPLAN\0";
pub const FORMAT_VERSION: u32 = 1;
const DIGEST_LEN: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum PlanFileError {
    #[error("cannot read plan file {path}: {reason}")]
    Read {
        path: String,
        reason: std::io::Error,
    },
    #[error("cannot write plan file {path}: {reason}")]
    Write {
        path: String,
        reason: std::io::Error,
    },
    #[error(
        "{path} is not a tfe plan (it does not start with the plan magic bytes); give the .plan file written by tfe-convert"
    )]
    NotAPlan { path: String },
    #[error(
        "{path} is a version {found} plan, this tfe reads version {FORMAT_VERSION}; convert the model again with this tfe-convert"
    )]
    Version { path: String, found: u32 },
    #[error("{path} is truncated or damaged ({what}); convert the model again with tfe-convert")]
    Damaged { path: String, what: String },
    #[error(
        "{path}: the {section} section fails its checksum, so the file is damaged; convert the model again with tfe-convert"
    )]
    Checksum { path: String, section: &'static str },
}

impl Plan {
    pub fn to_bytes(&self) -> Vec<u8> {
        let graph = serde_json::to_vec(self).expect("plans always serialise");
        let weights: Vec<u8> = self
            .weights
            .iter()
            .flat_map(|w| w.data.iter().flat_map(|v| v.to_le_bytes()))
            .collect();
        let mut out = Vec::with_capacity(graph.len() + weights.len() + 100);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        for section in [&graph, &weights] {
            out.extend_from_slice(&(section.len() as u64).to_le_bytes());
            out.extend_from_slice(section);
            out.extend_from_slice(&Sha256::digest(section));
        }
        out
    }

    pub fn write(&self, path: &Path) -> Result<(), PlanFileError> {
        std::fs::write(path, self.to_bytes()).map_err(|reason| PlanFileError::Write {
            path: path.display().to_string(),
            reason,
        })
    }

    pub fn read(path: &Path) -> Result<Plan, PlanFileError> {
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|reason| PlanFileError::Read {
            path: name.clone(),
            reason,
        })?;
        Plan::from_bytes(&bytes, &name)
    }

    /// Parses a plan; `name` is used in error messages.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Plan, PlanFileError> {
        let damaged = |what: &str| PlanFileError::Damaged {
            path: name.to_string(),
            what: what.to_string(),
        };
        let mut reader = Reader { bytes, at: 0 };
        if reader.take(MAGIC.len()).ok() != Some(MAGIC.as_slice()) {
            return Err(PlanFileError::NotAPlan {
                path: name.to_string(),
            });
        }
        let version = u32::from_le_bytes(
            reader
                .take(4)
                .map_err(|_| damaged("no version"))?
                .try_into()
                .unwrap(),
        );
        if version != FORMAT_VERSION {
            return Err(PlanFileError::Version {
                path: name.to_string(),
                found: version,
            });
        }
        let graph = reader.section(name, "graph")?;
        let weights = reader.section(name, "weights")?;
        if reader.at != bytes.len() {
            return Err(damaged("unexpected bytes after the weights section"));
        }
        let mut plan: Plan =
            serde_json::from_slice(graph).map_err(|e| damaged(&format!("graph section: {e}")))?;
        let mut floats = weights
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()));
        let mut used = 0usize;
        let shapes: Vec<Option<Vec<usize>>> = plan
            .weights
            .iter()
            .map(|w| {
                plan.values
                    .get(w.value.index())
                    .and_then(|v| v.shape.fixed())
            })
            .collect();
        for (w, shape) in plan.weights.iter_mut().zip(shapes) {
            let shape = shape.ok_or_else(|| damaged("a weight without a fixed shape"))?;
            let len: usize = shape.iter().product();
            let data: Vec<f32> = floats.by_ref().take(len).collect();
            if data.len() != len {
                return Err(damaged("weights section shorter than the graph says"));
            }
            used += len;
            *w = Weight {
                data: ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap(),
                ..w.clone()
            };
        }
        if used * 4 != weights.len() {
            return Err(damaged("weights section longer than the graph says"));
        }
        plan.validate().map_err(|e| damaged(&format!("{e:#}")))?;
        Ok(plan)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], ()> {
        let end = self
            .at
            .checked_add(n)
            .filter(|&e| e <= self.bytes.len())
            .ok_or(())?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn section(&mut self, name: &str, section: &'static str) -> Result<&'a [u8], PlanFileError> {
        let damaged = || PlanFileError::Damaged {
            path: name.to_string(),
            what: format!("{section} section cut short"),
        };
        let len = u64::from_le_bytes(self.take(8).map_err(|_| damaged())?.try_into().unwrap());
        let body = self
            .take(usize::try_from(len).map_err(|_| damaged())?)
            .map_err(|_| damaged())?;
        let digest = self.take(DIGEST_LEN).map_err(|_| damaged())?;
        if Sha256::digest(body).as_slice() != digest {
            return Err(PlanFileError::Checksum {
                path: name.to_string(),
                section,
            });
        }
        Ok(body)
    }
}
