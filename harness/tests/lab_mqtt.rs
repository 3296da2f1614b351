//! MQTT through the lab against mosquitto's own clients: publish and receive on
//! `valid` (embedded broker and the mosquitto backend), refusal on broken
//! certificates, and the broker policies' CONNACKs.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::*;
use hil::lab::{BrokerBackend, BrokerPolicy, Credentials, DevicePolicy, Lab};
use hil::pki::{ProfileId, BROKER_HOST};
use hil::timeline::{Direction, Event, EventKind};
use tokio::process::Command;

const LIMIT: Duration = Duration::from_secs(20);

/// mosquitto_pub or mosquitto_sub aimed at `broker.hil.test` on the lab, through a
/// SOCKS hop so the name needs no /etc/hosts entry and is still verified.
fn mosquitto(tool: &str, lab: &Lab, socks: SocketAddr, anchors: &Path, id: &str) -> Command {
    require(tool);
    let mut cmd = Command::new(tool);
    cmd.args(["-h", BROKER_HOST, "-p"])
        .arg(lab.addrs().mqtt_tls.port().to_string())
        .arg("--proxy")
        .arg(format!("socks5h://{socks}"))
        .arg("--cafile")
        .arg(anchors)
        .args(["-i", id]);
    cmd
}

async fn wait(lab: &Lab, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    let timeline = lab.timeline();
    match timeline.wait_for(timeline.start(), LIMIT, pred).await {
        Some(e) => e,
        None => panic!("no {what}; timeline: {:#?}", timeline.snapshot()),
    }
}

async fn publish_and_receive(lab: &Lab, anchors: &Path, recorded_per_device: bool) {
    let socks = socks_to(lab.addrs().mqtt_tls).await;
    let mut harness = lab.mqtt_client("hil-harness").await.unwrap();

    let sub = mosquitto("mosquitto_sub", lab, socks, anchors, "dev-sub")
        .args(["-t", "cmd/dev", "-C", "1", "-W", "15"])
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let sub = tokio::spawn(sub);
    wait(
        lab,
        "SUBSCRIBE",
        |e| matches!(&e.kind, EventKind::MqttSubscribe { topics } if topics == &["cmd/dev"]),
    )
    .await;
    // Retained: the SUBSCRIBE event is recorded as the front forwards it, a moment
    // before the broker has applied it.
    harness.publish("cmd/dev", "on", true).await.unwrap();
    let sub = sub.await.unwrap().unwrap();
    assert!(sub.status.success(), "{}", text(&sub));
    assert_eq!(String::from_utf8_lossy(&sub.stdout).trim(), "on");

    let out = run(
        mosquitto("mosquitto_pub", lab, socks, anchors, "dev-pub")
            .args(["-t", "tele/dev", "-m", "hello"]),
        LIMIT,
    )
    .await;
    assert!(out.status.success(), "{}", text(&out));
    let got = loop {
        let m = harness
            .next_message(LIMIT)
            .await
            .expect("the harness saw the publish");
        if m.topic == "tele/dev" {
            break m;
        }
    };
    assert_eq!(got.payload, b"hello");

    wait(lab, "CONNECT from dev-pub", |e| {
        matches!(&e.kind, EventKind::MqttConnect { client_id, protocol_level: 4, .. } if client_id == "dev-pub")
            && e.device.is_some()
    })
    .await;
    wait(lab, "CONNACK 0", |e| {
        matches!(e.kind, EventKind::MqttConnack { code: 0 })
    })
    .await;
    let publish = wait(lab, "PUBLISH from the device", |e| {
        matches!(&e.kind, EventKind::MqttPublish { direction: Direction::FromDevice, topic, payload, .. }
            if topic == "tele/dev" && payload == "hello")
    })
    .await;
    if recorded_per_device {
        assert_eq!(publish.device, Some("127.0.0.1".parse().unwrap()));
        wait(lab, "PUBLISH to the device", |e| {
            matches!(&e.kind, EventKind::MqttPublish { direction: Direction::ToDevice, topic, payload, .. }
                if topic == "cmd/dev" && payload == "on")
        })
        .await;
    }
}

async fn refused(lab: &Lab, anchors: &Path) {
    let socks = socks_to(lab.addrs().mqtt_tls).await;
    let out = run(
        mosquitto("mosquitto_pub", lab, socks, anchors, "dev-pub")
            .args(["-t", "tele/dev", "-m", "x"]),
        LIMIT,
    )
    .await;
    assert!(!out.status.success(), "{}", text(&out));
    let connected = lab
        .timeline()
        .snapshot()
        .into_iter()
        .any(|e| matches!(e.kind, EventKind::MqttConnect { .. }));
    assert!(
        !connected,
        "a CONNECT got through: {:#?}",
        lab.timeline().snapshot()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn mosquitto_clients_publish_and_receive_through_the_embedded_broker() {
    let t = start_lab(ProfileId::Valid, DevicePolicy::default()).await;
    publish_and_receive(&t.lab, &t.lab.device_anchors(), true).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mosquitto_clients_are_refused_on_broken_certificates() {
    for id in [
        ProfileId::WrongSan,
        ProfileId::UntrustedRoot,
        ProfileId::Expired,
    ] {
        let t = start_lab(id, DevicePolicy::default()).await;
        refused(&t.lab, &t.lab.device_anchors()).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mosquitto_backend_serves_valid_and_refuses_broken_certificates() {
    let backend = |c: &mut hil::lab::LabConfig| c.backend = BrokerBackend::Mosquitto;
    let t = start_lab_with(ProfileId::Valid, DevicePolicy::default(), backend).await;
    publish_and_receive(&t.lab, &t.lab.device_anchors(), false).await;
    t.lab.shutdown().await;
    for id in [
        ProfileId::WrongSan,
        ProfileId::UntrustedRoot,
        ProfileId::Expired,
    ] {
        let t = start_lab_with(id, DevicePolicy::default(), backend).await;
        refused(&t.lab, &t.lab.device_anchors()).await;
        t.lab.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn broker_policies_answer_connect_as_declared() {
    let t = start_lab(ProfileId::Valid, DevicePolicy::default()).await;
    let lab = &t.lab;
    let anchors = lab.device_anchors();
    let socks = socks_to(lab.addrs().mqtt_tls).await;
    let publish = |user: Option<(&str, &str)>| {
        let mut cmd = mosquitto("mosquitto_pub", lab, socks, &anchors, "dev-1");
        cmd.args(["-t", "tele/dev", "-m", "x"]);
        if let Some((u, p)) = user {
            cmd.args(["-u", u, "-P", p]);
        }
        cmd
    };
    let connacks = || {
        lab.timeline()
            .snapshot()
            .into_iter()
            .filter_map(|e| match e.kind {
                EventKind::MqttConnack { code } => Some(code),
                _ => None,
            })
            .collect::<Vec<_>>()
    };

    lab.policies()
        .set_default(DevicePolicy::default().with(BrokerPolicy::MqttBadCredentials));
    let out = run(&mut publish(Some(("dev", "guess"))), LIMIT).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out)
            .to_lowercase()
            .contains("bad user name or password"),
        "{}",
        text(&out)
    );
    assert_eq!(connacks(), [4]);

    let mut right = DevicePolicy::default();
    right.mqtt.credentials = Some(Credentials::new("dev", "s3cret"));
    lab.policies().set_default(right);
    let out = run(&mut publish(Some(("dev", "s3cret"))), LIMIT).await;
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(connacks(), [4, 0]);
    let leaked = lab
        .timeline()
        .snapshot()
        .iter()
        .any(|e| serde_json::to_string(e).unwrap().contains("s3cret"));
    assert!(!leaked, "a password reached the timeline");

    lab.policies()
        .set_default(DevicePolicy::default().with(BrokerPolicy::MqttNotAuthorized));
    let out = run(&mut publish(None), LIMIT).await;
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).to_lowercase().contains("not authori"),
        "{}",
        text(&out)
    );
    assert_eq!(connacks(), [4, 0, 5]);

    lab.policies()
        .set_default(DevicePolicy::default().with(BrokerPolicy::NoConnack));
    let from = lab.timeline().cursor();
    let mut child = publish(None)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let connect = lab
        .timeline()
        .wait_for(from, LIMIT, |e| {
            matches!(e.kind, EventKind::MqttConnect { .. })
        })
        .await;
    assert!(connect.is_some());
    let silence = lab
        .timeline()
        .none_within(from, Duration::from_secs(1), |e| {
            matches!(e.kind, EventKind::MqttConnack { .. })
        })
        .await;
    assert!(silence.is_ok(), "{silence:?}");
    assert!(
        child.try_wait().unwrap().is_none(),
        "mosquitto_pub should still wait for CONNACK"
    );
    child.kill().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mosquitto_backend_requires_the_client_certificate_it_was_told_to() {
    let t = start_lab_with(
        ProfileId::Valid,
        DevicePolicy::default().with(BrokerPolicy::ClientCertRequired),
        |c| c.backend = BrokerBackend::Mosquitto,
    )
    .await;
    let lab = &t.lab;
    let anchors = lab.device_anchors();
    let socks = socks_to(lab.addrs().mqtt_tls).await;
    let dir = lab.profile_dir().to_owned();
    let without = run(
        mosquitto("mosquitto_pub", lab, socks, &anchors, "dev-1").args(["-t", "a", "-m", "b"]),
        LIMIT,
    )
    .await;
    assert!(!without.status.success(), "{}", text(&without));
    let with = run(
        mosquitto("mosquitto_pub", lab, socks, &anchors, "dev-1")
            .args(["-t", "a", "-m", "b", "--cert"])
            .arg(dir.join(hil::pki::file::CLIENT_CERT))
            .arg("--key")
            .arg(dir.join(hil::pki::file::CLIENT_KEY)),
        LIMIT,
    )
    .await;
    assert!(with.status.success(), "{}", text(&with));
    wait(
        lab,
        "CONNECT from dev-1",
        |e| matches!(&e.kind, EventKind::MqttConnect { client_id, .. } if client_id == "dev-1"),
    )
    .await;
}
