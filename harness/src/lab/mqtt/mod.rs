//! The MQTT side of the lab: the plaintext relay between the TLS front and the
//! broker (decoding packets into events and applying the broker policies), the
//! embedded broker, and the harness's own client.

pub(crate) mod broker;
pub(crate) mod codec;
pub(crate) mod mosquitto;

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;

use self::codec::{connack, packet_id, pubcomp, publish_ack, Decoder, Packet};
use super::policy::{ConnectPolicy, MqttPolicy};
use crate::timeline::{Direction, EventKind, Source, Timeline};

/// CONNACK return codes the lab answers itself.
const CONNACK_BAD_CREDENTIALS: u8 = 4;
const CONNACK_NOT_AUTHORIZED: u8 = 5;

/// The harness's own publishes, each addressed to the device of the scenario
/// that made it. Every board shares the broker, and a device subscribed to the
/// same topic as another would hear that scenario's command: the relay of every
/// other device drops it.
#[derive(Debug, Clone, Default)]
pub(crate) struct Addressed {
    sent: Arc<Mutex<Vec<AddressedMessage>>>,
}

/// One message of the harness: the device it is for, its topic and payload.
type AddressedMessage = (IpAddr, String, Vec<u8>);

impl Addressed {
    /// `payload` on `topic` is meant for `device` only.
    pub(crate) fn add(&self, device: IpAddr, topic: &str, payload: &[u8]) {
        if let Ok(mut sent) = self.sent.lock() {
            sent.push((device, topic.to_owned(), payload.to_vec()));
        }
    }

    /// Forgets what was addressed to `device` (its scenario ended).
    pub(crate) fn clear(&self, device: IpAddr) {
        if let Ok(mut sent) = self.sent.lock() {
            sent.retain(|(d, ..)| *d != device);
        }
    }

    /// Whether a message the broker routes to `device` is one the harness
    /// published for another device (and not for this one too).
    pub(crate) fn for_another(&self, device: IpAddr, topic: &str, payload: &[u8]) -> bool {
        let Ok(sent) = self.sent.lock() else {
            return false;
        };
        let mut others = false;
        for (d, t, p) in sent.iter() {
            if t == topic && p == payload {
                if *d == device {
                    return false;
                }
                others = true;
            }
        }
        others
    }
}

/// One device's plaintext stream and where it goes.
pub(crate) struct MqttLink {
    pub timeline: Timeline,
    pub device: IpAddr,
    pub broker: SocketAddr,
    pub policy: MqttPolicy,
    pub addressed: Addressed,
}

impl MqttLink {
    fn record(&self, kind: EventKind) {
        self.timeline.record(Source::Mqtt, Some(self.device), kind);
    }

    fn note(&self, text: String) {
        self.record(EventKind::Diagnostic { text });
    }
}

/// The event for a packet, if the timeline records that kind.
pub(crate) fn event_for(packet: &Packet, direction: Direction) -> Option<EventKind> {
    Some(match packet {
        Packet::Connect {
            client_id,
            username,
            keep_alive,
            protocol_level,
            ..
        } => EventKind::MqttConnect {
            client_id: client_id.clone(),
            username: username.clone(),
            keep_alive: *keep_alive,
            protocol_level: *protocol_level,
        },
        Packet::Connack { code } => EventKind::MqttConnack { code: *code },
        Packet::Publish {
            topic,
            payload,
            qos,
            retain,
        } => EventKind::MqttPublish {
            direction,
            topic: topic.clone(),
            payload: String::from_utf8_lossy(payload).into_owned(),
            bytes: payload.len(),
            qos: *qos,
            retain: *retain,
        },
        Packet::Subscribe { topics } => EventKind::MqttSubscribe {
            topics: topics.clone(),
        },
        Packet::Suback { codes } => EventKind::MqttSuback {
            codes: codes.clone(),
        },
        Packet::Pingreq => EventKind::MqttPingreq,
        Packet::Disconnect => EventKind::MqttDisconnect,
        Packet::Other => return None,
    })
}

enum Verdict {
    Forward,
    Refuse(u8),
    Swallow,
}

fn judge(packet: &Packet, policy: &MqttPolicy) -> Verdict {
    let Packet::Connect {
        username, password, ..
    } = packet
    else {
        return Verdict::Forward;
    };
    if let Some(required) = &policy.credentials {
        if !required.matches(username.as_deref(), password.as_deref()) {
            return Verdict::Refuse(CONNACK_BAD_CREDENTIALS);
        }
    }
    match policy.connect {
        ConnectPolicy::Accept => Verdict::Forward,
        ConnectPolicy::NotAuthorized => Verdict::Refuse(CONNACK_NOT_AUTHORIZED),
        ConnectPolicy::NoConnack => Verdict::Swallow,
    }
}

/// Reads from the broker once it is connected; never resolves before that.
async fn read_broker(
    broker: &mut Option<(OwnedReadHalf, OwnedWriteHalf)>,
    buf: &mut [u8],
) -> io::Result<usize> {
    match broker {
        Some((reader, _)) => reader.read(buf).await,
        None => std::future::pending().await,
    }
}

/// Pipes the device's plaintext to the broker and back until either side closes,
/// recording every packet and applying the MQTT policy to CONNECT.
pub(crate) async fn relay<S: AsyncRead + AsyncWrite + Unpin>(device: S, link: MqttLink) {
    let (mut dev_r, mut dev_w) = tokio::io::split(device);
    let mut broker: Option<(OwnedReadHalf, OwnedWriteHalf)> = None;
    let mut from_device = Decoder::default();
    let mut from_broker = Decoder::default();
    let mut dev_buf = vec![0u8; 8192];
    let mut broker_buf = vec![0u8; 8192];
    let mut swallowing = false;
    // QoS 2 messages dropped for another device, whose PUBREL the relay answers.
    let mut settling: Vec<u16> = Vec::new();
    'relay: loop {
        tokio::select! {
            read = dev_r.read(&mut dev_buf) => {
                let n = match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                if swallowing {
                    continue;
                }
                from_device.push(&dev_buf[..n]);
                loop {
                    let (packet, raw) = match from_device.next_packet() {
                        Ok(Some(got)) => got,
                        Ok(None) => break,
                        Err(_) => {
                            link.note("MQTT: malformed packet from the device; connection closed".into());
                            break 'relay;
                        }
                    };
                    if let Some(kind) = event_for(&packet, Direction::FromDevice) {
                        link.record(kind);
                    }
                    match judge(&packet, &link.policy) {
                        Verdict::Forward => {}
                        Verdict::Refuse(code) => {
                            let _ = dev_w.write_all(&connack(code)).await;
                            link.record(EventKind::MqttConnack { code });
                            break 'relay;
                        }
                        Verdict::Swallow => {
                            swallowing = true;
                            break;
                        }
                    }
                    if broker.is_none() {
                        match TcpStream::connect(link.broker).await {
                            Ok(tcp) => {
                                let _ = tcp.set_nodelay(true);
                                broker = Some(tcp.into_split());
                            }
                            Err(e) => {
                                link.note(format!("MQTT: broker unreachable at {}: {e}", link.broker));
                                break 'relay;
                            }
                        }
                    }
                    if let Some((_, writer)) = broker.as_mut() {
                        if writer.write_all(&raw).await.is_err() {
                            break 'relay;
                        }
                    }
                }
            }
            read = read_broker(&mut broker, &mut broker_buf) => {
                let n = match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                from_broker.push(&broker_buf[..n]);
                // Whole packets only: one meant for another device is dropped
                // (and settled with the broker on the device's behalf).
                let mut to_device = Vec::with_capacity(n);
                let mut to_broker = Vec::new();
                loop {
                    let (packet, raw) = match from_broker.next_packet() {
                        Ok(Some(got)) => got,
                        Ok(None) => break,
                        Err(_) => {
                            link.note("MQTT: malformed packet from the broker; connection closed".into());
                            break 'relay;
                        }
                    };
                    if let Packet::Publish { topic, payload, qos, .. } = &packet {
                        if link.addressed.for_another(link.device, topic, payload) {
                            if let Some(id) = packet_id(&raw) {
                                if let Some(ack) = publish_ack(*qos, id) {
                                    to_broker.extend_from_slice(&ack);
                                }
                                if *qos == 2 {
                                    settling.push(id);
                                }
                            }
                            continue;
                        }
                    }
                    if raw.first().is_some_and(|b| b >> 4 == 6) {
                        if let Some(id) = packet_id(&raw).filter(|id| settling.contains(id)) {
                            settling.retain(|s| *s != id);
                            to_broker.extend_from_slice(&pubcomp(id));
                            continue;
                        }
                    }
                    if let Some(kind) = event_for(&packet, Direction::ToDevice) {
                        link.record(kind);
                    }
                    to_device.extend_from_slice(&raw);
                }
                if !to_broker.is_empty() {
                    if let Some((_, writer)) = broker.as_mut() {
                        if writer.write_all(&to_broker).await.is_err() {
                            break;
                        }
                    }
                }
                if !to_device.is_empty() && dev_w.write_all(&to_device).await.is_err() {
                    break;
                }
            }
        }
    }
    let _ = dev_w.shutdown().await;
}
