//! The runner build without the twin (`--no-default-features`): it links no
//! BearSSL, offers no virtual-board commands, and still does everything a CI
//! runner with a real board needs. The "real" board here is a virtual board
//! served by the full build over RFC 2217, which the real-only `hil` cannot
//! tell from a remote board: it builds an image, flashes it, watches it boot,
//! and runs a certificate scenario pair end to end against it. Its lab serves
//! openssl and stops cleanly on Ctrl-C.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;

use common::served::ServedBoard;

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The real-only binary, built once per test process. `ci/test` builds it
/// beforehand, so here this is a no-op there; run alone, the test builds it
/// itself (a separate target directory, so the full build is not disturbed).
fn real_only_hil() -> &'static Path {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT.get_or_init(|| {
        let target = workspace().join("target/real-only");
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(workspace())
            .args([
                "build",
                "-p",
                "hil",
                "--no-default-features",
                "--target-dir",
            ])
            .arg(&target)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "building hil without default features failed:\n{}",
            text(&out)
        );
        target.join("debug/hil")
    })
}

fn real_only(args: &[&str], dir: &Path) -> Output {
    Command::new(real_only_hil())
        .args(args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn links_no_bearssl_and_offers_no_virtual_board_commands() {
    let binary = std::fs::read(real_only_hil()).unwrap();
    // Every BearSSL engine entry point the twin links starts with this.
    let needle = b"br_ssl_engine_";
    assert!(
        !binary.windows(needle.len()).any(|w| w == needle),
        "the real-only hil still links BearSSL"
    );
    let full = std::fs::read(env!("CARGO_BIN_EXE_hil")).unwrap();
    assert!(
        full.windows(needle.len()).any(|w| w == needle),
        "the full build should link BearSSL; the symbol test above is meaningless otherwise"
    );

    let dir = tempfile::tempdir().unwrap();
    let help = text(&real_only(&["--help"], dir.path()));
    for gone in ["vboard", "demo"] {
        assert!(
            !help.lines().any(|l| l.trim_start().starts_with(gone)),
            "{help}"
        );
    }
    for kept in ["run", "flash", "monitor", "lab", "pki", "doctor"] {
        assert!(
            help.lines().any(|l| l.trim_start().starts_with(kept)),
            "{help}"
        );
    }
}

#[test]
fn asking_for_virtual_boards_says_how_to_get_them() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.feature"),
        "Feature: a\n  Scenario: b\n    Given the board under test\n    When the board boots\n    Then the device connects to the broker within 5 s\n",
    )
    .unwrap();
    for args in [
        &["run", "a.feature", "--board", "virtual"][..],
        &["run", "a.feature"][..],
    ] {
        let out = real_only(args, dir.path());
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {all}");
        assert!(all.contains("built without virtual boards"), "{all}");
        assert!(all.contains("cargo install --path harness"), "{all}");
        assert!(
            !all.contains("scenario(s) on"),
            "refused before the run starts: {all}"
        );
    }
}

#[test]
fn builds_flashes_monitors_and_runs_a_served_board() {
    let dir = tempfile::tempdir().unwrap();
    let board = ServedBoard::start(dir.path(), 1, &[]);

    let out = real_only(&["vfirmware", "build", "-o", "ref.bin"], dir.path());
    assert!(out.status.success(), "{}", text(&out));

    let out = real_only(&["flash", "--port", &board.url, "ref.bin"], dir.path());
    let flashed = text(&out);
    assert!(out.status.success(), "{flashed}");
    assert!(flashed.to_lowercase().contains("verified"), "{flashed}");

    let out = real_only(
        &["monitor", "--port", &board.url, "--reset", "--seconds", "4"],
        dir.path(),
    );
    let serial = text(&out);
    assert!(out.status.success(), "{serial}");
    assert!(
        serial.contains("[boot]"),
        "the flashed firmware never booted:\n{serial}"
    );

    // One scenario that must connect and one that must be refused with
    // BearSSL's name-mismatch code: a refusal the device never attempted, or a
    // connection through a bad name, fails the run.
    std::fs::write(
        dir.path().join("smoke.feature"),
        r#"Feature: real-only smoke
  Scenario: a valid chain connects
    Given the board under test
    And the broker presents the "valid" certificate
    When the board boots
    Then the device connects to the broker within 20 s

  Scenario: a wrong name is refused
    Given the board under test
    And the broker presents the "wrong-san" certificate
    When the board boots
    Then the device starts a TLS handshake within 20 s
    And the device reports a TLS failure with code 56
    And the device never completes an MQTT connection
"#,
    )
    .unwrap();
    // The served board's twin dials from 127.0.1.<index>; the lab takes an
    // address of its own on loopback.
    let out = real_only(
        &[
            "run",
            "smoke.feature",
            "--board",
            &board.url,
            "--device-ip",
            "127.0.1.1",
            "--lab-bind",
            "127.0.0.61",
            "--runs-dir",
            "runs",
            "--junit",
            "junit.xml",
        ],
        dir.path(),
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let junit = std::fs::read_to_string(dir.path().join("junit.xml")).unwrap();
    assert!(junit.contains("tests=\"2\""), "{junit}");
    assert!(junit.contains("failures=\"0\""), "{junit}");
}

#[test]
fn serves_the_lab_and_stops_cleanly_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let mut lab = Command::new(real_only_hil())
        .args(["lab", "--bind", "127.0.0.62", "--mqtt-port", "0"])
        .args(["--ntp-port", "0", "--dns-port", "0", "--run-dir", "lab"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(lab.stdout.take().unwrap());
    let mut tls = None;
    let mut line = String::new();
    while stdout.read_line(&mut line).unwrap() > 0 {
        if let Some(addr) = line.trim().strip_prefix("mqtt+tls") {
            tls = Some(addr.trim().parse::<std::net::SocketAddr>().unwrap());
        }
        if line.contains("Ctrl-C stops the lab") {
            break;
        }
        line.clear();
    }
    let tls = tls.expect("the lab never said where its TLS front listens");
    // openssl completes a handshake with the front and sees the lab's certificate.
    let out = Command::new("openssl")
        .args(["s_client", "-connect", &tls.to_string()])
        .args(["-servername", "broker.hil.test"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let seen = text(&out);
    assert!(seen.contains("broker.hil.test"), "{seen}");
    assert!(seen.contains("BEGIN CERTIFICATE"), "{seen}");

    let status = Command::new("kill")
        .args(["-INT", &lab.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = lab.wait().unwrap();
    assert!(status.success(), "hil lab exited {status} on Ctrl-C");
    let timeline = std::fs::read_to_string(dir.path().join("lab/timeline.jsonl")).unwrap();
    assert!(
        timeline.contains(r#""event":"tls_client_hello""#),
        "the lab's timeline lacks the ClientHello:\n{timeline}"
    );
}
