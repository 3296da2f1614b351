//! Network namespaces, so that tests of the served network can run a lab and
//! play a board on one host without touching its network. They need root.

use std::ffi::OsStr;
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// Fails (never skips) unless the real uid is root; `why` says what needs it.
pub fn require_root(why: &str) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let uid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or("?")
        .to_owned();
    assert_eq!(uid, "0", "{why} (CI runs as root)");
}

/// Fails (never skips) when a tool is missing. Looks in the sbin directories
/// too, which a user's PATH may leave out.
pub fn require_tools(tools: &[&str]) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for tool in tools {
        let found = std::env::split_paths(&path)
            .chain(["/usr/sbin", "/sbin", "/usr/bin"].map(PathBuf::from))
            .any(|d| d.join(tool).is_file());
        assert!(found, "`{tool}` is not installed: run ci/setup");
    }
}

/// Runs `cmd` with stdin closed; it must succeed. Its standard output.
pub fn ok(cmd: &mut Command) -> String {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed:\n{}",
        super::text(&out)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A network namespace of the test's own, deleted on drop (failed test or not)
/// with everything in it: links, addresses, nftables tables.
pub struct Netns {
    name: String,
}

impl Netns {
    pub fn new(name: String) -> Netns {
        ok(Command::new("ip").args(["netns", "add", &name]));
        Netns { name }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// `ip -n NAME ARGS`, which must succeed; what it printed.
    pub fn ip(&self, args: &[&str]) -> String {
        ok(Command::new("ip").args(["-n", &self.name]).args(args))
    }

    /// `program` run in the namespace.
    pub fn exec(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new("ip");
        cmd.args(["netns", "exec", &self.name]).arg(program);
        cmd
    }

    /// A veth pair: `end` here, `peer_end` in `peer`.
    pub fn veth(&self, end: &str, peer: &Netns, peer_end: &str) {
        self.ip(&[
            "link", "add", end, "type", "veth", "peer", "name", peer_end, "netns", &peer.name,
        ]);
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .stderr(Stdio::null())
            .status();
    }
}
