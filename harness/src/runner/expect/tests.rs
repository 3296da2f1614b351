//! Every Then step judged on synthetic timelines: one that passes, one that
//! fails, and the inconclusive case where the rules give one. A test walks the
//! vocabulary and fails when a Then step has no failing case here.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use time::OffsetDateTime;

use super::*;
use crate::runner::steps::{parse, phrase_of, vocabulary, Kind};
use crate::timeline::{
    BoardEvent, ClientHello, Direction, DnsAnswer, Event, HandshakeOutcome, Source,
};

const DEVICE: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 1, 1));

/// What a case expects of the judgement.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Want {
    Pass,
    Fail,
    Inconclusive,
    Pending,
}

/// One synthetic event: when (seconds after the act) and what.
type Ev = (f64, EventKind);

fn peer(port: u16) -> SocketAddr {
    SocketAddr::new(DEVICE, port)
}

fn line(t: f64, text: &str) -> Ev {
    (t, EventKind::SerialLine { line: text.into() })
}

fn reset(t: f64) -> Ev {
    (
        t,
        EventKind::Board {
            what: BoardEvent::Reset,
        },
    )
}

fn boot(t: f64) -> Vec<Ev> {
    vec![
        reset(t),
        line(t + 0.01, " ets Jan  8 2013,rst cause:2, boot mode:(3,6)"),
        line(
            t + 0.1,
            "[boot] fw=hil-reference version=1.0.0 reset=External-System",
        ),
    ]
}

fn dns(t: f64, name: &str, answer: DnsAnswer) -> Ev {
    (
        t,
        EventKind::DnsQuery {
            peer: peer(5353),
            name: name.into(),
            qtype: "A".into(),
            answer,
        },
    )
}

fn resolved(t: f64) -> Ev {
    dns(
        t,
        "broker.hil.test",
        DnsAnswer::Address {
            ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
        },
    )
}

fn accepted(t: f64, port: u16) -> Ev {
    (t, EventKind::TlsAccepted { peer: peer(port) })
}

fn hello(t: f64, port: u16, sni: Option<&str>, mfln: Option<u16>) -> Ev {
    (
        t,
        EventKind::TlsClientHello {
            peer: peer(port),
            hello: ClientHello {
                sni: sni.map(str::to_owned),
                versions: vec!["TLS1.2".into()],
                cipher_suites: Vec::new(),
                max_fragment_length: mfln,
            },
        },
    )
}

fn completed(t: f64, port: u16) -> Ev {
    (
        t,
        EventKind::TlsHandshake {
            peer: peer(port),
            outcome: HandshakeOutcome::Completed {
                version: "TLS1.2".into(),
                suite: "x".into(),
            },
        },
    )
}

fn stopped(t: f64, port: u16) -> Ev {
    (
        t,
        EventKind::TlsHandshake {
            peer: peer(port),
            outcome: HandshakeOutcome::ClientStoppedSending,
        },
    )
}

fn connect(t: f64) -> Ev {
    (
        t,
        EventKind::MqttConnect {
            client_id: "ESP8266-a1b2c3".into(),
            username: None,
            keep_alive: 15,
            protocol_level: 4,
        },
    )
}

fn connack(t: f64, code: u8) -> Ev {
    (t, EventKind::MqttConnack { code })
}

fn publish(t: f64, topic: &str, payload: &str) -> Ev {
    (
        t,
        EventKind::MqttPublish {
            direction: Direction::FromDevice,
            topic: topic.into(),
            payload: payload.into(),
            bytes: payload.len(),
            qos: 0,
            retain: false,
        },
    )
}

fn flagged(t: f64, topic: &str, qos: u8, retain: bool) -> Ev {
    (
        t,
        EventKind::MqttPublish {
            direction: Direction::FromDevice,
            topic: topic.into(),
            payload: "{}".into(),
            bytes: 2,
            qos,
            retain,
        },
    )
}

fn subscribe(t: f64, topic: &str) -> Ev {
    (
        t,
        EventKind::MqttSubscribe {
            topics: vec![topic.into()],
        },
    )
}

fn ntp(t: f64) -> Ev {
    (
        t,
        EventKind::NtpRequest {
            peer: peer(123),
            answered: Some("2026-01-01T00:00:00Z".into()),
        },
    )
}

/// How every attempt on connection `port` from `t` starts, whatever its end:
/// the name resolved, the connection accepted and the device's ClientHello.
fn attempt_until_hello(t: f64, port: u16) -> Vec<Ev> {
    vec![
        resolved(t),
        line(
            t + 0.01,
            "[tls] connecting host=broker.hil.test port=8883 mode=trust-anchors",
        ),
        accepted(t + 0.02, port),
        hello(t + 0.03, port, Some("broker.hil.test"), Some(512)),
    ]
}

/// A whole successful attempt on connection `port`, from `t`.
fn good_attempt(t: f64, port: u16) -> Vec<Ev> {
    let mut evs = attempt_until_hello(t, port);
    evs.extend([
        completed(t + 0.05, port),
        line(
            t + 0.06,
            "[tls] ok version=TLS1.2 suite=TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 mfln=512",
        ),
        connect(t + 0.07),
        connack(t + 0.08, 0),
        line(t + 0.09, "[mqtt] connected client_id=ESP8266-a1b2c3"),
    ]);
    evs
}

/// An attempt the device refuses with BearSSL `code`, on connection `port`.
fn refused_attempt(t: f64, port: u16, code: i64, name: &str) -> Vec<Ev> {
    let mut evs = attempt_until_hello(t, port);
    evs.extend([
        line(t + 0.05, &format!("[tls] error code={code} text={name}")),
        line(t + 0.06, "[mqtt] failed rc=-2"),
        line(t + 0.07, "[mqtt] retry in_ms=1000"),
        stopped(t + 0.9, port),
    ]);
    evs
}

struct Case {
    step: &'static str,
    events: Vec<Ev>,
    /// Seconds after the act the step is reached.
    reached: f64,
    /// Seconds after the act it is judged.
    now: f64,
    want: Want,
    why: &'static str,
}

fn case(step: &'static str, events: Vec<Ev>, now: f64, want: Want, why: &'static str) -> Case {
    Case {
        step,
        events,
        reached: 0.0,
        now,
        want,
        why,
    }
}

fn cat(parts: Vec<Vec<Ev>>) -> Vec<Ev> {
    parts.into_iter().flatten().collect()
}

fn us(seconds: f64) -> u64 {
    (seconds * 1e6) as u64
}

/// The act is at t = 100 s of the timeline; events get seqs from 1000 in time
/// order, and the act's position is the first event at or after it (events at
/// negative times came before the act).
fn observe(events: &[Ev]) -> (Vec<Observed>, Mark) {
    let mut sorted = events.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let before = sorted.iter().filter(|(t, _)| *t < 0.0).count() as u64;
    let act = Mark {
        seq: 1000 + before,
        t_us: us(100.0),
    };
    let log = crate::logprofile::LogProfile::reference();
    let observed = sorted
        .into_iter()
        .enumerate()
        .map(|(i, (t, kind))| {
            let source = match kind {
                EventKind::SerialLine { .. } => Source::Serial,
                _ => Source::Harness,
            };
            let event = Event {
                seq: 1000 + i as u64,
                t_us: (act.t_us as i64 + (t * 1e6) as i64) as u64,
                wall: OffsetDateTime::UNIX_EPOCH,
                source,
                device: Some(DEVICE),
                kind,
            };
            Observed::new(event, &log)
        })
        .collect();
    (observed, act)
}

fn scene() -> Scene {
    Scene::new(
        crate::logprofile::LogProfile::reference(),
        Duration::from_secs(10),
    )
}

fn run(c: &Case) -> Judgement {
    let (events, act) = observe(&c.events);
    let reached_seq = events
        .iter()
        .find(|o| o.t_us() >= act.t_us + us(c.reached))
        .map_or(act.seq + events.len() as u64, |o| o.seq());
    let reached = Mark {
        seq: reached_seq,
        t_us: act.t_us + us(c.reached),
    };
    let step = parse(c.step).unwrap_or_else(|e| panic!("`{}`: {e}", c.step));
    let expectation = Expectation::for_step(&step, reached, act)
        .unwrap_or_else(|| panic!("`{}` has no expectation", c.step));
    expectation.judge(&scene(), &events, act.t_us + us(c.now))
}

fn outcome(j: &Judgement) -> Want {
    match j {
        Judgement::Decided(Verdict::Pass) => Want::Pass,
        Judgement::Decided(Verdict::Fail(_)) => Want::Fail,
        Judgement::Decided(Verdict::Inconclusive(_)) => Want::Inconclusive,
        Judgement::Pending { .. } => Want::Pending,
    }
}

fn cases() -> Vec<Case> {
    use Want::*;
    let flood: Vec<Ev> = (0..30)
        .map(|i| publish(5.0 + f64::from(i) * 0.05, "hil/telemetry", "{}"))
        .collect();
    let reconnect_storm: Vec<Ev> = (0..8)
        .map(|i| accepted(3.0 + f64::from(i) * 0.2, 40000 + i as u16))
        .collect();
    vec![
        // --- serial output ---
        case(r#"the serial output contains "csum err" within 10 s"#, vec![line(1.0, "csum err")], 1.5, Pass, "the line came"),
        case(r#"the serial output contains "csum err" within 10 s"#, vec![line(1.0, "csum 0x2b")], 10.0, Fail, "it never came"),
        case(r#"the serial output contains "csum err" within 10 s"#, vec![line(11.0, "csum err")], 12.0, Fail, "it came after the deadline"),
        case(r#"the serial output contains "csum err" within 10 s"#, vec![], 5.0, Pending, "still time"),
        case(r"the serial output matches /\[boot\] fw=\S+/ within 10 s", vec![line(1.0, "[boot] fw=x version=1")], 1.0, Pass, "matched"),
        case(r"the serial output matches /\[boot\] fw=\S+/ within 10 s", vec![line(1.0, "[boot]")], 10.0, Fail, "no match"),
        case(r#"the serial output never contains "[tls] error""#, vec![line(1.0, "[tls] ok version=TLS1.2 suite=x mfln=0")], 2.0, Pass, "never printed"),
        case(r#"the serial output never contains "[tls] error""#, vec![line(1.0, "[tls] error code=6 text=BR_ERR_TOO_LARGE")], 2.0, Fail, "printed"),
        // --- the device's own reports ---
        case("the device reports a TLS failure with code 56", cat(vec![refused_attempt(1.0, 40001, 56, "BR_ERR_X509_BAD_SERVER_NAME"), refused_attempt(2.0, 40002, 56, "BR_ERR_X509_BAD_SERVER_NAME")]), 3.0, Pass, "56 twice: settled on the second attempt"),
        case("the device reports a TLS failure with code 56", refused_attempt(1.0, 40001, 56, "BR_ERR_X509_BAD_SERVER_NAME"), 3.0, Pending, "one attempt: the next one must be seen"),
        case("the device reports a TLS failure with code 56", refused_attempt(1.0, 40001, 54, "BR_ERR_X509_EXPIRED"), 3.0, Fail, "the wrong code"),
        case("the device reports a TLS failure with code 56", cat(vec![refused_attempt(1.0, 40001, 56, "BR_ERR_X509_BAD_SERVER_NAME"), good_attempt(2.0, 40002)]), 3.0, Fail, "56, then setInsecure() and connected"),
        case("the device reports a TLS failure with code 56", good_attempt(1.0, 40001), 2.0, Fail, "it connected"),
        case("the device reports a TLS failure with code 56", vec![], 10.0, Inconclusive, "a device that never tried"),
        case("the device reports a TLS failure with code 56", vec![resolved(1.0), accepted(1.1, 40001)], 10.0, Fail, "it tried and never said why it failed"),
        case("the device reports MQTT state -2", vec![line(1.0, "[mqtt] failed rc=-2")], 1.0, Pass, "reported"),
        case("the device reports MQTT state -2", vec![line(1.0, "[mqtt] failed rc=4")], 1.0, Fail, "another state"),
        case("the device reports MQTT state 4", vec![line(1.0, "[mqtt] connected client_id=x")], 1.0, Fail, "it connected"),
        case("the device reports MQTT state -4 within 30 s", vec![], 30.0, Fail, "nothing reported"),
        case("the device reports MQTT state 0", vec![line(1.0, "[mqtt] connected client_id=x")], 1.0, Pass, "state 0 is a connection"),
        // --- reboots ---
        case("the board does not reboot", cat(vec![boot(0.0), good_attempt(1.0, 40001)]), 3.0, Pass, "one boot after the reset"),
        case("the board does not reboot", cat(vec![boot(0.0), vec![line(2.0, "Exception (28):"), line(2.1, "epc1=0x402020b0 epc2=0x00000000 epc3=0x00000000 excvaddr=0x00000000 depc=0x00000000")]]), 3.0, Fail, "a crash"),
        case("the board does not reboot", cat(vec![boot(0.0), vec![line(4.0, "[boot] fw=hil-reference version=1.0.0 reset=Hardware-Watchdog")]]), 5.0, Fail, "a second boot after one reset"),
        case("the board reboots within 10 s", cat(vec![boot(0.0), vec![line(4.0, "Soft WDT reset")]]), 5.0, Pass, "it rebooted"),
        case("the board reboots within 10 s", boot(0.0), 10.0, Fail, "it kept running"),
        // --- the network ---
        case("the TLS handshake succeeds within 20 s", good_attempt(1.0, 40001), 2.0, Pass, "completed"),
        case("the TLS handshake succeeds within 20 s", refused_attempt(1.0, 40001, 62, "BR_ERR_X509_NOT_TRUSTED"), 20.0, Fail, "never completed"),
        case("the TLS handshake succeeds within 20 s", cat(vec![refused_attempt(1.0, 40001, 62, "BR_ERR_X509_NOT_TRUSTED"), refused_attempt(2.0, 40002, 62, "BR_ERR_X509_NOT_TRUSTED")]), 3.0, Fail, "two certificate verdicts: no retry changes that"),
        case("the TLS handshake succeeds within 20 s", cat(vec![refused_attempt(1.0, 40001, 56, "BR_ERR_X509_BAD_SERVER_NAME"), good_attempt(2.0, 40002)]), 3.0, Pass, "a retry that connects is a completed handshake"),
        case("the TLS handshake does not complete", cat(vec![refused_attempt(1.0, 40001, 56, "x"), refused_attempt(2.0, 40002, 56, "x")]), 3.0, Pass, "two failed attempts"),
        case("the TLS handshake does not complete", refused_attempt(1.0, 40001, 56, "x"), 3.0, Pending, "one failure: wait for the next attempt"),
        case("the TLS handshake does not complete", refused_attempt(1.0, 40001, 56, "x"), 12.1, Pass, "one failure, and the settle window after the retry it announced is over"),
        case("the TLS handshake does not complete", cat(vec![refused_attempt(1.0, 40001, 56, "x"), good_attempt(2.0, 40002)]), 3.0, Fail, "the second attempt completed (setInsecure)"),
        case("the TLS handshake does not complete", boot(0.0), 10.0, Inconclusive, "booted, never dialled"),
        case("the TLS handshake does not complete", vec![], 10.0, Inconclusive, "an erased board says nothing"),
        case("the TLS handshake does not complete", vec![accepted(1.0, 40001), hello(1.1, 40001, None, None)], 10.0, Pass, "a broker that stalls: it tried and nothing completed"),
        case("the device starts a TLS handshake within 20 s", vec![hello(1.0, 40001, None, None)], 1.0, Pass, "a ClientHello"),
        case("the device starts a TLS handshake within 20 s", vec![resolved(1.0)], 20.0, Fail, "no ClientHello"),
        case(r#"the device sent SNI "broker.hil.test""#, vec![hello(1.0, 40001, Some("broker.hil.test"), None)], 1.0, Pass, "that name"),
        case(r#"the device sent SNI "broker.hil.test""#, vec![hello(1.0, 40001, None, None)], 1.0, Fail, "no SNI"),
        case(r#"the device sent SNI "broker.hil.test""#, vec![], 10.0, Fail, "no ClientHello at all"),
        case("the device sent no SNI", vec![hello(1.0, 40001, None, None)], 1.0, Pass, "none"),
        case("the device sent no SNI", vec![hello(1.0, 40001, Some("broker.hil.test"), None)], 1.0, Fail, "sent one"),
        case("the device offered a max fragment length of 512 bytes", vec![hello(1.0, 40001, None, Some(512))], 1.0, Pass, "512"),
        case("the device offered a max fragment length of 512 bytes", vec![hello(1.0, 40001, None, None)], 1.0, Fail, "no extension"),
        case("the device connects to the broker within 20 s", good_attempt(1.0, 40001), 2.0, Pass, "CONNACK 0"),
        case("the device connects to the broker within 20 s", vec![accepted(1.0, 40001), completed(1.1, 40001), connect(1.2), connack(1.3, 4), line(1.4, "[mqtt] failed rc=4")], 20.0, Fail, "a refused CONNECT is not a connection"),
        case("the device connects to the broker within 20 s", vec![], 20.0, Fail, "nothing"),
        case("the device sends an MQTT CONNECT within 20 s", vec![connect(1.2), connack(1.3, 4)], 2.0, Pass, "the attempt counts, whatever the answer"),
        case("the device sends an MQTT CONNECT within 20 s", vec![accepted(1.0, 40001)], 20.0, Fail, "no CONNECT"),
        case("the device never completes an MQTT connection", vec![accepted(1.0, 40001), completed(1.1, 40001), connect(1.2), connack(1.3, 4), line(1.4, "[mqtt] failed rc=4"), accepted(3.0, 40002), completed(3.1, 40002), connect(3.2), connack(3.3, 4), line(3.4, "[mqtt] failed rc=4")], 4.0, Pass, "refused twice"),
        case("the device never completes an MQTT connection", cat(vec![refused_attempt(1.0, 40001, 56, "x"), good_attempt(2.0, 40002)]), 3.0, Fail, "connected on the retry"),
        case("the device never completes an MQTT connection", vec![line(0.5, "[boot] fw=x version=1 reset=x")], 10.0, Inconclusive, "never tried"),
        case("the device never completes an MQTT connection", vec![dns(1.0, "broker.hil.test", DnsAnswer::NxDomain), line(1.1, "[dns] failed host=broker.hil.test"), line(1.2, "[mqtt] failed rc=-2"), dns(2.2, "broker.hil.test", DnsAnswer::NxDomain), line(2.3, "[dns] failed host=broker.hil.test"), line(2.4, "[mqtt] failed rc=-2")], 3.0, Pass, "a name that does not resolve, twice"),
        case(r#"the device publishes to "hil/telemetry" within 20 s"#, vec![publish(2.0, "hil/telemetry", "{}")], 2.0, Pass, "published"),
        case(r#"the device publishes to "hil/telemetry" within 20 s"#, vec![publish(2.0, "hil/other", "{}")], 20.0, Fail, "another topic"),
        case(r#"the device publishes a message matching /"seq":\d+/ to "hil/telemetry" within 20 s"#, vec![publish(2.0, "hil/telemetry", r#"{"seq":1}"#)], 2.0, Pass, "matching payload"),
        case(r#"the device publishes a message matching /"seq":\d+/ to "hil/telemetry" within 20 s"#, vec![publish(2.0, "hil/telemetry", "{}")], 20.0, Fail, "payload without seq"),
        case(r#"the device subscribes to "hil/commands" within 20 s"#, vec![subscribe(2.0, "hil/commands")], 2.0, Pass, "subscribed"),
        case(r#"the device subscribes to "hil/commands" within 20 s"#, vec![subscribe(2.0, "hil/other")], 20.0, Fail, "another topic"),
        case(r#"the device subscribes to "hil/commands" within 20 s"#, cat(vec![refused_attempt(1.0, 40001, 62, "BR_ERR_X509_NOT_TRUSTED"), refused_attempt(2.0, 40002, 62, "BR_ERR_X509_NOT_TRUSTED")]), 3.0, Fail, "refused twice by its own certificate check: no need to wait 20 s"),
        case(r#"the device subscribes to "hil/commands" within 20 s"#, cat(vec![refused_attempt(1.0, 40001, 27, "BR_ERR_BAD_SIGNATURE"), refused_attempt(2.0, 40002, 27, "BR_ERR_BAD_SIGNATURE")]), 3.0, Pending, "only a certificate verdict (BearSSL 32..63) stops a positive step early, as docs/steps.md says"),
        case(r#"the device subscribes to "hil/commands" within 20 s"#, cat(vec![refused_attempt(1.0, 40001, 326, "BR_ERR_RECV_FATAL_ALERT"), refused_attempt(2.0, 40002, 326, "BR_ERR_RECV_FATAL_ALERT")]), 3.0, Pending, "an alert is no certificate verdict"),
        // --- issue 19: evidence, windows counted from the first failure, flags ---
        case("the TLS handshake does not complete", cat(vec![boot(0.0), vec![line(3.0, "[tls] connecting host=broker.hil.test port=8883 mode=trust-anchors")]]), 10.0, Inconclusive, "the device's own words are no attempt: nothing reached the lab"),
        case("the TLS handshake does not complete", refused_attempt(8.0, 40001, 56, "x"), 12.0, Pending, "a real board fails first at 8 s: the window for its next attempt counts from there"),
        case("the TLS handshake does not complete", refused_attempt(8.0, 40001, 56, "x"), 19.2, Pass, "the settle window after the first failure (and its announced retry) is over"),
        case("the TLS handshake does not complete", cat(vec![refused_attempt(8.0, 40001, 56, "x"), good_attempt(14.0, 40002)]), 15.0, Fail, "setInsecure() on the retry 6 s after a late first failure"),
        case("the device never completes an MQTT connection", cat(vec![refused_attempt(1.0, 40001, 56, "x"), vec![line(1.08, "[mqtt] retry in_ms=15000")]]), 12.0, Pending, "the device said it retries in 15 s: that attempt must be watched"),
        case("the device never completes an MQTT connection", cat(vec![refused_attempt(1.0, 40001, 56, "x"), vec![line(1.08, "[mqtt] retry in_ms=15000")], good_attempt(16.1, 40002)]), 17.0, Fail, "the announced retry connected"),
        case(r#"the device's publishes to "hil/telemetry" are not retained"#, vec![publish(2.0, "hil/telemetry", "{}")], 2.0, Pass, "not retained"),
        case(r#"the device's publishes to "hil/telemetry" are not retained"#, vec![flagged(2.0, "hil/telemetry", 0, true)], 2.0, Fail, "retained telemetry"),
        case(r#"the device's publishes to "hil/telemetry" are not retained"#, vec![publish(2.0, "hil/other", "{}")], 10.0, Inconclusive, "nothing published to the topic"),
        case(r#"the device's publishes to "hil/telemetry" are retained"#, vec![publish(2.0, "hil/telemetry", "{}")], 2.0, Fail, "not retained"),
        case(r#"the device's publishes to "hil/telemetry" use QoS 1"#, vec![flagged(2.0, "hil/telemetry", 1, false)], 2.0, Pass, "QoS 1"),
        case(r#"the device's publishes to "hil/telemetry" use QoS 1"#, vec![flagged(2.0, "hil/telemetry", 1, false), flagged(3.0, "hil/telemetry", 0, false)], 3.0, Fail, "a later publish at QoS 0"),
        case(r#"the device publishes to "hil/telemetry" within 20 s"#, cat(vec![good_attempt(1.0, 40001), vec![line(1.5, "[tls] error code=6 text=BR_ERR_TOO_LARGE"), line(1.6, "[mqtt] failed rc=-3")], good_attempt(2.6, 40002), vec![line(3.0, "[tls] error code=6 text=BR_ERR_TOO_LARGE"), line(3.1, "[mqtt] failed rc=-3")]]), 4.0, Pending, "an error in a session is no verdict on the handshake"),
        case("the device sends an MQTT CONNECT within 20 s", cat(vec![refused_attempt(1.0, 40001, 62, "x"), refused_attempt(2.0, 40002, 62, "x")]), 3.0, Fail, "never past the handshake, twice"),
        case("the device asked for the time within 10 s", vec![ntp(0.5)], 1.0, Pass, "asked"),
        case("the device asked for the time within 10 s", vec![], 10.0, Fail, "never asked"),
        case(r#"the device looks up "mqtt.example.com" within 10 s"#, vec![dns(0.5, "mqtt.example.com.", DnsAnswer::NxDomain)], 1.0, Pass, "looked it up (whatever the answer)"),
        case(r#"the device looks up "mqtt.example.com" within 10 s"#, vec![resolved(0.5)], 10.0, Fail, "another name"),
    ]
    .into_iter()
    .chain(rate_cases(flood, reconnect_storm))
    .collect()
}

fn rate_cases(flood: Vec<Ev>, storm: Vec<Ev>) -> Vec<Case> {
    use Want::*;
    let calm: Vec<Ev> = (0..5)
        .map(|i| publish(1.0 + f64::from(i), "hil/telemetry", "{}"))
        .collect();
    vec![
        Case {
            step: "the device publishes at most 5 messages per 2 s",
            events: calm,
            reached: 0.5,
            now: 2.5,
            want: Pass,
            why: "one a second",
        },
        Case {
            step: "the device publishes at most 5 messages per 2 s",
            events: flood.clone(),
            reached: 4.0,
            now: 6.0,
            want: Fail,
            why: "a flood after the step was reached",
        },
        Case {
            step: "the device publishes at most 5 messages per 2 s",
            events: flood,
            reached: 7.0,
            now: 9.0,
            want: Pass,
            why: "a flood before the step was reached is not its window",
        },
        Case {
            step: "the device publishes at most 5 messages per 2 s",
            events: vec![],
            reached: 1.0,
            now: 2.0,
            want: Pending,
            why: "the window is not over",
        },
        Case {
            step: "the device opens at most 6 connections per 10 s",
            events: storm.clone(),
            reached: 0.0,
            now: 10.0,
            want: Fail,
            why: "8 connections in 1.4 s",
        },
        Case {
            step: "the device opens at most 6 connections per 10 s",
            events: storm[..3].to_vec(),
            reached: 0.0,
            now: 10.0,
            want: Pass,
            why: "backoff",
        },
    ]
}

#[test]
fn every_case_gets_its_verdict() {
    let mut wrong = Vec::new();
    for c in cases() {
        let got = run(&c);
        if outcome(&got) != c.want {
            wrong.push(format!(
                "`{}` ({}): wanted {:?}, got {got:?}",
                c.step, c.why, c.want
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn every_then_step_is_proven_able_to_fail() {
    let cases = cases();
    let mut missing = Vec::new();
    for phrase in vocabulary().iter().filter(|p| p.kind == Kind::Then) {
        // The snapshot step compares with a stored file: its failing case is in
        // runner::snapshot's tests (a changed transcript does not match).
        if phrase.doc == "the transcript matches the snapshot" {
            continue;
        }
        let fails = cases.iter().any(|c| {
            phrase_of(c.step).is_some_and(|p| p.doc == phrase.doc) && c.want == Want::Fail
        });
        if !fails {
            missing.push(phrase.doc);
        }
    }
    assert!(
        missing.is_empty(),
        "Then steps without a failing case: {missing:#?}"
    );
}

#[test]
fn negative_network_steps_are_inconclusive_without_evidence() {
    for step in [
        "the TLS handshake does not complete",
        "the device never completes an MQTT connection",
        "the device reports a TLS failure with code 62",
    ] {
        let got = run(&case(step, boot(0.0), 10.0, Want::Inconclusive, ""));
        match got {
            Judgement::Decided(Verdict::Inconclusive(f)) => {
                assert!(f.found.contains("never tried"), "{step}: {}", f.found)
            }
            other => panic!("{step}: {other:?}"),
        }
    }
}

#[test]
fn holds_are_broken_by_what_comes_later() {
    let (events, act) = observe(&cat(vec![
        refused_attempt(1.0, 40001, 56, "BR_ERR_X509_BAD_SERVER_NAME"),
        refused_attempt(2.0, 40002, 56, "BR_ERR_X509_BAD_SERVER_NAME"),
    ]));
    let step = parse("the device never completes an MQTT connection").unwrap();
    let expectation = Expectation::for_step(&step, act, act).unwrap();
    assert!(expectation.holds());
    assert_eq!(expectation.recheck(&scene(), &events, us(200.0)), None);
    let (later, _) = observe(&cat(vec![
        refused_attempt(1.0, 40001, 56, "x"),
        refused_attempt(2.0, 40002, 56, "x"),
        good_attempt(5.0, 40003),
    ]));
    match expectation.recheck(&scene(), &later, us(200.0)) {
        Some(Verdict::Fail(f)) => assert!(f.found.contains("later attempt"), "{}", f.found),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_crash_is_found_with_its_dump_and_a_reboot_by_its_second_boot() {
    let dump = cat(vec![
        boot(0.0),
        vec![
            line(2.0, "Exception (28):"),
            line(2.01, "epc1=0x402020b0 epc2=0x00000000 epc3=0x00000000 excvaddr=0x00000000 depc=0x00000000"),
            line(2.02, ">>>stack>>>"),
            line(2.03, "3fffff90:  3fffdad0 00000000 3ffee7c8 40201ae0  "),
            line(2.04, "<<<stack<<<"),
        ],
        boot(3.0)[1..].to_vec(),
    ]);
    let (events, _) = observe(&dump);
    let CrashWatch::Crashed(_, crash) = crash_watch(&events, us(200.0), None) else {
        panic!("a crash");
    };
    assert_eq!(crash.kind, crate::crash::CrashKind::Exception { cause: 28 });
    assert_eq!(crash.code_addresses(), [0x4020_20b0, 0x4020_1ae0]);

    let (twice, _) = observe(&cat(vec![boot(0.0), boot(5.0)[1..].to_vec()]));
    assert!(matches!(
        crash_watch(&twice, us(200.0), None),
        CrashWatch::Crashed(_, c) if c.kind == crate::crash::CrashKind::UnexpectedBoot
    ));
    // A second reset by the harness is not a reboot.
    let (reset_twice, _) = observe(&cat(vec![boot(0.0), boot(5.0)]));
    assert_eq!(crash_watch(&reset_twice, us(200.0), None), CrashWatch::Calm);
}

#[test]
fn on_a_served_network_a_board_without_a_lease_is_inconclusive() {
    let mut served = scene();
    served.joins_by_dhcp = true;
    let judge = |events: &[Ev], step: &str, now: f64| {
        let (events, act) = observe(events);
        let expectation = Expectation::for_step(&parse(step).unwrap(), act, act).unwrap();
        expectation.judge(&served, &events, act.t_us + us(now))
    };
    match judge(
        &boot(0.0),
        "the device connects to the broker within 20 s",
        20.0,
    ) {
        Judgement::Decided(Verdict::Inconclusive(f)) => {
            assert!(
                f.found.contains("never joined the lab's network"),
                "{}",
                f.found
            )
        }
        other => panic!("{other:?}"),
    }
    let lease = (
        0.5,
        EventKind::DhcpLease {
            mac: "18:fe:34:48:49:07".into(),
            ip: DEVICE,
            hostname: None,
            lease_secs: 3600,
        },
    );
    let joined = cat(vec![
        boot(0.0),
        vec![lease],
        refused_attempt(1.0, 40001, 56, "x"),
    ]);
    assert_eq!(
        outcome(&judge(
            &joined,
            "the device connects to the broker within 20 s",
            20.0
        )),
        Want::Fail,
        "it joined and tried: an ordinary failure"
    );
    assert_eq!(
        outcome(&judge(
            &boot(0.0),
            r#"the serial output contains "csum err" within 10 s"#,
            10.0
        )),
        Want::Fail,
        "serial output is no matter of the network"
    );
}

#[test]
fn a_refused_connect_is_named_by_its_code_whichever_event_comes_last() {
    let attempt = |t: f64, port: u16, broker_first: bool| {
        let (a, b) = if broker_first { (0.3, 0.4) } else { (0.4, 0.3) };
        vec![
            accepted(t, port),
            completed(t + 0.1, port),
            connect(t + 0.2),
            connack(t + a, 4),
            line(t + b, "[mqtt] failed rc=4"),
        ]
    };
    for broker_first in [true, false] {
        let c = case(
            "the device connects to the broker within 20 s",
            cat(vec![
                attempt(1.0, 40001, broker_first),
                attempt(3.0, 40002, broker_first),
            ]),
            4.0,
            Want::Fail,
            "refused twice",
        );
        match run(&c) {
            Judgement::Decided(Verdict::Fail(f)) => {
                assert!(f.found.contains("CONNACK 4"), "{}", f.found)
            }
            other => panic!("broker first: {broker_first}: {other:?}"),
        }
    }
}

/// The crash dumps of a board that crashes every `period` seconds from `from`
/// to `to`, each with its reboot (banner and boot line), as a core prints them.
fn crash_loop(from: f64, to: f64, period: f64) -> Vec<Ev> {
    let mut evs = Vec::new();
    let mut t = from;
    while t < to {
        evs.extend([
            line(t, "Exception (28):"),
            line(t + 0.01, "epc1=0x402020b0 epc2=0x00000000 epc3=0x00000000 excvaddr=0x00000000 depc=0x00000000"),
            line(t + 0.02, ">>>stack>>>"),
            line(t + 0.03, "3fffff90:  3fffdad0 00000000 3ffee7c8 40201ae0  "),
            line(t + 0.04, "<<<stack<<<"),
            line(t + 0.05, " ets Jan  8 2013,rst cause:2, boot mode:(3,6)"),
            line(t + 0.1, "[boot] fw=hil-reference version=1.0.0 reset=Exception"),
        ]);
        t += period;
    }
    evs
}

/// Issue 19, finding 1: after `When 100 ms pass` (the act), a board that has
/// been crashing since its boot reboots within the window: its reboots are
/// read from the harness's reset on, not from the act.
#[test]
fn a_reboot_after_any_act_is_seen() {
    let events = cat(vec![boot(-5.0), crash_loop(-4.0, 10.0, 0.5)]);
    let c = case(
        "the board reboots within 20 s",
        events,
        1.0,
        Want::Pass,
        "crashing all along",
    );
    assert_eq!(outcome(&run(&c)), Want::Pass, "{:?}", run(&c));
    let calm = case(
        "the board reboots within 20 s",
        boot(-5.0),
        20.0,
        Want::Fail,
        "",
    );
    assert_eq!(outcome(&run(&calm)), Want::Fail);
}

/// Issue 19, finding 1: a scenario expecting a reboot turns the crash watch off
/// only from the act its step counts from.
#[test]
fn reboots_before_the_expected_window_are_crashes() {
    let (events, act) = observe(&cat(vec![boot(-5.0), crash_loop(-2.0, -1.0, 0.5)]));
    assert!(matches!(
        crash_watch(&events, us(200.0), Some(act.seq)),
        CrashWatch::Crashed(..)
    ));
    let (events, act) = observe(&cat(vec![boot(-5.0), crash_loop(1.0, 2.0, 0.5)]));
    assert_eq!(
        crash_watch(&events, us(200.0), Some(act.seq)),
        CrashWatch::Calm
    );
}

/// Issue 19, finding 4: a crash is judged when its dump is whole, not from the
/// lines that happened to be there when the harness woke.
#[test]
fn a_crash_is_judged_when_its_dump_is_whole() {
    let header = vec![
        line(2.0, "Exception (28):"),
        line(
            2.01,
            "epc1=0x402020b0 epc2=0x00000000 epc3=0x00000000 excvaddr=0x00000000 depc=0x00000000",
        ),
        line(2.12, ">>>stack>>>"),
    ];
    let (events, act) = observe(&cat(vec![boot(0.0), header.clone()]));
    let at = |s: f64| act.t_us + us(s);
    assert!(matches!(
        crash_watch(&events, at(2.2), None),
        CrashWatch::Arriving { .. }
    ));
    let rows = vec![
        line(2.25, "3fffff90:  3fffdad0 00000000 3ffee7c8 40201ae0  "),
        line(2.3, "3fffffa0:  40201b10 00000000 00000000 40100d5c  "),
        line(2.35, "<<<stack<<<"),
    ];
    let (events, _) = observe(&cat(vec![boot(0.0), header.clone(), rows]));
    let CrashWatch::Crashed(_, crash) = crash_watch(&events, at(2.36), None) else {
        panic!("a whole dump");
    };
    assert_eq!(
        crash.code_addresses(),
        [0x4020_20b0, 0x4020_1ae0, 0x4020_1b10, 0x4010_0d5c]
    );
    // A dump that stops half way is judged once the console has been quiet.
    let (events, _) = observe(&cat(vec![boot(0.0), header]));
    assert!(matches!(
        crash_watch(&events, at(2.7), None),
        CrashWatch::Crashed(..)
    ));
}

/// Issue 19, finding 3: a reboot shows in the bytes whatever the log profile:
/// the ROM's banner after a hard reset, read garbled at 115200.
#[test]
fn a_garbled_rom_banner_is_a_reboot() {
    let garbled = (
        4.0,
        EventKind::Board {
            what: BoardEvent::RomBannerGarbled { cause: Some(1) },
        },
    );
    let (events, _) = observe(&cat(vec![
        boot(0.0),
        vec![garbled.clone(), line(4.2, "Attempting MQTT connection...")],
    ]));
    assert!(matches!(
        crash_watch(&events, us(200.0), None),
        CrashWatch::Crashed(_, c) if c.kind == crate::crash::CrashKind::UnexpectedBoot
    ));
    // A hardware watchdog's banner, garbled or not, is the watchdog.
    let wdt = (
        4.0,
        EventKind::Board {
            what: BoardEvent::RomBannerGarbled { cause: Some(4) },
        },
    );
    let (events, _) = observe(&cat(vec![boot(0.0), vec![wdt]]));
    assert!(matches!(
        crash_watch(&events, us(200.0), None),
        CrashWatch::Crashed(_, c) if c.kind == crate::crash::CrashKind::HardwareWatchdog
    ));
    // A software restart's banner is readable at 115200, and `wdt reset` after
    // a watchdog banner is that same reboot.
    let (events, _) = observe(&cat(vec![
        boot(0.0),
        vec![
            line(4.0, " ets Jan  8 2013,rst cause:4, boot mode:(3,6)"),
            line(4.01, ""),
            line(4.02, "wdt reset"),
            line(
                4.2,
                "[boot] fw=hil-reference version=1.0.0 reset=Hardware-Watchdog",
            ),
        ],
    ]));
    let reboots = super::reboots::scan(&events, us(200.0));
    assert_eq!(reboots.seen.len(), 1, "{reboots:?}");
}

/// Issue 19, finding 6: nothing seen is not a pass.
#[test]
fn a_holding_check_that_saw_nothing_is_inconclusive() {
    let conclude = |step: &str, events: Vec<Ev>| {
        let (events, act) = observe(&events);
        let expectation = Expectation::for_step(&parse(step).unwrap(), act, act).unwrap();
        expectation.conclude(&events)
    };
    let silent = vec![reset(0.0)];
    for step in [
        r#"the serial output never contains "[tls] error""#,
        "the board does not reboot",
        "the device publishes at most 5 messages per 2 s",
        "the device opens at most 6 connections per 10 s",
    ] {
        assert!(
            matches!(
                conclude(step, silent.clone()),
                Some(Verdict::Inconclusive(_))
            ),
            "{step} on a silent board"
        );
    }
    let alive = cat(vec![
        boot(0.0),
        good_attempt(1.0, 40001),
        vec![publish(2.0, "hil/telemetry", "{}")],
    ]);
    for step in [
        r#"the serial output never contains "[tls] error""#,
        "the board does not reboot",
        "the device publishes at most 5 messages per 2 s",
        "the device opens at most 6 connections per 10 s",
    ] {
        assert_eq!(
            conclude(step, alive.clone()),
            None,
            "{step} on a live board"
        );
    }
    // A window of no length cannot be exceeded: refused when the step is read.
    assert!(parse("the device publishes at most 1 message per 0 s").is_err());
    assert!(parse("the device opens at most 1 connection per 0 ms").is_err());
}

/// Issue 19, finding 9: a broker's CONNACK answers the connection whose
/// handshake completed last, whatever order a hash map keeps them in.
#[test]
fn a_connack_answers_the_connection_that_completed_last() {
    let closed = |t: f64, port: u16| (t, EventKind::TlsClosed { peer: peer(port) });
    for _ in 0..32 {
        let (events, _) = observe(&[
            accepted(1.0, 40001),
            completed(1.1, 40001),
            accepted(1.5, 40002),
            accepted(1.6, 40003),
            completed(2.0, 40003),
            connect(2.1),
            connack(2.2, 0),
            closed(3.0, 40001),
            closed(3.1, 40002),
        ]);
        let attempts = super::attempts::Attempts::read(&scene(), &events);
        // 40001 and 40002 closed unanswered; 40003 is the connection.
        assert_eq!(attempts.failures, 2, "{attempts:?}");
    }
}

/// Issue 19, finding 9: a line about a panic button is no crash.
#[test]
fn only_the_cores_panic_is_a_crash() {
    assert!(crate::crash::header("Panic button pressed").is_none());
    assert!(crate::crash::header("Panic core_esp8266_main.cpp:137 __yield").is_some());
    let (events, _) = observe(&cat(vec![
        boot(0.0),
        vec![line(2.0, "Panic button pressed")],
    ]));
    assert_eq!(crash_watch(&events, us(200.0), None), CrashWatch::Calm);
}
