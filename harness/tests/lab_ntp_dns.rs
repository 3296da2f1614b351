//! The lab's NTP and DNS servers against ntpsec's ntpdig (the `sntp` package)
//! and dig.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::time::Duration;

use common::*;
use hil::duration::parse_duration;
use hil::lab::{BrokerPolicy, DevicePolicy, DnsMode, NtpPolicy};
use hil::pki::ProfileId;
use hil::timeline::{DnsAnswer, EventKind};
use tokio::process::Command;

const LIMIT: Duration = Duration::from_secs(20);

/// ntpdig's view of the lab's NTP server: the offset it computed, in seconds.
async fn ntpdig_offset(port: u16) -> Option<f64> {
    require("ntpdig");
    // ntpdig's library lives with the Python it was installed for: use the
    // interpreter its own first line names, not whichever python3 is first on PATH.
    let ntpdig =
        std::fs::read_to_string("/usr/bin/ntpdig").expect("ntpdig is in /usr/bin: run ci/setup");
    let interpreter = ntpdig
        .lines()
        .next()
        .and_then(|l| l.strip_prefix("#!"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_owned();
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/ntpdig_port.py");
    let out = run(
        Command::new(interpreter)
            .arg(script)
            .arg("127.0.0.1")
            .arg(port.to_string()),
        LIMIT,
    )
    .await;
    if !out.status.success() {
        assert!(
            text(&out).contains("no answer"),
            "ntpdig failed: {}",
            text(&out)
        );
        return None;
    }
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["stratum"], 1, "{report}");
    report["offset"].as_f64()
}

#[tokio::test(flavor = "multi_thread")]
async fn ntpdig_sees_the_configured_skew_and_silence() {
    let t = start_lab_with(ProfileId::Valid, DevicePolicy::default(), |c| {
        c.at = time::OffsetDateTime::now_utc();
    })
    .await;
    let port = t.lab.addrs().ntp.port();
    let exact = ntpdig_offset(port).await.expect("an answer");
    assert!(exact.abs() < 2.0, "offset {exact}");

    // Within NTP era 0 (until 2036): ntpdig does not apply RFC 4330's rule for
    // timestamps past the rollover.
    for skew in ["-2 days", "+5 years", "-10 years", "90 s"] {
        let d = parse_duration(skew).unwrap();
        t.lab.policies().set_default(DevicePolicy {
            ntp: NtpPolicy::Skewed(d),
            ..DevicePolicy::default()
        });
        let offset = ntpdig_offset(port).await.expect("an answer");
        let want = d.as_seconds_f64();
        assert!(
            (offset - want).abs() < 2.0,
            "{skew}: offset {offset}, wanted {want}"
        );
    }

    // A fixed instant: what a stale clock would report.
    let fixed = time::macros::datetime!(2021-06-01 12:00 UTC);
    t.lab.policies().set_default(DevicePolicy {
        ntp: NtpPolicy::Fixed(fixed),
        ..DevicePolicy::default()
    });
    let offset = ntpdig_offset(port).await.expect("an answer");
    let want = (fixed - time::OffsetDateTime::now_utc()).as_seconds_f64();
    assert!(
        (offset - want).abs() < 2.0,
        "fixed: offset {offset}, wanted {want}"
    );

    t.lab.policies().set_default(DevicePolicy {
        ntp: NtpPolicy::Silent,
        ..DevicePolicy::default()
    });
    assert_eq!(ntpdig_offset(port).await, None);
    let events = t.lab.timeline().snapshot();
    let answers: Vec<bool> = events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::NtpRequest { answered, .. } => Some(answered.is_some()),
            _ => None,
        })
        .collect();
    assert_eq!(answers, [true, true, true, true, true, true, false]);
}

async fn dig(port: u16, name: &str, extra: &[&str]) -> String {
    require("dig");
    let out = run(
        Command::new("dig")
            .arg("@127.0.0.1")
            .args(["-p", &port.to_string(), "+tries=1", "+time=1"])
            .args(extra)
            .arg(name),
        LIMIT,
    )
    .await;
    text(&out)
}

#[tokio::test(flavor = "multi_thread")]
async fn dig_resolves_the_lab_names_and_gets_nxdomain_when_told() {
    let t = start_lab(ProfileId::Valid, DevicePolicy::default()).await;
    t.lab.map_name("mqtt.production.example.com");
    let port = t.lab.addrs().dns.port();
    for name in [
        "broker.hil.test",
        "mqtt.broker.hil.test",
        "ntp.hil.test",
        "mqtt.production.example.com",
    ] {
        let short = dig(port, name, &["+short"]).await;
        assert_eq!(short.trim(), "127.0.0.1", "{name}");
    }
    let other = dig(port, "example.org", &[]).await;
    assert!(other.contains("status: NXDOMAIN"), "{other}");

    t.lab
        .policies()
        .set_default(DevicePolicy::default().with(BrokerPolicy::DnsNxdomain));
    let refused = dig(port, "broker.hil.test", &[]).await;
    assert!(refused.contains("status: NXDOMAIN"), "{refused}");

    let mut silent = DevicePolicy::default();
    silent.dns.mode = DnsMode::Silent;
    t.lab.policies().set_default(silent);
    let nothing = dig(port, "broker.hil.test", &[]).await;
    assert!(nothing.contains("timed out"), "{nothing}");

    let answers: Vec<DnsAnswer> = t
        .lab
        .timeline()
        .snapshot()
        .into_iter()
        .filter_map(|e| match e.kind {
            EventKind::DnsQuery { answer, .. } => Some(answer),
            _ => None,
        })
        .collect();
    let ip = "127.0.0.1".parse().unwrap();
    assert_eq!(answers[..4], vec![DnsAnswer::Address { ip }; 4][..]);
    assert_eq!(answers[4..6], [DnsAnswer::NxDomain, DnsAnswer::NxDomain]);
    assert_eq!(answers[6], DnsAnswer::Silent);
}
