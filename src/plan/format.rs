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
//!
//! A share file ([`SharedPlan`]) is what one role of a networked deployment holds: the same
//! sections, with the secret weights replaced by that role's shares, so that no compute
//! party ever holds the model in the clear:
//!
//! ```text
//! magic "TFESHARE" | format version: u32 LE
//! header length: u64 LE | header (JSON: holder, plan_sha256, dealing, protocol) | SHA-256(header)
//! graph length: u64 LE | graph (JSON, as in a plan) | SHA-256(graph)
//! public length: u64 LE | public weights (f32 LE, in order; secret ones left out) | SHA-256
//! shares length: u64 LE | shares (u64 LE) | SHA-256(shares)
//! ```
//! Under ABY3 the shares section of party i holds, per secret weight in plan order, the
//! fixed-point components x_i then x_(i+1 mod 3) of x = x_0 + x_1 + x_2; under Pond, a
//! server's one additive share; for the client and Pond's crypto producer it is empty. A
//! header without a protocol (files written before Pond) is ABY3's.

use super::{Plan, Source, Visibility, Weight};
use crate::mpc::Protocol;
use ndarray::{ArrayD, IxDyn};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::path::Path;

pub const MAGIC: &[u8; 8] = b"TFEPLAN\0";
pub const FORMAT_VERSION: u32 = 2;
pub const SHARE_MAGIC: &[u8; 8] = b"TFESHARE";
pub const SHARE_FORMAT_VERSION: u32 = 2;
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
        "{path} is a share file for the networked mode (give it to tfe-party --plan or tfe-predict --config); this command needs the plan written by tfe-convert without --share"
    )]
    ShareFile { path: String },
    #[error(
        "{path} is not a tfe share file; give the .partyN.plan or .client.plan file written by tfe-convert --share"
    )]
    NotAShare { path: String },
    #[error(
        "{path} is a version {found} share file, this tfe reads version {SHARE_FORMAT_VERSION}; share the model again with this tfe-convert"
    )]
    ShareVersion { path: String, found: u32 },
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

/// Magic, version, then each section as its length, its bytes and their SHA-256: the layout
/// of plan and share files alike.
fn container(magic: &[u8], version: u32, sections: &[&[u8]]) -> Vec<u8> {
    let size: usize = sections.iter().map(|s| s.len() + 40).sum();
    let mut out = Vec::with_capacity(magic.len() + 4 + size);
    out.extend_from_slice(magic);
    out.extend_from_slice(&version.to_le_bytes());
    for section in sections {
        out.extend_from_slice(&(section.len() as u64).to_le_bytes());
        out.extend_from_slice(section);
        out.extend_from_slice(&Sha256::digest(section));
    }
    out
}

/// The data of the weights `keep` selects, f32 little-endian in plan order.
fn weight_bytes(plan: &Plan, keep: impl Fn(&Weight) -> bool) -> Vec<u8> {
    plan.weights
        .iter()
        .filter(|w| keep(w))
        .flat_map(|w| w.data.iter().flat_map(|v| v.to_le_bytes()))
        .collect()
}

/// A file's bytes and its name for messages.
fn read_file(path: &Path) -> Result<(Vec<u8>, String), PlanFileError> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|reason| PlanFileError::Read {
        path: name.clone(),
        reason,
    })?;
    Ok((bytes, name))
}

impl Plan {
    pub fn to_bytes(&self) -> Vec<u8> {
        let graph = serde_json::to_vec(self).expect("plans always serialise");
        let weights = weight_bytes(self, |_| true);
        container(MAGIC, FORMAT_VERSION, &[&graph, &weights])
    }

    pub fn write(&self, path: &Path) -> Result<(), PlanFileError> {
        std::fs::write(path, self.to_bytes()).map_err(|reason| PlanFileError::Write {
            path: path.display().to_string(),
            reason,
        })
    }

    pub fn read(path: &Path) -> Result<Plan, PlanFileError> {
        let (bytes, name) = read_file(path)?;
        Plan::from_bytes(&bytes, &name)
    }

    /// Parses a plan; `name` is used in error messages.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Plan, PlanFileError> {
        let damaged = |what: &str| PlanFileError::Damaged {
            path: name.to_string(),
            what: what.to_string(),
        };
        let mut reader = Reader { bytes, at: 0 };
        let magic = reader.take(MAGIC.len()).ok();
        if magic == Some(SHARE_MAGIC.as_slice()) {
            return Err(PlanFileError::ShareFile {
                path: name.to_string(),
            });
        }
        if magic != Some(MAGIC.as_slice()) {
            return Err(PlanFileError::NotAPlan {
                path: name.to_string(),
            });
        }
        let version = reader.version(name)?;
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
        fill_weights(&mut plan, weights, |_| true, 0, name)?;
        Ok(plan)
    }
}

/// Most elements the weights a file does not store may have in total (a client's file
/// stands zeros in for every secret weight): 2^31, 8 GiB of f32, so that a damaged or
/// hostile shape is refused before anything is allocated.
pub const MAX_UNSTORED_ELEMENTS: usize = 1 << 31;

/// Elements of `shape`, or `None` when the product overflows.
fn elements(shape: &[usize]) -> Option<usize> {
    shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// Fills the data of the weights `stored` selects from `floats` (f32 LE, in order) and the
/// others with zeros, then validates the plan. Every size is checked against the section
/// (and the others against `unstored_limit` elements) before anything is allocated.
fn fill_weights(
    plan: &mut Plan,
    weights: &[u8],
    stored: impl Fn(&Weight) -> bool,
    unstored_limit: usize,
    name: &str,
) -> Result<(), PlanFileError> {
    let damaged = |what: &str| PlanFileError::Damaged {
        path: name.to_string(),
        what: what.to_string(),
    };
    let mut shapes = Vec::with_capacity(plan.weights.len());
    let (mut in_section, mut unstored) = (0usize, 0usize);
    for w in &plan.weights {
        let shape = plan
            .values
            .get(w.value.index())
            .and_then(|v| v.shape.fixed())
            .ok_or_else(|| damaged("a weight without a fixed shape"))?;
        let len = elements(&shape).ok_or_else(|| damaged("a weight's size overflows"))?;
        let total = if stored(w) {
            &mut in_section
        } else {
            &mut unstored
        };
        *total = total
            .checked_add(len)
            .ok_or_else(|| damaged("the weights' sizes overflow"))?;
        shapes.push((shape, len));
    }
    if in_section.checked_mul(4) != Some(weights.len()) {
        return Err(damaged(&format!(
            "the graph describes {in_section} stored weight values, the weights section holds {} bytes",
            weights.len()
        )));
    }
    if unstored > unstored_limit {
        return Err(damaged(&format!(
            "the graph describes {unstored} values of weights not in the file, more than the {unstored_limit} it may"
        )));
    }
    let mut floats = weights
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()));
    for (w, (shape, len)) in plan.weights.iter_mut().zip(shapes) {
        if !stored(w) {
            w.data = ArrayD::zeros(IxDyn(&shape));
            continue;
        }
        let data: Vec<f32> = floats.by_ref().take(len).collect();
        w.data = ArrayD::from_shape_vec(IxDyn(&shape), data).unwrap();
    }
    plan.validate().map_err(|e| damaged(&format!("{e:#}")))
}

/// Who holds a share file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Holder {
    /// Compute party 0, 1 or 2.
    Party(u8),
    /// The input owner and result receiver: the public plan, no weights.
    Client,
}

impl Holder {
    pub const ALL: [Holder; 4] = [
        Holder::Party(0),
        Holder::Party(1),
        Holder::Party(2),
        Holder::Client,
    ];

    /// The name used in file names, the header and the configuration: `party0`, `client`.
    pub fn name(self) -> String {
        match self {
            Holder::Party(i) => format!("party{i}"),
            Holder::Client => "client".to_string(),
        }
    }

    fn parse(name: &str) -> Option<Holder> {
        Holder::ALL.into_iter().find(|h| h.name() == name)
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ShareHeader {
    holder: String,
    plan_sha256: String,
    dealing: String,
    #[serde(default = "aby3")]
    protocol: String,
}

fn aby3() -> String {
    Protocol::Aby3.name().into()
}

/// One role's file of a dealt plan (see the module docs for the layout).
#[derive(Clone, Debug)]
pub struct SharedPlan {
    pub holder: Holder,
    /// The public plan: graph and public weights. Secret weights hold zeros, standing in for
    /// data this file does not have; only [`SharedPlan::shares`] carries them.
    pub plan: Plan,
    /// SHA-256 of the graph and the public weights (lowercase hex): the plan all four files
    /// of a dealing describe.
    pub plan_sha256: String,
    /// A random id of the dealing (lowercase hex): shares of two dealings do not combine.
    pub dealing: String,
    /// The protocol the shares are for.
    pub protocol: Protocol,
    /// Per secret weight in plan order, the components this holder keeps
    /// ([`SharedPlan::components`] of them): under ABY3 x_i and x_(i+1 mod 3) for party i,
    /// under Pond a server's additive share. Empty for the client and Pond's producer.
    pub shares: Vec<Vec<ArrayD<u64>>>,
}

impl SharedPlan {
    /// The graph section and the public weights section of `plan`. The graph leaves out
    /// the source model's file name and SHA-256: the hash fingerprints the secret weights
    /// (anyone holding a candidate model could confirm it), and the name may say whose
    /// model it is. The header's hash of these sections ties the files of a dealing together.
    fn public_sections(plan: &Plan) -> (Vec<u8>, Vec<u8>) {
        let mut graph = serde_json::to_value(plan).expect("plans always serialise");
        graph["source"] = serde_json::to_value(Source::withheld()).expect("sources serialise");
        let graph = serde_json::to_vec(&graph).expect("plans always serialise");
        let public = weight_bytes(plan, |w| w.visibility == Visibility::Public);
        (graph, public)
    }

    /// How many components of each secret weight `holder`'s file keeps under `protocol`.
    pub fn components(holder: Holder, protocol: Protocol) -> usize {
        match (holder, protocol) {
            (Holder::Party(i), _) if !protocol.holds(usize::from(i)) => 0,
            (Holder::Party(_), Protocol::Aby3) => 2,
            (Holder::Party(_), Protocol::Pond) => 1,
            (Holder::Client, _) => 0,
        }
    }

    /// The hash that every file of a dealing of `plan` carries.
    pub fn plan_hash(plan: &Plan) -> String {
        let (graph, public) = Self::public_sections(plan);
        let mut h = Sha256::new();
        h.update(Sha256::digest(&graph));
        h.update(Sha256::digest(&public));
        hex(&h.finalize())
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        let header = serde_json::to_vec(&ShareHeader {
            holder: self.holder.name(),
            plan_sha256: self.plan_sha256.clone(),
            dealing: self.dealing.clone(),
            protocol: self.protocol.name().into(),
        })
        .expect("headers always serialise");
        let (graph, public) = Self::public_sections(&self.plan);
        let shares: Vec<u8> = self
            .shares
            .iter()
            .flatten()
            .flat_map(|c| c.iter().flat_map(|v| v.to_le_bytes()))
            .collect();
        container(
            SHARE_MAGIC,
            SHARE_FORMAT_VERSION,
            &[&header, &graph, &public, &shares],
        )
    }

    /// Writes the file readable by its owner only: it holds shares of secrets.
    pub fn write(&self, path: &Path) -> Result<(), PlanFileError> {
        crate::private_file::write(path, &self.to_bytes()).map_err(|reason| PlanFileError::Write {
            path: path.display().to_string(),
            reason,
        })
    }

    pub fn read(path: &Path) -> Result<SharedPlan, PlanFileError> {
        let (bytes, name) = read_file(path)?;
        SharedPlan::from_bytes(&bytes, &name)
    }

    /// Parses a share file; `name` is used in error messages.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<SharedPlan, PlanFileError> {
        let damaged = |what: String| PlanFileError::Damaged {
            path: name.to_string(),
            what,
        };
        let mut reader = Reader { bytes, at: 0 };
        if reader.take(SHARE_MAGIC.len()).ok() != Some(SHARE_MAGIC.as_slice()) {
            return Err(PlanFileError::NotAShare {
                path: name.to_string(),
            });
        }
        let version = reader.version(name)?;
        if version != SHARE_FORMAT_VERSION {
            return Err(PlanFileError::ShareVersion {
                path: name.to_string(),
                found: version,
            });
        }
        let header = reader.section(name, "header")?;
        let graph = reader.section(name, "graph")?;
        let public = reader.section(name, "public weights")?;
        let shares = reader.section(name, "shares")?;
        if reader.at != bytes.len() {
            return Err(damaged("unexpected bytes after the shares section".into()));
        }
        let header: ShareHeader =
            serde_json::from_slice(header).map_err(|e| damaged(format!("header section: {e}")))?;
        let holder = Holder::parse(&header.holder)
            .ok_or_else(|| damaged(format!("unknown holder {:?}", header.holder)))?;
        let protocol = [Protocol::Aby3, Protocol::Pond]
            .into_iter()
            .find(|p| p.name() == header.protocol)
            .ok_or_else(|| damaged(format!("unknown protocol {:?}", header.protocol)))?;
        let components = Self::components(holder, protocol);
        let mut plan: Plan =
            serde_json::from_slice(graph).map_err(|e| damaged(format!("graph section: {e}")))?;
        // A party's file holds its components (8 bytes each) of every secret value, a
        // client's (and Pond's producer's) none.
        let unstored_limit = match components {
            0 => MAX_UNSTORED_ELEMENTS,
            n => shares.len() / (8 * n),
        };
        fill_weights(
            &mut plan,
            public,
            |w| w.visibility == Visibility::Public,
            unstored_limit,
            name,
        )?;
        if Self::plan_hash(&plan) != header.plan_sha256 {
            return Err(damaged(
                "the plan does not match the hash in the header".into(),
            ));
        }
        let mut words = shares
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes(c.try_into().unwrap()));
        let mut kept = vec![];
        if components > 0 {
            for w in plan
                .weights
                .iter()
                .filter(|w| w.visibility == Visibility::Secret)
            {
                let mut component = || {
                    let data: Vec<u64> = words.by_ref().take(w.data.len()).collect();
                    ArrayD::from_shape_vec(w.data.raw_dim(), data)
                        .map_err(|_| damaged("shares section shorter than the graph says".into()))
                };
                kept.push(
                    (0..components)
                        .map(|_| component())
                        .collect::<Result<_, _>>()?,
                );
            }
        }
        if words.next().is_some() || shares.len() % 8 != 0 {
            return Err(damaged("shares section longer than the graph says".into()));
        }
        Ok(SharedPlan {
            holder,
            plan,
            plan_sha256: header.plan_sha256,
            dealing: header.dealing,
            protocol,
            shares: kept,
        })
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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

    fn version(&mut self, name: &str) -> Result<u32, PlanFileError> {
        let bytes = self.take(4).map_err(|_| PlanFileError::Damaged {
            path: name.to_string(),
            what: "no version".to_string(),
        })?;
        Ok(u32::from_le_bytes(bytes.try_into().unwrap()))
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
