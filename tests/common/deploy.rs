//! A networked deployment for the tests that run the real binaries: the test PKI, a
//! fixture converted and dealt to share files, and the three tfe-party processes.

use super::children::{Children, free_ports, run};
use std::path::{Path, PathBuf};

pub const PARTY: &str = env!("CARGO_BIN_EXE_tfe-party");
pub const PREDICT: &str = env!("CARGO_BIN_EXE_tfe-predict");
pub const CONVERT: &str = env!("CARGO_BIN_EXE_tfe-convert");
pub const PKI: &str = env!("CARGO_BIN_EXE_tfe-pki");

pub fn s(p: &Path) -> String {
    p.display().to_string()
}

pub fn fixture(name: &str, file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
        .join(file)
}

/// The test PKI (with the tfe-pki binary), `model` converted to model.plan and that plan
/// dealt to share files, in `dir`.
pub fn deployment(dir: &Path, model: &str, read_ms: &str) -> PathBuf {
    deployment_for(dir, model, read_ms, "aby3")
}

/// [`deployment`] with the share files dealt for `protocol`.
pub fn deployment_for(dir: &Path, model: &str, read_ms: &str, protocol: &str) -> PathBuf {
    let pki = dir.join("pki");
    let ports = free_ports();
    let (status, err) = run(
        PKI,
        &[&s(&pki), "--ports", &ports, "--read-ms", read_ms],
        dir,
        "pki.log",
    );
    assert!(status.success(), "{err}");
    let (model, plan) = (fixture(model, "model.onnx"), s(&dir.join("model.plan")));
    let (status, err) = run(CONVERT, &[&s(&model), "-o", &plan], dir, "convert.log");
    assert!(status.success(), "{err}");
    let share = [&plan, "--share", "--protocol", protocol, "-o", &plan];
    let (status, err) = run(CONVERT, &share, dir, "share.log");
    assert!(status.success(), "{err}");
    pki.join("parties.json")
}

/// Rewrites the JSON configuration at `config` with `edit`.
pub fn edit_config(config: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(config).unwrap()).unwrap();
    edit(&mut json);
    std::fs::write(config, json.to_string()).unwrap();
}

/// The three parties of `config` with the share files `plan_of` gives and `extra`
/// arguments; the first three children.
pub fn parties(
    children: &mut Children,
    config: &Path,
    plan_of: impl Fn(usize) -> PathBuf,
    extra: &[&str],
) {
    for i in 0..3 {
        party(children, config, i, &plan_of(i), extra);
    }
}

/// Party `i` of `config` on `plan`, with `extra` arguments; returns its index.
pub fn party(
    children: &mut Children,
    config: &Path,
    i: usize,
    plan: &Path,
    extra: &[&str],
) -> usize {
    let (id, plan, config) = (format!("party{i}"), s(plan), s(config));
    let mut args = vec!["--config", &config, "--id", &id, "--plan", &plan];
    args.extend_from_slice(extra);
    children.spawn(&format!("{id}.log"), PARTY, &args)
}
