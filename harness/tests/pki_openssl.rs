//! Every catalogue profile, checked by verifiers nobody here wrote: `openssl verify`
//! (at the lab clock, for the profile's host name, as a TLS server) and
//! rustls-webpki. Their verdicts must match what the catalogue declares, and the
//! BearSSL divergences must show up as divergences.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::{Path, PathBuf};
use std::process::Command;

use hil::pki::{pem_bundle, Catalogue, Outcome, Profile, ProfileId};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

fn openssl() -> Command {
    let probe = Command::new("openssl").arg("version").output();
    assert!(
        probe.is_ok_and(|o| o.status.success()),
        "openssl is not installed: run ci/setup"
    );
    Command::new("openssl")
}

/// What `openssl verify` says about a profile at `at`, with the first served
/// certificate as the target and the rest as untrusted intermediates.
fn openssl_verdict(profile: &Profile, dir: &Path, at: OffsetDateTime) -> (Outcome, String) {
    let (target, rest) = profile
        .broker_chain()
        .split_first()
        .expect("non-empty chain");
    let work: PathBuf = dir.join(format!("{}-openssl", profile.id()));
    std::fs::create_dir_all(&work).unwrap();
    let target_pem = work.join("target.pem");
    let anchors_pem = work.join("anchors.pem");
    std::fs::write(&target_pem, target.pem()).unwrap();
    std::fs::write(&anchors_pem, pem_bundle(profile.device_anchors())).unwrap();
    let mut cmd = openssl();
    cmd.arg("verify")
        .args(["-attime", &at.unix_timestamp().to_string()])
        .args(["-verify_hostname", profile.host()])
        .args(["-purpose", "sslserver"])
        // The security level a TLS client applies by default; without it the
        // command-line verifier accepts even an MD5 signature.
        .args(["-auth_level", "1"])
        .arg("-CAfile")
        .arg(&anchors_pem);
    if !rest.is_empty() {
        let untrusted = work.join("untrusted.pem");
        std::fs::write(&untrusted, pem_bundle(rest)).unwrap();
        cmd.arg("-untrusted").arg(untrusted);
    }
    let output = cmd.arg(&target_pem).output().expect("run openssl verify");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let outcome = if output.status.success() {
        Outcome::Connects
    } else {
        Outcome::Refuses
    };
    (outcome, text)
}

/// What OpenSSL is expected to say. It follows web PKI rules except that it still
/// falls back to the subject CN when a certificate has no SAN, as BearSSL does.
fn openssl_expectation(id: ProfileId) -> Outcome {
    match id {
        ProfileId::CnOnly => Outcome::Connects,
        _ => id.expectation().web_pki,
    }
}

const LAB_CLOCK: OffsetDateTime = datetime!(2026-06-15 12:00 UTC);

/// One catalogue for every test: the authorities are generated once per run, as
/// the harness itself does.
fn catalogue() -> &'static Catalogue {
    static CATALOGUE: std::sync::OnceLock<Catalogue> = std::sync::OnceLock::new();
    CATALOGUE.get_or_init(|| Catalogue::generate(LAB_CLOCK).unwrap())
}

#[test]
fn every_profile_verifies_as_declared_by_openssl_and_webpki() {
    let dir = tempfile::tempdir().unwrap();
    let catalogue = catalogue();
    let mut mismatches = Vec::new();
    for profile in catalogue.profiles() {
        let id = profile.id();
        let (openssl, why) = openssl_verdict(profile, dir.path(), LAB_CLOCK);
        if openssl != openssl_expectation(id) {
            mismatches.push(format!("{id}: openssl says {openssl}: {why}"));
        }
        let webpki = profile.web_pki_verdict();
        if webpki.outcome != id.expectation().web_pki {
            mismatches.push(format!(
                "{id}: webpki says {} ({:?})",
                webpki.outcome, webpki.reason
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "verdicts differ from the catalogue:\n{}",
        mismatches.join("\n")
    );
}

#[test]
fn bearssl_divergences_are_rejected_by_web_pki_rules_yet_declared_to_connect() {
    let catalogue = catalogue();
    for id in [ProfileId::CnOnly, ProfileId::ClientauthEku] {
        let profile = catalogue.profile(id).unwrap();
        assert_eq!(profile.web_pki_verdict().outcome, Outcome::Refuses, "{id}");
        assert_eq!(id.expectation().outcome, Outcome::Connects, "{id}");
        assert!(id.divergence().is_some(), "{id} must say why it diverges");
    }
    // OpenSSL rejects the clientAuth-only EKU for a server too.
    let dir = tempfile::tempdir().unwrap();
    let eku = catalogue.profile(ProfileId::ClientauthEku).unwrap();
    let (outcome, text) = openssl_verdict(eku, dir.path(), LAB_CLOCK);
    assert_eq!(outcome, Outcome::Refuses, "{text}");
    assert!(text.contains("unsuitable certificate purpose"), "{text}");
}

#[test]
fn openssl_gives_the_reason_each_refusal_was_built_for() {
    let dir = tempfile::tempdir().unwrap();
    let catalogue = catalogue();
    // One distinctive fragment of OpenSSL's message per refusal, so a profile that
    // is refused for the wrong reason (an expired chain that also has a bad name,
    // say) is caught.
    let reasons = [
        (ProfileId::WrongSan, "hostname mismatch"),
        (ProfileId::WildcardMismatch, "hostname mismatch"),
        (ProfileId::Expired, "certificate has expired"),
        (ProfileId::NotYetValid, "certificate is not yet valid"),
        (ProfileId::ExpiredIntermediate, "certificate has expired"),
        (
            ProfileId::UntrustedRoot,
            "unable to get local issuer certificate",
        ),
        (ProfileId::SelfSigned, "self-signed certificate"),
        (
            ProfileId::MissingIntermediate,
            "unable to get local issuer certificate",
        ),
        (ProfileId::IntermediateNotCa, "invalid CA certificate"),
        (ProfileId::CriticalExtension, "unhandled critical extension"),
        (ProfileId::BadSignature, "certificate signature failure"),
        (ProfileId::Md5Signature, "digest algorithm too weak"),
    ];
    for (id, fragment) in reasons {
        let (outcome, text) =
            openssl_verdict(catalogue.profile(id).unwrap(), dir.path(), LAB_CLOCK);
        assert_eq!(outcome, Outcome::Refuses, "{id}");
        assert!(
            text.contains(fragment),
            "{id}: expected `{fragment}` in:\n{text}"
        );
    }
}

#[test]
fn shifting_the_lab_clock_shifts_the_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let catalogue = catalogue();
    let valid = catalogue.profile(ProfileId::Valid).unwrap();
    let expired = catalogue.profile(ProfileId::Expired).unwrap();

    let ten_years_later = LAB_CLOCK + Duration::days(3653);
    let (later, text) = openssl_verdict(valid, dir.path(), ten_years_later);
    assert_eq!(
        later,
        Outcome::Refuses,
        "valid must be expired ten years later:\n{text}"
    );
    assert!(text.contains("expired"), "{text}");

    // Two days earlier the `expired` leaf was still within its window.
    let earlier = LAB_CLOCK - Duration::days(2);
    let (before, text) = openssl_verdict(expired, dir.path(), earlier);
    assert_eq!(before, Outcome::Connects, "{text}");

    // A catalogue generated for the later clock is valid at that clock.
    let later_catalogue = Catalogue::generate(ten_years_later).unwrap();
    let (fresh, text) = openssl_verdict(
        later_catalogue.profile(ProfileId::Valid).unwrap(),
        dir.path(),
        ten_years_later,
    );
    assert_eq!(fresh, Outcome::Connects, "{text}");
}

#[test]
fn key_types_follow_the_catalogue() {
    let catalogue = catalogue();
    let key_of = |id: ProfileId| {
        let leaf = &catalogue.profile(id).unwrap().broker_chain()[0];
        let x509 = openssl::x509::X509::from_der(leaf.der()).unwrap();
        let key = x509.public_key().unwrap();
        (key.id(), key.bits())
    };
    assert_eq!(key_of(ProfileId::Valid), (openssl::pkey::Id::RSA, 2048));
    assert_eq!(
        key_of(ProfileId::LargeChain),
        (openssl::pkey::Id::RSA, 4096)
    );
    assert_eq!(key_of(ProfileId::Ecdsa), (openssl::pkey::Id::EC, 256));
    // One root for the whole run: every profile trusts the same anchor.
    let root = &catalogue
        .profile(ProfileId::Valid)
        .unwrap()
        .device_anchors()[0];
    assert!(catalogue
        .profiles()
        .iter()
        .all(|p| p.device_anchors() == [root.clone()]));
}

#[test]
fn pinning_material_tells_renewed_leaves_apart() {
    let catalogue = catalogue();
    let valid = catalogue
        .profile(ProfileId::Valid)
        .unwrap()
        .manifest()
        .unwrap();
    let renewed = catalogue
        .profile(ProfileId::RenewedLeaf)
        .unwrap()
        .manifest()
        .unwrap();
    let expired = catalogue
        .profile(ProfileId::Expired)
        .unwrap()
        .manifest()
        .unwrap();
    assert_ne!(valid.leaf.sha1, renewed.leaf.sha1);
    assert_ne!(valid.leaf.public_key_sha1, renewed.leaf.public_key_sha1);
    // `expired` reuses the broker's key: known-key firmware cannot tell it apart.
    assert_ne!(valid.leaf.sha1, expired.leaf.sha1);
    assert_eq!(valid.leaf.public_key_sha1, expired.leaf.public_key_sha1);
}
