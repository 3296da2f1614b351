//! `firmware-under-test/esp8266/build.sh`, the real ESP8266 build, tested for
//! what can be tested without its sources (CI cannot fetch them): the
//! environments and flags it derives from platformio.ini, its argument
//! handling, and that every missing input is named, pins included.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use hil_twin::descriptor::Variant;

fn sketch() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../firmware-under-test/esp8266")
}

/// Runs build.sh with only PATH (and `env`) set.
fn build_sh(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new("bash")
        .arg(sketch().join("build.sh"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("TMPDIR", std::env::temp_dir())
        .envs(env.iter().copied())
        .output()
        .expect("run build.sh")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `[env:NAME]` → the -D flags of its own build_flags line, read independently
/// of the script's awk.
fn platformio_variant_flags() -> BTreeMap<String, Vec<String>> {
    let ini = std::fs::read_to_string(sketch().join("platformio.ini")).unwrap();
    let mut envs = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in ini.lines() {
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            current = section.strip_prefix("env:").map(str::to_owned);
            if let Some(name) = &current {
                envs.insert(name.clone(), Vec::new());
            }
        } else if let (Some(name), Some(flags)) = (&current, line.strip_prefix("build_flags =")) {
            let flags = flags.split_whitespace().filter(|f| f.starts_with("-D"));
            envs.insert(name.clone(), flags.map(str::to_owned).collect());
        }
    }
    envs
}

fn listed() -> BTreeMap<String, Vec<String>> {
    let out = build_sh(&["--list"], &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| {
            let (name, flags) = l.split_once('\t').unwrap();
            (
                name.to_owned(),
                flags.split_whitespace().map(str::to_owned).collect(),
            )
        })
        .collect()
}

#[test]
fn it_builds_the_reference_and_every_variant_with_the_flags_platformio_gives_them() {
    let listed = listed();
    let mut expected = platformio_variant_flags();
    // A board of its own, not a variant: built with PlatformIO only.
    expected.remove("d1_mini");
    assert_eq!(listed, expected);
    assert_eq!(
        listed["nodemcuv2"],
        Vec::<String>::new(),
        "the reference adds no flag"
    );
    for variant in Variant::ALL.iter().filter(|v| **v != Variant::Reference) {
        let flags = listed
            .get(variant.as_str())
            .unwrap_or_else(|| panic!("variant {variant:?} is not built"));
        assert!(
            flags.contains(&format!("-DHIL_FW_NAME=hil-{}", variant.as_str())),
            "{variant:?}: {flags:?}"
        );
        assert!(flags.len() >= 2, "{variant:?} sets a knob: {flags:?}");
    }
    // The reference and every variant of the catalogue.
    assert_eq!(listed.len(), Variant::ALL.len(), "{listed:?}");
}

#[test]
fn check_names_every_missing_input_and_exits_1() {
    let out = build_sh(&["--check"], &[]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    for var in [
        "ARDUINO_GIT",
        "NEWLIB_GIT",
        "BEARSSL_GIT",
        "HAL_GIT",
        "QTC_GIT",
        "PUBSUB_GIT",
        "AJSON_GIT",
    ] {
        assert!(err.contains(var), "{var} missing from:\n{err}");
    }
    assert!(
        err.contains("gcc-12-source")
            || Path::new("/usr/src/gcc-12/gcc-12.2.0-dfsg.tar.xz").exists(),
        "{err}"
    );
    if which("xtensa-lx106-elf-gcc").is_none() {
        assert!(err.contains("apt-get install gcc-xtensa-lx106"), "{err}");
    }
}

fn which(tool: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|p| p.join(tool))
        .find(|p| p.is_file())
}

#[test]
fn a_build_without_its_inputs_stops_before_doing_anything_and_exits_2() {
    let work = tempfile::tempdir().unwrap();
    let out = build_sh(&["--work", work.path().to_str().unwrap(), "no-ntp"], &[]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("cannot build: these inputs are missing"),
        "{err}"
    );
    assert!(err.contains("ARDUINO_GIT"), "{err}");
    assert_eq!(
        std::fs::read_dir(work.path()).unwrap().count(),
        0,
        "nothing was written"
    );
}

#[test]
fn bad_arguments_exit_2_with_the_reason() {
    for (args, words) in [
        (&["--bogus"][..], "unknown option --bogus"),
        (&["--jobs", "0"][..], "--jobs takes a positive number"),
        (&["--work"][..], "--work needs a value"),
        (&["no-such-env"][..], "no environment 'no-such-env'"),
        (&["d1_mini"][..], "builds nodemcuv2 environments only"),
        (
            &["--fixtures", "no-ntp"][..],
            "--fixtures needs the nodemcuv2",
        ),
    ] {
        let out = build_sh(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains(words),
            "{args:?}: expected `{words}` in:\n{err}"
        );
    }
    let out = build_sh(&["--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stderr).contains("ARDUINO_GIT"));
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .env("GIT_AUTHOR_NAME", "t")
        .env("GIT_AUTHOR_EMAIL", "t@example.invalid")
        .env("GIT_COMMITTER_NAME", "t")
        .env("GIT_COMMITTER_EMAIL", "t@example.invalid")
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "git {args:?}: {}",
        text(&status.stderr)
    );
}

#[test]
fn sources_are_held_to_their_pinned_commits_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let repo = dir.path().join("arduino");
    std::fs::create_dir_all(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("platform.txt"), "not the core\n").unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-q", "-m", "impostor"]);
    git(&repo, &["tag", "3.1.2"]);
    let not_git = dir.path().join("plain");
    std::fs::create_dir_all(&not_git).unwrap();
    let repo_s = repo.to_str().unwrap();

    // A tag 3.1.2 that is not the pinned commit is refused...
    let out = build_sh(
        &["--check"],
        &[
            ("ARDUINO_GIT", repo_s),
            ("NEWLIB_GIT", not_git.to_str().unwrap()),
        ],
    );
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("resolving to the pinned 210897ef"), "{err}");
    assert!(err.contains("which is not a git directory"), "{err}");
    // ...a commit the directory lacks is named...
    let out = build_sh(&["--check"], &[("BEARSSL_GIT", repo_s)]);
    assert!(
        text(&out.stderr)
            .contains("commit b024386d461abd1b7b9be3117e2516b7541f1201 in BEARSSL_GIT"),
        "{}",
        text(&out.stderr)
    );
    // ...and an explicit *_COMMIT is taken as a deliberate choice.
    let out = build_sh(
        &["--check"],
        &[("ARDUINO_GIT", repo_s), ("ARDUINO_COMMIT", "3.1.2")],
    );
    let err = text(&out.stderr);
    assert!(!err.contains("ARDUINO"), "{err}");
}

#[test]
fn the_fixture_readme_names_the_pins_the_script_builds_with() {
    let script = std::fs::read_to_string(sketch().join("build.sh")).unwrap();
    let readme = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/firmware/README.md"),
    )
    .unwrap();
    let pins: Vec<&str> = script
        .lines()
        .skip_while(|l| !l.starts_with("pins=("))
        .skip(1)
        .take_while(|l| !l.starts_with(')'))
        .collect();
    assert_eq!(pins.len(), 7, "{pins:?}");
    for pin in pins {
        let fields: Vec<&str> = pin.trim().trim_matches('"').split_whitespace().collect();
        let shown = if fields[2] == "-" {
            fields[1]
        } else {
            fields[2]
        };
        assert!(
            readme.contains(shown),
            "fixtures/firmware/README.md does not name {} at {shown}",
            fields[0]
        );
    }
    assert!(
        readme.contains("build.sh --fixtures"),
        "the README says how to rebuild"
    );
}

/// The flags `build.sh --list` gives nodemcuv2 with `args` added.
fn listed_reference_flags(args: &[&str]) -> String {
    let mut all = vec!["--list"];
    all.extend_from_slice(args);
    let out = build_sh(&all, &[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("nodemcuv2\t"))
        .unwrap_or_else(|| panic!("no nodemcuv2 line:\n{}", text(&out.stdout)))
        .to_owned()
}

/// Compiles a program that includes the sketch's compiled_root.h (and through
/// it config.h, production_root.h and, with the flags, the exported header)
/// with `flags` spliced into a shell command line, as sketch.mk's recipes
/// hand them to the shell; runs it and returns what it prints: the compiled-in
/// broker host, a newline, the compiled-in root's PEM.
fn compiled_in(flags: &str, work: &Path) -> String {
    let stub = work.join("stub");
    std::fs::create_dir_all(&stub).unwrap();
    // As the ESP8266 core's <pgmspace.h> would, for a host compiler.
    std::fs::write(stub.join("pgmspace.h"), "#pragma once\n#define PROGMEM\n").unwrap();
    let program = work.join("compiled_in.cpp");
    std::fs::write(
        &program,
        "#include <cstdio>\n#include \"compiled_root.h\"\nint main() {\n  std::printf(\"%s\\n%s\", hil::knobs::kBrokerHost, hil::compiledRootPem());\n  return 0;\n}\n",
    )
    .unwrap();
    let exe = work.join("compiled_in");
    let line = format!(
        "g++ -std=gnu++17 -Wall -Wextra -Werror -DARDUINO -I{} -I{} {flags} {} -o {}",
        stub.display(),
        sketch().join("src").display(),
        program.display(),
        exe.display()
    );
    let out = Command::new("bash").args(["-c", &line]).output().unwrap();
    assert!(
        out.status.success(),
        "{line}\n{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let out = Command::new(&exe).output().unwrap();
    assert!(out.status.success());
    text(&out.stdout)
}

#[test]
fn a_test_build_compiles_in_the_exported_root_and_the_broker_name() {
    assert!(which("g++").is_some(), "g++ is not installed: run ci/setup");
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(["pki", "export", "--out"])
        .arg(dir.path().join("lab-ca"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let header = dir.path().join("lab-ca/hil_lab_root.h");
    let flags = listed_reference_flags(&[
        "--broker-host",
        "mqtt.team.test",
        "--lab-root-header",
        header.to_str().unwrap(),
    ]);
    assert!(
        flags.contains(r#"'-DHIL_BROKER_HOST="mqtt.team.test"'"#)
            && flags.contains(r#"'-DHIL_LAB_ROOT_HEADER="hil_lab_root.h"'"#),
        "{flags}"
    );
    // Every variant gets the same two changes on top of its own flags.
    let variant = listed()["no-ntp"].join(" ");
    assert!(variant.contains("-DHIL_CLOCK_UPTIME"), "{variant}");

    let printed = compiled_in(&flags, dir.path());
    let (host, pem) = printed.split_once('\n').unwrap();
    assert_eq!(host, "mqtt.team.test");
    let exported = std::fs::read_to_string(dir.path().join("lab-ca/lab-root.pem")).unwrap();
    assert_eq!(pem, exported, "the test build trusts the exported root");

    // Without the flags: the release's broker and production root.
    let printed = compiled_in(&listed_reference_flags(&[]), dir.path());
    let (host, pem) = printed.split_once('\n').unwrap();
    assert_eq!(host, "mqtt.example.com");
    let production = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../firmware-under-test/contract/src/production-root.pem"),
    )
    .unwrap();
    assert_eq!(pem, production);
}

#[test]
fn a_test_build_refuses_a_bad_name_or_header_and_never_becomes_a_fixture() {
    let dir = tempfile::tempdir().unwrap();
    let not_ours = dir.path().join("other.h");
    std::fs::write(&not_ours, "static const char ROOT[] = \"x\";\n").unwrap();
    let spaced = dir.path().join("with space");
    std::fs::create_dir_all(&spaced).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(["pki", "export", "--out"])
        .arg(&spaced)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let spaced_header = spaced.join("hil_lab_root.h");
    for (args, words) in [
        (
            vec!["--list", "--broker-host", "10.0.0.300"],
            "takes a DNS name",
        ),
        (
            vec!["--list", "--broker-host", "mqtt.team.test\""],
            "takes a DNS name",
        ),
        (vec!["--list", "--broker-host", "mqtt"], "takes a DNS name"),
        (
            vec!["--list", "--lab-root-header", "/nonexistent/hil_lab_root.h"],
            "no file",
        ),
        (
            vec!["--list", "--lab-root-header", not_ours.to_str().unwrap()],
            "does not define HIL_LAB_ROOT_PEM",
        ),
        (
            vec![
                "--list",
                "--lab-root-header",
                spaced_header.to_str().unwrap(),
            ],
            "copy it to a plain path",
        ),
        (
            vec!["--fixtures", "--broker-host", "mqtt.team.test", "nodemcuv2"],
            "never a fixture",
        ),
    ] {
        let out = build_sh(&args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = text(&out.stderr);
        assert!(
            err.contains(words),
            "{args:?}: expected `{words}` in:\n{err}"
        );
    }
}
