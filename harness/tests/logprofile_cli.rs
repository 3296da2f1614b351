//! `hil logprofile check` as a team runs it on its own firmware's output, and
//! the step table behind it kept in step with the vocabulary.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;

use common::cli::{hil, lossy};
use common::root;
use hil::logprofile::step_uses;
use hil::runner::steps::{vocabulary, Kind};

/// The row `hil logprofile check` printed for line `n`.
fn row(stdout: &str, n: usize) -> &str {
    stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(&n.to_string()))
        .unwrap_or_else(|| panic!("no row {n} in:\n{stdout}"))
}

#[test]
fn every_then_phrase_of_the_vocabulary_says_what_it_reads() {
    let thens: Vec<&str> = vocabulary()
        .iter()
        .filter(|p| p.kind == Kind::Then)
        .map(|p| p.doc)
        .collect();
    for then in &thens {
        assert!(
            step_uses().iter().any(|u| u.phrase == *then),
            "`{then}` is a Then phrase with no entry in hil::logprofile::step_uses()"
        );
    }
    for used in step_uses() {
        assert!(
            thens.contains(&used.phrase),
            "`{}` is not a Then phrase of the vocabulary",
            used.phrase
        );
    }
}

#[test]
fn the_reference_profile_reads_a_reference_transcript_line_by_line() {
    // A reviewed transcript of the reference firmware (normalised), as raw serial text.
    let snapshot = std::fs::read_to_string(
        root().join("features/snapshots/transcript__the_boot_and_first_connection_transcript.snap"),
    )
    .unwrap();
    let body = snapshot.splitn(3, "---\n").nth(2).unwrap();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("serial.log"), body.replace('\n', "\r\n")).unwrap();
    let profiles = root().join("fixtures/log-profiles");
    let out = hil(
        &[
            "logprofile",
            "check",
            "reference",
            "serial.log",
            "--log-profiles",
            profiles.to_str().unwrap(),
        ],
        dir.path(),
    );
    let stdout = lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", lossy(&out.stderr));
    assert!(row(&stdout, 1).contains(" rom_banner ") && row(&stdout, 1).contains("cause=2"));
    assert!(
        row(&stdout, 2).contains(" unrecognised ") && row(&stdout, 2).contains("load 0x40100000")
    );
    let boot = body.lines().position(|l| l.starts_with("[boot]")).unwrap() + 1;
    assert!(
        row(&stdout, boot).contains(" boot ") && row(&stdout, boot).contains("fw=hil-reference")
    );
    assert!(
        stdout.contains("The profile has a pattern for every event."),
        "{stdout}"
    );
    assert!(
        stdout.contains("Every Then step can judge this firmware."),
        "{stdout}"
    );
}

#[test]
fn a_forum_style_firmware_is_told_which_steps_cannot_judge_it() {
    let dir = tempfile::tempdir().unwrap();
    // A run's transcript.txt: stamped lines, a harness note, and bytes that are not UTF-8.
    let mut transcript = b"[     0.101]  ets Jan  8 2013,rst cause:2, boot mode:(3,6)\n\
        [     0.350] Connecting to hil-lab\n\
        [     1.500] >> step: When the board boots\n\
        [     2.010] Attempting MQTT connection...failed, rc=-2 try again in 5 seconds\n"
        .to_vec();
    transcript.extend_from_slice(b"[     2.020] \xff\xfe\x1b[0m noise\n");
    std::fs::write(dir.path().join("transcript.txt"), &transcript).unwrap();
    let profile = root().join("fixtures/log-profiles/seed-style.toml");
    let out = hil(
        &[
            "logprofile",
            "check",
            profile.to_str().unwrap(),
            "transcript.txt",
        ],
        dir.path(),
    );
    let stdout = lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", lossy(&out.stderr));
    assert!(row(&stdout, 2).contains("wifi_connecting"), "{stdout}");
    assert!(row(&stdout, 3).contains("(harness)"), "{stdout}");
    assert!(row(&stdout, 4).contains("mqtt_failed") && row(&stdout, 4).contains("rc=-2"));
    // The escape byte is shown, not sent to the terminal.
    assert!(row(&stdout, 5).contains("unrecognised") && !row(&stdout, 5).contains('\x1b'));
    let unjudged = stdout
        .split("cannot judge this firmware")
        .nth(1)
        .expect("a list of steps that cannot judge");
    assert!(
        unjudged.contains("the device reports a TLS failure with code <n>")
            && unjudged.contains("needs tls_error"),
        "{stdout}"
    );
    assert!(stdout.contains("tls_error"), "{stdout}");

    let out = hil(
        &[
            "logprofile",
            "check",
            profile.to_str().unwrap(),
            "transcript.txt",
            "--json",
        ],
        dir.path(),
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["lines"][3]["event"], "mqtt_failed");
    assert_eq!(report["lines"][3]["fields"]["rc"], "-2");
    assert_eq!(report["lines"][2]["harness"], true);
    assert!(report["never_produced"]
        .as_array()
        .unwrap()
        .contains(&serde_json::json!("tls_error")));
    assert_eq!(report["cannot_judge"][0]["reads"][0], "tls_error");
}

#[test]
fn an_invalid_profile_is_refused_at_its_line_and_a_missing_file_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("t.log"), "hello\n").unwrap();
    for (body, line, words) in [
        (
            "name = \"mine\"\n[events]\nboot = '^(boot'\n",
            3,
            "regex parse error",
        ),
        (
            "name = \"mine\"\n[events]\ntls_eror = 'x'\n",
            3,
            "unknown event `tls_eror`",
        ),
        (
            "name = \"mine\"\n\n[events]\ntls_error = 'TLS error (\\d+)'\n",
            4,
            "(?P<code>",
        ),
        (
            "name = \"mine\"\npatterns = 1\n[events]\n",
            2,
            "unknown field `patterns`",
        ),
    ] {
        std::fs::write(dir.path().join("mine.toml"), body).unwrap();
        let out = hil(&["logprofile", "check", "mine.toml", "t.log"], dir.path());
        let err = lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{body}: {err}");
        assert!(err.contains(&format!("mine.toml:{line}:")), "{body}: {err}");
        assert!(err.contains(words), "{body}: expected `{words}` in {err}");
        assert!(err.contains("hil::logprofile::syntax"), "{err}");
    }
    std::fs::write(dir.path().join("mine.toml"), "name = \"mine\"\n[events]\n").unwrap();
    let out = hil(
        &["logprofile", "check", "mine.toml", "missing.log"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(lossy(&out.stderr).contains("missing.log"));
    let out = hil(
        &["logprofile", "check", "no-such-profile", "t.log"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(lossy(&out.stderr).contains("hil::logprofile::unknown"));
}

#[test]
fn the_reference_doc_lists_every_event_with_its_required_groups_and_its_example_loads() {
    use hil::logprofile::{LogProfile, SemanticEvent};
    let doc = std::fs::read_to_string(root().join("docs/log-profiles.md")).unwrap();
    for event in SemanticEvent::ALL {
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", event.key())))
            .unwrap_or_else(|| panic!("docs/log-profiles.md has no row for {event}"));
        let required = row.split('|').nth(2).unwrap();
        for field in event.required_fields() {
            assert!(required.contains(&format!("`{field}`")), "{row}");
        }
        for field in event.known_fields() {
            assert!(row.contains(&format!("`{field}`")), "{row}");
        }
    }
    let example = doc
        .split("```toml\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .unwrap();
    let profile = LogProfile::parse(example, Path::new("docs/log-profiles.md")).unwrap();
    let seen = profile
        .recognise("TLS handshake failed: 56 (bad server name)")
        .unwrap();
    assert_eq!(seen.event, SemanticEvent::TlsError);
    assert_eq!(seen.field("code"), Some("56"));
}
