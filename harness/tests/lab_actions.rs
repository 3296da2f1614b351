//! The lab's per-device broker actions against mosquitto's clients and
//! `openssl s_client`: dropping one device's connections (the others stay up, the
//! dropped client notices and reconnects), and restarting the broker for one
//! device (attempts during the downtime are reset before a ServerHello and
//! counted, the relay to the broker is gone too, and service resumes by itself).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;

use common::*;
use hil::lab::{BrokerBackend, DevicePolicy, Lab};
use hil::pki::{ProfileId, BROKER_HOST};
use hil::timeline::{BrokerAction, Cursor, Event, EventKind, HandshakeOutcome};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

const LIMIT: Duration = Duration::from_secs(20);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A long-running mosquitto_sub for `id`, reaching the lab through a SOCKS hop
/// that connects from `source`.
async fn subscriber(lab: &Lab, source: IpAddr, id: &str, extra: &[&str]) -> Child {
    require("mosquitto_sub");
    let socks: SocketAddr = socks_to_from(lab.addrs().mqtt_tls, source).await;
    Command::new("mosquitto_sub")
        .args(["-h", BROKER_HOST, "-p"])
        .arg(lab.addrs().mqtt_tls.port().to_string())
        .arg("--proxy")
        .arg(format!("socks5h://{socks}"))
        .arg("--cafile")
        .arg(lab.device_anchors())
        .args(["-i", id, "-t", &format!("cmd/{id}"), "-k", "30"])
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

async fn wait(lab: &Lab, from: Cursor, what: &str, pred: impl Fn(&Event) -> bool) -> Event {
    let timeline = lab.timeline();
    match timeline.wait_for(from, LIMIT, pred).await {
        Some(e) => e,
        None => panic!("no {what}; timeline: {:#?}", timeline.snapshot()),
    }
}

fn connect_of(device: IpAddr, id: &str) -> impl Fn(&Event) -> bool + '_ {
    move |e| {
        e.device == Some(device)
            && matches!(&e.kind, EventKind::MqttConnect { client_id, .. } if client_id == id)
    }
}

fn subscribed(device: IpAddr) -> impl Fn(&Event) -> bool {
    move |e| e.device == Some(device) && matches!(e.kind, EventKind::MqttSubscribe { .. })
}

fn closed(device: IpAddr) -> impl Fn(&Event) -> bool {
    move |e| e.device == Some(device) && matches!(e.kind, EventKind::TlsClosed { .. })
}

fn accepted(device: IpAddr) -> impl Fn(&Event) -> bool {
    move |e| e.device == Some(device) && matches!(e.kind, EventKind::TlsAccepted { .. })
}

/// Waits for a mosquitto_sub to exit and returns what it said.
async fn exit_of(child: Child) -> (std::process::ExitStatus, String) {
    let out = tokio::time::timeout(LIMIT, child.wait_with_output())
        .await
        .expect("the client did not notice its connection was dropped")
        .unwrap();
    (out.status, text(&out))
}

/// drop_connections, failing (not hanging) if a connection ignores the drop.
async fn dropped(lab: &Lab, device: IpAddr) -> usize {
    tokio::time::timeout(LIMIT, lab.drop_connections(device))
        .await
        .expect("drop_connections did not return: a connection ignored the drop")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_one_device_closes_only_its_connection_and_the_client_notices() {
    let t = start_lab(ProfileId::Valid, DevicePolicy::default()).await;
    let lab = &t.lab;
    let (a, b) = (ip("127.0.0.1"), ip("127.0.1.9"));
    let start = lab.timeline().start();
    let mut sub_a = subscriber(lab, a, "dev-a", &[]).await;
    let sub_b = subscriber(lab, b, "dev-b", &[]).await;
    wait(lab, start, "SUBSCRIBE from dev-a", subscribed(a)).await;
    wait(lab, start, "SUBSCRIBE from dev-b", subscribed(b)).await;

    // The other device goes; mosquitto_sub reads end-of-stream and reports it.
    let mark = lab.timeline().cursor();
    assert_eq!(dropped(lab, b).await, 1);
    let (status, said) = exit_of(sub_b).await;
    assert!(!status.success(), "{said}");
    assert!(said.contains("connection was lost"), "{said}");
    // dev-a's connection is untouched.
    let untouched = lab
        .timeline()
        .none_within(mark, Duration::from_secs(1), closed(a))
        .await;
    assert!(untouched.is_ok(), "dev-a was dropped too: {untouched:?}");
    assert!(sub_a.try_wait().unwrap().is_none(), "dev-a's client exited");
    // And still carries messages: mosquitto_sub prints one sent after the drop.
    let harness = lab.mqtt_client("hil-harness").await.unwrap();
    harness
        .publish("cmd/dev-a", "still-here", false)
        .await
        .unwrap();
    let mut lines = BufReader::new(sub_a.stdout.take().unwrap()).lines();
    let line = tokio::time::timeout(LIMIT, lines.next_line()).await;
    assert_eq!(line.unwrap().unwrap().as_deref(), Some("still-here"));

    // Now dev-a.
    let mark = lab.timeline().cursor();
    assert_eq!(dropped(lab, a).await, 1);
    let events = lab.timeline().since(mark);
    assert!(
        events.iter().any(closed(a)),
        "the front's close was recorded before drop_connections returned: {events:#?}"
    );
    assert!(events.iter().any(|e| e.device == Some(a)
        && e.kind
            == EventKind::Broker {
                action: BrokerAction::ConnectionsDropped { count: 1 }
            }));
    let (status, said) = exit_of(sub_a).await;
    assert!(!status.success(), "{said}");
    assert!(said.contains("connection was lost"), "{said}");

    // A device with nothing open: nothing to drop, and it says so.
    assert_eq!(lab.drop_connections(ip("127.0.1.77")).await.unwrap(), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn during_a_restart_handshakes_fail_are_counted_and_service_resumes_by_itself() {
    let t = start_lab(ProfileId::Valid, DevicePolicy::default()).await;
    let lab = &t.lab;
    let addr = lab.addrs().mqtt_tls;
    let anchors = lab.device_anchors();
    let device = ip("127.0.0.1");
    let before = run(&mut s_client(addr, &anchors, BROKER_HOST), LIMIT).await;
    assert!(before.status.success(), "{}", text(&before));

    let mark = lab.timeline().cursor();
    lab.restart_broker(device, Duration::from_secs(2))
        .await
        .unwrap();
    let down = run(&mut s_client(addr, &anchors, BROKER_HOST), LIMIT).await;
    let said = text(&down);
    assert!(!down.status.success(), "handshake during downtime: {said}");
    assert!(
        said.contains("no peer certificate available") && !said.contains("Server certificate"),
        "s_client got a server flight during the downtime: {said}"
    );
    let during = lab.timeline().since(mark);
    let attempts = during.iter().filter(|e| accepted(device)(e)).count();
    assert_eq!(attempts, 1, "{during:#?}");
    assert!(during.iter().any(|e| matches!(
        &e.kind,
        EventKind::TlsHandshake {
            outcome: HandshakeOutcome::Closed,
            ..
        }
    )));
    assert!(during
        .iter()
        .all(|e| !matches!(e.kind, EventKind::TlsClientHello { .. })));
    assert!(during.iter().any(|e| e.device == Some(device)
        && e.kind
            == EventKind::Broker {
                action: BrokerAction::Down { downtime_ms: 2000 }
            }));

    // Another device is served throughout.
    let other = tokio::net::TcpSocket::new_v4().unwrap();
    other.bind((ip("127.0.1.9"), 0).into()).unwrap();
    let tcp = other.connect(addr).await.unwrap();
    let mut builder =
        openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls_client()).unwrap();
    builder.set_ca_file(&anchors).unwrap();
    let ssl = builder
        .build()
        .configure()
        .unwrap()
        .into_ssl(BROKER_HOST)
        .unwrap();
    let mut stream = tokio_openssl::SslStream::new(ssl, tcp).unwrap();
    std::pin::Pin::new(&mut stream).connect().await.unwrap();
    drop(stream);

    // Up again without a second call; the event says when.
    let up = wait(lab, mark, "the broker coming up", |e| {
        e.device == Some(device)
            && e.kind
                == EventKind::Broker {
                    action: BrokerAction::Up,
                }
    })
    .await;
    let down_at = during
        .iter()
        .find(|e| {
            matches!(
                e.kind,
                EventKind::Broker {
                    action: BrokerAction::Down { .. }
                }
            )
        })
        .unwrap()
        .t_us;
    assert!(
        up.t_us - down_at >= 2_000_000,
        "up after {} us",
        up.t_us - down_at
    );
    let after = run(&mut s_client(addr, &anchors, BROKER_HOST), LIMIT).await;
    assert!(after.status.success(), "{}", text(&after));
    assert!(
        text(&after).contains("Verification: OK"),
        "{}",
        text(&after)
    );
}

/// The relay to the broker goes with the device's connection: the broker publishes
/// the device's will while the device cannot get back in (so no reconnect or
/// session takeover can be what triggered it).
#[tokio::test(flavor = "multi_thread")]
async fn a_restart_closes_the_relay_so_the_broker_publishes_the_will() {
    let t = start_lab(ProfileId::Valid, DevicePolicy::default()).await;
    let lab = &t.lab;
    let device = ip("127.0.0.1");
    let mut harness = lab.mqtt_client("hil-harness").await.unwrap();
    let start = lab.timeline().start();
    let mut sub = subscriber(
        lab,
        device,
        "dev-w",
        &["--will-topic", "will/dev-w", "--will-payload", "gone"],
    )
    .await;
    wait(lab, start, "SUBSCRIBE from dev-w", subscribed(device)).await;

    let mark = lab.timeline().cursor();
    lab.restart_broker(device, Duration::from_secs(5))
        .await
        .unwrap();
    let will = loop {
        let m = harness
            .next_message(LIMIT)
            .await
            .expect("the broker published no will");
        if m.topic == "will/dev-w" {
            break m;
        }
    };
    assert_eq!(will.payload, b"gone");
    let events = lab.timeline().since(mark);
    assert!(
        events.iter().all(|e| !matches!(
            e.kind,
            EventKind::Broker {
                action: BrokerAction::Up
            }
        )),
        "the will came only after the broker was up again: {events:#?}"
    );
    assert!(
        !events.iter().any(connect_of(device, "dev-w")),
        "dev-w got back in during the downtime: {events:#?}"
    );
    let _ = sub.kill().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mosquitto_backend_refuses_the_actions_by_name() {
    require("mosquitto");
    let t = start_lab_with(ProfileId::Valid, DevicePolicy::default(), |c| {
        c.backend = BrokerBackend::Mosquitto;
    })
    .await;
    let err = t.lab.drop_connections(ip("127.0.0.1")).await.unwrap_err();
    let code = miette::Diagnostic::code(&err).unwrap().to_string();
    assert_eq!(code, "hil::lab::mosquitto_unsupported");
    assert!(
        err.to_string().contains("drop one device's connections"),
        "{err}"
    );
    let err = t
        .lab
        .restart_broker(ip("127.0.0.1"), Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("restart the broker"), "{err}");
}
