//! Running the command-line tools as a user does: exit codes, stdout and stderr, and the
//! checks every run and every error message must pass.

use std::ffi::OsStr;
use std::path::Path;
use std::process::Command;

/// What one run of a tool left behind.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit code {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs a tool to completion. Every case goes through here, so every case checks that the
/// tool neither panicked nor died from a signal.
pub fn run<S: AsRef<OsStr>>(bin: &str, args: &[S]) -> Run {
    let out = Command::new(bin)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .env_remove("RUST_LIB_BACKTRACE")
        .output()
        .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
    let run = Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    let name = Path::new(bin).file_name().unwrap().to_string_lossy();
    assert!(
        out.status.code().is_some(),
        "{name} {:?} was killed by a signal\n{run}",
        os_args(args)
    );
    for bad in ["panicked", "RUST_BACKTRACE"] {
        assert!(
            !run.stderr.contains(bad),
            "{name} {:?} panicked\n{run}",
            os_args(args)
        );
    }
    run
}

pub fn os_args<S: AsRef<OsStr>>(args: &[S]) -> Vec<String> {
    args.iter()
        .map(|a| a.as_ref().to_string_lossy().into_owned())
        .collect()
}

/// Asserts a run succeeded.
pub fn expect_ok(run: &Run) {
    assert_eq!(run.code, 0, "expected success\n{run}");
}

/// Asserts a failure with exit `code` whose stderr contains every needle. A failure with
/// exit 1 must be one paragraph starting with "error:" and print nothing on stdout.
pub fn expect_error(run: &Run, code: i32, needles: &[&str]) {
    assert_eq!(run.code, code, "wrong exit code\n{run}");
    assert!(
        run.stderr.starts_with("error:"),
        "stderr should start with \"error:\"\n{run}"
    );
    if code == 1 {
        assert!(
            !run.stderr.trim().contains("\n\n"),
            "the message should be one paragraph\n{run}"
        );
        assert_eq!(
            run.stderr.matches("error:").count(),
            1,
            "one error message expected\n{run}"
        );
        assert!(
            run.stdout.is_empty(),
            "nothing should reach stdout on an error\n{run}"
        );
    }
    for needle in needles {
        assert!(
            run.stderr.contains(needle),
            "stderr should mention {needle:?}\n{run}"
        );
    }
}
