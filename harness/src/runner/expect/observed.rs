//! The device's events as the expectations read them: each event once, with what
//! the log profile recognised in a serial line, and the small questions every
//! expectation asks of an event.

use std::time::Duration;

use crate::logprofile::{LogProfile, Recognised, SemanticEvent};
use crate::timeline::{BoardEvent, Direction, Event, EventKind, HandshakeOutcome};

/// A point of the timeline: an event's position and time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Mark {
    /// Position: events with this `seq` or later are "after" the mark.
    pub seq: u64,
    /// Microseconds on the timeline's clock.
    pub t_us: u64,
}

impl Mark {
    /// The mark `d` later (same position).
    pub(crate) fn plus(self, d: Duration) -> u64 {
        self.t_us.saturating_add(d.as_micros() as u64)
    }
}

/// One event of the device, read once.
#[derive(Debug, Clone)]
pub struct Observed {
    /// The event.
    pub event: Event,
    /// What the log profile recognised, for a serial line.
    pub said: Option<Recognised>,
}

impl Observed {
    /// Reads `event` through `log`.
    pub fn new(event: Event, log: &LogProfile) -> Observed {
        let said = match &event.kind {
            EventKind::SerialLine { line } => log.recognise(line),
            _ => None,
        };
        Observed { event, said }
    }

    pub(crate) fn seq(&self) -> u64 {
        self.event.seq
    }

    pub(crate) fn t_us(&self) -> u64 {
        self.event.t_us
    }

    pub(crate) fn line(&self) -> Option<&str> {
        match &self.event.kind {
            EventKind::SerialLine { line } => Some(line),
            _ => None,
        }
    }

    /// The log profile recognised `what` in this line.
    pub(crate) fn said(&self, what: SemanticEvent) -> bool {
        self.said.as_ref().is_some_and(|r| r.event == what)
    }

    pub(crate) fn field(&self, name: &str) -> Option<&str> {
        self.said.as_ref().and_then(|r| r.field(name))
    }

    /// A number field of what was said (`rc`, `code`).
    pub(crate) fn number(&self, name: &str) -> Option<i64> {
        self.field(name).and_then(|v| v.trim().parse().ok())
    }

    pub(crate) fn connack(&self) -> Option<u8> {
        match self.event.kind {
            EventKind::MqttConnack { code } => Some(code),
            _ => None,
        }
    }

    pub(crate) fn handshake(&self) -> Option<&HandshakeOutcome> {
        match &self.event.kind {
            EventKind::TlsHandshake { outcome, .. } => Some(outcome),
            _ => None,
        }
    }

    pub(crate) fn handshake_completed(&self) -> bool {
        matches!(self.handshake(), Some(HandshakeOutcome::Completed { .. }))
    }

    /// The TLS connection worked, as the broker or the device saw it.
    pub(crate) fn tls_success(&self) -> bool {
        self.handshake_completed()
            || self.connack() == Some(0)
            || self.said(SemanticEvent::TlsOk)
            || self.said(SemanticEvent::MqttConnected)
    }

    pub(crate) fn publish_from_device(&self) -> Option<(&str, &str)> {
        match &self.event.kind {
            EventKind::MqttPublish {
                direction: Direction::FromDevice,
                topic,
                payload,
                ..
            } => Some((topic, payload)),
            _ => None,
        }
    }

    /// A device's publish: its topic, QoS and retain flag.
    pub(crate) fn publish_flags(&self) -> Option<(&str, u8, bool)> {
        match &self.event.kind {
            EventKind::MqttPublish {
                direction: Direction::FromDevice,
                topic,
                qos,
                retain,
                ..
            } => Some((topic, *qos, *retain)),
            _ => None,
        }
    }

    pub(crate) fn is_harness_reset(&self) -> bool {
        matches!(
            self.event.kind,
            EventKind::Board {
                what: BoardEvent::Reset | BoardEvent::ResetImpossible { .. }
            }
        )
    }
}

/// The events at or after `mark`.
pub(crate) fn since(events: &[Observed], mark: Mark) -> &[Observed] {
    let start = events.partition_point(|o| o.seq() < mark.seq);
    &events[start..]
}

/// How a duration reads in a message: `20 s`, `500 ms`.
pub(crate) fn show(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}
