//! The device's attempts to reach its broker, read from its events: whether it
//! tried at all (the evidence a negative expectation needs before it can pass),
//! and how many attempts have ended in failure (the "never" of a negative
//! expectation must cover the attempt after the first failure).

use std::collections::HashMap;
use std::net::SocketAddr;

use super::observed::Observed;
use super::Scene;
use crate::logprofile::SemanticEvent;
use crate::timeline::{DnsAnswer, EventKind, HandshakeOutcome};

/// The BearSSL codes that are the device's verdict on the broker's certificate
/// (`BR_ERR_X509_*`, 32..63): the same broker gets the same answer on every
/// retry. Everything else (a timeout, a dead transport, an alert, a version
/// the broker would not speak) may go another way next time.
const CERTIFICATE_VERDICTS: std::ops::RangeInclusive<i64> = 32..=63;

/// What the events say about the device's connection attempts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Attempts {
    /// The first sign the device tried to reach the broker.
    pub evidence: Option<u64>,
    /// Attempts that ended in failure.
    pub failures: usize,
    /// When the first failure was seen (timeline µs): the window in which the
    /// firmware's next attempt must be watched counts from here.
    pub first_failure_us: Option<u64>,
    /// The instant the device said its next attempt would start
    /// (`[mqtt] retry in_ms=N` after its latest failure), when it said so.
    pub retry_at_us: Option<u64>,
    /// Where the latest failure was seen, and what it was.
    pub last_failure: Option<(u64, String)>,
    /// Failed attempts whose handshake the device's TLS engine refused (a
    /// certificate verdict, a bad signature, a version it does not speak): the
    /// same broker gets the same answer on every retry.
    pub verdicts: usize,
    /// The last such refusal reported: code and name.
    pub last_verdict: Option<(i64, String)>,
    /// CONNECTs the broker refused (CONNACK other than 0).
    pub refusals: usize,
    /// The return code of the last refused CONNECT.
    pub last_refusal: Option<u8>,
}

impl Attempts {
    /// Reads the attempts in `events`.
    pub(crate) fn read(scene: &Scene, events: &[Observed]) -> Attempts {
        let mut out = Attempts::default();
        let log = &scene.log;
        // The device's own reports: one `[mqtt] failed` per failed attempt, or,
        // for a firmware that never says that, its TLS and DNS failures.
        let per_attempt = if log.reports(SemanticEvent::MqttFailed) {
            &[SemanticEvent::MqttFailed][..]
        } else {
            &[SemanticEvent::TlsError, SemanticEvent::DnsFailed][..]
        };
        let mut reported = 0usize;
        // What the broker saw: per TLS connection, how it ended.
        let mut network = 0usize;
        let mut open: HashMap<SocketAddr, bool> = HashMap::new();
        // Connections whose handshake completed, oldest first.
        let mut completed: Vec<SocketAddr> = Vec::new();
        // Whether the attempt being reported got past its handshake: an error
        // after `[tls] ok` ends a session, not a handshake.
        let mut handshake_done = false;
        for o in events {
            let seq = o.seq();
            let t_us = o.t_us();
            let failed = |out: &mut Attempts, seq: u64, what: String| {
                out.last_failure = Some((seq, what));
                out.first_failure_us.get_or_insert(t_us);
            };
            let sign = match &o.event.kind {
                EventKind::DnsQuery { name, answer, .. } => {
                    let broker = scene.is_broker_name(name);
                    if broker && matches!(answer, DnsAnswer::NxDomain | DnsAnswer::Silent) {
                        network += 1;
                        let how = match answer {
                            DnsAnswer::NxDomain => "NXDOMAIN",
                            _ => "no answer",
                        };
                        failed(&mut out, seq, format!("its DNS query for {name} got {how}"));
                    }
                    broker
                }
                EventKind::TlsAccepted { peer } => {
                    open.insert(*peer, false);
                    true
                }
                EventKind::TlsClientHello { .. } | EventKind::MqttConnect { .. } => true,
                EventKind::TlsHandshake { peer, outcome } => {
                    if let HandshakeOutcome::Completed { .. } = outcome {
                        open.insert(*peer, false);
                        completed.retain(|p| p != peer);
                        completed.push(*peer);
                    } else if open.remove(peer).is_some() {
                        network += 1;
                        failed(
                            &mut out,
                            seq,
                            format!(
                                "its TLS handshake ended without completing ({})",
                                outcome_text(outcome)
                            ),
                        );
                    }
                    true
                }
                EventKind::MqttConnack { code } => {
                    // The CONNACK answers the connection whose handshake
                    // completed last among those still waiting for one (the
                    // broker answers a CONNECT, and a CONNECT needs a session).
                    let answered = completed
                        .iter()
                        .rev()
                        .find(|p| open.get(*p) == Some(&false))
                        .copied();
                    if let Some(done) = answered.and_then(|p| open.get_mut(&p)) {
                        *done = true;
                    }
                    if *code != 0 {
                        out.refusals += 1;
                        out.last_refusal = Some(*code);
                        network += 1;
                        failed(
                            &mut out,
                            seq,
                            format!("the broker refused its CONNECT (CONNACK {code})"),
                        );
                    }
                    true
                }
                EventKind::TlsClosed { peer } => {
                    if let Some(done) = open.remove(peer) {
                        if !done {
                            network += 1;
                            failed(
                                &mut out,
                                seq,
                                "its connection closed before the broker accepted it".into(),
                            );
                        }
                    }
                    false
                }
                EventKind::SerialLine { line } => {
                    if per_attempt.iter().any(|e| o.said(*e)) {
                        reported += 1;
                        failed(&mut out, seq, format!("it reported `{line}`"));
                    }
                    if o.said(SemanticEvent::TlsConnecting) {
                        handshake_done = false;
                    } else if o.said(SemanticEvent::TlsOk) {
                        handshake_done = true;
                    } else if o.said(SemanticEvent::TlsError) && !handshake_done {
                        if let Some(code) = o
                            .number("code")
                            .filter(|c| CERTIFICATE_VERDICTS.contains(c))
                        {
                            out.verdicts += 1;
                            let name = o.field("text").unwrap_or_default().to_owned();
                            out.last_verdict = Some((code, name));
                        }
                    }
                    // When the device says its next attempt comes: `[mqtt] retry
                    // in_ms=N`, or the seed's "try again in 5 seconds".
                    let announced = if o.said(SemanticEvent::MqttRetry) {
                        o.number("in_ms")
                    } else if o.said(SemanticEvent::MqttFailed) {
                        o.number("retry_s").map(|s| s.saturating_mul(1000))
                    } else {
                        None
                    };
                    if let Some(ms) = announced.filter(|ms| *ms >= 0) {
                        if out.last_failure.is_some() {
                            out.retry_at_us = Some(t_us.saturating_add(ms as u64 * 1000));
                        }
                    }
                    // The device saying it is about to dial is no attempt yet:
                    // only what reached the lab, or its report of a failed
                    // attempt, shows it tried.
                    [
                        SemanticEvent::TlsError,
                        SemanticEvent::MqttFailed,
                        SemanticEvent::DnsFailed,
                    ]
                    .iter()
                    .any(|e| o.said(*e))
                }
                _ => false,
            };
            if sign && out.evidence.is_none() {
                out.evidence = Some(seq);
            }
        }
        out.failures = reported.max(network);
        out
    }

    /// A message for the latest failure, when there was one.
    pub(crate) fn last_failure_text(&self) -> Option<&str> {
        self.last_failure.as_ref().map(|(_, t)| t.as_str())
    }
}

fn outcome_text(outcome: &HandshakeOutcome) -> String {
    match outcome {
        HandshakeOutcome::Completed { version, .. } => format!("completed, {version}"),
        HandshakeOutcome::AlertReceived { alert } => format!("the device sent alert {alert}"),
        HandshakeOutcome::AlertSent { alert } => format!("the broker sent alert {alert}"),
        HandshakeOutcome::ClientStoppedSending => {
            "the device stopped sending after the broker's certificate".into()
        }
        HandshakeOutcome::Closed => "the connection closed".into(),
        HandshakeOutcome::Stalled => "the broker stalled and the device gave up".into(),
        HandshakeOutcome::NotTls => "the first bytes were not TLS".into(),
    }
}
