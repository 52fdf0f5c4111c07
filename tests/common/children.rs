//! Child processes for the networked tests: each with its stderr and stdout in files,
//! killed and reaped on every exit path, and every wait with a deadline, so a failing test
//! cannot hang or leave processes behind.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Three free ports on 127.0.0.1, comma-separated (for `tfe-pki --ports`).
pub fn free_ports() -> String {
    let listeners: Vec<_> = (0..3)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let ports: Vec<String> = listeners
        .iter()
        .map(|l| l.local_addr().unwrap().port().to_string())
        .collect();
    ports.join(",")
}

/// Runs a command to completion with a deadline; returns its status and stderr.
pub fn run(bin: &str, args: &[&str], dir: &Path, log: &str) -> (ExitStatus, String) {
    let mut children = Children::new(dir);
    children.spawn(log, bin, args);
    children.wait(0, Duration::from_secs(300))
}

/// Child processes with their stderr (and stdout) in files, killed and reaped when dropped.
pub struct Children {
    dir: PathBuf,
    pub procs: Vec<(Child, PathBuf)>,
}

impl Children {
    pub fn new(dir: &Path) -> Children {
        Children {
            dir: dir.to_path_buf(),
            procs: vec![],
        }
    }

    /// Starts `bin` with stderr to `log` and stdout to `log` with `.out` appended; returns
    /// its index.
    pub fn spawn(&mut self, log: &str, bin: &str, args: &[&str]) -> usize {
        let log = self.dir.join(log);
        let child = Command::new(bin)
            .args(args)
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(stdout_of(&log)).unwrap())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        self.procs.push((child, log));
        self.procs.len() - 1
    }

    pub fn stderr(&self, i: usize) -> String {
        std::fs::read_to_string(&self.procs[i].1).unwrap_or_default()
    }

    pub fn stdout(&self, i: usize) -> String {
        std::fs::read_to_string(stdout_of(&self.procs[i].1)).unwrap_or_default()
    }

    /// Waits for child `i` to exit, failing the test after `within`.
    pub fn wait(&mut self, i: usize, within: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.procs[i].0.try_wait().unwrap() {
                return (status, self.stderr(i));
            }
            assert!(
                Instant::now() < deadline,
                "child {i} did not exit within {within:?}; its stderr:\n{}",
                self.stderr(i)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits until child `i`'s stderr contains `needle`.
    pub fn await_log(&self, i: usize, needle: &str, within: Duration) {
        let deadline = Instant::now() + within;
        while !self.stderr(i).contains(needle) {
            assert!(
                Instant::now() < deadline,
                "child {i} never logged {needle:?}; its stderr:\n{}",
                self.stderr(i)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Children {
    fn drop(&mut self) {
        for (child, _) in &mut self.procs {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn stdout_of(log: &Path) -> PathBuf {
    let mut name = log.as_os_str().to_owned();
    name.push(".out");
    name.into()
}
