//! What the tool-driven tests share: finding the external tools they need.

#![allow(dead_code)]

pub mod asm;
pub mod gdb;
pub mod machine;
pub mod pair;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The environment variable that lets a machine without QEMU and binutils skip these
/// tests (they fail otherwise, so CI never mistakes a missing tool for a pass).
pub const SKIP_VAR: &str = "LX106_SKIP_QEMU";

/// Whether `tool` runs. Without it the test fails, naming `ci/setup`, unless
/// `LX106_SKIP_QEMU=1`, in which case it prints that it was skipped and returns false.
pub fn require_tools(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|tool| {
            Command::new(tool)
                .arg("--version")
                .output()
                .map(|out| !out.status.success())
                .unwrap_or(true)
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var(SKIP_VAR).as_deref() == Ok("1") {
        // Straight to stderr, past the test harness's capture, so a skip is seen.
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED {test}: {} not installed and {SKIP_VAR}=1",
            missing.join(", ")
        );
        return false;
    }
    panic!(
        "{test} needs {} (Debian packages qemu-system-misc and binutils-xtensa-lx106): \
         run ci/setup, or set {SKIP_VAR}=1 to skip this test",
        missing.join(", ")
    );
}

/// The workspace's root directory.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .unwrap_or_default()
}

/// A directory of this test process's own under the target directory.
pub fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("lx106-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}
