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
    #[serde(default)]
    serve: RawServing,
    roles: RawRoles,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawServing {
    max_sessions: Option<usize>,
    max_queue: Option<usize>,
    max_batch: Option<usize>,
    queue_ms: Option<u64>,
    idle_ms: Option<u64>,
    wait_ms: Option<u64>,
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
    /// Under Pond the parties are server 0, server 1 and the crypto producer; the file may
    /// name them so.
    #[serde(alias = "server0")]
    party0: Option<RawEndpoint>,
    #[serde(alias = "server1")]
    party1: Option<RawEndpoint>,
    #[serde(alias = "crypto_producer")]
    party2: Option<RawEndpoint>,
    client: Option<RawEndpoint>,
    model_owner: Option<RawEndpoint>,
    receiver: Option<RawEndpoint>,
    /// By name; numbered in name order.
    #[serde(default)]
    inputters: BTreeMap<String, RawEndpoint>,
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

/// How a long-running compute party serves clients: what one client can cost it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Serving {
    /// Sessions that run at once; party 0 admits clients, the others follow it.
    pub max_sessions: usize,
    /// Clients waiting for a session at party 0; more are refused as busy.
    pub max_queue: usize,
    /// Rows in one request, checked before anything is allocated for it.
    pub max_batch: usize,
    /// The longest a client waits in the queue before it is refused as busy.
    pub queue: Duration,
    /// The longest a party waits for a client's next request.
    pub idle: Duration,
    /// The longest a party waits for any other message within a session: the client's
    /// hello and inputs, or a peer party's step.
    pub wait: Duration,
}

impl Default for Serving {
    fn default() -> Self {
        Serving {
            max_sessions: 4,
            max_queue: 16,
            max_batch: 256,
            queue: Duration::from_secs(60),
            idle: Duration::from_secs(60),
            wait: Duration::from_secs(120),
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
    serving: Serving,
    roles: BTreeMap<Role, Endpoint>,
    /// The inputters' names, in role order.
    inputters: Vec<String>,
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
        Role::Receiver => "receiver",
        Role::Inputter(_) => "inputter",
    }
}

/// The most inputters a configuration may name (the role numbers them in 16 bits).
pub const MAX_INPUTTERS: usize = 1 << 16;

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
        let serving = serving(raw.serve)?;
        let r = raw.roles;
        let entries = [
            (Role::Party(0), r.party0),
            (Role::Party(1), r.party1),
            (Role::Party(2), r.party2),
            (Role::Client, r.client),
            (Role::ModelOwner, r.model_owner),
            (Role::Receiver, r.receiver),
        ];
        ensure!(
            r.inputters.len() <= MAX_INPUTTERS,
            "roles.inputters names {} inputters, more than the {MAX_INPUTTERS} a run can have",
            r.inputters.len()
        );
        let inputters: Vec<String> = r.inputters.keys().cloned().collect();
        for name in &inputters {
            check_name(name).with_context(|| format!("roles.inputters.{name}"))?;
        }
        let entries = entries.into_iter().map(|(role, e)| (role, e, None)).chain(
            (r.inputters.into_iter().enumerate())
                .map(|(k, (name, e))| (Role::Inputter(k as u16), Some(e), Some(name))),
        );
        let mut roles = BTreeMap::new();
        for (role, entry, name) in entries {
            let field = match name {
                Some(name) => format!("roles.inputters.{name}"),
                None => format!("roles.{}", field_name(role)),
            };
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
            ensure!(
                endpoint.address.is_none() || !matches!(role, Role::Inputter(_) | Role::Receiver),
                "{field}.address is set, but inputters and the result receiver only dial the \
                 parties (they may join a round late); remove it"
            );
            roles.insert(role, endpoint);
        }
        let config = Config {
            source: source.to_path_buf(),
            timeouts,
            serving,
            roles,
            inputters,
        };
        for (a, ea) in &config.roles {
            for (b, eb) in config.roles.range(..*a) {
                let (a, b) = (config.field(*a), config.field(*b));
                ensure!(
                    ea.cert != eb.cert,
                    "{b}.cert and {a}.cert are the same certificate; each role needs its own, \
                     or one could pose as the other"
                );
                ensure!(
                    ea.address.is_none() || ea.address != eb.address,
                    "{b}.address and {a}.address are both {}",
                    ea.address.as_deref().unwrap_or_default()
                );
            }
        }
        Ok(config)
    }

    /// The role's entry in the file, `roles.<name>` (`roles.inputters.<name>` for an
    /// inputter).
    pub fn field(&self, role: Role) -> String {
        match role {
            Role::Inputter(_) => format!("roles.inputters.{}", self.name(role)),
            _ => format!("roles.{}", field_name(role)),
        }
    }

    /// The role's name in the file: `party0`, `receiver`, an inputter's own name...
    pub fn name(&self, role: Role) -> String {
        match role {
            Role::Inputter(k) => {
                (self.inputters.get(k as usize).cloned()).unwrap_or_else(|| format!("inputter {k}"))
            }
            _ => field_name(role).to_string(),
        }
    }

    /// The inputters the file names, in role order.
    pub fn inputters(&self) -> &[String] {
        &self.inputters
    }

    /// The inputter called `name`, or an error listing those the file names.
    pub fn inputter(&self, name: &str) -> Result<Role> {
        match self.inputters.iter().position(|n| n == name) {
            Some(k) => Ok(Role::Inputter(k as u16)),
            None if self.inputters.is_empty() => bail!(
                "{} names no inputters (roles.inputters), so {name:?} cannot submit; add it with \
                 its certificate",
                self.source.display()
            ),
            None => bail!(
                "{name:?} is not an inputter of {}: it names {}",
                self.source.display(),
                self.inputters.join(", ")
            ),
        }
    }

    /// Where the configuration was read from, for error messages.
    pub fn source(&self) -> &Path {
        &self.source
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// The `serve` section, with the defaults for what it leaves out.
    pub fn serving(&self) -> Serving {
        self.serving
    }

    /// The roles taking part in the run, in index order.
    pub fn roles(&self) -> impl Iterator<Item = Role> + '_ {
        self.roles.keys().copied()
    }

    /// The entry for `role`, or an error naming the file when it has none.
    pub fn endpoint(&self, role: Role) -> Result<&Endpoint> {
        self.roles.get(&role).ok_or_else(|| {
            anyhow!(
                "{} is not in {}, so {role} takes no part in this run",
                self.field(role),
                self.source.display()
            )
        })
    }

    /// Reads the private key of `role`, which must be the role this process runs as.
    pub fn private_key(&self, role: Role) -> Result<PrivateKeyDer<'static>> {
        let field = format!("{}.key", self.field(role));
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

fn serving(raw: RawServing) -> Result<Serving> {
    let default = Serving::default();
    let count = |n: Option<usize>, default: usize, field: &str| match n {
        Some(0) => bail!("serve.{field} is 0; give at least 1"),
        n => Ok(n.unwrap_or(default)),
    };
    let max_queue = raw.max_queue.unwrap_or(default.max_queue);
    Ok(Serving {
        max_sessions: count(raw.max_sessions, default.max_sessions, "max_sessions")?,
        max_queue,
        max_batch: count(raw.max_batch, default.max_batch, "max_batch")?,
        queue: timeout_or(raw.queue_ms, default.queue, "serve.queue_ms")?,
        idle: timeout_or(raw.idle_ms, default.idle, "serve.idle_ms")?,
        wait: timeout_or(raw.wait_ms, default.wait, "serve.wait_ms")?,
    })
}

fn timeout(ms: Option<u64>, field: &str) -> Result<Duration> {
    timeout_or(ms, DEFAULT_TIMEOUT, field)
}

fn timeout_or(ms: Option<u64>, default: Duration, field: &str) -> Result<Duration> {
    match ms {
        None => Ok(default),
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

/// An inputter's name: what `--as` takes and logs show, so plain characters only.
fn check_name(name: &str) -> Result<()> {
    ensure!(
        (1..=64).contains(&name.len())
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
        "an inputter's name must be 1 to 64 letters, digits, '-' or '_', not {name:?}"
    );
    Ok(())
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
    fn inputters_are_named_and_only_dial() {
        let dir = std::env::temp_dir().join(format!("tfe-config-pki-{}", std::process::id()));
        let names = ["zoe", "adam"].map(String::from);
        let roles = [
            Role::Party(0),
            Role::Party(1),
            Role::Party(2),
            Role::Receiver,
        ];
        let path =
            crate::net::pki::write_test_pki(&dir, &roles, &names, [1, 2, 3], Timeouts::default())
                .unwrap();
        let config = Config::load(&path).unwrap();
        // Numbered in name order.
        assert_eq!(config.inputters(), ["adam", "zoe"]);
        assert_eq!(config.inputter("zoe").unwrap(), Role::Inputter(1));
        assert_eq!(config.name(Role::Inputter(0)), "adam");
        assert_eq!(config.field(Role::Inputter(1)), "roles.inputters.zoe");
        assert!(config.endpoint(Role::Receiver).is_ok());
        // Pond's names for the parties read as the same roles.
        let pond = std::fs::read_to_string(&path)
            .unwrap()
            .replace("\"party0\"", "\"server0\"")
            .replace("\"party1\"", "\"server1\"")
            .replace("\"party2\"", "\"crypto_producer\"");
        assert!(pond.contains("crypto_producer"));
        let renamed = dir.join("pond.json");
        std::fs::write(&renamed, pond).unwrap();
        let pond = Config::load(&renamed).unwrap();
        for p in 0..3 {
            let (a, b) = (
                config.endpoint(Role::Party(p)),
                pond.endpoint(Role::Party(p)),
            );
            assert_eq!(a.unwrap().address, b.unwrap().address);
        }
        let e = format!("{:#}", config.inputter("eve").unwrap_err());
        assert!(
            e.contains("\"eve\" is not an inputter") && e.contains("adam, zoe"),
            "{e}"
        );

        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        json["roles"]["inputters"]["zoe"]["address"] = "127.0.0.1:9".into();
        let listening = dir.join("listening.json");
        std::fs::write(&listening, json.to_string()).unwrap();
        let e = format!("{:#}", Config::load(&listening).unwrap_err());
        assert!(e.contains("roles.inputters.zoe.address is set"), "{e}");
        let bad = r#"{"roles": {"inputters": {"no spaces": {"cert": "x.pem"}}}}"#;
        let e = format!("{:#}", load_text(bad).unwrap_err());
        assert!(
            e.contains("roles.inputters.no spaces") && e.contains("letters, digits"),
            "{e}"
        );
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
