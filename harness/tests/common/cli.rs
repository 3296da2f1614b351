//! The `hil` binary as a user runs it, for the tests of its command line.

use std::io::{BufRead, BufReader, Lines};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, ChildStdout, Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// `hil` in `cwd` with an environment of PATH alone: the HIL_* variables of
/// whoever runs the tests must not change what the command sees.
pub fn hil_in(cwd: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hil"));
    cmd.current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default());
    cmd
}

/// `hil ARGS` in `cwd`, as [`hil_in`] starts it, run to the end.
pub fn hil(args: &[&str], cwd: &Path) -> Output {
    hil_in(cwd).args(args).output().expect("run hil")
}

/// `hil` from the repository root (features name fixtures relative to it), as
/// CI runs it.
pub fn hil_as_ci() -> Command {
    let mut cmd = hil_in(&super::root());
    cmd.env("CI", "true");
    cmd
}

/// One of a command's output streams, as text.
pub fn lossy(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The checks of `hil doctor --json`.
pub fn checks(out: &Output) -> Vec<Value> {
    let doc: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}):\n{}", super::text(out)));
    doc["checks"].as_array().expect("a check list").clone()
}

pub fn check<'a>(checks: &'a [Value], name: &str) -> &'a Value {
    checks
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no check `{name}` in {checks:#?}"))
}

/// A `hil lab --json` running in the background; Ctrl-C stops it.
pub struct LabChild {
    pub child: Child,
    pub lines: Lines<BufReader<ChildStdout>>,
    /// The first line: where each service listens.
    pub first: Value,
}

impl LabChild {
    /// Starts `cmd` (a `hil lab … --json`) and reads its first line. A lab
    /// address in the developer's environment (HIL_LAB_BIND) is not the test's.
    pub fn start(cmd: &mut Command) -> LabChild {
        let mut child = cmd
            .env_remove("HIL_LAB_BIND")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        LabChild {
            child,
            lines,
            first,
        }
    }

    /// The address the first line gives for `service`.
    pub fn addr(&self, service: &str) -> SocketAddr {
        self.first[service].as_str().unwrap().parse().unwrap()
    }

    /// Sends SIGINT and waits (up to 10 s) for the lab to stop.
    pub fn interrupt(mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-INT", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(code) = self.child.try_wait().unwrap() {
                return code;
            }
            assert!(Instant::now() < deadline, "hil lab did not stop on SIGINT");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for LabChild {
    /// A test that fails before stopping its lab leaves no lab behind.
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// What `dig +short` says `name` is, asking the DNS server at `dns`.
pub fn dig_short(dns: SocketAddr, name: &str) -> String {
    let dig = Command::new("dig")
        .arg(format!("@{}", dns.ip()))
        .args(["-p", &dns.port().to_string(), "+short", name])
        .output()
        .expect("dig is installed: run ci/setup");
    lossy(&dig.stdout).trim().to_owned()
}
