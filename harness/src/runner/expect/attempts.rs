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

/// BearSSL codes that say nothing about the broker: 0 (no engine error: a
/// timeout, a refused TCP connection) and 31 (`BR_ERR_IO`, a dead transport).
const NOT_A_VERDICT: [i64; 2] = [0, 31];

/// What the events say about the device's connection attempts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Attempts {
    /// The first sign the device tried to reach the broker.
    pub evidence: Option<u64>,
    /// Attempts that ended in failure.
    pub failures: usize,
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
        // Whether the attempt being reported got past its handshake: an error
        // after `[tls] ok` ends a session, not a handshake.
        let mut handshake_done = false;
        let failed = |out: &mut Attempts, seq: u64, what: String| {
            out.last_failure = Some((seq, what));
        };
        for o in events {
            let seq = o.seq();
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
                    // The CONNACK answers the connection that completed last.
                    if let Some(done) = open.values_mut().find(|done| !**done) {
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
                        if let Some(code) = o.number("code").filter(|c| !NOT_A_VERDICT.contains(c))
                        {
                            out.verdicts += 1;
                            let name = o.field("text").unwrap_or_default().to_owned();
                            out.last_verdict = Some((code, name));
                        }
                    }
                    [
                        SemanticEvent::TlsConnecting,
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
