//! The timeline: every event from every lab service and every board, on one
//! monotonic clock (with wall time beside it), written as JSONL and queryable by
//! assertions.
//!
//! Assertions never sleep: they await the first event matching a predicate before
//! a deadline ([`Timeline::wait_for`]), or check that none matched within a window
//! ([`Timeline::none_within`]), and return the moment the answer is known.
//!
//! ```
//! use std::time::Duration;
//! use hil::timeline::{EventKind, Source, Timeline};
//!
//! # tokio_test_block_on(async {
//! let timeline = Timeline::new();
//! let waiter = timeline.clone();
//! tokio::spawn(async move {
//!     waiter.record(Source::Harness, None, EventKind::Diagnostic { text: "hello".into() });
//! });
//! let seen = timeline
//!     .wait_for(timeline.start(), Duration::from_secs(5), |e| {
//!         matches!(&e.kind, EventKind::Diagnostic { text } if text == "hello")
//!     })
//!     .await;
//! assert!(seen.is_some());
//! # });
//! # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
//! #     tokio::runtime::Runtime::new().unwrap().block_on(f)
//! # }
//! ```

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use tokio::sync::watch;

/// Which part of the harness saw an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// The TLS front.
    Tls,
    /// The MQTT broker (decoded from the plaintext stream, or reported by mosquitto).
    Mqtt,
    /// The NTP server.
    Ntp,
    /// The DNS server.
    Dns,
    /// A board's serial output.
    Serial,
    /// A board's control lines, flashing and boot.
    Board,
    /// The harness itself (steps, notes).
    Harness,
}

/// Which way an MQTT packet travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the device to the broker.
    FromDevice,
    /// From the broker to the device.
    ToDevice,
}

/// What the device offered in its ClientHello, parsed from the raw bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientHello {
    /// The server_name extension, if sent.
    pub sni: Option<String>,
    /// Offered protocol versions, e.g. "TLS1.2" (from supported_versions when
    /// present, otherwise the legacy version field and everything below it).
    pub versions: Vec<String>,
    /// Offered cipher suites by IANA name (or 0xXXXX when unnamed).
    pub cipher_suites: Vec<String>,
    /// The max_fragment_length extension, in bytes (512, 1024, 2048, 4096).
    pub max_fragment_length: Option<u16>,
}

/// How a TLS handshake ended, as seen by the front.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum HandshakeOutcome {
    /// The handshake completed.
    Completed {
        /// Negotiated version, e.g. "TLS1.2".
        version: String,
        /// Negotiated suite, by IANA name.
        suite: String,
    },
    /// The client sent a fatal alert.
    AlertReceived {
        /// The alert's name, e.g. "bad_certificate".
        alert: String,
    },
    /// The front sent a fatal alert (version or SNI policy, missing client certificate).
    AlertSent {
        /// The alert's name.
        alert: String,
    },
    /// The front sent its flight and the client never sent Finished: what BearSSL
    /// does when it rejects a certificate (no alert).
    ClientStoppedSending,
    /// The connection closed before the handshake completed, without an alert.
    Closed,
    /// The front stalled on purpose (stall-after-hello) and the client gave up.
    Stalled,
    /// The first bytes were not a TLS ClientHello.
    NotTls,
}

/// What the DNS server did with a query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum DnsAnswer {
    /// Answered with an address.
    Address {
        /// The address given.
        ip: IpAddr,
    },
    /// Answered NXDOMAIN.
    NxDomain,
    /// Did not answer at all.
    Silent,
}

/// What the lab did to one device's broker service (the `When the broker drops the
/// device's connection` and `When the broker restarts` steps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum BrokerAction {
    /// The device's live connections were closed, as a broker dropping the client.
    ConnectionsDropped {
        /// How many were open.
        count: usize,
    },
    /// The broker went away for the device: its new connections are reset before
    /// any TLS byte is answered until the broker is up again.
    Down {
        /// How long it stays down, in milliseconds.
        downtime_ms: u64,
    },
    /// The broker serves the device again.
    Up,
}

/// How the ROM started: waiting for a flasher, or booting the image in flash.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RomMode {
    /// UART download mode (GPIO0 low at reset): the ROM waits for SYNC.
    Download,
    /// Flash boot.
    Flash,
}

/// What happened to a board: what the harness did to it through its link, and,
/// for a virtual board, what its model of the chip did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BoardEvent {
    /// The harness reset the board into its firmware through DTR/RTS. Exactly
    /// one boot follows; any other is a reboot the harness did not cause.
    Reset,
    /// The link cannot reset the board (no modem control lines).
    ResetImpossible {
        /// Why.
        reason: String,
    },
    /// The harness holds the chip in reset (between scenarios).
    HeldInReset,
    /// The link cannot hold the chip in reset.
    HoldImpossible {
        /// Why.
        reason: String,
    },
    /// The serial port went away.
    SerialGap {
        /// Why.
        reason: String,
    },
    /// The serial port is back.
    SerialReopened {
        /// How long it was away, in milliseconds.
        after_ms: u64,
    },
    /// The harness flashed the board.
    Flashed {
        /// The firmware written.
        firmware: String,
        /// Whether it was written, or flash already held it.
        written: bool,
        /// Whether flash was read back and matched.
        verified: bool,
    },
    /// Virtual board: EN is held low.
    ChipHeld,
    /// Virtual board: the ROM started.
    RomStarted {
        /// Download or flash boot.
        mode: RomMode,
        /// The reset cause the ROM prints (`rst cause:N`).
        cause: u8,
    },
    /// Virtual board: the ROM accepted the image and started the firmware.
    ImageAccepted {
        /// Segments in the image.
        segments: usize,
        /// Entry point.
        entry: u32,
    },
    /// Virtual board: the image's checksum does not match (`csum err`).
    ImageChecksumError {
        /// The checksum byte stored in the image.
        stored: u8,
        /// The checksum of its segments.
        computed: u8,
    },
    /// Virtual board: nothing bootable at offset 0.
    NoBootableImage {
        /// What the ROM found instead.
        reason: String,
    },
    /// Virtual board: the ROM loader skipped bytes outside SLIP frames.
    LoaderNoise {
        /// How many.
        bytes: u64,
    },
    /// Virtual board: the loader jumped to the flash boot path without a reset.
    LoaderLeftForFlashBoot,
    /// Virtual board: a write session began.
    FlashBegin {
        /// Flash offset.
        offset: u32,
        /// Bytes announced.
        size: u32,
        /// FLASH_DEFL_BEGIN (zlib) rather than FLASH_BEGIN.
        compressed: bool,
    },
    /// Virtual board: a write session ended with this much written.
    FlashWritten {
        /// Flash offset.
        offset: u32,
        /// Bytes written.
        bytes: u64,
    },
    /// Virtual board: flash erased (all of it when `offset` is `None`).
    FlashErased {
        /// Start of the erased region.
        offset: Option<u32>,
        /// Length of the erased region.
        bytes: Option<u32>,
    },
    /// Virtual board: a flasher stub was uploaded and started.
    StubStarted {
        /// Its entry point.
        entry: u32,
        /// Bytes uploaded.
        bytes: usize,
    },
    /// Virtual board: code uploaded to RAM that is not a flasher stub; the chip
    /// halts until the next reset.
    RamCodeHalted {
        /// The entry point asked for.
        entry: u32,
    },
    /// The console heard a ROM banner at a rate it was not listening at: the
    /// bytes a UART at 115200 reads from the ROM's 74880-baud lines (a hard reset,
    /// a brown-out), recognised by their shape on any firmware and log profile.
    RomBannerGarbled {
        /// The `rst cause` the garbled bytes carry, when they could be read.
        cause: Option<u8>,
    },
    /// Virtual board: a client connected to its RFC 2217 port.
    ClientConnected {
        /// The client.
        peer: SocketAddr,
    },
    /// Virtual board: another client asked while one held the board; it was
    /// told so and closed.
    ClientRefused {
        /// The client refused.
        peer: SocketAddr,
        /// The client holding the board.
        held_by: SocketAddr,
    },
    /// Virtual board: a client that never sent a byte was let go.
    ClientSilent {
        /// The client.
        peer: SocketAddr,
    },
    /// Virtual board: the client went away.
    ClientDisconnected {
        /// Bytes received on the connection, Telnet framing included.
        rx: u64,
        /// Bytes sent.
        tx: u64,
    },
}

/// What the harness did in a scenario.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "what", rename_all = "snake_case")]
#[non_exhaustive]
pub enum HarnessEvent {
    /// A step began (secrets in its text redacted).
    StepStarted {
        /// Keyword and text, e.g. `Then the TLS handshake does not complete`.
        step: String,
        /// Its line in the feature file.
        line: usize,
    },
    /// A step did not hold.
    StepFailed {
        /// What it expected.
        expectation: String,
        /// Whether the evidence was missing (inconclusive) rather than contrary.
        inconclusive: bool,
    },
    /// The harness wrote the provisioning line (its secrets redacted).
    ProvisioningSent {
        /// The line as written, redacted.
        line: String,
    },
}

/// One thing that happened. New kinds are added as parts land; consumers match on
/// what they need and ignore the rest.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum EventKind {
    /// A TCP connection reached the TLS front.
    TlsAccepted {
        /// The client.
        peer: SocketAddr,
    },
    /// The client's ClientHello.
    TlsClientHello {
        /// The client.
        peer: SocketAddr,
        /// What it offered.
        hello: ClientHello,
    },
    /// How the handshake ended.
    TlsHandshake {
        /// The client.
        peer: SocketAddr,
        /// The outcome.
        #[serde(flatten)]
        outcome: HandshakeOutcome,
    },
    /// A connection through the front closed.
    TlsClosed {
        /// The client.
        peer: SocketAddr,
    },
    /// MQTT CONNECT. The password is never recorded.
    MqttConnect {
        /// Client id.
        client_id: String,
        /// User name, if any.
        username: Option<String>,
        /// Keepalive in seconds.
        keep_alive: u16,
        /// 4 for MQTT 3.1.1.
        protocol_level: u8,
    },
    /// MQTT CONNACK.
    MqttConnack {
        /// The return code (0 accepted, 4 bad credentials, 5 not authorised).
        code: u8,
    },
    /// MQTT SUBSCRIBE.
    MqttSubscribe {
        /// Topic filters.
        topics: Vec<String>,
    },
    /// MQTT PUBLISH.
    MqttPublish {
        /// Which way.
        direction: Direction,
        /// Topic.
        topic: String,
        /// Payload, lossily decoded as UTF-8.
        payload: String,
        /// Payload length in bytes.
        bytes: usize,
        /// QoS 0..2.
        qos: u8,
        /// Retain flag.
        retain: bool,
    },
    /// MQTT SUBACK to the device: the broker has registered its subscription, so a
    /// message published from now on reaches it.
    MqttSuback {
        /// One per filter of the SUBSCRIBE: the granted QoS, or 128 (refused).
        codes: Vec<u8>,
    },
    /// MQTT PINGREQ.
    MqttPingreq,
    /// MQTT DISCONNECT.
    MqttDisconnect,
    /// An SNTP request, and the time reported (None when not answered).
    NtpRequest {
        /// The client.
        peer: SocketAddr,
        /// The transmit time sent back, if answered.
        answered: Option<String>,
    },
    /// A DNS query and what was done with it.
    DnsQuery {
        /// The client.
        peer: SocketAddr,
        /// The queried name.
        name: String,
        /// The record type, e.g. "A".
        qtype: String,
        /// The answer.
        #[serde(flatten)]
        answer: DnsAnswer,
    },
    /// The lab's DHCP server acknowledged a lease (a new one or a renewal): which
    /// board (by MAC) has which address from now on.
    DhcpLease {
        /// The board's hardware address, `aa:bb:cc:dd:ee:ff`.
        mac: String,
        /// The address leased.
        ip: IpAddr,
        /// The host name the board sent (DHCP option 12), if any.
        hostname: Option<String>,
        /// The lease time granted, in seconds.
        lease_secs: u32,
    },
    /// One line of serial output (bytes decoded lossily; never assumed UTF-8).
    SerialLine {
        /// The line without its line ending.
        line: String,
    },
    /// Something the board or its link did (reset, flash, reopen), or what the
    /// virtual board's model of the chip did.
    Board {
        /// What happened.
        #[serde(flatten)]
        what: BoardEvent,
    },
    /// Something the lab did to the device's broker service on request.
    Broker {
        /// What it did.
        #[serde(flatten)]
        action: BrokerAction,
    },
    /// What the harness did in a scenario (steps, provisioning).
    Harness {
        /// What it did.
        #[serde(flatten)]
        what: HarnessEvent,
    },
    /// Free text for people reading the timeline (a lab service's trouble, an
    /// artifact that could not be written). No check reads it.
    Diagnostic {
        /// The text.
        text: String,
    },
}

/// One event on the timeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    /// Position on the timeline, from 0.
    pub seq: u64,
    /// Microseconds since the timeline started, on the monotonic clock.
    pub t_us: u64,
    /// Wall-clock time of the event.
    #[serde(with = "time::serde::rfc3339")]
    pub wall: OffsetDateTime,
    /// Which part saw it.
    pub source: Source,
    /// The device it concerns (its source address), when known.
    pub device: Option<IpAddr>,
    /// What happened.
    #[serde(flatten)]
    pub kind: EventKind,
}

/// A position on the timeline: queries look at events from here on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Cursor(u64);

impl Cursor {
    /// The position as a number: events with `seq` at or above it are after it.
    pub fn seq(self) -> u64 {
        self.0
    }
}

impl Event {
    /// The position just after this event: a follower that has seen it continues
    /// from here without missing or repeating anything.
    pub fn cursor_after(&self) -> Cursor {
        Cursor(self.seq + 1)
    }
}

struct Inner {
    origin: Instant,
    origin_wall: OffsetDateTime,
    events: Mutex<Vec<Event>>,
    jsonl: Mutex<Option<BufWriter<File>>>,
    appended: watch::Sender<u64>,
}

/// A shared, append-only log of events. Cloning gives another handle to the same
/// timeline.
#[derive(Clone)]
pub struct Timeline {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Timeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timeline")
            .field("events", &self.len())
            .finish()
    }
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline::new()
    }
}

impl Timeline {
    /// A timeline kept in memory only.
    pub fn new() -> Timeline {
        let (appended, _) = watch::channel(0);
        Timeline {
            inner: Arc::new(Inner {
                origin: Instant::now(),
                origin_wall: OffsetDateTime::now_utc(),
                events: Mutex::new(Vec::new()),
                jsonl: Mutex::new(None),
                appended,
            }),
        }
    }

    /// A timeline that also appends every event to `path` as one JSON object per
    /// line, flushed as it goes so nothing is lost if the run dies.
    pub fn with_jsonl(path: &Path) -> std::io::Result<Timeline> {
        let timeline = Timeline::new();
        let file = File::create(path)?;
        if let Ok(mut slot) = timeline.inner.jsonl.lock() {
            *slot = Some(BufWriter::new(file));
        }
        Ok(timeline)
    }

    /// The position before any event: queries from here see everything.
    pub fn start(&self) -> Cursor {
        Cursor(0)
    }

    /// The position after the last event recorded so far.
    pub fn cursor(&self) -> Cursor {
        Cursor(self.len() as u64)
    }

    /// How many events were recorded.
    pub fn len(&self) -> usize {
        self.inner.events.lock().map(|e| e.len()).unwrap_or(0)
    }

    /// Whether nothing was recorded yet.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Time since the timeline started, on the monotonic clock.
    pub fn elapsed(&self) -> Duration {
        self.inner.origin.elapsed()
    }

    /// Now, in the microseconds events carry as `t_us`.
    pub fn now_us(&self) -> u64 {
        self.elapsed().as_micros() as u64
    }

    /// Records an event now and returns it.
    pub fn record(&self, source: Source, device: Option<IpAddr>, kind: EventKind) -> Event {
        let elapsed = self.inner.origin.elapsed();
        let wall = self.inner.origin_wall + elapsed;
        let event = {
            let mut events = match self.inner.events.lock() {
                Ok(events) => events,
                Err(poisoned) => poisoned.into_inner(),
            };
            let event = Event {
                seq: events.len() as u64,
                t_us: elapsed.as_micros() as u64,
                wall,
                source,
                device,
                kind,
            };
            events.push(event.clone());
            event
        };
        if let Ok(mut slot) = self.inner.jsonl.lock() {
            if let Some(writer) = slot.as_mut() {
                // A failing log file must not take the run down; the in-memory
                // timeline still has the event and reports are written from it.
                let ok = serde_json::to_writer(&mut *writer, &event).is_ok()
                    && writer.write_all(b"\n").is_ok()
                    && writer.flush().is_ok();
                if !ok {
                    *slot = None;
                }
            }
        }
        self.inner.appended.send_replace(event.seq + 1);
        event
    }

    /// Every event recorded so far.
    pub fn snapshot(&self) -> Vec<Event> {
        self.inner
            .events
            .lock()
            .map(|e| e.clone())
            .unwrap_or_default()
    }

    /// Events from `from` on.
    pub fn since(&self, from: Cursor) -> Vec<Event> {
        self.inner
            .events
            .lock()
            .map(|e| {
                e.get(from.0 as usize..)
                    .map(<[Event]>::to_vec)
                    .unwrap_or_default()
            })
            .unwrap_or_default()
    }

    fn find_from(&self, from: u64, pred: &impl Fn(&Event) -> bool) -> (Option<Event>, u64) {
        match self.inner.events.lock() {
            Ok(events) => {
                let start = (from as usize).min(events.len());
                let found = events[start..].iter().find(|e| pred(e)).cloned();
                (found, events.len() as u64)
            }
            Err(_) => (None, from),
        }
    }

    /// Waits for the first event at or after `from` matching `pred`, for at most
    /// `within`. Returns it as soon as it is recorded, or `None` at the deadline.
    pub async fn wait_for(
        &self,
        from: Cursor,
        within: Duration,
        pred: impl Fn(&Event) -> bool,
    ) -> Option<Event> {
        let deadline = tokio::time::Instant::now() + within;
        let mut changes = self.inner.appended.subscribe();
        let mut next = from.0;
        loop {
            changes.borrow_and_update();
            let (found, seen) = self.find_from(next, &pred);
            if found.is_some() {
                return found;
            }
            next = seen;
            match tokio::time::timeout_at(deadline, changes.changed()).await {
                Ok(Ok(())) => continue,
                // Deadline reached, or every sender gone (cannot happen while we hold
                // the timeline): the answer is "not seen".
                _ => return None,
            }
        }
    }

    /// Checks that no event at or after `from` matches `pred` during `window`.
    /// Returns the offending event as soon as one appears.
    pub async fn none_within(
        &self,
        from: Cursor,
        window: Duration,
        pred: impl Fn(&Event) -> bool,
    ) -> Result<(), Event> {
        match self.wait_for(from, window, pred).await {
            Some(event) => Err(event),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(text: &str) -> EventKind {
        EventKind::Diagnostic { text: text.into() }
    }

    #[tokio::test]
    async fn wait_for_sees_events_recorded_before_and_after_it_starts() {
        let timeline = Timeline::new();
        timeline.record(Source::Harness, None, note("early"));
        let early = timeline
            .wait_for(timeline.start(), Duration::from_millis(10), |e| {
                e.kind == note("early")
            })
            .await;
        assert_eq!(early.map(|e| e.seq), Some(0));

        let writer = timeline.clone();
        let task = tokio::spawn(async move {
            tokio::task::yield_now().await;
            writer.record(Source::Harness, None, note("late"));
        });
        let late = timeline
            .wait_for(timeline.start(), Duration::from_secs(10), |e| {
                e.kind == note("late")
            })
            .await;
        assert_eq!(late.map(|e| e.seq), Some(1));
        task.await.unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn wait_for_gives_up_at_the_deadline() {
        let timeline = Timeline::new();
        let seen = timeline
            .wait_for(timeline.start(), Duration::from_secs(3), |_| true)
            .await;
        assert!(seen.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn none_within_reports_the_offender_and_respects_the_cursor() {
        let timeline = Timeline::new();
        timeline.record(Source::Harness, None, note("before"));
        let from = timeline.cursor();
        assert!(timeline
            .none_within(from, Duration::from_secs(1), |_| true)
            .await
            .is_ok());
        timeline.record(Source::Harness, None, note("after"));
        let offender = timeline
            .none_within(from, Duration::from_secs(1), |_| true)
            .await;
        assert_eq!(offender.map_err(|e| e.kind), Err(note("after")));
    }

    #[test]
    fn broker_actions_are_tagged_like_every_other_event() {
        let kind = EventKind::Broker {
            action: BrokerAction::Down { downtime_ms: 2000 },
        };
        let json = serde_json::to_value(&kind).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"event": "broker", "action": "down", "downtime_ms": 2000})
        );
        let back: EventKind = serde_json::from_value(json).unwrap();
        assert_eq!(back, kind);
    }

    #[test]
    fn jsonl_has_one_parseable_object_per_event() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("timeline.jsonl");
        let timeline = Timeline::with_jsonl(&path).unwrap();
        timeline.record(
            Source::Serial,
            None,
            EventKind::SerialLine {
                line: "[boot] fw=x".into(),
            },
        );
        timeline.record(Source::Mqtt, None, EventKind::MqttConnack { code: 5 });
        let text = std::fs::read_to_string(&path).unwrap();
        let events: Vec<Event> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(events, timeline.snapshot());
        assert!(text.contains(r#""event":"mqtt_connack""#));
    }
}
