//! `hil lab` as a user runs it: the JSON first line, live events, a clean stop on
//! Ctrl-C (SIGINT), and exit 2 with a clear message on bad input.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::process::{Command, Stdio};

use common::cli::{dig_short, LabChild};

fn hil() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_hil"));
    cmd.env_remove("HIL_LAB_BIND").stdin(Stdio::null());
    cmd
}

#[test]
fn json_first_line_then_live_events_then_a_clean_stop_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let mut lab = LabChild::start(
        hil()
            .args([
                "lab",
                "--profile",
                "valid",
                "--policy",
                "sni-required",
                "--ntp-skew",
                "-2 days",
                "--json",
                "--run-dir",
            ])
            .arg(dir.path()),
    );
    for key in ["mqtt_tls", "ntp", "dns"] {
        let addr = lab.addr(key);
        assert!(addr.ip().is_loopback() && addr.port() != 0, "{key}: {addr}");
    }
    let run_dir = std::path::PathBuf::from(lab.first["run_dir"].as_str().unwrap());
    assert!(run_dir.join("valid/device-anchors.pem").is_file());

    // A real client's query shows up on the stream, live.
    assert_eq!(dig_short(lab.addr("dns"), "broker.hil.test"), "127.0.0.1");
    let event: serde_json::Value =
        serde_json::from_str(&lab.lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(event["event"], "dns_query");
    assert_eq!(event["name"], "broker.hil.test");

    let code = lab.interrupt();
    assert!(code.success(), "{code}");
    assert!(run_dir.join("timeline.jsonl").is_file());
}

#[test]
fn an_unknown_policy_lists_the_valid_ones_and_exits_2() {
    let out = hil()
        .args(["lab", "--policy", "sni-please"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("sni-please") && err.contains("sni-required") && err.contains("dns-nxdomain"),
        "{err}"
    );
}

#[test]
fn a_bad_duration_and_an_unknown_profile_exit_2() {
    let out = hil()
        .args(["lab", "--ntp-skew", "2 fortnights"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("2 fortnights"));
    let out = hil().args(["lab", "--profile", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("wrong-san"));
}

#[test]
fn a_port_in_use_names_the_problem_and_exits_2() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let out = hil()
        .args(["lab", "--ntp-port", &port.to_string(), "--run-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("already in use") && err.contains(&port.to_string()),
        "{err}"
    );
    assert!(err.contains("hil::lab::port_in_use"), "{err}");
}

#[test]
fn the_help_names_every_broker_policy() {
    let out = hil().args(["lab", "--help"]).output().unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for policy in hil::lab::BrokerPolicy::ALL {
        assert!(
            help.contains(policy.as_str()),
            "{policy} missing from:\n{help}"
        );
    }
}
