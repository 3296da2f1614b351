//! One TLS connection through the front: read and record the ClientHello, let
//! OpenSSL do the handshake through a tap that watches (and, for fault policies,
//! edits) the records, record the outcome, then hand the plaintext to the MQTT
//! layer.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use openssl::error::ErrorStack;
use openssl::ssl::{ErrorCode, Ssl, SslContext};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_openssl::SslStream;

use super::hello::{
    alert_name, content, first_handshake_message, parse_client_hello, Record, RecordScanner,
};
use super::live::LiveConnections;
use super::{negotiated_version, server_context};
use crate::lab::mqtt::{self, MqttLink};
use crate::lab::policy::{HandshakeFault, MflnPolicy, PolicyTable, TlsPolicy};
use crate::pki::Profile;
use crate::timeline::{EventKind, HandshakeOutcome, Source, Timeline};

/// What every connection of the front shares.
pub(crate) struct FrontShared {
    pub policies: PolicyTable,
    pub profile: Arc<Profile>,
    pub timeline: Timeline,
    pub broker: SocketAddr,
    pub handshake_timeout: Duration,
    pub contexts: ContextCache,
    pub live: LiveConnections,
    /// The harness's publishes and the device each is for.
    pub addressed: mqtt::Addressed,
}

impl std::fmt::Debug for FrontShared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FrontShared")
            .field("broker", &self.broker)
            .finish_non_exhaustive()
    }
}

/// Server contexts by certificate chain and policy: parsing keys and chains for
/// every connection would cost more than the handshake itself.
#[derive(Default)]
pub(crate) struct ContextCache {
    contexts: Mutex<HashMap<([u8; 20], TlsPolicy), SslContext>>,
}

impl ContextCache {
    fn get(&self, profile: &Profile, policy: &TlsPolicy) -> Result<SslContext, ErrorStack> {
        let chain_id = openssl::sha::sha1(
            &profile
                .broker_chain()
                .iter()
                .flat_map(|c| c.sha1())
                .collect::<Vec<u8>>(),
        );
        let key = (chain_id, policy.clone());
        if let Some(ctx) = self.contexts.lock().ok().and_then(|c| c.get(&key).cloned()) {
            return Ok(ctx);
        }
        let ctx = server_context(profile, policy)?;
        if let Ok(mut contexts) = self.contexts.lock() {
            contexts.insert(key, ctx.clone());
        }
        Ok(ctx)
    }
}

/// Accepts connections until `shutdown` fires, then drops every open one.
pub(crate) async fn serve(
    listener: TcpListener,
    shared: Arc<FrontShared>,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.changed() => break,
            accepted = listener.accept() => {
                if let Ok((tcp, peer)) = accepted {
                    // Small records go out at once: handshake timing is part of what
                    // the device sees.
                    let _ = tcp.set_nodelay(true);
                    connections.spawn(connection(shared.clone(), tcp, peer));
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

/// One connection, registered by device for as long as it lives so the lab can
/// end it: dropping `handle` closes the socket to the device and the relay to the
/// broker at once, as a broker dropping the client would.
async fn connection(shared: Arc<FrontShared>, tcp: TcpStream, peer: SocketAddr) {
    let ip = peer.ip();
    let (registration, cancelled) = shared.live.register(ip);
    tokio::select! {
        () = handle(shared.clone(), tcp, peer) => {}
        Ok(()) = cancelled => {
            shared
                .timeline
                .record(Source::Tls, Some(ip), EventKind::TlsClosed { peer });
        }
    }
    drop(registration);
}

async fn handle(shared: Arc<FrontShared>, mut tcp: TcpStream, peer: SocketAddr) {
    let ip = peer.ip();
    let timeline = &shared.timeline;
    let record = |kind| {
        timeline.record(Source::Tls, Some(ip), kind);
    };
    record(EventKind::TlsAccepted { peer });
    let policy = shared.policies.get(ip);
    let finish = |outcome| record_unfinished(timeline, peer, outcome);
    if shared.live.is_down(ip) {
        // The broker is restarting for this device. The listener is shared, so the
        // nearest thing to a refused connection is a reset before any TLS byte is
        // answered; the attempt still lands on the timeline.
        let _ = tcp.set_zero_linger();
        return finish(HandshakeOutcome::Closed);
    }

    let read = tokio::time::timeout(shared.handshake_timeout, read_client_hello(&mut tcp)).await;
    let (prefix, hello_records, hello) = match read {
        Ok(Ok(got)) => got,
        Ok(Err(HelloRead::NotTls)) => return finish(HandshakeOutcome::NotTls),
        Ok(Err(HelloRead::Closed)) | Err(_) => return finish(HandshakeOutcome::Closed),
    };
    record(EventKind::TlsClientHello {
        peer,
        hello: hello.clone(),
    });

    let profile = policy
        .profile
        .clone()
        .unwrap_or_else(|| shared.profile.clone());
    if policy.tls.mfln == MflnPolicy::Ignored {
        let tap = Tap::new(tcp, prefix, hello_records, policy.tls.fault);
        return accept_ignoring_mfln(&shared, tap, &profile, policy, peer).await;
    }
    let ssl = match shared
        .contexts
        .get(&profile, &policy.tls)
        .and_then(|ctx| Ssl::new(&ctx))
    {
        Ok(ssl) => ssl,
        Err(e) => {
            record(EventKind::Diagnostic {
                text: format!("TLS front could not set up OpenSSL: {e}"),
            });
            return finish(HandshakeOutcome::Closed);
        }
    };
    let tap = Tap::new(tcp, prefix, hello_records, policy.tls.fault);
    let mut stream = match SslStream::new(ssl, tap) {
        Ok(stream) => stream,
        Err(_) => return finish(HandshakeOutcome::Closed),
    };
    let result =
        tokio::time::timeout(shared.handshake_timeout, Pin::new(&mut stream).accept()).await;
    let outcome = classify(&result, &stream, policy.tls.fault);
    timeline.record(
        Source::Tls,
        Some(ip),
        EventKind::TlsHandshake {
            peer,
            outcome: outcome.clone(),
        },
    );
    if matches!(outcome, HandshakeOutcome::Completed { .. }) {
        stream.get_mut().handshaking = false;
        let link = MqttLink {
            timeline: timeline.clone(),
            device: ip,
            broker: shared.broker,
            policy: policy.mqtt,
            addressed: shared.addressed.clone(),
        };
        mqtt::relay(stream, link).await;
    }
    record(EventKind::TlsClosed { peer });
}

enum HelloRead {
    NotTls,
    Closed,
}

/// Reads until the first handshake message is complete. Returns every byte read
/// (to replay to OpenSSL), how many records the hello took, and the parsed hello.
async fn read_client_hello(
    tcp: &mut TcpStream,
) -> Result<(Vec<u8>, usize, crate::timeline::ClientHello), HelloRead> {
    let mut raw = Vec::new();
    let mut scanner = RecordScanner::default();
    let mut records: Vec<Record> = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = tcp.read(&mut chunk).await.map_err(|_| HelloRead::Closed)?;
        if n == 0 {
            return Err(HelloRead::Closed);
        }
        raw.extend_from_slice(&chunk[..n]);
        scanner.push(&chunk[..n]);
        while let Some(rec) = scanner.next_record().map_err(|_| HelloRead::NotTls)? {
            records.push(rec);
            match first_handshake_message(&records) {
                Ok(Some(message)) => {
                    let hello = parse_client_hello(&message).map_err(|_| HelloRead::NotTls)?;
                    return Ok((raw, records.len(), hello));
                }
                Ok(None) => {}
                Err(_) => return Err(HelloRead::NotTls),
            }
        }
        if raw.len() > 64 * 1024 {
            return Err(HelloRead::NotTls);
        }
    }
}

/// What the tap saw on the wire during the handshake.
#[derive(Debug, Default)]
struct Wire {
    client_records_after_hello: usize,
    client_alert: Option<u8>,
    server_alert: Option<u8>,
    server_records: usize,
    stalled: bool,
    closed_by_lab: bool,
}

/// Sits between OpenSSL and the socket. Replays the ClientHello already read,
/// watches records both ways, and applies the handshake faults and the MFLN policy
/// to what the front sends.
struct Tap {
    tcp: TcpStream,
    prefix: Vec<u8>,
    prefix_at: usize,
    client_scan: RecordScanner,
    client_records: usize,
    hello_records: usize,
    server_scan: RecordScanner,
    server_ccs: bool,
    hello_forwarded: bool,
    out: Vec<u8>,
    out_at: usize,
    fault: HandshakeFault,
    handshaking: bool,
    wire: Wire,
}

impl Tap {
    fn new(tcp: TcpStream, prefix: Vec<u8>, hello_records: usize, fault: HandshakeFault) -> Tap {
        let mut tap = Tap {
            tcp,
            prefix: Vec::new(),
            prefix_at: 0,
            client_scan: RecordScanner::default(),
            client_records: 0,
            hello_records,
            server_scan: RecordScanner::default(),
            server_ccs: false,
            hello_forwarded: false,
            out: Vec::new(),
            out_at: 0,
            fault,
            handshaking: true,
            wire: Wire::default(),
        };
        tap.observe_client(&prefix);
        tap.prefix = prefix;
        tap
    }

    fn observe_client(&mut self, data: &[u8]) {
        self.client_scan.push(data);
        while let Ok(Some(record)) = self.client_scan.next_record() {
            self.client_records += 1;
            if self.client_records > self.hello_records {
                self.wire.client_records_after_hello += 1;
            }
            if let Some(alert) = record.plaintext_alert() {
                self.wire.client_alert.get_or_insert(alert);
            }
        }
    }

    /// Decides, record by record, what of OpenSSL's output reaches the device.
    fn observe_server(&mut self, data: &[u8]) {
        self.server_scan.push(data);
        while let Ok(Some(record)) = self.server_scan.next_record() {
            self.wire.server_records += 1;
            if let Some(alert) = record.plaintext_alert() {
                self.wire.server_alert.get_or_insert(alert);
            }
            if self.wire.stalled || self.wire.closed_by_lab {
                continue;
            }
            if self.hello_forwarded {
                match self.fault {
                    HandshakeFault::None => {}
                    HandshakeFault::StallAfterHello => {
                        self.wire.stalled = true;
                        continue;
                    }
                    HandshakeFault::CloseMidHandshake => {
                        self.wire.closed_by_lab = true;
                        continue;
                    }
                }
            }
            if record.content_type == content::HANDSHAKE {
                self.hello_forwarded = true;
            }
            if record.content_type == content::CHANGE_CIPHER_SPEC {
                self.server_ccs = true;
            }
            self.out.extend_from_slice(&record.encode());
        }
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_at < self.out.len() {
            let n = ready!(Pin::new(&mut self.tcp).poll_write(cx, &self.out[self.out_at..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_at += n;
        }
        self.out.clear();
        self.out_at = 0;
        Poll::Ready(Ok(()))
    }
}

impl AsyncRead for Tap {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.prefix_at < this.prefix.len() {
            let n = buf.remaining().min(this.prefix.len() - this.prefix_at);
            buf.put_slice(&this.prefix[this.prefix_at..this.prefix_at + n]);
            this.prefix_at += n;
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.tcp).poll_read(cx, buf))?;
        if this.handshaking {
            let fresh = buf.filled()[before..].to_vec();
            this.observe_client(&fresh);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Tap {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.wire.closed_by_lab {
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        }
        if !this.handshaking {
            ready!(this.poll_drain(cx))?;
            return Pin::new(&mut this.tcp).poll_write(cx, data);
        }
        this.observe_server(data);
        // Whatever could not be written yet stays queued; poll_flush finishes it.
        if let Poll::Ready(Err(e)) = this.poll_drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        if this.wire.closed_by_lab {
            ready!(Pin::new(&mut this.tcp).poll_shutdown(cx))?;
            return Poll::Ready(Err(io::ErrorKind::ConnectionAborted.into()));
        }
        Pin::new(&mut this.tcp).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.tcp).poll_shutdown(cx)
    }
}

/// OpenSSL reports a received alert as reason 1000 + its description.
const ALERT_REASON_OFFSET: i32 = 1000;
/// SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE.
const REASON_NO_PEER_CERTIFICATE: i32 = 199;
/// SSL_R_CERTIFICATE_VERIFY_FAILED.
const REASON_VERIFY_FAILED: i32 = 134;

fn classify(
    result: &Result<Result<(), openssl::ssl::Error>, tokio::time::error::Elapsed>,
    stream: &SslStream<Tap>,
    fault: HandshakeFault,
) -> HandshakeOutcome {
    let ssl = stream.ssl();
    let wire = &stream.get_ref().wire;
    let error = match result {
        Ok(Ok(())) => {
            return HandshakeOutcome::Completed {
                version: negotiated_version(ssl.version2()),
                suite: ssl
                    .current_cipher()
                    .and_then(|c| c.standard_name())
                    .unwrap_or("unknown")
                    .to_owned(),
            }
        }
        Ok(Err(e)) => Some(e),
        Err(_) => None,
    };
    let reasons: Vec<i32> = error
        .and_then(|e| e.ssl_error())
        .map(|stack| stack.errors().iter().map(|e| e.reason_code()).collect())
        .unwrap_or_default();
    if let Some(alert) = wire.client_alert {
        return HandshakeOutcome::AlertReceived {
            alert: alert_name(alert),
        };
    }
    // TLS 1.3 alerts after the ServerHello are encrypted: OpenSSL names them.
    let received = reasons
        .iter()
        .find(|r| (ALERT_REASON_OFFSET..ALERT_REASON_OFFSET + 256).contains(*r));
    if let Some(r) = received {
        return HandshakeOutcome::AlertReceived {
            alert: alert_name((r - ALERT_REASON_OFFSET) as u8),
        };
    }
    if let Some(outcome) = wire_outcome(wire, fault) {
        return outcome;
    }
    let protocol_error = error.is_some_and(|e| e.code() == ErrorCode::SSL);
    if protocol_error {
        // An alert the front sent encrypted (TLS 1.3): named from OpenSSL's reason.
        if reasons.contains(&REASON_NO_PEER_CERTIFICATE) {
            return HandshakeOutcome::AlertSent {
                alert: "certificate_required".into(),
            };
        }
        if reasons.contains(&REASON_VERIFY_FAILED) {
            return HandshakeOutcome::AlertSent {
                alert: "unknown_ca".into(),
            };
        }
    }
    HandshakeOutcome::Closed
}

/// What the wire alone says about a failed handshake, whichever stack served it:
/// an alert the front sent, a deliberate fault, or a client that went quiet after
/// the front's flight (BearSSL rejecting a certificate sends no alert).
fn wire_outcome(wire: &Wire, fault: HandshakeFault) -> Option<HandshakeOutcome> {
    if let Some(alert) = wire.server_alert {
        return Some(HandshakeOutcome::AlertSent {
            alert: alert_name(alert),
        });
    }
    match fault {
        HandshakeFault::StallAfterHello if wire.stalled => return Some(HandshakeOutcome::Stalled),
        HandshakeFault::CloseMidHandshake if wire.closed_by_lab => {
            return Some(HandshakeOutcome::Closed)
        }
        _ => {}
    }
    if wire.server_records > 0 && wire.client_records_after_hello == 0 {
        return Some(HandshakeOutcome::ClientStoppedSending);
    }
    None
}

/// The handshake on the rustls stack (a broker that ignores max_fragment_length),
/// then the same MQTT relay as the OpenSSL stack.
async fn accept_ignoring_mfln(
    shared: &FrontShared,
    tap: Tap,
    profile: &Profile,
    policy: crate::lab::policy::DevicePolicy,
    peer: SocketAddr,
) {
    let ip = peer.ip();
    let timeline = &shared.timeline;
    let finish = |outcome| record_unfinished(timeline, peer, outcome);
    let config = match super::ignoring::server_config(profile, &policy.tls) {
        Ok(config) => config,
        Err(e) => {
            timeline.record(
                Source::Tls,
                Some(ip),
                EventKind::Diagnostic {
                    text: format!("TLS front: {e}"),
                },
            );
            return finish(HandshakeOutcome::Closed);
        }
    };
    let fault = policy.tls.fault;
    let accept = tokio_rustls::TlsAcceptor::from(config)
        .accept(tap)
        .into_fallible();
    let mut stream = match tokio::time::timeout(shared.handshake_timeout, accept).await {
        Ok(Ok(stream)) => stream,
        Ok(Err((_, tap))) => {
            let outcome = match tap.wire.client_alert {
                Some(alert) => HandshakeOutcome::AlertReceived {
                    alert: alert_name(alert),
                },
                None => wire_outcome(&tap.wire, fault).unwrap_or(HandshakeOutcome::Closed),
            };
            return finish(outcome);
        }
        // The handshake future owned the socket: what is known is that the device
        // never finished (or the front stalled on purpose).
        Err(_) => {
            let outcome = match fault {
                HandshakeFault::StallAfterHello => HandshakeOutcome::Stalled,
                _ => HandshakeOutcome::ClientStoppedSending,
            };
            return finish(outcome);
        }
    };
    let (tap, connection) = stream.get_mut();
    tap.handshaking = false;
    let version = super::ignoring::version_name(connection.protocol_version());
    let suite = connection
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_else(|| "unknown".into());
    timeline.record(
        Source::Tls,
        Some(ip),
        EventKind::TlsHandshake {
            peer,
            outcome: HandshakeOutcome::Completed { version, suite },
        },
    );
    let link = MqttLink {
        timeline: timeline.clone(),
        device: ip,
        broker: shared.broker,
        policy: policy.mqtt,
        addressed: shared.addressed.clone(),
    };
    mqtt::relay(stream, link).await;
    timeline.record(Source::Tls, Some(ip), EventKind::TlsClosed { peer });
}

/// A connection that ended before it carried MQTT: how the handshake ended, then
/// the close.
fn record_unfinished(timeline: &Timeline, peer: SocketAddr, outcome: HandshakeOutcome) {
    let ip = peer.ip();
    timeline.record(
        Source::Tls,
        Some(ip),
        EventKind::TlsHandshake { peer, outcome },
    );
    timeline.record(Source::Tls, Some(ip), EventKind::TlsClosed { peer });
}
