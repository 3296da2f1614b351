//! `hil run` as a user meets it: bad input gets file:line and exit 2, a failing
//! scenario exit 1 with JUnit XML that junitparser (a standard reader, as CI
//! dashboards use) accepts, carrying the expectation and the timeline window.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::cli::hil_as_ci;
use common::{root, text};

fn hil(args: &[&str]) -> Output {
    hil_as_ci().args(args).output().expect("run hil")
}

fn feature(dir: &Path, name: &str, body: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path.display().to_string()
}

#[test]
fn a_feature_with_problems_is_refused_with_every_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let syntax = feature(
        dir.path(),
        "syntax.feature",
        "Feature: f\n  Scenario: s\n    Given the board under test\n  no keyword here\n",
    );
    let steps = feature(
        dir.path(),
        "steps.feature",
        "Feature: g\n  Scenario: s\n    Given the board under tset\n    Given the broker presents the \"made-up\" certificate\n    Given a virtual board running firmware \"warp-drive\"\n",
    );
    let runs = dir.path().join("runs");
    let out = hil(&["run", &syntax, &steps, "--runs-dir", runs.to_str().unwrap()]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    // gherkin notices the stray line when the next keyword never comes.
    assert!(
        all.contains(&format!("{syntax}:4")) || all.contains(&format!("{syntax}:5")),
        "{all}"
    );
    assert!(
        all.contains(&format!("{steps}:3")) && all.contains("did you mean"),
        "{all}"
    );
    assert!(
        all.contains(&format!("{steps}:4")) && all.contains("made-up"),
        "{all}"
    );
    assert!(
        all.contains(&format!("{steps}:5")) && all.contains("warp-drive"),
        "{all}"
    );
    assert!(!runs.exists(), "nothing should run: {all}");
}

#[test]
fn unknown_firmware_board_and_shard_are_usage_errors() {
    for args in [
        &["run", "--firmware", "no-such-variant"][..],
        &["run", "--board", "virtual:0"][..],
        &["run", "--shard", "3/2"][..],
        &["run", "--tags", "@a and and"][..],
    ] {
        let out = hil(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
    }
}

#[test]
fn a_board_that_does_not_answer_is_an_error_with_the_scenario_location() {
    let dir = tempfile::tempdir().unwrap();
    let f = feature(
        dir.path(),
        "deaf.feature",
        "Feature: deaf\n  Scenario: boots\n    Given the board under test\n    When the board boots\n    Then the device connects to the broker within 5 s\n",
    );
    let runs = dir.path().join("runs");
    // Port 9 (discard) on loopback: nothing answers RFC 2217 there.
    let out = hil(&[
        "run",
        &f,
        "--board",
        "rfc2217://127.0.0.1:9",
        "--device-ip",
        "127.0.0.1",
        "--lab-bind",
        "127.0.0.1",
        "--runs-dir",
        runs.to_str().unwrap(),
    ]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains(&format!("{f}:4")), "{all}");
    assert!(all.contains("does not answer"), "{all}");
    // What was collected is written all the same.
    let run = std::fs::read_dir(&runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert!(run.join("junit.xml").is_file());
    assert!(run.join("report/index.html").is_file());
}

const JUNIT_CHECK: &str = r#"
import sys
from junitparser import JUnitXml, Failure
xml = JUnitXml.fromfile(sys.argv[1])
cases = [case for suite in xml for case in suite]
print("cases", len(cases))
for case in cases:
    for result in case.result:
        if isinstance(result, Failure):
            print("failure", case.name)
            print(result.text or result.message or "")
"#;

#[test]
fn junit_xml_has_one_testcase_per_scenario_and_failures_carry_the_window() {
    let dir = tempfile::tempdir().unwrap();
    let f = feature(
        dir.path(),
        "mixed.feature",
        "Feature: mixed\n  Background:\n    Given the board under test\n\n  Scenario: the right broker is accepted\n    Given the broker presents the \"valid\" certificate\n    When the board boots\n    Then the device connects to the broker within 20 s\n\n  Scenario: a wrong expectation fails loudly\n    Given the broker presents the \"wrong-san\" certificate\n    When the board boots\n    Then the device reports a TLS failure with code 99\n",
    );
    let runs = dir.path().join("runs");
    let junit = dir.path().join("out/junit.xml");
    let html = dir.path().join("html");
    let out = hil(&[
        "run",
        &f,
        "--runs-dir",
        runs.to_str().unwrap(),
        "--junit",
        junit.to_str().unwrap(),
        "--report",
        html.to_str().unwrap(),
    ]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains("code 56"),
        "the finding names what the device said: {all}"
    );

    let python = root().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "run ci/setup: the project venv (with junitparser) is missing"
    );
    let parsed = Command::new(python)
        .args(["-c", JUNIT_CHECK, junit.to_str().unwrap()])
        .output()
        .unwrap();
    let report = text(&parsed);
    assert!(
        parsed.status.success(),
        "junitparser refused the XML: {report}"
    );
    assert!(report.contains("cases 2"), "{report}");
    assert!(
        report.contains("failure Scenario: a wrong expectation fails loudly"),
        "{report}"
    );
    assert!(
        report.contains("expected the device to report a TLS failure with code 99"),
        "{report}"
    );
    assert!(
        report.contains("[tls] error code=56"),
        "the window shows the device's line: {report}"
    );

    let page = std::fs::read_to_string(html.join("index.html")).unwrap();
    assert!(
        page.contains("class=\"serial window\""),
        "the deciding window is highlighted"
    );
    assert!(
        !page.contains("PROV ey"),
        "provisioning payloads never reach reports"
    );
}
