//! The TLS front against `openssl s_client`: every certificate profile gives
//! OpenSSL its declared web-PKI verdict, the version/SNI/client-certificate/MFLN
//! and fault policies behave as declared, and the ClientHello the lab records is
//! what openssl was told to send.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use hil::lab::{BrokerPolicy, DevicePolicy};
use hil::pki::{file, Outcome, ProfileId, BROKER_HOST};
use hil::timeline::{ClientHello, Event, EventKind, HandshakeOutcome};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::Command;

const LIMIT: Duration = Duration::from_secs(20);

fn completed(o: &HandshakeOutcome) -> bool {
    matches!(o, HandshakeOutcome::Completed { .. })
}

async fn hello(lab: &hil::lab::Lab, nth: usize) -> ClientHello {
    outcome(lab, nth).await;
    lab.timeline()
        .snapshot()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::TlsClientHello { hello, .. } => Some(hello),
            _ => None,
        })
        .nth(nth)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn every_profile_gives_openssl_its_declared_web_pki_verdict() {
    let t = start_lab(ProfileId::Valid, DevicePolicy::default()).await;
    for (n, &id) in ProfileId::ALL.iter().enumerate() {
        let profile = profile(id);
        let policy = DevicePolicy {
            profile: Some(profile.clone()),
            ..DevicePolicy::default()
        };
        t.lab.policies().set_default(policy);
        let anchors = profile
            .write_to(t.dir.path())
            .unwrap()
            .join(file::DEVICE_ANCHORS);
        let out = run(
            &mut s_client(t.lab.addrs().mqtt_tls, &anchors, profile.host()),
            LIMIT,
        )
        .await;
        let accepted = out.status.success() && text(&out).contains("Verify return code: 0 (ok)");
        let expected = match id {
            // OpenSSL's host check falls back to the subject CN when a certificate has
            // no SAN (as BearSSL does); rustls-webpki's web PKI verdict refuses.
            ProfileId::CnOnly => Outcome::Connects,
            _ => id.expectation().web_pki,
        };
        assert_eq!(
            accepted,
            expected == Outcome::Connects,
            "{id}: expected {expected}; openssl said:\n{}",
            text(&out)
        );
        let o = outcome(&t.lab, n).await;
        if expected == Outcome::Connects {
            assert!(completed(&o), "{id}: {o:?}");
        } else {
            // OpenSSL (unlike BearSSL) tells the server why it refuses.
            assert!(
                matches!(o, HandshakeOutcome::AlertReceived { .. }),
                "{id}: {o:?}"
            );
        }
    }
    // The divergences are explicit: the catalogue's web-PKI verdict differs.
    assert_eq!(ProfileId::CnOnly.expectation().web_pki, Outcome::Refuses);
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_are_recorded_with_the_alert_openssl_sent() {
    let t = start_lab(ProfileId::Expired, DevicePolicy::default()).await;
    let out = run(
        s_client(t.lab.addrs().mqtt_tls, &t.lab.device_anchors(), BROKER_HOST).arg("-tls1_2"),
        LIMIT,
    )
    .await;
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(
        outcome(&t.lab, 0).await,
        HandshakeOutcome::AlertReceived {
            alert: "certificate_expired".into()
        }
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_recorded_client_hello_is_what_openssl_was_told_to_send() {
    let t = start_lab(ProfileId::Valid, DevicePolicy::default()).await;
    let addr = t.lab.addrs().mqtt_tls;
    let anchors = t.lab.device_anchors();
    let out = run(
        s_client(addr, &anchors, BROKER_HOST).args([
            "-maxfraglen",
            "512",
            "-tls1_2",
            "-cipher",
            "ECDHE-RSA-AES128-GCM-SHA256",
        ]),
        LIMIT,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let h = hello(&t.lab, 0).await;
    assert_eq!(h.sni.as_deref(), Some(BROKER_HOST));
    assert_eq!(h.max_fragment_length, Some(512));
    assert_eq!(h.versions.first().map(String::as_str), Some("TLS1.2"));
    assert!(!h.versions.iter().any(|v| v == "TLS1.3"), "{h:?}");
    assert_eq!(
        h.cipher_suites,
        [
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
            "TLS_EMPTY_RENEGOTIATION_INFO_SCSV"
        ]
    );
    assert_eq!(
        outcome(&t.lab, 0).await,
        HandshakeOutcome::Completed {
            version: "TLS1.2".into(),
            suite: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256".into()
        }
    );

    // No SNI, TLS 1.3 offered through supported_versions.
    let out = run(
        s_client_without_sni(addr, &anchors, BROKER_HOST).arg("-noservername"),
        LIMIT,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let h = hello(&t.lab, 1).await;
    assert_eq!(h.sni, None);
    assert_eq!(h.max_fragment_length, None);
    assert_eq!(h.versions[..2], ["TLS1.3", "TLS1.2"]);
    assert!(h
        .cipher_suites
        .iter()
        .any(|s| s == "TLS_AES_256_GCM_SHA384"));
}

#[tokio::test(flavor = "multi_thread")]
async fn version_policies_accept_and_refuse_as_declared() {
    let only13 = start_lab(
        ProfileId::Valid,
        DevicePolicy::default().with(BrokerPolicy::Tls13Only),
    )
    .await;
    let (addr, anchors) = (only13.lab.addrs().mqtt_tls, only13.lab.device_anchors());
    let old = run(s_client(addr, &anchors, BROKER_HOST).arg("-tls1_2"), LIMIT).await;
    assert!(!old.status.success(), "{}", text(&old));
    assert_eq!(
        outcome(&only13.lab, 0).await,
        HandshakeOutcome::AlertSent {
            alert: "protocol_version".into()
        }
    );
    let new = run(s_client(addr, &anchors, BROKER_HOST).arg("-tls1_3"), LIMIT).await;
    assert!(new.status.success(), "{}", text(&new));

    let only10 = start_lab(
        ProfileId::Valid,
        DevicePolicy::default().with(BrokerPolicy::Tls10Only),
    )
    .await;
    let (addr, anchors) = (only10.lab.addrs().mqtt_tls, only10.lab.device_anchors());
    let modern = run(s_client(addr, &anchors, BROKER_HOST).arg("-tls1_2"), LIMIT).await;
    assert!(!modern.status.success(), "{}", text(&modern));
    let legacy = run(
        s_client(addr, &anchors, BROKER_HOST).args(["-tls1", "-cipher", "DEFAULT:@SECLEVEL=0"]),
        LIMIT,
    )
    .await;
    assert!(legacy.status.success(), "{}", text(&legacy));
    assert!(matches!(
        outcome(&only10.lab, 1).await,
        HandshakeOutcome::Completed { version, .. } if version == "TLS1.0"
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn sni_required_refuses_a_hello_without_sni_with_unrecognized_name() {
    let t = start_lab(
        ProfileId::Valid,
        DevicePolicy::default().with(BrokerPolicy::SniRequired),
    )
    .await;
    let (addr, anchors) = (t.lab.addrs().mqtt_tls, t.lab.device_anchors());
    let without = run(
        s_client_without_sni(addr, &anchors, BROKER_HOST).arg("-noservername"),
        LIMIT,
    )
    .await;
    assert!(!without.status.success(), "{}", text(&without));
    assert!(
        text(&without).contains("unrecognized name"),
        "{}",
        text(&without)
    );
    assert_eq!(
        outcome(&t.lab, 0).await,
        HandshakeOutcome::AlertSent {
            alert: "unrecognized_name".into()
        }
    );
    let with = run(&mut s_client(addr, &anchors, BROKER_HOST), LIMIT).await;
    assert!(with.status.success(), "{}", text(&with));
}

#[tokio::test(flavor = "multi_thread")]
async fn client_certificates_are_required_and_checked_against_the_right_ca() {
    let t = start_lab(
        ProfileId::Valid,
        DevicePolicy::default().with(BrokerPolicy::ClientCertRequired),
    )
    .await;
    let (addr, anchors) = (t.lab.addrs().mqtt_tls, t.lab.device_anchors());
    let dir = t.lab.profile_dir().to_owned();
    let cert = dir.join(file::CLIENT_CERT);
    let key = dir.join(file::CLIENT_KEY);
    // TLS 1.2 so the alert is on the wire in plaintext and s_client sees the failure.
    let without = run(s_client(addr, &anchors, BROKER_HOST).arg("-tls1_2"), LIMIT).await;
    assert!(!without.status.success(), "{}", text(&without));
    assert_eq!(
        outcome(&t.lab, 0).await,
        HandshakeOutcome::AlertSent {
            alert: "handshake_failure".into()
        }
    );
    let with = run(
        s_client(addr, &anchors, BROKER_HOST)
            .arg("-cert")
            .arg(&cert)
            .arg("-key")
            .arg(&key),
        LIMIT,
    )
    .await;
    assert!(with.status.success(), "{}", text(&with));
    assert!(completed(&outcome(&t.lab, 1).await));

    t.lab
        .policies()
        .set_default(DevicePolicy::default().with(BrokerPolicy::ClientCertWrongCa));
    let wrong = run(
        s_client(addr, &anchors, BROKER_HOST)
            .args(["-tls1_2", "-cert"])
            .arg(&cert)
            .arg("-key")
            .arg(&key),
        LIMIT,
    )
    .await;
    assert!(!wrong.status.success(), "{}", text(&wrong));
    assert_eq!(
        outcome(&t.lab, 2).await,
        HandshakeOutcome::AlertSent {
            alert: "unknown_ca".into()
        }
    );
}

/// Sizes of the records the server sent, from `s_client -msg`'s record headers.
fn server_record_sizes(out: &str) -> Vec<usize> {
    let lines: Vec<&str> = out.lines().collect();
    lines
        .windows(2)
        .filter(|w| w[0].starts_with("<<< ") && w[0].contains("RecordHeader"))
        .filter_map(|w| {
            let bytes: Vec<u8> = w[1]
                .split_whitespace()
                .filter_map(|b| u8::from_str_radix(b, 16).ok())
                .collect();
            (bytes.len() == 5).then(|| usize::from(bytes[3]) << 8 | usize::from(bytes[4]))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn max_fragment_length_is_honoured_or_ignored_and_the_handshake_completes_either_way() {
    for (policy, honoured) in [
        (BrokerPolicy::MflnHonoured, true),
        (BrokerPolicy::MflnIgnored, false),
    ] {
        let t = start_lab(ProfileId::Valid, DevicePolicy::default().with(policy)).await;
        let out = run(
            s_client(t.lab.addrs().mqtt_tls, &t.lab.device_anchors(), BROKER_HOST).args([
                "-tls1_2",
                "-maxfraglen",
                "512",
                "-msg",
            ]),
            LIMIT,
        )
        .await;
        assert!(out.status.success(), "{policy}: {}", text(&out));
        let sizes = server_record_sizes(&text(&out));
        let largest = sizes.iter().copied().max().unwrap_or(0);
        if honoured {
            assert!(largest <= 512, "{policy}: records {sizes:?}");
        } else {
            assert!(largest > 512, "{policy}: records {sizes:?}");
        }
        assert!(completed(&outcome(&t.lab, 0).await), "{policy}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stall_after_hello_and_close_mid_handshake() {
    let t = start_lab(
        ProfileId::Valid,
        DevicePolicy::default().with(BrokerPolicy::StallAfterHello),
    )
    .await;
    let mut child = s_client(t.lab.addrs().mqtt_tls, &t.lab.device_anchors(), BROKER_HOST)
        .arg("-tls1_2")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // The hello arrives and the lab holds the rest of its flight back: s_client
    // waits. Nothing is recorded as an outcome while it does.
    let from = t.lab.timeline().start();
    let seen = t
        .lab
        .timeline()
        .wait_for(from, LIMIT, |e: &Event| {
            matches!(e.kind, EventKind::TlsClientHello { .. })
        })
        .await;
    assert!(seen.is_some());
    let none = t
        .lab
        .timeline()
        .none_within(from, Duration::from_millis(500), |e: &Event| {
            matches!(e.kind, EventKind::TlsHandshake { .. })
        })
        .await;
    assert!(none.is_ok(), "{none:?}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "s_client gave up by itself"
    );
    child.kill().await.unwrap();
    assert_eq!(outcome(&t.lab, 0).await, HandshakeOutcome::Stalled);

    t.lab
        .policies()
        .set_default(DevicePolicy::default().with(BrokerPolicy::CloseMidHandshake));
    let out = run(
        s_client(t.lab.addrs().mqtt_tls, &t.lab.device_anchors(), BROKER_HOST).arg("-tls1_2"),
        LIMIT,
    )
    .await;
    assert!(!out.status.success(), "{}", text(&out));
    assert_eq!(outcome(&t.lab, 1).await, HandshakeOutcome::Closed);
}

/// What BearSSL does on a certificate it rejects: it sends no alert and nothing
/// else. The ClientHello is a real one (openssl's, captured), replayed, then the
/// client goes quiet, first closing, then keeping the socket open.
#[tokio::test(flavor = "multi_thread")]
async fn a_client_that_goes_quiet_after_the_server_flight_is_recorded_as_such() {
    let capture = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let capture_addr = capture.local_addr().unwrap();
    let mut child = Command::new("openssl")
        .args([
            "s_client",
            "-tls1_2",
            "-servername",
            BROKER_HOST,
            "-connect",
        ])
        .arg(capture_addr.to_string())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let (mut from_openssl, _) = capture.accept().await.unwrap();
    let mut client_hello = vec![0u8; 5];
    from_openssl.read_exact(&mut client_hello).await.unwrap();
    let len = usize::from(client_hello[3]) << 8 | usize::from(client_hello[4]);
    client_hello.resize(5 + len, 0);
    from_openssl
        .read_exact(&mut client_hello[5..])
        .await
        .unwrap();
    child.kill().await.unwrap();

    let t = start_lab_with(ProfileId::Valid, DevicePolicy::default(), |c| {
        c.handshake_timeout = Duration::from_secs(2);
    })
    .await;
    for (n, keep_open) in [(0, false), (1, true)] {
        let mut tcp = tokio::net::TcpStream::connect(t.lab.addrs().mqtt_tls)
            .await
            .unwrap();
        tcp.write_all(&client_hello).await.unwrap();
        let mut first = [0u8; 5];
        tcp.read_exact(&mut first).await.unwrap();
        assert_eq!(
            first[0], 22,
            "the server flight starts with a handshake record"
        );
        if keep_open {
            assert_eq!(
                outcome(&t.lab, n).await,
                HandshakeOutcome::ClientStoppedSending
            );
            drop(tcp);
        } else {
            drop(tcp);
            assert_eq!(
                outcome(&t.lab, n).await,
                HandshakeOutcome::ClientStoppedSending
            );
        }
    }
}

/// One lab, two devices (two loopback source addresses), two verdicts.
#[tokio::test(flavor = "multi_thread")]
async fn each_device_gets_its_own_policy() {
    use openssl::ssl::{SslConnector, SslMethod, SslVersion};
    let t = start_lab(ProfileId::Valid, DevicePolicy::default()).await;
    let strict: std::net::IpAddr = "127.0.1.1".parse().unwrap();
    let relaxed: std::net::IpAddr = "127.0.1.2".parse().unwrap();
    t.lab.policies().set(
        strict,
        DevicePolicy::default().with(BrokerPolicy::Tls13Only),
    );
    let mut builder = SslConnector::builder(SslMethod::tls_client()).unwrap();
    builder.set_ca_file(t.lab.device_anchors()).unwrap();
    builder
        .set_max_proto_version(Some(SslVersion::TLS1_2))
        .unwrap();
    let connector = Arc::new(builder.build());
    let mut results = Vec::new();
    for source in [strict, relaxed] {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind((source, 0).into()).unwrap();
        let tcp = socket.connect(t.lab.addrs().mqtt_tls).await.unwrap();
        let ssl = connector
            .configure()
            .unwrap()
            .into_ssl(BROKER_HOST)
            .unwrap();
        let mut stream = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
        results.push(std::pin::Pin::new(&mut stream).connect().await.is_ok());
    }
    assert_eq!(results, [false, true]);
    let events = t.lab.timeline().snapshot();
    let outcome_of = |ip| {
        events.iter().find_map(|e| match &e.kind {
            EventKind::TlsHandshake { outcome, .. } if e.device == Some(ip) => {
                Some(outcome.clone())
            }
            _ => None,
        })
    };
    assert!(matches!(
        outcome_of(strict),
        Some(HandshakeOutcome::AlertSent { .. })
    ));
    assert!(matches!(
        outcome_of(relaxed),
        Some(HandshakeOutcome::Completed { .. })
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_instead_of_a_client_hello_is_recorded_not_fatal() {
    let t = start_lab(ProfileId::Valid, DevicePolicy::default()).await;
    let mut tcp = tokio::net::TcpStream::connect(t.lab.addrs().mqtt_tls)
        .await
        .unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(outcome(&t.lab, 0).await, HandshakeOutcome::NotTls);
    let out = run(
        &mut s_client(t.lab.addrs().mqtt_tls, &t.lab.device_anchors(), BROKER_HOST),
        LIMIT,
    )
    .await;
    assert!(
        out.status.success(),
        "the front still serves: {}",
        text(&out)
    );
}

/// Every suite openssl offers is recorded under OpenSSL's own standard name (or as
/// its hex code where the lab's table has no name), in the order it was offered.
#[tokio::test(flavor = "multi_thread")]
async fn cipher_suite_names_agree_with_openssl() {
    const ALL: &str = "ALL:@SECLEVEL=0";
    let listed = run(
        Command::new("openssl").args(["ciphers", "-V", "-stdname", ALL]),
        LIMIT,
    )
    .await;
    assert!(listed.status.success(), "{}", text(&listed));
    // "0xC0,0x2C - TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 - ECDHE-ECDSA-... TLSv1.2 ..."
    let expected: Vec<(String, String)> = String::from_utf8_lossy(&listed.stdout)
        .lines()
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let id = words.next()?.replace(",0x", "").replace("0x", "");
            words.next()?;
            Some((format!("0x{}", id.to_uppercase()), words.next()?.to_owned()))
        })
        .collect();
    assert!(expected.len() > 50, "{}", text(&listed));

    let t = start_lab(ProfileId::Valid, DevicePolicy::default()).await;
    run(
        s_client(t.lab.addrs().mqtt_tls, &t.lab.device_anchors(), BROKER_HOST)
            .args(["-cipher", ALL]),
        LIMIT,
    )
    .await;
    let recorded: Vec<String> = hello(&t.lab, 0)
        .await
        .cipher_suites
        .into_iter()
        .filter(|s| s != "TLS_EMPTY_RENEGOTIATION_INFO_SCSV")
        .collect();
    // s_client leaves out what it cannot use (PSK, SRP, anonymous suites), so what
    // it offered is openssl's list with gaps, in the same order.
    let mut rest = expected.iter();
    let mut named = 0;
    for got in &recorded {
        let found = rest.any(|(id, name)| {
            if got.starts_with("0x") {
                got == id
            } else {
                got == name
            }
        });
        assert!(found, "{got} is not where openssl lists it: {expected:?}");
        named += usize::from(!got.starts_with("0x"));
    }
    assert!(named >= 30, "only {named} suites named: {recorded:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_lets_go_of_every_port() {
    let t = start_lab(ProfileId::Valid, DevicePolicy::default()).await;
    let addrs = t.lab.addrs();
    // A connection held open across the shutdown must not keep anything alive.
    let _held = tokio::net::TcpStream::connect(addrs.mqtt_tls)
        .await
        .unwrap();
    t.lab.shutdown().await;
    tokio::net::TcpListener::bind(addrs.mqtt_tls).await.unwrap();
    tokio::net::UdpSocket::bind(addrs.ntp).await.unwrap();
    tokio::net::UdpSocket::bind(addrs.dns).await.unwrap();
}
