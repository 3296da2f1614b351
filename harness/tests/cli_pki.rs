//! `hil pki` as a user runs it: output, files, modes and errors.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use common::cli::{hil, lossy};

#[test]
fn list_shows_every_id_with_outcome_and_code() {
    let dir = tempfile::tempdir().unwrap();
    let out = hil(&["pki", "list"], dir.path());
    assert!(out.status.success());
    let stdout = lossy(&out.stdout);
    for id in hil::pki::ProfileId::ALL {
        let line = stdout
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id.as_str()));
        let line = line.unwrap_or_else(|| panic!("{id} missing from:\n{stdout}"));
        let e = id.expectation();
        assert!(line.contains(&e.outcome.to_string()), "{line}");
        assert!(line.contains(&e.bearssl_code.get().to_string()), "{line}");
    }
}

#[test]
fn list_json_is_machine_readable() {
    let dir = tempfile::tempdir().unwrap();
    let out = hil(&["pki", "list", "--json"], dir.path());
    assert!(out.status.success());
    let entries: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(entries.len(), 21);
    let md5 = entries.iter().find(|e| e["id"] == "md5-signature").unwrap();
    assert_eq!(md5["outcome"], "refuses");
    assert_eq!(md5["bearssl_code"], 49);
    let cn_only = entries.iter().find(|e| e["id"] == "cn-only").unwrap();
    assert_eq!(cn_only["outcome"], "connects");
    assert_eq!(cn_only["web_pki"], "refuses");
}

#[test]
fn generate_writes_the_profile_files_with_private_keys_0600() {
    let dir = tempfile::tempdir().unwrap();
    let out = hil(
        &[
            "pki",
            "generate",
            "expired",
            "--out",
            "certs",
            "--at",
            "2027-03-01T08:00:00Z",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", lossy(&out.stderr));
    let profile = dir.path().join("certs/expired");
    for file in [
        "device-anchors.pem",
        "broker-chain.pem",
        "broker-key.pem",
        "client-ca.pem",
        "foreign-client-ca.pem",
        "client-cert.pem",
        "client-key.pem",
        "manifest.json",
    ] {
        assert!(profile.join(file).is_file(), "{file} missing");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for key in ["broker-key.pem", "client-key.pem"] {
            let mode = std::fs::metadata(profile.join(key))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600, "{key}");
        }
    }
    let chain = std::fs::read_to_string(profile.join("broker-chain.pem")).unwrap();
    assert_eq!(chain.matches("BEGIN CERTIFICATE").count(), 2);

    let manifest_text = std::fs::read_to_string(profile.join("manifest.json")).unwrap();
    assert!(
        !manifest_text.contains("PRIVATE KEY"),
        "the manifest must hold no secret"
    );
    let manifest: serde_json::Value = serde_json::from_str(&manifest_text).unwrap();
    assert_eq!(manifest["id"], "expired");
    assert_eq!(manifest["lab_clock"], "2027-03-01T08:00:00Z");
    assert_eq!(manifest["expected"]["bearssl_code"], 54);
    assert_eq!(
        manifest["broker_chain"][0]["not_after"],
        "2027-02-28T08:00:00Z"
    );
    assert_eq!(manifest["leaf"]["sha1"].as_str().map(str::len), Some(40));
    assert_eq!(
        manifest["leaf"]["public_key_sha1"].as_str().map(str::len),
        Some(40)
    );
    // Only the asked-for profile is written.
    assert!(!dir.path().join("certs/valid").exists());
}

#[test]
fn an_unknown_profile_lists_the_valid_ids_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = hil(&["pki", "generate", "wrong-sans", "--out", "x"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let stderr = lossy(&out.stderr);
    assert!(
        stderr.contains("unknown certificate profile `wrong-sans`"),
        "{stderr}"
    );
    assert!(
        stderr.contains("wrong-san") && stderr.contains("clientauth-eku"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("x").exists(),
        "nothing is written for bad input"
    );
}

#[test]
fn a_malformed_clock_is_rejected_with_an_example() {
    let dir = tempfile::tempdir().unwrap();
    let out = hil(
        &["pki", "generate", "all", "--out", "x", "--at", "yesterday"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        lossy(&out.stderr).contains("RFC 3339"),
        "{}",
        lossy(&out.stderr)
    );
}

#[test]
fn generate_into_an_unwritable_place_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("blocker"), "a file, not a directory").unwrap();
    let out = hil(
        &["pki", "generate", "valid", "--out", "blocker/sub"],
        dir.path(),
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = lossy(&out.stderr);
    assert!(
        stderr.contains("could not write") && stderr.contains("blocker"),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}
