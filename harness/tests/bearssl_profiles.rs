//! The twin's real BearSSL against every catalogue profile, served by OpenSSL (the
//! same arrangement the catalogue's measured codes came from). This is where the
//! catalogue's codes are confirmed or corrected: BearSSL is the truth.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::net::TcpListener;
use std::thread;

use hil::pki::{Catalogue, Profile, ProfileId};
use hil_twin::tls::{KnownKey, TlsClient, TlsConfig, TlsFailure, TrustMode};
use openssl::pkey::PKey;
use openssl::ssl::{SslAcceptor, SslMethod, SslVersion};
use openssl::x509::X509;
use time::macros::datetime;
use time::OffsetDateTime;

const LAB_CLOCK: OffsetDateTime = datetime!(2026-06-15 12:00 UTC);

fn catalogue() -> &'static Catalogue {
    static CATALOGUE: std::sync::OnceLock<Catalogue> = std::sync::OnceLock::new();
    CATALOGUE.get_or_init(|| Catalogue::generate(LAB_CLOCK).unwrap())
}

/// Serves `profile`'s chain, in its order, for one connection on loopback.
fn serve_once(profile: &Profile) -> (u16, thread::JoinHandle<()>) {
    let mut acceptor = SslAcceptor::mozilla_intermediate_v5(SslMethod::tls_server()).unwrap();
    // Level 0 lets OpenSSL serve what the catalogue deliberately breaks (an MD5
    // signature); judging it is the device's job.
    acceptor.set_security_level(0);
    let chain = profile.broker_chain();
    acceptor
        .set_certificate(&X509::from_der(chain[0].der()).unwrap())
        .unwrap();
    for extra in &chain[1..] {
        acceptor
            .add_extra_chain_cert(X509::from_der(extra.der()).unwrap())
            .unwrap();
    }
    let key = PKey::private_key_from_pem(profile.broker_key().expose().as_bytes()).unwrap();
    acceptor.set_private_key(&key).unwrap();
    acceptor
        .set_min_proto_version(Some(SslVersion::TLS1_2))
        .unwrap();
    let acceptor = acceptor.build();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        if let Ok(mut tls) = acceptor.accept(stream) {
            use std::io::{Read, Write};
            let mut buf = [0u8; 64];
            if let Ok(n) = tls.read(&mut buf) {
                let _ = tls.write_all(&buf[..n]);
            }
        }
    });
    (port, handle)
}

/// Connects the twin's BearSSL, configured as the reference firmware, and returns
/// the code the device would log (0 for success).
async fn device_code(profile: &Profile, mode: TrustMode, by_name: bool) -> i32 {
    let (port, server) = serve_once(profile);
    let config = TlsConfig {
        server_name: by_name.then(|| profile.host().to_owned()),
        device_time: LAB_CLOCK.unix_timestamp() as u64,
        ..TlsConfig::new(mode)
    };
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let mut tls = TlsClient::new(&config).unwrap();
    let code = match tls.handshake(&mut socket).await {
        Ok(_) => {
            // Prove the session carries data both ways.
            tls.write_all(&mut socket, b"ping").await.unwrap();
            let mut buf = [0u8; 4];
            let n = tls.read(&mut socket, &mut buf).await.unwrap();
            assert_eq!(&buf[..n], b"ping", "{}", profile.id());
            0
        }
        Err(failure) => failure.code(),
    };
    drop(socket);
    server.join().unwrap();
    code
}

fn anchors(profile: &Profile) -> TrustMode {
    TrustMode::TrustAnchors(
        profile
            .device_anchors()
            .iter()
            .map(|c| c.der().to_vec())
            .collect(),
    )
}

#[tokio::test]
async fn the_reference_firmware_reports_the_catalogue_code_for_every_profile() {
    let mut report = Vec::new();
    for profile in catalogue().profiles() {
        let id = profile.id();
        let code = device_code(profile, anchors(profile), true).await;
        let expected = id.expectation().bearssl_code.get() as i32;
        report.push((id, code, expected));
    }
    let table: Vec<String> = report
        .iter()
        .map(|(id, got, want)| format!("{id:<22} bearssl={got:<3} catalogue={want}"))
        .collect();
    println!("{}", table.join("\n"));
    let wrong: Vec<_> = report.iter().filter(|(_, got, want)| got != want).collect();
    assert!(
        wrong.is_empty(),
        "BearSSL disagrees with the catalogue:\n{}",
        table.join("\n")
    );
}

#[tokio::test]
async fn without_a_synced_clock_every_certificate_is_expired() {
    let profile = catalogue().profile(ProfileId::Valid).unwrap();
    let (port, server) = serve_once(profile);
    let config = TlsConfig {
        server_name: Some(profile.host().to_owned()),
        device_time: 42, // 1970 + uptime, as a device that never got NTP
        ..TlsConfig::new(anchors(profile))
    };
    let mut socket = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let failure = TlsClient::new(&config)
        .unwrap()
        .handshake(&mut socket)
        .await
        .unwrap_err();
    assert_eq!(failure.code(), 54);
    drop(socket);
    server.join().unwrap();
}

#[tokio::test]
async fn insecure_mode_accepts_every_impostor() {
    for id in [
        ProfileId::WrongSan,
        ProfileId::Expired,
        ProfileId::UntrustedRoot,
        ProfileId::SelfSigned,
    ] {
        let profile = catalogue().profile(id).unwrap();
        assert_eq!(
            device_code(profile, TrustMode::Insecure, true).await,
            0,
            "{id}"
        );
    }
}

#[tokio::test]
async fn connecting_by_ip_skips_the_name_check() {
    let profile = catalogue().profile(ProfileId::WrongSan).unwrap();
    assert_eq!(device_code(profile, anchors(profile), false).await, 0);
}

#[tokio::test]
async fn fingerprint_and_known_key_pin_the_valid_leaf() {
    let valid = catalogue().profile(ProfileId::Valid).unwrap();
    let leaf = &valid.broker_chain()[0];
    let fingerprint = TrustMode::Fingerprint(leaf.sha1());
    let known =
        TrustMode::KnownKey(KnownKey::from_spki_der(&leaf.public_key_der().unwrap()).unwrap());

    assert_eq!(device_code(valid, fingerprint.clone(), true).await, 0);
    assert_eq!(device_code(valid, known.clone(), true).await, 0);
    let renewed = catalogue().profile(ProfileId::RenewedLeaf).unwrap();
    assert_eq!(device_code(renewed, fingerprint.clone(), true).await, 62);
    assert_ne!(device_code(renewed, known.clone(), true).await, 0);
    // Same key, wrong name: known-key cannot tell.
    let wrong_san = catalogue().profile(ProfileId::WrongSan).unwrap();
    assert_eq!(device_code(wrong_san, known, true).await, 0);
}

#[tokio::test]
async fn self_signed_ok_accepts_only_self_issued_leaves() {
    let self_signed = catalogue().profile(ProfileId::SelfSigned).unwrap();
    assert_eq!(
        device_code(self_signed, TrustMode::SelfSigned, true).await,
        0
    );
    let valid = catalogue().profile(ProfileId::Valid).unwrap();
    assert_eq!(device_code(valid, TrustMode::SelfSigned, true).await, 62);
}

#[tokio::test]
async fn a_mangled_ca_loads_no_anchor_and_nothing_connects() {
    let valid = catalogue().profile(ProfileId::Valid).unwrap();
    let mut der = valid.device_anchors()[0].der().to_vec();
    der.truncate(der.len() / 2);
    let code = device_code(valid, TrustMode::TrustAnchors(vec![der]), true).await;
    assert_eq!(code, 62);
}

#[test]
fn a_failure_reports_the_engine_code() {
    assert_eq!(TlsFailure::Engine(56).code(), 56);
    assert_eq!(TlsFailure::Closed(0).code(), 0);
}
