//! What each fuzz target does with its input, shared by the targets (fuzz_targets/) and the
//! replay of the seeds and of every crash found so far in the normal test run
//! (tests/fuzz_replay.rs includes this file): each reads untrusted bytes the way tfe does
//! and may fail with an error, never panic, abort or hang.

use std::path::PathBuf;
use tfe::lower::{Options, convert};
use tfe::mpc::Protocol;
use tfe::net::Role;
use tfe::net::config::Config;
use tfe::net::frame::{HEADER_LEN, Kind, Opener, Refusal, words_of};
use tfe::plan::{Plan, SharedPlan};

/// What a target does with one input.
pub type Body = fn(&[u8]);

/// The targets by name, as cargo-fuzz and the replay name them.
pub const TARGETS: [(&str, Body); 6] = [
    ("plan_file", plan_file),
    ("share_file", share_file),
    ("npy", npy),
    ("onnx", onnx),
    ("config", config),
    ("frames", frames),
];

/// A file holding `data` for the readers that take a path, as users give them one.
fn file(data: &[u8], extension: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!(
        "tfe-fuzz-{}-{:?}.{extension}",
        std::process::id(),
        std::thread::current().id()
    ));
    std::fs::write(&path, data).expect("the temporary directory is writable");
    path
}

/// A plan file: parsing fails with an error or gives a plan whose cost estimate (every
/// step's shapes resolved) runs.
pub fn plan_file(data: &[u8]) {
    if let Ok(plan) = Plan::from_bytes(data, "fuzz.plan") {
        for protocol in [Protocol::Aby3, Protocol::Pond] {
            let _ = tfe::exec::estimate(&plan, 1, protocol);
        }
    }
}

/// A party's share file.
pub fn share_file(data: &[u8]) {
    let _ = SharedPlan::from_bytes(data, "fuzz.share");
}

/// An input .npy file, read the way tfe-predict reads it.
pub fn npy(data: &[u8]) {
    let _ = tfe::cli::read_npy(&file(data, "npy"));
}

/// An ONNX model, converted the way tfe-convert converts it: import, shape inference and
/// lowering. A panic inside tract's parsing or analysis, which tfe turns into an error
/// naming the model, is not a crash of tfe's: the panic hook is silenced for the call, so
/// only a panic that escapes `convert` reaches libFuzzer (or the replay's `catch_unwind`).
pub fn onnx(data: &[u8]) {
    let path = file(data, "onnx");
    let hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(|_| {}));
    let _ = convert(&path, Options::default());
    std::panic::set_hook(hook);
}

/// A deployment configuration, loaded the way tfe-party and tfe-predict load it.
pub fn config(data: &[u8]) {
    let _ = Config::load(&file(data, "json"));
}

/// The frames of one link from a peer: each header checked as a party's listener checks a
/// client's (session learned from the first, a payload limit), then its payload taken, and
/// a refusal's payload decoded.
pub fn frames(data: &[u8]) {
    let mut opener = Opener::learning(Role::Client).with_limit(1 << 16);
    let mut rest = data;
    while rest.len() >= HEADER_LEN {
        let (header, after) = rest.split_at(HEADER_LEN);
        let Ok(header) = opener.open(header.try_into().expect("HEADER_LEN bytes")) else {
            return;
        };
        let Some(payload) = after.get(..8 * header.words) else {
            return;
        };
        if header.kind == Kind::Refusal {
            let _ = Refusal::from_words(&words_of(payload));
        }
        rest = &after[8 * header.words..];
    }
}
