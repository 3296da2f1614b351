//! The embedded broker (rumqttd on loopback, behind the front) and the harness's
//! own MQTT client.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, TcpListener as StdListener};
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::lab::LabError;

/// Starts rumqttd on a free loopback port and returns its address once it accepts
/// connections.
///
/// rumqttd 0.20 cannot bind port 0 and report the port, so a free one is picked
/// first. It has no way to stop either: its threads live until the process exits,
/// reachable on loopback only.
pub(crate) async fn start_embedded() -> Result<SocketAddr, LabError> {
    let port = StdListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map_err(|source| LabError::BrokerStart {
            reason: "no free loopback port".into(),
            source: Some(source),
        })?
        .port();
    let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let server = ServerSettings {
        name: "hil-lab".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 1,
        connections: ConnectionSettings {
            connection_timeout_ms: 60_000,
            max_payload_size: 1 << 20,
            max_inflight_count: 100,
            auth: None,
            external_auth: None,
            dynamic_filters: true,
        },
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 10_000,
            max_outgoing_packet_count: 200,
            max_segment_size: 1 << 20,
            max_segment_count: 10,
            ..RouterConfig::default()
        },
        v4: Some(HashMap::from([("hil-lab".to_owned(), server)])),
        ..Config::default()
    };
    std::thread::Builder::new()
        .name("hil-rumqttd".into())
        .spawn(move || {
            let mut broker = Broker::new(config);
            // Returns only if the listener fails; the lab notices by not connecting.
            let _ = broker.start();
        })
        .map_err(|source| LabError::BrokerStart {
            reason: "could not start the broker thread".into(),
            source: Some(source),
        })?;
    wait_until_listening(listen).await?;
    Ok(listen)
}

/// Waits for a listener that is being started by another thread or process.
pub(crate) async fn wait_until_listening(addr: SocketAddr) -> Result<(), LabError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut pause = Duration::from_millis(2);
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(LabError::BrokerStart {
                reason: format!("the broker did not listen on {addr} within 10 s"),
                source: None,
            });
        }
        // Nothing signals readiness across the thread or process boundary, so
        // poll with a growing pause.
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// A message the broker delivered to the harness's client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReceivedMessage {
    /// The topic.
    pub topic: String,
    /// The payload bytes.
    pub payload: Vec<u8>,
    /// Whether the broker delivered it as retained.
    pub retain: bool,
}

/// The harness's own MQTT client, connected to the broker directly (not through
/// the front): it publishes to the device and sees everything published.
#[derive(Debug)]
pub struct LabMqttClient {
    client: AsyncClient,
    messages: mpsc::Receiver<ReceivedMessage>,
    task: JoinHandle<()>,
}

impl LabMqttClient {
    /// Connects to the broker at `broker` as `client_id` and subscribes to `#`;
    /// returns once the subscription is acknowledged, so nothing published after
    /// that is missed.
    pub async fn connect(broker: SocketAddr, client_id: &str) -> Result<LabMqttClient, LabError> {
        let mut options = MqttOptions::new(client_id, broker.ip().to_string(), broker.port());
        options.set_keep_alive(Duration::from_secs(30));
        options.set_max_packet_size(1 << 20, 1 << 20);
        let (client, mut eventloop) = AsyncClient::new(options, 64);
        client
            .subscribe("#", QoS::AtLeastOnce)
            .await
            .map_err(|e| LabError::Client {
                reason: e.to_string(),
            })?;
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        let (tx, messages) = mpsc::channel(1024);
        let task = tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::SubAck(_))) => {
                        if let Some(ready) = ready.take() {
                            let _ = ready.send(Ok(()));
                        }
                    }
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let message = ReceivedMessage {
                            topic: p.topic.clone(),
                            payload: p.payload.to_vec(),
                            retain: p.retain,
                        };
                        if tx.send(message).await.is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(e) => {
                        if let Some(ready) = ready.take() {
                            let _ = ready.send(Err(e.to_string()));
                        }
                        // The broker went away (lab stopped or restarted): the client
                        // ends; a new one is made for a new broker.
                        break;
                    }
                }
            }
        });
        match tokio::time::timeout(Duration::from_secs(10), ready_rx).await {
            Ok(Ok(Ok(()))) => Ok(LabMqttClient {
                client,
                messages,
                task,
            }),
            Ok(Ok(Err(reason))) => {
                task.abort();
                Err(LabError::Client { reason })
            }
            _ => {
                task.abort();
                Err(LabError::Client {
                    reason: "no SUBACK within 10 s".into(),
                })
            }
        }
    }

    /// Publishes `payload` to `topic` (QoS 1).
    pub async fn publish(
        &self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
        retain: bool,
    ) -> Result<(), LabError> {
        self.publish_with(topic, payload, 1, retain).await
    }

    /// Publishes `payload` to `topic` at `qos` (0, 1 or 2; above 2 is 2).
    pub async fn publish_with(
        &self,
        topic: &str,
        payload: impl Into<Vec<u8>>,
        qos: u8,
        retain: bool,
    ) -> Result<(), LabError> {
        let qos = match qos {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        };
        self.client
            .publish(topic, qos, retain, payload.into())
            .await
            .map_err(|e| LabError::Client {
                reason: e.to_string(),
            })
    }

    /// The next message, waiting at most `within`.
    pub async fn next_message(&mut self, within: Duration) -> Option<ReceivedMessage> {
        tokio::time::timeout(within, self.messages.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for LabMqttClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}
