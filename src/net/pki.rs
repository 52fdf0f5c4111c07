//! A throw-away PKI for tests and local trials: a self-signed CA, one certificate and key per
//! role, and a matching `parties.json` for loopback. Not for production keys: the CA's key
//! is discarded, so the set can never be extended or revoked.

use super::Role;
use super::config::{Timeouts, field_name, host_name};
use anyhow::{Context, Result, ensure};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use std::path::{Path, PathBuf};

/// Writes `ca.pem`, `<role>.pem` and `<role>.key` for each of `roles` and, for each of
/// `inputters` (an aggregation's, by name), `inputter-<name>.pem` and `.key`; and
/// `parties.json` where party i listens on `127.0.0.1:party_ports[i]` and every other role
/// dials. Returns the path of `parties.json`.
pub fn write_test_pki(
    dir: &Path,
    roles: &[Role],
    inputters: &[String],
    party_ports: [u16; 3],
    timeouts: Timeouts,
) -> Result<PathBuf> {
    ensure!(
        Role::PARTIES.iter().all(|p| roles.contains(p)),
        "a run needs all three compute parties"
    );
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "tfe test CA");
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;
    write(dir, "ca.pem", &ca.pem(), false)?;

    let mut entries = serde_json::Map::new();
    let mut named = serde_json::Map::new();
    let inputters = inputters.iter().enumerate();
    let all = (roles.iter().map(|&r| (r, field_name(r).to_string())))
        .chain(inputters.map(|(k, name)| (Role::Inputter(k as u16), format!("inputter-{name}"))));
    for (role, file) in all {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec![host_name(role)])?;
        params
            .distinguished_name
            .push(DnType::CommonName, host_name(role));
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        // Every role is a TLS server on some links and a client on others.
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let cert = params.signed_by(&key, &ca)?;
        write(dir, &format!("{file}.pem"), &cert.pem(), false)?;
        write(dir, &format!("{file}.key"), &key.serialize_pem(), true)?;
        let mut entry = serde_json::json!({
            "cert": format!("{file}.pem"),
            "key": format!("{file}.key"),
            "ca": "ca.pem",
        });
        if let Role::Party(i) = role {
            entry["address"] = format!("127.0.0.1:{}", party_ports[i as usize % 3]).into();
        }
        match role {
            Role::Inputter(_) => named.insert(file["inputter-".len()..].to_string(), entry),
            _ => entries.insert(file, entry),
        };
    }
    if !named.is_empty() {
        entries.insert("inputters".into(), named.into());
    }
    let config = serde_json::json!({
        "timeouts": {
            "connect_ms": timeouts.connect.as_millis() as u64,
            "read_ms": timeouts.read.as_millis() as u64,
        },
        "roles": entries,
    });
    let text = serde_json::to_string_pretty(&config)? + "\n";
    write(dir, "parties.json", &text, false)?;
    Ok(dir.join("parties.json"))
}

/// Private keys are readable by their owner only, existing file or not
/// ([`crate::private_file`]).
fn write(dir: &Path, name: &str, text: &str, private: bool) -> Result<()> {
    let path = dir.join(name);
    let written = if private {
        crate::private_file::write(&path, text.as_bytes())
    } else {
        std::fs::write(&path, text)
    };
    written.with_context(|| format!("cannot write {}", path.display()))
}
