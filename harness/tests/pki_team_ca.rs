//! The catalogue under a team's own test CA and broker name, judged by OpenSSL
//! (`openssl verify -CAfile team-ca.pem -verify_hostname NAME`, `s_client`
//! against `hil lab`, `dig` against its DNS), and every bad CA, key or name
//! refused with exit 2 and the problem named.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::cli::{dig_short, hil, lossy, LabChild};
use hil::pki::{Outcome, ProfileId};

const NAME: &str = "mqtt.example.com";

fn openssl(args: &[&str], cwd: &Path) -> Output {
    common::require("openssl");
    let out = Command::new("openssl")
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}:\n{}",
        lossy(&out.stderr)
    );
    out
}

/// A team CA made the way a team would make one: `openssl req -x509` with a
/// PrintableString country and a UTF-8 organisation (so the issuer name must be
/// repeated byte for byte).
fn team_ca(dir: &Path, label: &str, key_spec: &str, basic_constraints: &str) -> (String, String) {
    let cert = format!("{label}-ca.pem");
    let key = format!("{label}-ca-key.pem");
    openssl(
        &[
            "req",
            "-x509",
            "-newkey",
            key_spec,
            "-nodes",
            "-days",
            "3650",
            "-utf8",
            "-subj",
            "/C=DE/O=Müller Test GmbH/CN=Team Test CA",
            "-addext",
            basic_constraints,
            "-keyout",
            &key,
            "-out",
            &cert,
        ],
        dir,
    );
    (cert, key)
}

fn good_ca(dir: &Path) -> (String, String) {
    team_ca(dir, "good", "rsa:2048", "basicConstraints=critical,CA:TRUE")
}

/// What OpenSSL is expected to say (it also falls back to the CN; see
/// tests/pki_openssl.rs).
fn openssl_expectation(id: ProfileId) -> Outcome {
    match id {
        ProfileId::CnOnly => Outcome::Connects,
        _ => id.expectation().web_pki,
    }
}

fn verify(dir: &Path, profile: &Path, ca: &str, name: &str) -> (Outcome, String) {
    let chain = std::fs::read_to_string(profile.join("broker-chain.pem")).unwrap();
    let certs: Vec<_> = pem::parse_many(chain.as_bytes()).unwrap();
    let (target, rest) = certs.split_first().unwrap();
    let work = profile.join("verify");
    std::fs::create_dir_all(&work).unwrap();
    std::fs::write(work.join("target.pem"), pem::encode(target)).unwrap();
    let mut cmd = Command::new("openssl");
    cmd.current_dir(dir)
        .args(["verify", "-verify_hostname", name, "-purpose", "sslserver"])
        .args(["-auth_level", "1", "-CAfile", ca]);
    if !rest.is_empty() {
        std::fs::write(work.join("untrusted.pem"), pem::encode_many(rest)).unwrap();
        cmd.arg("-untrusted").arg(work.join("untrusted.pem"));
    }
    let out = cmd.arg(work.join("target.pem")).output().unwrap();
    let said = format!("{}{}", lossy(&out.stdout), lossy(&out.stderr));
    let outcome = if out.status.success() {
        Outcome::Connects
    } else {
        Outcome::Refuses
    };
    (outcome, said)
}

#[test]
fn the_whole_catalogue_under_a_team_ca_and_name_verifies_as_declared_by_openssl() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, key) = good_ca(dir.path());
    let out = hil(
        &[
            "pki",
            "generate",
            "all",
            "--out",
            "certs",
            "--ca-cert",
            &ca,
            "--ca-key",
            &key,
            "--broker-name",
            NAME,
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", lossy(&out.stderr));
    let ca_pem = std::fs::read_to_string(dir.path().join(&ca)).unwrap();
    let ca_der = pem::parse(ca_pem.as_bytes()).unwrap().into_contents();
    let mut mismatches = Vec::new();
    for id in ProfileId::ALL {
        let profile: PathBuf = dir.path().join("certs").join(id.as_str());
        let anchors = std::fs::read_to_string(profile.join("device-anchors.pem")).unwrap();
        assert_eq!(
            pem::parse(anchors.as_bytes()).unwrap().into_contents(),
            ca_der,
            "{id}: the device trusts the team CA"
        );
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(profile.join("manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest["host"], NAME, "{id}");
        let (outcome, said) = verify(dir.path(), &profile, &ca, NAME);
        if outcome != openssl_expectation(*id) {
            mismatches.push(format!("{id}: openssl says {outcome}: {said}"));
        }
    }
    assert!(mismatches.is_empty(), "{}", mismatches.join("\n"));

    // Refused for the reason each was built for, at the team's name.
    let certs = dir.path().join("certs");
    for (id, fragment) in [
        (ProfileId::WrongSan, "hostname mismatch"),
        (ProfileId::WildcardMismatch, "hostname mismatch"),
        (
            ProfileId::UntrustedRoot,
            "unable to get local issuer certificate",
        ),
        (ProfileId::Expired, "certificate has expired"),
    ] {
        let (outcome, said) = verify(dir.path(), &certs.join(id.as_str()), &ca, NAME);
        assert_eq!(outcome, Outcome::Refuses, "{id}");
        assert!(said.contains(fragment), "{id}: {said}");
    }
    // The good leaf is for the team's name, not the lab's.
    let (outcome, said) = verify(dir.path(), &certs.join("valid"), &ca, "broker.hil.test");
    assert_eq!(outcome, Outcome::Refuses, "{said}");
    // untrusted-root still chains to the lab's own Evil Root, not the team CA.
    let chain = std::fs::read_to_string(certs.join("untrusted-root/broker-chain.pem")).unwrap();
    assert!(
        openssl_text(&chain).contains("Evil Intermediate"),
        "untrusted-root must stay the lab's impostor"
    );
}

fn openssl_text(pem_text: &str) -> String {
    let mut child = Command::new("openssl")
        .args(["x509", "-noout", "-issuer"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(pem_text.as_bytes())
        .unwrap();
    lossy(&child.wait_with_output().unwrap().stdout)
}

/// Runs `hil pki generate valid` with `args` added and expects exit 2 naming
/// `code`, with no private key material on the terminal.
fn refused(dir: &Path, args: &[&str], code: &str) -> String {
    let mut all = vec!["pki", "generate", "valid", "--out", "certs"];
    all.extend_from_slice(args);
    let out = hil(&all, dir);
    let err = lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(code), "{args:?}: expected {code} in:\n{err}");
    assert!(!err.contains("PRIVATE KEY"), "{err}");
    assert!(!dir.join("certs").exists(), "nothing written on bad input");
    err
}

#[test]
fn a_ca_that_is_no_ca_a_wrong_key_a_short_key_and_a_bad_name_exit_2_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (good, good_key) = good_ca(d);

    let (leafish, leafish_key) =
        team_ca(d, "leaf", "rsa:2048", "basicConstraints=critical,CA:FALSE");
    let err = refused(
        d,
        &["--ca-cert", &leafish, "--ca-key", &leafish_key],
        "hil::pki::not_a_ca",
    );
    assert!(err.contains("CA:FALSE"), "{err}");

    let (_, other_key) = team_ca(d, "other", "rsa:3072", "basicConstraints=critical,CA:TRUE");
    refused(
        d,
        &["--ca-cert", &good, "--ca-key", &other_key],
        "hil::pki::key_mismatch",
    );

    let (short, short_key) = team_ca(d, "short", "rsa:1024", "basicConstraints=critical,CA:TRUE");
    let err = refused(
        d,
        &["--ca-cert", &short, "--ca-key", &short_key],
        "hil::pki::weak_key",
    );
    assert!(err.contains("1024"), "{err}");

    for bad in [
        "mqtt_broker.example.com",
        "example.com",
        "10.1.2.3",
        "mqtt..example.com",
    ] {
        refused(d, &["--broker-name", bad], "hil::pki::broker_name");
    }

    // A passphrase-protected key: said so, not "cannot parse".
    openssl(
        &[
            "pkey",
            "-in",
            &good_key,
            "-aes256",
            "-passout",
            "pass:secret",
            "-out",
            "encrypted-key.pem",
        ],
        d,
    );
    refused(
        d,
        &["--ca-cert", &good, "--ca-key", "encrypted-key.pem"],
        "hil::pki::encrypted_key",
    );

    // A CA whose validity does not cover the lab clock.
    refused(
        d,
        &[
            "--ca-cert",
            &good,
            "--ca-key",
            &good_key,
            "--at",
            "2001-01-01T00:00:00Z",
        ],
        "hil::pki::ca_not_valid",
    );
    refused(
        d,
        &["--ca-cert", "missing.pem", "--ca-key", &good_key],
        "hil::pki::read",
    );
    refused(
        d,
        &["--ca-cert", &good_key, "--ca-key", &good_key],
        "hil::pki::ca_parse",
    );

    // The certificate without its key is a usage error before anything runs.
    let out = hil(
        &[
            "pki",
            "generate",
            "valid",
            "--out",
            "certs",
            "--ca-cert",
            &good,
        ],
        d,
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        lossy(&out.stderr).contains("--ca-key"),
        "{}",
        lossy(&out.stderr)
    );
}

#[test]
fn the_lab_serves_the_team_chain_for_the_team_name_and_its_dns_resolves_it() {
    common::require("dig");
    let dir = tempfile::tempdir().unwrap();
    let (ca, key) = good_ca(dir.path());
    let lab = LabChild::start(
        Command::new(env!("CARGO_BIN_EXE_hil"))
            .args([
                "lab",
                "--json",
                "--ca-cert",
                &ca,
                "--ca-key",
                &key,
                "--broker-name",
                NAME,
                "--run-dir",
                "run",
            ])
            .current_dir(dir.path()),
    );
    assert_eq!(lab.first["host"], NAME);

    assert_eq!(dig_short(lab.addr("dns"), NAME), "127.0.0.1");

    let tls = lab.first["mqtt_tls"].as_str().unwrap().to_owned();
    let s_client = Command::new("openssl")
        .current_dir(dir.path())
        .args(["s_client", "-connect", &tls, "-servername", NAME])
        .args([
            "-verify_hostname",
            NAME,
            "-CAfile",
            &ca,
            "-verify_return_error",
            "-brief",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let said = format!("{}{}", lossy(&s_client.stdout), lossy(&s_client.stderr));

    lab.interrupt();
    assert!(said.contains("Verification: OK"), "{said}");
}
