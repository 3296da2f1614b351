//! Helpers shared by the interop tests: the project's Python tools (esptool,
//! pyserial) run as independent peers.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

/// The project venv's Python, where ci/setup installs esptool and pyserial.
pub fn python() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let venv = std::env::var_os("HIL_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".venv"));
    let python = venv.join("bin").join("python");
    let ok = std::process::Command::new(&python)
        .args(["-c", "import esptool, serial"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "esptool/pyserial not found in {} - run ci/setup to install the test peers",
        venv.display()
    );
    python
}

/// Runs `python -m esptool ARGS` with a deadline; returns its output.
pub async fn esptool(args: &[&str]) -> Output {
    run_python(&["-m", "esptool"], args, Duration::from_secs(240)).await
}

/// Runs a Python snippet with arguments.
pub async fn python_script(script: &str, args: &[&str]) -> Output {
    run_python(&["-c", script], args, Duration::from_secs(120)).await
}

async fn run_python(prefix: &[&str], args: &[&str], deadline: Duration) -> Output {
    let mut command = tokio::process::Command::new(python());
    command.args(prefix).args(args).kill_on_drop(true);
    let output = tokio::time::timeout(deadline, command.output())
        .await
        .expect("peer timed out")
        .expect("peer did not start");
    output
}

/// Combined stdout and stderr, lossily decoded.
pub fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Asserts success, printing everything the peer said if not.
pub fn assert_ok(output: &Output) -> String {
    let text = text(output);
    assert!(
        output.status.success(),
        "peer failed ({}):\n{text}",
        output.status
    );
    text
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn noise(len: usize, mut seed: u32) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed >> 24) as u8
        })
        .collect()
}
