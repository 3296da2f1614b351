//! `hil run` never loses a result: reports valid whatever bytes the device and
//! the broker sent, every report written when the run is interrupted or cannot
//! start, bad input refused before anything runs, and no secret in any artifact.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::cli::hil_as_ci as hil;
use common::{root, text};

fn python() -> PathBuf {
    let python = root().join(".venv/bin/python");
    assert!(
        python.is_file(),
        "run ci/setup: the project venv is missing"
    );
    python
}

/// Parses every report of a run with standard readers: the XML with Python's
/// strict parser and junitparser, the JSON with json, the HTML with html.parser
/// (checking no element came from the device). Returns what it printed.
const READ_REPORTS: &str = r#"
import sys, json, xml.etree.ElementTree as ET
from html.parser import HTMLParser
from junitparser import JUnitXml
junit, cucumber, page = sys.argv[1:4]
root = ET.parse(junit).getroot()
cases = [c for s in root for c in s]
names = [c.get("name") for c in cases]
assert all(n.startswith("Scenario: ") for n in names), names
print("junit", len(cases), "skipped", sum(1 for c in cases for r in c if r.tag == "skipped"))
print("junitparser", sum(1 for s in JUnitXml.fromfile(junit) for c in s))
features = json.load(open(cucumber))
print("json", sum(len(f["elements"]) for f in features))
class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = set()
    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
p = Tags()
p.feed(open(page).read())
unexpected = p.tags - {"html", "head", "meta", "title", "style", "body", "h1", "h2", "p", "details",
                       "summary", "b", "small", "div", "code", "table", "tr", "th", "td"}
assert not unexpected, unexpected
print("html ok")
"#;

fn read_reports(junit: &Path, json: &Path, html: &Path) -> String {
    let out = Command::new(python())
        .args(["-c", READ_REPORTS])
        .args([junit, json, html])
        .output()
        .unwrap();
    let report = text(&out);
    assert!(
        out.status.success(),
        "a standard reader refused a report: {report}"
    );
    report
}

/// Where a test's run writes: its runs directory and the reports it asks for.
struct Outputs {
    runs: PathBuf,
    junit: PathBuf,
    json: PathBuf,
    html: PathBuf,
}

impl Outputs {
    fn in_dir(dir: &Path) -> Outputs {
        Outputs {
            runs: dir.join("runs"),
            junit: dir.join("j.xml"),
            json: dir.join("c.json"),
            html: dir.join("html"),
        }
    }

    /// Runs `cmd` (a `hil run`) asking for every report.
    fn run(&self, cmd: &mut Command) -> Output {
        cmd.args(["--runs-dir", self.runs.to_str().unwrap()])
            .args([
                "--junit",
                self.junit.to_str().unwrap(),
                "--json",
                self.json.to_str().unwrap(),
            ])
            .args(["--report", self.html.to_str().unwrap()])
            .output()
            .unwrap()
    }
}

fn only_run_dir(runs: &Path) -> PathBuf {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(runs)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(dirs.len(), 1, "{dirs:?}");
    dirs.remove(0)
}

/// Issue 15, item 1: the ROM banner after a crash reboot carries NUL, 0x02 and
/// 0x0C at 115200, and a command may carry `]]>`: the reports stay documents.
#[test]
fn reports_are_valid_documents_whatever_the_device_sends() {
    let dir = tempfile::tempdir().unwrap();
    let feature = dir.path().join("hostile.feature");
    std::fs::write(
        &feature,
        "Feature: hostile\n  Scenario: a command that tries to end the CDATA\n    Given the board under test\n    When the board boots\n    Then the device subscribes to \"hil/commands\" within 20 s\n    When the broker publishes \"]]></system-out><testcase name=\\\"fake\\\"/><x>&\" to \"hil/commands\"\n    Then the serial output contains \"testcase\" within 5 s\n    And the serial output never contains \"anything at all\"\n",
    )
    .unwrap();
    let outputs = Outputs::in_dir(dir.path());
    let out = outputs.run(
        hil()
            .args(["run", "features/mqtt.feature"])
            .arg(&feature)
            .args([
                "--board",
                "virtual:2",
                "--firmware",
                "reference+crash=after-connect",
            ]),
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let raw = std::fs::read(&outputs.junit).unwrap();
    assert!(raw
        .windows(1)
        .all(|b| b[0] >= 0x20 || b"\t\n\r".contains(&b[0])));
    let report = read_reports(
        &outputs.junit,
        &outputs.json,
        &outputs.html.join("index.html"),
    );
    assert!(report.contains("junit 7 skipped 0"), "{report}");
    assert!(report.contains("junitparser 7"), "{report}");
    let xml = String::from_utf8(raw).unwrap();
    assert!(
        xml.contains("LoadProhibited"),
        "the crash is named in the report"
    );
}

fn spawn_run(runs: &Path) -> std::process::Child {
    hil()
        .args([
            "run",
            "features",
            "--jobs",
            "2",
            "--runs-dir",
            runs.to_str().unwrap(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Waits until the run printed its first finished scenario.
fn wait_for_first_result(child: &mut std::process::Child) -> BufReader<std::process::ChildStdout> {
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(out.read_line(&mut line).unwrap() > 0, "the run ended early");
        if line.contains("[  1/") {
            return out;
        }
    }
}

fn signal(child: &std::process::Child, sig: i32) {
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) with the pid of a child this test spawned and still holds.
    #[allow(unsafe_code)]
    let rc = unsafe { libc::kill(pid, sig) };
    assert_eq!(rc, 0);
}

/// Issue 15, item 2: Ctrl-C (or SIGTERM) writes every report, the unfinished
/// scenarios reported as not run, and exits 2; twice, at once.
#[test]
fn an_interrupted_run_still_writes_every_report() {
    for (signals, name) in [
        (vec![libc::SIGINT], "once"),
        (vec![libc::SIGTERM, libc::SIGTERM], "twice"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let runs = dir.path().join("runs");
        let mut child = spawn_run(&runs);
        let mut stdout = wait_for_first_result(&mut child);
        let sent = Instant::now();
        for sig in &signals {
            signal(&child, *sig);
            std::thread::sleep(Duration::from_millis(50));
        }
        let mut rest = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut rest);
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(2), "{name}: {rest}");
        assert!(
            sent.elapsed() < Duration::from_secs(30),
            "{name}: stopping took {:?}",
            sent.elapsed()
        );
        let run = only_run_dir(&runs);
        let report = read_reports(
            &run.join("junit.xml"),
            &run.join("cucumber.json"),
            &run.join("report/index.html"),
        );
        assert!(
            report.contains("junit 56"),
            "{name}: every scenario is reported: {report}"
        );
        assert!(!report.contains("skipped 0"), "{name}: {report}");
        let leftovers: Vec<_> = walk(&run)
            .into_iter()
            .filter(|p| p.to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{name}: {leftovers:?}");
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// Issue 15, items 3 and 4: a file that is not firmware is refused before any
/// lab or board starts, with the reason, and the asked-for reports say so.
#[test]
fn a_file_that_is_not_firmware_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.bin");
    std::fs::write(&empty, b"").unwrap();
    for (firmware, why) in [("/etc/passwd", "0xe9"), (empty.to_str().unwrap(), "empty")] {
        let runs = dir.path().join("runs");
        let junit = dir.path().join("j.xml");
        let out = hil()
            .args(["run", "features/clock.feature", "--firmware", firmware])
            .args([
                "--runs-dir",
                runs.to_str().unwrap(),
                "--junit",
                junit.to_str().unwrap(),
            ])
            .output()
            .unwrap();
        let all = text(&out);
        assert_eq!(out.status.code(), Some(2), "{all}");
        assert!(all.contains(why) && all.contains("--force"), "{all}");
        assert!(!runs.exists(), "nothing ran: {all}");
        let xml = std::fs::read_to_string(&junit).unwrap();
        assert!(xml.contains("skipped=\"6\"") && xml.contains(why), "{xml}");
    }
}

/// Issue 15, item 6: a password given in a step never reaches an artifact, and
/// no private key does either (the lab's keys live in the run directory, 0600).
#[test]
fn secrets_never_reach_an_artifact() {
    let secret = "Sup3r-S3cret!pw";
    let dir = tempfile::tempdir().unwrap();
    let feature = dir.path().join("secret.feature");
    std::fs::write(
        &feature,
        format!("Feature: secrets\n  Scenario: the right password\n    Given the board under test\n    And the broker requires username \"hil\" and password \"{secret}\"\n    When the board boots\n    Then the device connects to the broker within 20 s\n\n  Scenario: the wrong one\n    Given the board under test\n    And the broker requires username \"hil\" and password \"{secret}\"\n    And the device is provisioned with username \"hil\" and password \"{secret}-not\"\n    When the board boots\n    Then the device connects to the broker within 3 s\n"),
    )
    .unwrap();
    let outputs = Outputs::in_dir(dir.path());
    let out = outputs.run(hil().arg("run").arg(&feature));
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(!all.contains(secret), "the console: {all}");
    let run = only_run_dir(&outputs.runs);
    let mut files = walk(&run);
    files.extend([outputs.junit, outputs.json, outputs.html.join("index.html")]);
    let key_header = format!("{} KEY", "PRIVATE");
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        let content = String::from_utf8_lossy(&bytes);
        assert!(
            !content.contains(secret),
            "{} holds the password",
            file.display()
        );
        let is_key_file =
            file.extension().is_some_and(|e| e == "pem") && content.contains(&key_header);
        if is_key_file {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{} is readable by others", file.display());
        } else {
            assert!(
                !content.contains(&key_header),
                "{} holds a private key",
                file.display()
            );
        }
    }
}

/// Issue 15, items 7 and 10: --jobs never exceeds the boards given, bad values
/// are refused, and a selection that matches nothing is an error unless allowed.
#[test]
fn selections_and_jobs_are_checked() {
    for args in [
        &["run", "--jobs", "0"][..],
        &["run", "--jobs", "1000"][..],
        &["run", "--tags", "@typo"][..],
        &["run", "--tags", "((((@a"][..],
        &["run", "--board", "virtual:500"][..],
    ] {
        let out = hil().args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", text(&out));
    }
    let out = hil()
        .args(["run", "--tags", "@typo", "--allow-empty"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs");
    let out = hil()
        .args([
            "run",
            "features/flash_boot.feature",
            "--board",
            "virtual:2",
            "--jobs",
            "1000",
        ])
        .args(["--runs-dir", runs.to_str().unwrap()])
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("on virtual:2, 2 at a time"), "{all}");
    let run = only_run_dir(&runs);
    let timeline = std::fs::read_to_string(run.join("timeline.jsonl")).unwrap();
    let boards: std::collections::BTreeSet<&str> = timeline
        .lines()
        .filter(|l| l.contains("\"what\":\"reset\""))
        .filter_map(|l| l.split("\"device\":\"").nth(1))
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert_eq!(boards.len(), 2, "{boards:?}");
    let flash_files: Vec<PathBuf> = walk(&run)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "flash"))
        .collect();
    assert!(
        flash_files.is_empty(),
        "a run leaves no 4 MB flash files: {flash_files:?}"
    );
}
