//! `hil run` with a team's firmware settings: `--ca-cert`/`--ca-key` and
//! `--broker-name` reach the catalogue, the provisioning and the run's
//! `lab.json`; `--unprovisioned` refuses steps that need provisioning before
//! anything starts; `--name` takes a compiled-in name to the lab. Bad input
//! exits 2 before a run directory exists.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `hil` in `dir`, the user's environment stripped, with `env` added.
fn hil_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("CI", "true")
        .envs(env.iter().copied())
        .output()
        .expect("run hil")
}

fn hil(dir: &Path, args: &[&str]) -> Output {
    hil_env(dir, args, &[])
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// A scratch directory with the repository's log profiles, and a feature.
fn workspace(feature: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(root().join("fixtures"), dir.path().join("fixtures")).unwrap();
    std::fs::write(dir.path().join("f.feature"), feature).unwrap();
    dir
}

fn only_run(runs: &Path) -> PathBuf {
    let all: Vec<PathBuf> = std::fs::read_dir(runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(all.len(), 1, "{all:?}");
    all.into_iter().next().unwrap()
}

fn lab_json(runs: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(only_run(runs).join("lab.json")).unwrap()).unwrap()
}

const NEEDS_PROVISIONING: &str = "Feature: f\n  Background:\n    Given the board under test\n\n  Scenario: credentials\n    Given the broker requires username \"hil\" and password \"s3cret\"\n    And the device is provisioned with username \"hil\" and password \"wrong-one\"\n    When the board boots\n    Then the device reports MQTT state 4\n";

#[test]
fn an_unprovisioned_run_refuses_a_step_that_needs_provisioning_before_anything_starts() {
    let dir = workspace(NEEDS_PROVISIONING);
    for (args, env) in [
        (
            vec!["run", "f.feature", "--unprovisioned", "--runs-dir", "runs"],
            vec![],
        ),
        (
            vec!["run", "f.feature", "--runs-dir", "runs"],
            vec![("HIL_UNPROVISIONED", "1")],
        ),
    ] {
        let out = hil_env(dir.path(), &args, &env);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}\n{shown}");
        assert!(shown.contains("hil::runner::needs_provisioning"), "{shown}");
        assert!(shown.contains("f.feature:7:"), "{shown}");
        assert!(shown.contains("PROV line"), "{shown}");
        assert!(
            !shown.contains("wrong-one"),
            "a password was printed:\n{shown}"
        );
        assert!(!dir.path().join("runs").exists(), "a run started");
    }
    // A falsey value turns it off: the run would start (a bad --jobs stops it
    // first, after the suite was accepted).
    let out = hil_env(
        dir.path(),
        &["run", "f.feature", "--jobs", "0", "--runs-dir", "runs"],
        &[("HIL_UNPROVISIONED", "0")],
    );
    assert!(!text(&out).contains("needs_provisioning"), "{}", text(&out));
}

#[test]
fn a_bad_ca_broker_name_or_run_wide_name_exits_2_before_anything_starts() {
    let dir = workspace(NEEDS_PROVISIONING);
    // A leaf and its key: no CA.
    let out = hil(dir.path(), &["pki", "generate", "valid", "--out", "certs"]);
    assert!(out.status.success(), "{}", text(&out));
    let cases: [&[&str]; 5] = [
        &[
            "run",
            "f.feature",
            "--ca-cert",
            "certs/valid/broker-chain.pem",
            "--ca-key",
            "certs/valid/broker-key.pem",
        ],
        &[
            "run",
            "f.feature",
            "--ca-cert",
            "missing.pem",
            "--ca-key",
            "missing-key.pem",
        ],
        &["run", "f.feature", "--broker-name", "localhost"],
        &["run", "f.feature", "--name", "10.0.0.1"],
        &["demo", "f.feature", "--broker-name", "mqtt_x.example.com"],
    ];
    for args in cases {
        let mut args = args.to_vec();
        args.extend(["--runs-dir", "runs"]);
        let out = hil(dir.path(), &args);
        let shown = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}\n{shown}");
        assert!(!dir.path().join("runs").exists(), "{args:?} started a run");
        assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    }
    // A compiled-in root is one certificate: a key file is refused, unprinted.
    let out = hil(dir.path(), &["pki", "export", "--out", "ca"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = hil(
        dir.path(),
        &[
            "vfirmware",
            "build",
            "--root-pem",
            "ca/lab-root-key.pem",
            "-o",
            "fw.bin",
        ],
    );
    let shown = text(&out);
    assert_eq!(out.status.code(), Some(2), "{shown}");
    assert!(shown.contains("hil::vfirmware::root_pem"), "{shown}");
    assert!(!shown.contains("PRIVATE KEY"), "{shown}");
    assert!(!dir.path().join("fw.bin").exists());
}

#[test]
fn a_provisioned_run_tells_the_device_the_team_name_and_trusts_the_team_root() {
    let dir = workspace(
        "Feature: f\n  Scenario: the team's broker\n    Given the board under test\n    And the broker presents the \"valid\" certificate\n    When the board boots\n    Then the device sent SNI \"mqtt.team.test\"\n    And the device connects to the broker within 20 s\n",
    );
    let out = hil(dir.path(), &["pki", "export", "--out", "ca"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = hil(
        dir.path(),
        &[
            "run",
            "f.feature",
            "--ca-cert",
            "ca/lab-root.pem",
            "--ca-key",
            "ca/lab-root-key.pem",
            "--broker-name",
            "mqtt.team.test",
            "--runs-dir",
            "runs",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lab = lab_json(&dir.path().join("runs"));
    assert_eq!(lab["broker_name"], "mqtt.team.test", "{lab}");
    let root = hil::pki::RootCa::load(
        &dir.path().join("ca/lab-root.pem"),
        &dir.path().join("ca/lab-root-key.pem"),
    )
    .unwrap();
    let sha256: Vec<String> = openssl::sha::sha256(root.certificate().der())
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect();
    assert_eq!(lab["root"]["sha256"], sha256.join(":"), "{lab}");

    // Without the name the same feature fails: the device dials the lab's own.
    let out = hil(dir.path(), &["run", "f.feature", "--runs-dir", "runs-lab"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        lab_json(&dir.path().join("runs-lab"))["broker_name"],
        "broker.hil.test"
    );
}

#[test]
fn a_run_wide_name_takes_a_compiled_in_name_to_the_lab() {
    let dir = workspace(
        "Feature: f\n  Scenario: the compiled-in broker is reached\n    Given the board under test\n    When the board boots\n    Then the device starts a TLS handshake within 10 s\n",
    );
    let out = hil(
        dir.path(),
        &[
            "vfirmware",
            "build",
            "--set",
            "broker_host=mqtt.elsewhere.test",
            "-o",
            "fw.bin",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    let run = |runs: &str, extra: &[&str]| {
        let mut args = vec![
            "run",
            "f.feature",
            "--firmware",
            "fw.bin",
            "--unprovisioned",
            "--runs-dir",
            runs,
        ];
        args.extend_from_slice(extra);
        hil(dir.path(), &args)
    };
    let out = run("mapped", &["--name", "MQTT.Elsewhere.Test."]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let lab = lab_json(&dir.path().join("mapped"));
    assert_eq!(
        lab["names"],
        serde_json::json!(["mqtt.elsewhere.test"]),
        "{lab}"
    );
    // Without it the lab's DNS does not answer for the name: no handshake.
    let out = run("unmapped", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let transcript = std::fs::read_dir(only_run(&dir.path().join("unmapped")).join("scenarios"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path().join("transcript.txt")).unwrap())
        .collect::<String>();
    assert!(
        transcript.contains("[dns] failed host=mqtt.elsewhere.test"),
        "{transcript}"
    );
}
