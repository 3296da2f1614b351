#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design
//! The CI templates for runners with boards (ci/github, ci/gitlab), the udev rules
//! and the board-farm guide's ser2net example, checked by tools nobody here wrote:
//! check-jsonschema with its vendored GitHub Actions workflow and GitLab CI schemas,
//! and ruamel.yaml (check-jsonschema's parser) for the ser2net YAML. Both come
//! from the project venv that ci/setup fills; without them the tests fail and say
//! to run ci/setup.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use regex::Regex;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(root().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// A tool from the project venv (`HIL_VENV` or `<repo>/.venv`), else from PATH.
fn venv_tool(name: &str) -> PathBuf {
    let venv = std::env::var_os("HIL_VENV").map_or_else(|| root().join(".venv"), PathBuf::from);
    let candidate = venv.join("bin").join(name);
    if candidate.is_file() {
        return candidate;
    }
    if let Some(found) = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    }) {
        return found;
    }
    panic!(
        "`{name}` is not installed (looked in {} and on PATH): run ci/setup, which installs \
         it into the project venv",
        venv.display()
    );
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Runs check-jsonschema with one of its vendored schemas over `file`.
fn schema_check(schema: &str, file: &Path) -> Output {
    Command::new(venv_tool("check-jsonschema"))
        .args(["--builtin-schema", schema])
        .arg(file)
        .output()
        .expect("run check-jsonschema")
}

const GITHUB: &str = "ci/github/hil-hardware.yml";
const GITLAB: &str = "ci/gitlab/hil-hardware.gitlab-ci.yml";

#[test]
fn github_workflow_passes_the_github_actions_schema() {
    let out = schema_check("vendor.github-workflows", &root().join(GITHUB));
    assert!(out.status.success(), "{GITHUB}:\n{}", text(&out));
}

#[test]
fn gitlab_template_passes_the_gitlab_ci_schema() {
    let out = schema_check("vendor.gitlab-ci", &root().join(GITLAB));
    assert!(out.status.success(), "{GITLAB}:\n{}", text(&out));
}

/// Guards the two tests above against a linter that accepts anything: the same
/// files with one key misspelt must be refused.
#[test]
fn the_schema_check_refuses_a_broken_template() {
    let dir = tempfile::tempdir().unwrap();
    for (rel, schema, from, to) in [
        (GITHUB, "vendor.github-workflows", "runs-on:", "run-on:"),
        (GITLAB, "vendor.gitlab-ci", "parallel: 3", "parallel: three"),
    ] {
        let original = read(rel);
        assert!(original.contains(from), "{rel} no longer has `{from}`");
        let broken = dir.path().join(Path::new(rel).file_name().unwrap());
        std::fs::write(&broken, original.replacen(from, to, 1)).unwrap();
        let out = schema_check(schema, &broken);
        assert!(
            !out.status.success(),
            "check-jsonschema accepted {rel} with `{to}`:\n{}",
            text(&out)
        );
    }
}

/// The `hil run` command line of a template, continuation lines joined.
fn hil_run_line(template: &str) -> String {
    let joined = template.replace("\\\n", " ");
    let start = joined
        .find("hil run")
        .expect("the template never calls `hil run`");
    // GitLab's folded scalar (`>-`) continues on more-indented lines.
    let mut line = String::new();
    for (i, part) in joined[start..].lines().enumerate() {
        if i > 0 && !part.trim_start().starts_with("--") {
            break;
        }
        line.push_str(part.trim());
        line.push(' ');
    }
    line
}

#[test]
fn both_templates_check_flash_then_run_a_shard_and_keep_the_reports() {
    for rel in [GITHUB, GITLAB] {
        let template = read(rel);
        assert!(
            template.contains("ci/setup --hardware"),
            "{rel}: the job must install what it needs through ci/setup --hardware"
        );
        assert!(
            template.contains("pio run -d firmware-under-test/esp8266"),
            "{rel}: the firmware is built with PlatformIO"
        );
        let flash = template.find("hil flash --port").expect("a flash step");
        let doctor = template
            .find(r#"hil doctor --board "$board""#)
            .expect("a doctor step");
        assert!(doctor < flash, "{rel}: check the runner before flashing");
        let run = template.find("hil run").unwrap();
        assert!(flash < run, "{rel}: flash before running the catalogue");
        let line = hil_run_line(&template);
        for flag in ["--board", "--shard", "--junit", "--report"] {
            assert!(line.contains(flag), "{rel}: `hil run` lacks {flag}: {line}");
        }
        assert!(
            template.contains("esp8266"),
            "{rel}: runner label/tag esp8266"
        );
    }

    // GitHub: the matrix covers shards 1..=N exactly, N as passed to --shard.
    let github = read(GITHUB);
    let shards: usize = Regex::new(r"(?m)^  SHARDS: (\d+)$")
        .unwrap()
        .captures(&github)
        .expect("env SHARDS")[1]
        .parse()
        .unwrap();
    let matrix = Regex::new(r"shard: \[([\d, ]+)\]")
        .unwrap()
        .captures(&github)
        .expect("matrix shard list")[1]
        .split(',')
        .map(|s| s.trim().parse::<usize>().unwrap())
        .collect::<Vec<_>>();
    assert_eq!(matrix, (1..=shards).collect::<Vec<_>>(), "matrix vs SHARDS");
    assert!(github.contains(r#"--shard "${{ matrix.shard }}/$SHARDS""#));
    assert!(github.contains("runs-on: [self-hosted, linux, esp8266]"));
    assert!(github.contains("actions/upload-artifact@v4"));
    assert!(github.contains("path: hil-results/junit.xml"));
    assert!(github.contains("hil-results/report"));

    // GitLab: parallel jobs take their shard from the predefined variables and
    // the JUnit file is a report GitLab renders.
    let gitlab = read(GITLAB);
    assert!(gitlab.contains(r#"--shard "$CI_NODE_INDEX/$CI_NODE_TOTAL""#));
    assert!(Regex::new(r"(?m)^  parallel: \d+$")
        .unwrap()
        .is_match(&gitlab));
    assert!(gitlab.contains("junit: hil-results/junit.xml"));
    assert!(gitlab.contains("when: always"));
}

const GITHUB_FARM: &str = "ci/github/hil-farm.yml";
const GITLAB_FARM: &str = "ci/gitlab/hil-farm.gitlab-ci.yml";

#[test]
fn farm_templates_pass_their_schemas_and_take_places_by_tag() {
    for (rel, schema) in [
        (GITHUB_FARM, "vendor.github-workflows"),
        (GITLAB_FARM, "vendor.gitlab-ci"),
    ] {
        let out = schema_check(schema, &root().join(rel));
        assert!(out.status.success(), "{rel}:\n{}", text(&out));
        let template = read(rel);
        let line = hil_run_line(&template);
        assert!(
            line.contains(r#"--board "labgrid:board=esp8266*$PLACES""#),
            "{rel}: places by tag: {line}"
        );
        for flag in ["--firmware", "--junit", "--report"] {
            assert!(line.contains(flag), "{rel}: `hil run` lacks {flag}: {line}");
        }
        assert!(
            !line.contains("--device-ip"),
            "{rel}: the place tag ip= says it"
        );
        assert!(template.contains("LG_COORDINATOR"), "{rel}");
    }
}

#[test]
fn udev_rules_name_both_usb_serial_adapters_for_dialout_only() {
    let rules = read("ci/udev/99-hil-esp8266.rules");
    // KEY, KEY{attr}, with ==, !=, =, += or := and a double-quoted value.
    let key = Regex::new(r#"^[A-Z_]+(\{[A-Za-z0-9_]+\})?(==|!=|\+=|:=|=)"[^"]*"$"#).unwrap();
    let ids = Regex::new(r#"ATTRS\{idVendor\}=="(\w+)", ATTRS\{idProduct\}=="(\w+)""#).unwrap();
    let mut adapters = Vec::new();
    for line in rules
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        for part in line.split(", ") {
            assert!(key.is_match(part), "malformed udev key `{part}` in: {line}");
        }
        assert!(line.contains(r#"SUBSYSTEM=="tty""#), "{line}");
        assert!(line.contains(r#"GROUP="dialout""#), "{line}");
        assert!(line.contains(r#"MODE="0660""#), "{line}");
        assert!(line.contains(r#"SYMLINK+="hil-board-"#), "{line}");
        let ids = ids
            .captures(line)
            .unwrap_or_else(|| panic!("no vendor/product match: {line}"));
        adapters.push(format!("{}:{}", &ids[1], &ids[2]));
    }
    for id in ["10c4:ea60", "1a86:7523"] {
        assert!(
            adapters.iter().filter(|a| *a == id).count() >= 2,
            "{id} needs a serial-number name and a port name"
        );
    }
}

#[test]
fn the_ser2net_example_is_yaml_with_rfc2217_accepters() {
    let guide = read("docs/board-farm.md");
    let block = Regex::new(r"(?s)```yaml\n(%YAML 1\.1\n.*?)```")
        .unwrap()
        .captures(&guide)
        .expect("a ser2net YAML block in docs/board-farm.md")[1]
        .to_owned();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ser2net.yaml");
    std::fs::write(&file, &block).unwrap();
    // Parse every document with the YAML library check-jsonschema installs and
    // print each connection's accepter and connector.
    let script = "import sys\nfrom ruamel.yaml import YAML\n\
                  for doc in YAML(typ='safe').load_all(open(sys.argv[1])):\n\
                  \x20   c = doc['connection']\n\
                  \x20   print(c['accepter'], '|', c['connector'])\n";
    let out = Command::new(venv_tool("python3"))
        .args(["-c", script])
        .arg(&file)
        .output()
        .expect("run python");
    assert!(out.status.success(), "ser2net example:\n{}", text(&out));
    let connections = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<&str> = connections.lines().collect();
    assert!(lines.len() >= 2, "expected several boards: {connections}");
    let mut ports = Vec::new();
    for line in lines {
        assert!(line.starts_with("telnet(rfc2217),tcp,"), "{line}");
        assert!(line.contains("| serialdev,/dev/hil-board-"), "{line}");
        let accepter = line.split(" | ").next().unwrap();
        ports.push(accepter.rsplit(',').next().unwrap().trim().to_owned());
    }
    let unique: std::collections::BTreeSet<_> = ports.iter().collect();
    assert_eq!(unique.len(), ports.len(), "two boards on one TCP port");
}
