//! The firmware twin (real BearSSL, PubSubClient semantics) against the lab, for
//! every certificate profile, clock case and the variants' signature mistakes.
//! The twin talks to the lab over real sockets from its own board address, so the
//! lab's per-device policies and records apply exactly as for a board.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hil::lab::{DevicePolicy, Lab, LabConfig, NtpPolicy};
use hil::pki::{Catalogue, Outcome, ProfileId};
use hil::provisioning::{self, ProvisionOptions};
use hil::timeline::{EventKind, HandshakeOutcome};
use hil::vfirmware::DetachedTwin;
use hil_twin::descriptor::{Descriptor, Variant};
use hil_twin::BoardEnv;

fn catalogue() -> &'static Catalogue {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        let now = time::OffsetDateTime::now_utc()
            .replace_nanosecond(0)
            .unwrap();
        Catalogue::generate(now).unwrap()
    })
}

async fn lab() -> (Lab, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let valid = Arc::new(catalogue().profile(ProfileId::Valid).unwrap().clone());
    let lab = Lab::start(LabConfig::new(valid, dir.path())).await.unwrap();
    (lab, dir)
}

fn board_ip(k: u8) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 1, k)
}

/// Has the lab present certificate profile `id` to board `k`.
fn present(lab: &Lab, k: u8, id: ProfileId) {
    let policy = DevicePolicy {
        profile: Some(Arc::new(catalogue().profile(id).unwrap().clone())),
        ..DevicePolicy::default()
    };
    lab.policies().set(IpAddr::V4(board_ip(k)), policy);
}

/// Boots the twin as board `k`, provisions it when asked, and collects serial
/// lines until `done` says the outcome is known (or 30 s pass).
async fn run_device(
    lab: &Lab,
    k: u8,
    presented: ProfileId,
    descriptor: Descriptor,
    options: ProvisionOptions,
    done: impl Fn(&str) -> bool,
) -> Vec<String> {
    let presented = catalogue().profile(presented).unwrap();
    let settings = provisioning::settings(&lab.addrs(), catalogue(), presented, &options).unwrap();
    let env = BoardEnv {
        ip: board_ip(k),
        mac: [0x5c, 0xcf, 0x7f, 0, 0, k],
        access_point: None,
        dns: None,
        ntp: None,
        reset_reason: "External-System".into(),
        timings: hil_twin::Timings::instant(),
    };
    let mut twin = DetachedTwin::start(descriptor, env, Some(provisioning::line(&settings)));
    let mut lines = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while let Some((_, line)) = twin
        .next_line(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await
    {
        let finished = done(&line);
        lines.push(line);
        if finished {
            break;
        }
    }
    lines
}

/// The BearSSL code of the device's first `[tls] error` line, if any.
fn tls_code(lines: &[String]) -> Option<u32> {
    lines.iter().find_map(|l| {
        l.strip_prefix("[tls] error code=")?
            .split(' ')
            .next()?
            .parse()
            .ok()
    })
}

/// The Unix time of the device's `[ntp] synced` line, if any.
fn synced_epoch(lines: &[String]) -> Option<i64> {
    lines
        .iter()
        .find_map(|l| l.strip_prefix("[ntp] synced epoch=")?.parse().ok())
}

fn tls_verdict(line: &str) -> bool {
    line.starts_with("[tls] error") || line.starts_with("[mqtt] connected")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reference_twin_reports_the_catalogue_outcome_for_every_profile() {
    let (lab, _dir) = lab().await;
    let mut runs = Vec::new();
    for (k, id) in ProfileId::ALL.iter().copied().enumerate() {
        let k = k as u8 + 1;
        present(&lab, k, id);
        let run = run_device(
            &lab,
            k,
            id,
            Variant::Reference.descriptor(),
            ProvisionOptions::default(),
            tls_verdict,
        );
        runs.push((id, k, run));
    }
    let mut problems = Vec::new();
    for (id, k, run) in runs {
        let lines = run.await;
        let expected = id.expectation();
        let ok = lines.iter().any(|l| l.starts_with("[mqtt] connected"));
        let code = tls_code(&lines);
        let verdict_ok = match expected.outcome {
            Outcome::Connects => ok,
            Outcome::Refuses => code == Some(expected.bearssl_code.get()),
        };
        if !verdict_ok {
            problems.push(format!(
                "{id} (board {k}): expected {} code {}, serial:\n  {}",
                expected.outcome,
                expected.bearssl_code,
                lines.join("\n  ")
            ));
        }
    }
    // The lab's own record agrees: completed handshakes for the profiles that
    // connect, and for refusals no alert from the device, only silence.
    let events = lab.timeline().snapshot();
    for (k, id) in ProfileId::ALL.iter().copied().enumerate() {
        let ip = IpAddr::V4(board_ip(k as u8 + 1));
        let outcomes: Vec<&HandshakeOutcome> = events
            .iter()
            .filter(|e| e.device == Some(ip))
            .filter_map(|e| match &e.kind {
                EventKind::TlsHandshake { outcome, .. } => Some(outcome),
                _ => None,
            })
            .collect();
        let completed = outcomes
            .iter()
            .any(|o| matches!(o, HandshakeOutcome::Completed { .. }));
        let alerted = outcomes
            .iter()
            .any(|o| matches!(o, HandshakeOutcome::AlertReceived { .. }));
        if completed != (id.expectation().outcome == Outcome::Connects) || alerted {
            problems.push(format!("{id}: the lab recorded {outcomes:?}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[tokio::test]
async fn clock_cases_decide_through_the_devices_own_ntp() {
    let (lab, _dir) = lab().await;
    let cases: [(NtpPolicy, Option<u32>); 4] = [
        (NtpPolicy::Skewed(time::Duration::days(-2)), None),
        (NtpPolicy::Skewed(time::Duration::days(-3 * 365)), Some(54)),
        (NtpPolicy::Skewed(time::Duration::days(10 * 365)), Some(54)),
        (NtpPolicy::Silent, Some(54)),
    ];
    for (i, (ntp, expected)) in cases.into_iter().enumerate() {
        let k = 40 + i as u8;
        lab.policies().set(
            IpAddr::V4(board_ip(k)),
            DevicePolicy {
                ntp,
                ..DevicePolicy::default()
            },
        );
        let lines = run_device(
            &lab,
            k,
            ProfileId::Valid,
            Variant::Reference.descriptor(),
            ProvisionOptions::default(),
            tls_verdict,
        )
        .await;
        let code = tls_code(&lines);
        assert_eq!(code, expected, "{ntp:?}:\n{}", lines.join("\n"));
        if let NtpPolicy::Skewed(by) = ntp {
            // The device's clock is the skewed lab time, in the right NTP era: ten
            // years ahead is past 2036, not 1970 (which fails with 54 just the same).
            let reported = synced_epoch(&lines).expect("an [ntp] synced line");
            let wanted = (time::OffsetDateTime::now_utc() + by).unix_timestamp();
            assert!(
                (reported - wanted).abs() < 120,
                "{ntp:?}: the device set its clock to {reported}, the lab said {wanted}:\n{}",
                lines.join("\n")
            );
        }
        if ntp == NtpPolicy::Silent {
            assert!(
                lines.iter().any(|l| l == "[ntp] failed"),
                "{}",
                lines.join("\n")
            );
        }
    }
}

#[tokio::test]
async fn variants_show_their_signature_mistakes() {
    let (lab, _dir) = lab().await;
    let cases: &[(Variant, ProfileId, Option<u32>)] = &[
        (Variant::Insecure, ProfileId::WrongSan, None),
        (Variant::Fingerprint, ProfileId::RenewedLeaf, Some(62)),
        (Variant::KnownKey, ProfileId::Expired, None),
        (Variant::SelfSignedOk, ProfileId::Valid, Some(62)),
        (
            Variant::IntermediateAnchor,
            ProfileId::NewIntermediate,
            Some(62),
        ),
        (
            Variant::IntermediateAnchor,
            ProfileId::ExpiredIntermediate,
            None,
        ),
        (Variant::NoNtp, ProfileId::Valid, Some(54)),
        (Variant::StaleClock, ProfileId::Valid, Some(54)),
        (Variant::ConnectByIp, ProfileId::WrongSan, None),
        (Variant::MalformedCa, ProfileId::Valid, Some(62)),
    ];
    for (i, (variant, id, expected)) in cases.iter().enumerate() {
        let k = 60 + i as u8;
        present(&lab, k, *id);
        let lines = run_device(
            &lab,
            k,
            *id,
            variant.descriptor(),
            ProvisionOptions::default(),
            tls_verdict,
        )
        .await;
        let connected = lines.iter().any(|l| l.starts_with("[mqtt] connected"));
        let code = tls_code(&lines);
        match expected {
            None => assert!(
                connected,
                "{variant} against {id} should connect:\n{}",
                lines.join("\n")
            ),
            Some(c) => assert_eq!(
                code,
                Some(*c),
                "{variant} against {id}:\n{}",
                lines.join("\n")
            ),
        }
    }
}

#[tokio::test]
async fn connect_by_ip_sends_no_sni_and_the_reference_asks_for_512_byte_fragments() {
    let (lab, _dir) = lab().await;
    for (k, variant, sni) in [
        (80u8, Variant::Reference, Some("broker.hil.test")),
        (81, Variant::ConnectByIp, None),
    ] {
        let from = lab.timeline().cursor();
        let lines = run_device(
            &lab,
            k,
            ProfileId::Valid,
            variant.descriptor(),
            ProvisionOptions::default(),
            tls_verdict,
        )
        .await;
        assert!(
            lines.iter().any(|l| l.starts_with("[mqtt] connected")),
            "{}",
            lines.join("\n")
        );
        let ip = IpAddr::V4(board_ip(k));
        let hello = lab
            .timeline()
            .since(from)
            .into_iter()
            .filter(|e| e.device == Some(ip))
            .find_map(|e| match e.kind {
                EventKind::TlsClientHello { hello, .. } => Some(hello),
                _ => None,
            })
            .expect("a ClientHello");
        assert_eq!(hello.sni.as_deref(), sni, "{variant}");
        assert_eq!(hello.max_fragment_length, Some(512), "{variant}");
        assert!(
            hello.versions.iter().any(|v| v == "TLS1.2")
                && !hello.versions.iter().any(|v| v == "TLS1.3")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shrunk_buffers_fail_with_6_only_when_the_broker_ignores_mfln() {
    // BearSSL streams plaintext handshake records of any size, so a shrunk buffer
    // only fails on a large *encrypted* record: here a 4 KB command, more than
    // even medium-buffers' 2048 bytes.
    let (lab, _dir) = lab().await;
    let large = Arc::new(catalogue().profile(ProfileId::LargeChain).unwrap().clone());
    let harness_client = lab.mqtt_client("harness").await.unwrap();
    for (k, ignored, variant, expected) in [
        (90u8, true, Variant::SmallBuffers, Some(6u32)),
        (91, false, Variant::SmallBuffers, None),
        (92, true, Variant::Reference, None),
        (93, true, Variant::MediumBuffers, Some(6)),
        (94, false, Variant::MediumBuffers, None),
    ] {
        let mut policy = DevicePolicy {
            profile: Some(large.clone()),
            ..DevicePolicy::default()
        };
        if ignored {
            hil::lab::BrokerPolicy::MflnIgnored.apply(&mut policy);
        }
        lab.policies().set(IpAddr::V4(board_ip(k)), policy);
        let client_id = format!("board-{k}");
        let options = ProvisionOptions {
            client_id: Some(client_id.clone()),
            ..ProvisionOptions::default()
        };
        let topic = provisioning::COMMAND_TOPIC;
        // A first small command can slip past a large one the broker dropped while
        // the subscription was still being registered; by the second, a large one
        // has certainly gone through ahead of it.
        let smalls = std::sync::atomic::AtomicUsize::new(0);
        let device = run_device(
            &lab,
            k,
            ProfileId::LargeChain,
            variant.descriptor(),
            options,
            |l| {
                if l.ends_with("payload=small") {
                    smalls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
                l.starts_with("[tls] error")
                    || smalls.load(std::sync::atomic::Ordering::SeqCst) >= 2
            },
        );
        let publisher = async {
            // The broker may register the subscription a moment after the lab saw
            // the SUBSCRIBE go by, so the command is repeated until the device
            // reacts (the device's own outcome ends the wait).
            let ip = IpAddr::V4(board_ip(k));
            let subscribed = lab
                .timeline()
                .wait_for(lab.timeline().start(), Duration::from_secs(20), |e| {
                    e.device == Some(ip) && matches!(e.kind, EventKind::MqttSubscribe { .. })
                })
                .await;
            assert!(subscribed.is_some(), "board {k} never subscribed");
            loop {
                harness_client
                    .publish(topic, vec![b'x'; 4096], false)
                    .await
                    .unwrap();
                harness_client
                    .publish(topic, b"small".to_vec(), false)
                    .await
                    .unwrap();
                tokio::time::sleep(Duration::from_millis(300)).await;
            }
        };
        let lines = tokio::select! {
            lines = device => lines,
            () = publisher => unreachable!("the publisher loops until the device is done"),
        };
        let code = tls_code(&lines);
        assert_eq!(
            code,
            expected,
            "{variant} ignored={ignored}:\n{}",
            lines.join("\n")
        );
        if expected.is_none() {
            assert!(
                lines
                    .iter()
                    .any(|l| l == "[mqtt] message topic=hil/commands payload=small"),
                "{}",
                lines.join("\n")
            );
        }
    }
}

#[tokio::test]
async fn the_reference_twin_talks_to_mosquitto_too() {
    let dir = tempfile::tempdir().unwrap();
    let valid = Arc::new(catalogue().profile(ProfileId::Valid).unwrap().clone());
    let mut config = LabConfig::new(valid, dir.path());
    config.backend = hil::lab::BrokerBackend::Mosquitto;
    let lab = Lab::start(config).await.unwrap();
    let lines = run_device(
        &lab,
        100,
        ProfileId::Valid,
        Variant::Reference.descriptor(),
        ProvisionOptions::default(),
        |l| l.starts_with("[mqtt] published"),
    )
    .await;
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("[tls] ok version=TLS1.2")),
        "{}",
        lines.join("\n")
    );
    assert!(
        lines.iter().any(|l| l.starts_with("[mqtt] connected")),
        "{}",
        lines.join("\n")
    );
    // mosquitto saw the telemetry: its observer put it on the timeline.
    let seen = lab
        .timeline()
        .wait_for(lab.timeline().start(), Duration::from_secs(10), |e| {
            matches!(&e.kind, EventKind::MqttPublish { topic, .. } if topic == provisioning::TELEMETRY_TOPIC)
        })
        .await;
    assert!(
        seen.is_some(),
        "mosquitto never relayed the device's publish"
    );
    lab.shutdown().await;
}

#[tokio::test]
async fn seed_style_logs_say_rc_minus_2_and_never_why() {
    let (lab, _dir) = lab().await;
    let k = 110;
    present(&lab, k, ProfileId::WrongSan);
    let lines = run_device(
        &lab,
        k,
        ProfileId::WrongSan,
        Variant::SeedStyleLogs.descriptor(),
        ProvisionOptions::default(),
        |l| l.starts_with("Attempting MQTT connection...failed"),
    )
    .await;
    let last = lines.last().cloned().unwrap_or_default();
    assert_eq!(
        last,
        "Attempting MQTT connection...failed, rc=-2 try again in 1 seconds",
        "{}",
        lines.join("\n")
    );
    assert!(
        !lines
            .iter()
            .any(|l| l.contains("[tls]") || l.contains("56")),
        "{}",
        lines.join("\n")
    );
}

/// Counts PUBLISH events from a device on the lab's timeline in a window after it
/// connected.
async fn publishes_in(lab: &Lab, k: u8, window: Duration) -> usize {
    let ip = IpAddr::V4(board_ip(k));
    let connected = lab
        .timeline()
        .wait_for(lab.timeline().start(), Duration::from_secs(20), |e| {
            e.device == Some(ip) && matches!(e.kind, EventKind::MqttConnect { .. })
        })
        .await
        .expect("device connected");
    tokio::time::sleep(window).await;
    lab.timeline()
        .since(connected.cursor_after())
        .iter()
        .filter(|e| e.device == Some(ip) && matches!(e.kind, EventKind::MqttPublish { .. }))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_flood_is_visible_at_the_broker() {
    let (lab, _dir) = lab().await;
    for (k, variant, at_most, at_least) in [
        (120u8, Variant::Reference, 3usize, 1usize),
        (121, Variant::PublishFlood, usize::MAX, 20),
    ] {
        let device = run_device(
            &lab,
            k,
            ProfileId::Valid,
            variant.descriptor(),
            ProvisionOptions::default(),
            |_| false,
        );
        let count = tokio::select! {
            n = publishes_in(&lab, k, Duration::from_secs(2)) => n,
            _ = device => panic!("device stopped"),
        };
        assert!(
            count <= at_most && count >= at_least,
            "{variant}: {count} publishes in 2 s"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_backoff_hammers_a_refusing_broker() {
    let (lab, _dir) = lab().await;
    for (k, variant) in [(130u8, Variant::Reference), (131, Variant::NoBackoff)] {
        let ip = IpAddr::V4(board_ip(k));
        let mut policy = DevicePolicy::default();
        hil::lab::BrokerPolicy::MqttNotAuthorized.apply(&mut policy);
        lab.policies().set(ip, policy);
        let device = run_device(
            &lab,
            k,
            ProfileId::Valid,
            variant.descriptor(),
            ProvisionOptions::default(),
            |_| false,
        );
        let counted = async {
            tokio::time::sleep(Duration::from_secs(4)).await;
            lab.timeline()
                .snapshot()
                .iter()
                .filter(|e| e.device == Some(ip) && matches!(e.kind, EventKind::TlsAccepted { .. }))
                .count()
        };
        let connections = tokio::select! {
            n = counted => n,
            _ = device => panic!("device stopped"),
        };
        match variant {
            Variant::Reference => assert!(
                connections <= 4,
                "backoff: {connections} connections in 4 s"
            ),
            _ => assert!(
                connections >= 10,
                "no backoff: only {connections} connections in 4 s"
            ),
        }
    }
}

#[tokio::test]
async fn fallback_insecure_is_refused_once_then_trusts_the_impostor() {
    let (lab, _dir) = lab().await;
    let k = 135;
    present(&lab, k, ProfileId::WrongSan);
    let lines = run_device(
        &lab,
        k,
        ProfileId::WrongSan,
        Variant::FallbackInsecure.descriptor(),
        ProvisionOptions::default(),
        |l| l.starts_with("[mqtt] connected"),
    )
    .await;
    let text = lines.join("\n");
    // The attempts, without the lab's port.
    let tls: Vec<String> = lines
        .iter()
        .filter(|l| l.starts_with("[tls] "))
        .map(|l| match l.split_once(" port=") {
            Some((head, tail)) => format!("{head}{}", &tail[tail.find(' ').unwrap_or(0)..]),
            None => l.clone(),
        })
        .collect();
    assert_eq!(
        tls[..3],
        [
            "[tls] connecting host=broker.hil.test mode=trust-anchors",
            "[tls] error code=56 text=BR_ERR_X509_BAD_SERVER_NAME",
            "[tls] connecting host=broker.hil.test mode=insecure",
        ],
        "{text}"
    );
    assert!(
        tls.len() == 4 && tls[3].starts_with("[tls] ok version=TLS1.2"),
        "{text}"
    );
    assert!(
        lines
            .last()
            .is_some_and(|l| l.starts_with("[mqtt] connected")),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_resubscribe_sends_no_subscribe_after_a_dropped_connection() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let (lab, _dir) = lab().await;
    for (k, variant, subscribes) in [
        (136u8, Variant::Reference, 2usize),
        (137, Variant::NoResubscribe, 1),
    ] {
        let ip = IpAddr::V4(board_ip(k));
        // The device runs until its second session has published once.
        let sessions = AtomicUsize::new(0);
        let device = run_device(
            &lab,
            k,
            ProfileId::Valid,
            variant.descriptor(),
            ProvisionOptions::default(),
            |l| {
                if l.starts_with("[mqtt] connected") {
                    sessions.fetch_add(1, Ordering::SeqCst);
                }
                l.starts_with("[mqtt] published") && sessions.load(Ordering::SeqCst) == 2
            },
        );
        let broker = async {
            // A PUBLISH comes after the session's SUBSCRIBE on the same stream, so
            // once the lab has decoded one, the session's SUBSCRIBE (if any) is
            // on the timeline.
            let publishes = |e: &hil::timeline::Event| {
                e.device == Some(ip) && matches!(e.kind, EventKind::MqttPublish { .. })
            };
            let first = lab
                .timeline()
                .wait_for(lab.timeline().start(), Duration::from_secs(20), publishes)
                .await
                .expect("the first session publishes");
            assert!(lab.drop_connections(ip).await.unwrap() > 0);
            let reconnected = lab
                .timeline()
                .wait_for(first.cursor_after(), Duration::from_secs(20), |e| {
                    e.device == Some(ip) && matches!(e.kind, EventKind::MqttConnect { .. })
                })
                .await
                .expect("the device reconnects");
            lab.timeline()
                .wait_for(
                    reconnected.cursor_after(),
                    Duration::from_secs(20),
                    publishes,
                )
                .await
                .expect("the second session publishes");
        };
        let (lines, ()) = tokio::join!(device, broker);
        let seen = lab
            .timeline()
            .snapshot()
            .iter()
            .filter(|e| e.device == Some(ip) && matches!(e.kind, EventKind::MqttSubscribe { .. }))
            .count();
        assert_eq!(
            seen,
            subscribes,
            "{variant}: SUBSCRIBEs over two sessions:\n{}",
            lines.join("\n")
        );
        let said = lines
            .iter()
            .filter(|l| l.starts_with("[mqtt] subscribed"))
            .count();
        assert_eq!(said, subscribes, "{variant}:\n{}", lines.join("\n"));
    }
}

#[tokio::test]
async fn a_crashing_firmware_dumps_an_exception_and_asks_for_a_reboot() {
    use hil_twin::postmortem::{self, CUT_HERE};
    let (lab, _dir) = lab().await;
    let cuts = std::sync::atomic::AtomicUsize::new(0);
    let lines = run_device(
        &lab,
        140,
        ProfileId::Valid,
        Variant::CrashAfterConnect.descriptor(),
        ProvisionOptions::default(),
        |l| l == CUT_HERE && cuts.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 1,
    )
    .await;
    let text = lines.join("\n");
    // The core's postmortem layout, after the first MQTT connection.
    let start = lines.iter().position(|l| l == CUT_HERE).expect("a dump");
    assert!(
        lines[..start]
            .iter()
            .any(|l| l.starts_with("[mqtt] connected")),
        "{text}"
    );
    let dump: Vec<&str> = lines[start..].iter().map(String::as_str).collect();
    let epc1 = format!(
        "epc1=0x{:08x} epc2=0x00000000 epc3=0x00000000 excvaddr=0x00000000 depc=0x00000000",
        postmortem::EPC1
    );
    assert_eq!(
        dump[..9],
        [
            CUT_HERE,
            "",
            "Exception (28):",
            epc1.as_str(),
            "",
            ">>>stack>>>",
            "",
            "ctx: cont",
            "sp: 3ffffd60 end: 3fffffc0 offset: 0190",
        ],
        "{text}"
    );
    assert_eq!(
        dump[dump.len() - 3..],
        ["<<<stack<<<", "", CUT_HERE],
        "{text}"
    );
    for code in [
        postmortem::RETURN_INTO_LOOP_WRAPPER,
        postmortem::RETURN_INTO_CONT_WRAPPER,
    ] {
        assert!(
            text.contains(&format!(" {code:08x}")),
            "{code:08x}:\n{text}"
        );
    }
}

#[tokio::test]
async fn a_provisioned_client_certificate_satisfies_mutual_tls() {
    let (lab, _dir) = lab().await;
    let cases = [
        (
            150u8,
            hil::lab::BrokerPolicy::ClientCertRequired,
            true,
            true,
        ),
        (
            151,
            hil::lab::BrokerPolicy::ClientCertRequired,
            false,
            false,
        ),
        (152, hil::lab::BrokerPolicy::ClientCertWrongCa, true, false),
    ];
    for (k, broker_policy, provisioned, connects) in cases {
        let mut policy = DevicePolicy::default();
        broker_policy.apply(&mut policy);
        lab.policies().set(IpAddr::V4(board_ip(k)), policy);
        let options = ProvisionOptions {
            client_certificate: provisioned,
            ..ProvisionOptions::default()
        };
        let lines = run_device(
            &lab,
            k,
            ProfileId::Valid,
            Variant::Reference.descriptor(),
            options,
            tls_verdict,
        )
        .await;
        let connected = lines.iter().any(|l| l.starts_with("[mqtt] connected"));
        assert_eq!(
            connected,
            connects,
            "{broker_policy:?} provisioned={provisioned}:\n{}",
            lines.join("\n")
        );
        if !connects {
            // The broker refused with an alert, which BearSSL reports as 256 + alert.
            let code = tls_code(&lines);
            assert!(code.is_some_and(|c| c > 256), "{}", lines.join("\n"));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pubsubclient_states_follow_the_broker_policies() {
    use hil::lab::BrokerPolicy::{
        DnsNxdomain, MqttBadCredentials, MqttNotAuthorized, NoConnack, StallAfterHello,
    };
    let (lab, _dir) = lab().await;
    // (board, policy, the state the device reports, whether TLS was attempted)
    let cases = [
        (160u8, MqttBadCredentials, 4, true),
        (161, MqttNotAuthorized, 5, true),
        (162, NoConnack, -4, true),
        (163, DnsNxdomain, -2, false),
        // WiFiClientSecure's 15 s timeout ends the stalled handshake.
        (164, StallAfterHello, -2, true),
    ];
    for (k, broker_policy, _, _) in cases {
        let mut policy = DevicePolicy::default();
        broker_policy.apply(&mut policy);
        lab.policies().set(IpAddr::V4(board_ip(k)), policy);
    }
    let device = |k: u8| {
        run_device(
            &lab,
            k,
            ProfileId::Valid,
            Variant::Reference.descriptor(),
            ProvisionOptions::default(),
            |l| l.starts_with("[mqtt] failed"),
        )
    };
    // Together: no-connack takes PubSubClient's 15 s socket timeout, the stall
    // WiFiClientSecure's.
    let (a, b, c, d, e) = tokio::join!(
        device(160),
        device(161),
        device(162),
        device(163),
        device(164)
    );
    for ((k, broker_policy, state, tls), lines) in cases.iter().zip([a, b, c, d, e]) {
        let text = lines.join("\n");
        assert!(
            lines
                .last()
                .is_some_and(|l| *l == format!("[mqtt] failed rc={state}")),
            "board {k} {broker_policy:?}:\n{text}"
        );
        assert_eq!(
            lines.iter().any(|l| l.starts_with("[tls] connecting")),
            *tls,
            "board {k}:\n{text}"
        );
        if !tls {
            assert!(
                lines
                    .iter()
                    .any(|l| l == "[dns] failed host=broker.hil.test"),
                "{text}"
            );
        }
        if *broker_policy == StallAfterHello {
            // A stall is no engine error: getLastSSLError() says 0.
            assert_eq!(tls_code(&lines), Some(0), "{text}");
        }
    }
}

#[tokio::test]
async fn a_wrong_wifi_password_keeps_the_device_off_the_network() {
    let (lab, _dir) = lab().await;
    let settings = provisioning::settings(
        &lab.addrs(),
        catalogue(),
        catalogue().profile(ProfileId::Valid).unwrap(),
        &ProvisionOptions::default(),
    )
    .unwrap();
    let env = BoardEnv {
        ip: board_ip(170),
        mac: [0x5c, 0xcf, 0x7f, 0, 0, 170],
        access_point: Some(hil_twin::AccessPoint {
            ssid: provisioning::LAB_SSID.into(),
            password: "not the lab's".into(),
        }),
        dns: None,
        ntp: None,
        reset_reason: "External-System".into(),
        timings: hil_twin::Timings::instant(),
    };
    let mut twin = DetachedTwin::start(
        Variant::Reference.descriptor(),
        env,
        Some(provisioning::line(&settings)),
    );
    let mut failures = 0;
    while let Some((_, line)) = twin.next_line(Duration::from_secs(10)).await {
        assert!(
            !line.starts_with("[dns]") && !line.starts_with("[tls]"),
            "{line}"
        );
        if line == "[wifi] failed" {
            failures += 1;
            if failures == 2 {
                break;
            }
        }
    }
    assert_eq!(failures, 2, "the device should keep retrying Wi-Fi");
}
