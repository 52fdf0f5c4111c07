//! The networked mode's configuration: who listens where, which certificate each role must
//! present, and how long to wait. One file describes the whole run and every role loads the
//! same file; only the role a process runs as needs its private key.
//!
//! The format is documented in `docs/NETWORK.md`. Everything is checked on load, so a bad
//! file fails before any connection is made, with an error naming the field and the file.

use super::Role;
use anyhow::{Context, Result, anyhow, bail, ensure};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Used when the file gives no time-out.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// The file as written; turned into a [`Config`] by [`Config::load`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    timeouts: RawTimeouts,
    roles: RawRoles,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    connect_ms: Option<u64>,
    read_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoles {
    party0: Option<RawEndpoint>,
    party1: Option<RawEndpoint>,
    party2: Option<RawEndpoint>,
    client: Option<RawEndpoint>,
    model_owner: Option<RawEndpoint>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEndpoint {
    address: Option<String>,
    cert: PathBuf,
    key: Option<PathBuf>,
    ca: Option<PathBuf>,
}

/// How long to wait before declaring a peer lost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    /// Setting up the whole mesh, retries included.
    pub connect: Duration,
    /// Silence on a link (no message and no heartbeat) after which the peer counts as lost.
    pub read: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: DEFAULT_TIMEOUT,
            read: DEFAULT_TIMEOUT,
        }
    }
}

/// One role's entry, with its certificates already read and parsed.
#[derive(Clone, Debug)]
pub struct Endpoint {
    /// `host:port` this role listens on; compute parties always have one.
    pub address: Option<String>,
    /// The certificate this role must present: pinned, byte for byte.
    pub cert: CertificateDer<'static>,
    /// When set, the pinned certificate must also chain to this CA and be currently valid.
    pub ca: Option<CertificateDer<'static>>,
    key: Option<PathBuf>,
}

/// A validated configuration. Built only by [`Config::load`], so holding one means the file
/// was complete and every certificate parsed.
#[derive(Clone, Debug)]
pub struct Config {
    source: PathBuf,
    timeouts: Timeouts,
    roles: BTreeMap<Role, Endpoint>,
}

/// The role's name in the file (`roles.<name>`).
pub fn field_name(role: Role) -> &'static str {
    match role {
        Role::Party(0) => "party0",
        Role::Party(1) => "party1",
        Role::Party(2) => "party2",
        Role::Party(_) => "party?",
        Role::Client => "client",
        Role::ModelOwner => "model_owner",
        Role::Inputter(_) => "inputter",
    }
}

/// The role's DNS-style name in its certificate (and the TLS server name it is dialed by).
pub fn host_name(role: Role) -> String {
    format!("{}.tfe", field_name(role).replace('_', "-"))
}

impl Config {
    pub fn load(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the network config {}", path.display()))?;
        let raw: RawConfig = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a valid network config", path.display()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        Self::validate(raw, path, dir)
            .with_context(|| format!("invalid network config {}", path.display()))
    }

    fn validate(raw: RawConfig, source: &Path, dir: &Path) -> Result<Config> {
        let timeouts = Timeouts {
            connect: timeout(raw.timeouts.connect_ms, "timeouts.connect_ms")?,
            read: timeout(raw.timeouts.read_ms, "timeouts.read_ms")?,
        };
        let r = raw.roles;
        let entries = [
            (Role::Party(0), r.party0),
            (Role::Party(1), r.party1),
            (Role::Party(2), r.party2),
            (Role::Client, r.client),
            (Role::ModelOwner, r.model_owner),
        ];
        let mut roles = BTreeMap::new();
        for (role, entry) in entries {
            let field = format!("roles.{}", field_name(role));
            let Some(entry) = entry else {
                ensure!(
                    !matches!(role, Role::Party(_)),
                    "{field} is missing: the three compute parties are always required"
                );
                continue;
            };
            let endpoint = endpoint(entry, dir, &field)?;
            ensure!(
                endpoint.address.is_some() || !matches!(role, Role::Party(_)),
                "{field}.address is missing: compute parties listen for their peers"
            );
            roles.insert(role, endpoint);
        }
        for (a, ea) in &roles {
            for (b, eb) in roles.range(..*a) {
                ensure!(
                    ea.cert != eb.cert,
                    "roles.{}.cert and roles.{}.cert are the same certificate; each role needs \
                     its own, or one could pose as the other",
                    field_name(*b),
                    field_name(*a)
                );
                ensure!(
                    ea.address.is_none() || ea.address != eb.address,
                    "roles.{}.address and roles.{}.address are both {}",
                    field_name(*b),
                    field_name(*a),
                    ea.address.as_deref().unwrap_or_default()
                );
            }
        }
        Ok(Config {
            source: source.to_path_buf(),
            timeouts,
            roles,
        })
    }

    /// Where the configuration was read from, for error messages.
    pub fn source(&self) -> &Path {
        &self.source
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// The roles taking part in the run, in index order.
    pub fn roles(&self) -> impl Iterator<Item = Role> + '_ {
        self.roles.keys().copied()
    }

    /// The entry for `role`, or an error naming the file when it has none.
    pub fn endpoint(&self, role: Role) -> Result<&Endpoint> {
        self.roles.get(&role).ok_or_else(|| {
            anyhow!(
                "roles.{} is not in {}, so {role} takes no part in this run",
                field_name(role),
                self.source.display()
            )
        })
    }

    /// Reads the private key of `role`, which must be the role this process runs as.
    pub fn private_key(&self, role: Role) -> Result<PrivateKeyDer<'static>> {
        let field = format!("roles.{}.key", field_name(role));
        let path = self.endpoint(role)?.key.as_ref().ok_or_else(|| {
            anyhow!(
                "{field} is not set in {}: {role} needs its private key to connect",
                self.source.display()
            )
        })?;
        PrivateKeyDer::from_pem_file(path).map_err(|e| {
            anyhow!(
                "{field} in {}: cannot read a PEM private key from {}: {e}",
                self.source.display(),
                path.display()
            )
        })
    }
}

fn timeout(ms: Option<u64>, field: &str) -> Result<Duration> {
    match ms {
        None => Ok(DEFAULT_TIMEOUT),
        Some(0) => bail!("{field} is 0; give a time-out in milliseconds, at least 1"),
        Some(ms) => Ok(Duration::from_millis(ms)),
    }
}

fn endpoint(raw: RawEndpoint, dir: &Path, field: &str) -> Result<Endpoint> {
    if let Some(address) = &raw.address {
        check_address(address).with_context(|| format!("{field}.address"))?;
    }
    Ok(Endpoint {
        address: raw.address,
        cert: certificate(&dir.join(&raw.cert), &format!("{field}.cert"))?,
        ca: raw
            .ca
            .map(|ca| certificate(&dir.join(ca), &format!("{field}.ca")))
            .transpose()?,
        key: raw.key.map(|key| dir.join(key)),
    })
}

/// `host:port` with a non-zero port; the host is resolved only when connecting.
fn check_address(address: &str) -> Result<()> {
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| anyhow!("{address:?} is not host:port"))?;
    ensure!(!host.is_empty(), "{address:?} has no host");
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(()),
        _ => bail!("{address:?} has no valid port (1-65535)"),
    }
}

fn certificate(path: &Path, field: &str) -> Result<CertificateDer<'static>> {
    let cert = CertificateDer::from_pem_file(path).map_err(|e| {
        anyhow!(
            "{field}: cannot read a PEM certificate from {}: {e}",
            path.display()
        )
    })?;
    rustls::server::ParsedCertificate::try_from(&cert).map_err(|e| {
        anyhow!(
            "{field}: {} is not a usable certificate: {e}",
            path.display()
        )
    })?;
    Ok(cert)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn load_text(text: &str) -> Result<Config> {
        let dir = std::env::temp_dir().join(format!("tfe-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir)?;
        let path = dir.join(format!("{:x}.json", Sha256::digest(text)));
        std::fs::write(&path, text)?;
        Config::load(&path)
    }

    #[test]
    fn errors_name_the_field_and_the_file() {
        let e = format!(
            "{:#}",
            load_text(r#"{"roles": {"party0": {"cert": "x.pem"}}}"#).unwrap_err()
        );
        assert!(
            e.contains("roles.party0.cert") && e.contains(".json"),
            "{e}"
        );
        let e = format!(
            "{:#}",
            load_text(r#"{"roles": {}, "timeout": 1}"#).unwrap_err()
        );
        assert!(e.contains("unknown field `timeout`"), "{e}");
        let e = format!(
            "{:#}",
            load_text(r#"{"timeouts": {"read_ms": 0}, "roles": {}}"#).unwrap_err()
        );
        assert!(e.contains("timeouts.read_ms"), "{e}");
        let e = format!("{:#}", load_text(r#"{"roles": {}}"#).unwrap_err());
        assert!(e.contains("roles.party0 is missing"), "{e}");
    }

    #[test]
    fn addresses_need_a_host_and_a_port() {
        assert!(check_address("127.0.0.1:7000").is_ok());
        assert!(check_address("party1.example:443").is_ok());
        assert!(check_address("[::1]:7000").is_ok());
        for bad in ["127.0.0.1", ":7000", "host:0", "host:port", "host:70000"] {
            assert!(check_address(bad).is_err(), "{bad}");
        }
    }
}
