//! The lab: everything the device talks to, on addresses the caller chooses.
//!
//! - a TLS front ([`LabAddrs::mqtt_tls`]) presenting a certificate profile under a
//!   per-device policy, recording the ClientHello and the handshake outcome, then
//!   relaying MQTT to a broker while decoding every packet into events;
//! - an MQTT broker behind it (embedded rumqttd, or a spawned mosquitto);
//! - an SNTP server ([`LabAddrs::ntp`]) reporting the lab clock, skewed per device;
//! - a DNS server ([`LabAddrs::dns`]) resolving the lab's names;
//! - optionally, a network served to real boards on an interface ([`network`]):
//!   DHCP, redirections of the broker's, NTP and DNS ports, a Wi-Fi access point.
//!
//! Policies are keyed by the device's source address ([`PolicyTable`]), so one lab
//! serves several boards at once; they can change while the lab runs. Every event
//! lands on one [`Timeline`].
//!
//! ```no_run
//! use std::sync::Arc;
//! use hil::lab::{BrokerPolicy, DevicePolicy, Lab, LabConfig};
//! use hil::pki::{Catalogue, ProfileId};
//!
//! # async fn demo() -> Result<(), hil::Error> {
//! let at = time::OffsetDateTime::now_utc();
//! let catalogue = Catalogue::generate(at)?;
//! let profile = Arc::new(catalogue.profile(ProfileId::Valid)?.clone());
//! let lab = Lab::start(LabConfig::new(profile, "run")).await?;
//! lab.policies().set(
//!     "127.0.1.1".parse().unwrap(),
//!     DevicePolicy::default().with(BrokerPolicy::SniRequired),
//! );
//! println!("broker at {}", lab.addrs().mqtt_tls);
//! lab.shutdown().await;
//! # Ok(()) }
//! ```

mod config;
pub(crate) mod dns;
pub(crate) mod mqtt;
pub mod network;
pub(crate) mod ntp;
pub use ntp::representable as ntp_can_carry;
mod policy;
pub(crate) mod tls;
mod udp;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use self::config::{BrokerBackend, LabClock, LabConfig};
pub use self::mqtt::broker::{LabMqttClient, ReceivedMessage};
pub use self::policy::{
    BrokerPolicy, ClientCertPolicy, ConnectPolicy, Credentials, DevicePolicy, DnsMode, DnsPolicy,
    HandshakeFault, MflnPolicy, MqttPolicy, NtpPolicy, PolicyTable, TlsPolicy, TlsVersion,
    TlsVersions, UnknownPolicy, BAD_CREDENTIALS_USER,
};
use crate::pki::{file, PkiError};
use crate::timeline::{BrokerAction, EventKind, Source, Timeline};

/// What can go wrong while starting or running the lab.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum LabError {
    /// The port is taken.
    #[error("cannot listen for {service} on {addr}: the address is already in use")]
    #[diagnostic(
        code(hil::lab::port_in_use),
        help("another program (or another lab) listens there: choose another port, or port 0 for a free one")
    )]
    PortInUse {
        /// Which service.
        service: &'static str,
        /// The address asked for.
        addr: SocketAddr,
    },
    /// A port below 1024 without the privilege to bind it.
    #[error("cannot listen for {service} on {addr}: permission denied")]
    #[diagnostic(
        code(hil::lab::privileged_port),
        help("ports below 1024 need privilege: use a higher port, or allow the binary once with `sudo setcap cap_net_bind_service=+ep $(command -v hil)`")
    )]
    PrivilegedPort {
        /// Which service.
        service: &'static str,
        /// The address asked for.
        addr: SocketAddr,
    },
    /// Any other failure to listen.
    #[error("cannot listen for {service} on {addr}")]
    #[diagnostic(
        code(hil::lab::bind),
        help("check that the address belongs to this machine (see `ip addr`)")
    )]
    Bind {
        /// Which service.
        service: &'static str,
        /// The address asked for.
        addr: SocketAddr,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The run directory could not be prepared.
    #[error("cannot write the lab's run directory {}", path.display())]
    #[diagnostic(
        code(hil::lab::run_dir),
        help("check that the directory is writable and the disk not full")
    )]
    RunDir {
        /// The directory or file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The certificate profile could not be written.
    #[error("cannot write the certificate profile")]
    #[diagnostic(code(hil::lab::profile))]
    Profile(#[source] PkiError),
    /// The MQTT broker did not start.
    #[error("the MQTT broker did not start: {reason}")]
    #[diagnostic(
        code(hil::lab::broker),
        help("for the mosquitto backend, check that mosquitto is installed (run ci/setup)")
    )]
    BrokerStart {
        /// What failed.
        reason: String,
        /// The I/O error, if one.
        #[source]
        source: Option<io::Error>,
    },
    /// The mosquitto backend cannot play a policy.
    #[error("mosquitto cannot {what}")]
    #[diagnostic(
        code(hil::lab::mosquitto_unsupported),
        help("use the embedded broker, which plays every policy")
    )]
    MosquittoUnsupported {
        /// What it cannot do.
        what: &'static str,
    },
    /// The harness's MQTT client failed.
    #[error("the lab's MQTT client failed: {reason}")]
    #[diagnostic(code(hil::lab::client))]
    Client {
        /// rumqttc's description.
        reason: String,
    },
    /// The network for real boards could not be served.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Network(#[from] network::NetworkError),
}

/// Where the lab's services listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct LabAddrs {
    /// MQTT over TLS (the front, or mosquitto's TLS listener).
    pub mqtt_tls: SocketAddr,
    /// SNTP over UDP.
    pub ntp: SocketAddr,
    /// DNS over UDP.
    pub dns: SocketAddr,
}

/// A running lab. Stop it with [`Lab::shutdown`]; dropping it stops the services
/// too, without waiting.
#[derive(Debug)]
pub struct Lab {
    addrs: LabAddrs,
    run_dir: PathBuf,
    profile_dir: PathBuf,
    broker: SocketAddr,
    policies: PolicyTable,
    names: dns::NameMap,
    timeline: Timeline,
    clock: LabClock,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    mosquitto: Option<mqtt::mosquitto::Mosquitto>,
    /// The TLS front's shared state; None with the mosquitto backend.
    front: Option<Arc<tls::front::FrontShared>>,
    /// The network served to real boards, if any.
    network: Option<network::ServedNetwork>,
}

fn bind_error(service: &'static str, addr: SocketAddr, source: io::Error) -> LabError {
    match source.kind() {
        io::ErrorKind::AddrInUse => LabError::PortInUse { service, addr },
        io::ErrorKind::PermissionDenied => LabError::PrivilegedPort { service, addr },
        _ => LabError::Bind {
            service,
            addr,
            source,
        },
    }
}

impl Lab {
    /// Writes the profile into the run directory, binds every service and starts
    /// them. Returns once everything accepts connections.
    pub async fn start(config: LabConfig) -> Result<Lab, LabError> {
        std::fs::create_dir_all(&config.run_dir).map_err(|source| LabError::RunDir {
            path: config.run_dir.clone(),
            source,
        })?;
        let profile_dir = config
            .profile
            .write_to(&config.run_dir)
            .map_err(LabError::Profile)?;
        let timeline = match config.timeline.clone() {
            Some(t) => t,
            None => {
                let path = config.run_dir.join("timeline.jsonl");
                Timeline::with_jsonl(&path).map_err(|source| LabError::RunDir { path, source })?
            }
        };
        let policies = PolicyTable::new(config.default_policy.clone());
        let names = dns::NameMap::default();
        // The name the profile was issued for resolves to the lab, whatever it is
        // (a team's broker name as much as broker.hil.test).
        names.insert(config.profile.host());
        for name in &config.names {
            names.insert(name);
        }
        let clock = LabClock::starting_at(config.at);
        let (shutdown, _) = watch::channel(false);
        let mut tasks = Vec::new();

        // A served network first: its address is where every service listens.
        let prepared = match &config.network {
            Some(net) => Some(network::Prepared::start(net, &config.run_dir, &timeline).await?),
            None => None,
        };
        let bind = prepared
            .as_ref()
            .map_or(config.bind, |p| IpAddr::V4(p.address()));

        let ntp_addr = SocketAddr::new(bind, config.ntp_port);
        let ntp_socket = UdpSocket::bind(ntp_addr)
            .await
            .map_err(|e| bind_error("NTP", ntp_addr, e))?;
        let dns_addr = SocketAddr::new(bind, config.dns_port);
        let dns_socket = UdpSocket::bind(dns_addr)
            .await
            .map_err(|e| bind_error("DNS", dns_addr, e))?;
        let local = |s: &UdpSocket, asked: SocketAddr, service| {
            s.local_addr().map_err(|e| bind_error(service, asked, e))
        };
        let ntp = local(&ntp_socket, ntp_addr, "NTP")?;
        let dns = local(&dns_socket, dns_addr, "DNS")?;

        let tls_addr = SocketAddr::new(bind, config.mqtt_tls_port);
        let (mqtt_tls, broker, mosquitto, front) = match config.backend {
            BrokerBackend::Embedded => {
                let listener = TcpListener::bind(tls_addr)
                    .await
                    .map_err(|e| bind_error("MQTT/TLS", tls_addr, e))?;
                let mqtt_tls = listener
                    .local_addr()
                    .map_err(|e| bind_error("MQTT/TLS", tls_addr, e))?;
                let broker = mqtt::broker::start_embedded().await?;
                let shared = Arc::new(tls::front::FrontShared {
                    policies: policies.clone(),
                    profile: config.profile.clone(),
                    timeline: timeline.clone(),
                    broker,
                    handshake_timeout: config.handshake_timeout,
                    contexts: tls::front::ContextCache::default(),
                    live: tls::live::LiveConnections::default(),
                    addressed: mqtt::Addressed::default(),
                });
                tasks.push(tokio::spawn(tls::front::serve(
                    listener,
                    shared.clone(),
                    shutdown.subscribe(),
                )));
                (mqtt_tls, broker, None, Some(shared))
            }
            BrokerBackend::Mosquitto => {
                let m = mqtt::mosquitto::Mosquitto::start(
                    tls_addr,
                    &profile_dir,
                    &config.default_policy,
                    timeline.clone(),
                )
                .await?;
                (m.tls_addr(), m.plain_addr(), Some(m), None)
            }
        };

        let advertise = config.advertise.unwrap_or(if bind.is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            bind
        });
        tasks.push(tokio::spawn(ntp::serve(
            ntp_socket,
            Arc::new(ntp::NtpShared {
                policies: policies.clone(),
                clock,
                timeline: timeline.clone(),
            }),
            shutdown.subscribe(),
        )));
        let dns_shared = Arc::new(dns::DnsShared {
            policies: policies.clone(),
            names: names.clone(),
            address: advertise,
            timeline: timeline.clone(),
        });
        tasks.push(tokio::spawn(dns::serve(
            dns_socket,
            dns_shared.clone(),
            shutdown.subscribe(),
        )));
        let network = match prepared {
            Some(prepared) => {
                // DNS over TCP too, for the redirection of TCP port 53: on the
                // UDP server's port number when it is free.
                let dns_tcp = match TcpListener::bind(dns).await {
                    Ok(listener) => listener,
                    Err(_) => {
                        let any = SocketAddr::new(bind, 0);
                        TcpListener::bind(any)
                            .await
                            .map_err(|e| bind_error("DNS/TCP", any, e))?
                    }
                };
                let dns_tcp_addr = dns_tcp
                    .local_addr()
                    .map_err(|e| bind_error("DNS/TCP", dns, e))?;
                tasks.push(tokio::spawn(dns::serve_tcp(
                    dns_tcp,
                    dns_shared,
                    shutdown.subscribe(),
                )));
                let broker_ports = config
                    .network
                    .as_ref()
                    .map(|n| n.broker_ports.clone())
                    .unwrap_or_default();
                Some(prepared.serve(
                    network::Redirects {
                        broker_ports,
                        tls: mqtt_tls,
                        ntp,
                        dns_udp: dns,
                        dns_tcp: dns_tcp_addr,
                    },
                    &timeline,
                    shutdown.subscribe(),
                )?)
            }
            None => None,
        };
        Ok(Lab {
            addrs: LabAddrs { mqtt_tls, ntp, dns },
            run_dir: config.run_dir,
            profile_dir,
            broker,
            policies,
            names,
            timeline,
            clock,
            shutdown,
            tasks,
            mosquitto,
            front,
            network,
        })
    }

    /// The network served to real boards, when the lab was started with one.
    pub fn network(&self) -> Option<&network::ServedNetwork> {
        self.network.as_ref()
    }

    /// Where the services listen.
    pub fn addrs(&self) -> LabAddrs {
        self.addrs
    }

    /// The run directory.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// The profile's directory inside the run directory (device-anchors.pem and
    /// the rest of `hil pki generate`'s files).
    pub fn profile_dir(&self) -> &Path {
        &self.profile_dir
    }

    /// The trust anchors the device is provisioned with.
    pub fn device_anchors(&self) -> PathBuf {
        self.profile_dir.join(file::DEVICE_ANCHORS)
    }

    /// The broker's plain MQTT address on loopback, for the harness's own client.
    pub fn broker_addr(&self) -> SocketAddr {
        self.broker
    }

    /// The per-device policy table; changes apply to the next connection, query
    /// or request.
    pub fn policies(&self) -> &PolicyTable {
        &self.policies
    }

    /// Ends what a scenario left behind for `device`: its policy, and a broker
    /// restart whose downtime outlived the scenario (a scenario that fails
    /// while the broker is down for its device would otherwise hand the next
    /// scenario on that board a broker that resets its first connections).
    pub fn release_device(&self, device: IpAddr) {
        self.policies.clear(device);
        if let Some(front) = &self.front {
            front.live.clear_down(device);
            front.addressed.clear(device);
        }
    }

    /// Says that the harness's next publish of `payload` on `topic` is for
    /// `device` alone: the lab delivers it to no other device (until
    /// [`Lab::release_device`]). With the mosquitto backend the broker
    /// terminates TLS itself and delivers it to every subscriber.
    pub fn address_publish(&self, device: IpAddr, topic: &str, payload: &[u8]) {
        if let Some(front) = &self.front {
            front.addressed.add(device, topic, payload);
        }
    }

    /// Makes the DNS server resolve `name` to the lab too (e.g. a production
    /// broker's host name, for a release binary run unprovisioned).
    pub fn map_name(&self, name: &str) {
        self.names.insert(name);
    }

    /// The timeline every service records into.
    pub fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// The lab clock.
    pub fn clock(&self) -> LabClock {
        self.clock
    }

    /// A client connected to the broker directly, subscribed to everything.
    pub async fn mqtt_client(&self, client_id: &str) -> Result<LabMqttClient, LabError> {
        LabMqttClient::connect(self.broker, client_id).await
    }

    fn front(&self, what: &'static str) -> Result<&Arc<tls::front::FrontShared>, LabError> {
        self.front
            .as_ref()
            .ok_or(LabError::MosquittoUnsupported { what })
    }

    /// Closes every live connection from `device` through the TLS front, both the
    /// TLS side towards the device and the relay to the broker, as a broker
    /// dropping the client does: the device reads end-of-stream. Other devices'
    /// connections stay open. Returns once both sockets of each are closed, with
    /// how many there were; records [`BrokerAction::ConnectionsDropped`].
    ///
    /// [`BrokerAction::ConnectionsDropped`]: crate::timeline::BrokerAction::ConnectionsDropped
    pub async fn drop_connections(&self, device: IpAddr) -> Result<usize, LabError> {
        let front = self.front("drop one device's connections")?;
        Ok(drop_and_record(front, device).await)
    }

    /// Restarts the broker as `device` sees it: its live connections are dropped,
    /// then for `downtime` each new connection from it is accepted and reset before
    /// any TLS byte is answered (recorded as accepted with outcome `closed`, so
    /// reconnect attempts can be counted), then service resumes by itself. Records
    /// [`BrokerAction::Down`] now and [`BrokerAction::Up`] when the downtime ends.
    /// Other devices are served throughout.
    ///
    /// [`BrokerAction::Down`]: crate::timeline::BrokerAction::Down
    /// [`BrokerAction::Up`]: crate::timeline::BrokerAction::Up
    pub async fn restart_broker(&self, device: IpAddr, downtime: Duration) -> Result<(), LabError> {
        let front = self.front("restart the broker for one device")?.clone();
        let until = tokio::time::Instant::now() + downtime;
        // Down before dropping: a connection arriving meanwhile is either registered
        // in time to be dropped or sees the mark.
        front.live.set_down(device, until);
        self.timeline.record(
            Source::Mqtt,
            Some(device),
            EventKind::Broker {
                action: BrokerAction::Down {
                    downtime_ms: u64::try_from(downtime.as_millis()).unwrap_or(u64::MAX),
                },
            },
        );
        drop_and_record(&front, device).await;
        let mut shutdown = self.shutdown.subscribe();
        tokio::spawn(async move {
            tokio::select! {
                () = tokio::time::sleep_until(until) => {
                    if front.live.come_up(device, until) {
                        front.timeline.record(
                            Source::Mqtt,
                            Some(device),
                            EventKind::Broker { action: BrokerAction::Up },
                        );
                    }
                }
                _ = shutdown.changed() => {}
            }
        });
        Ok(())
    }

    /// Stops every service and waits until they have let go of their sockets.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        if let Some(m) = self.mosquitto.take() {
            m.stop().await;
        }
        if let Some(network) = self.network.take() {
            network.stop();
        }
    }
}

async fn drop_and_record(front: &tls::front::FrontShared, device: IpAddr) -> usize {
    let count = front.live.drop_device(device).await;
    front.timeline.record(
        Source::Mqtt,
        Some(device),
        EventKind::Broker {
            action: BrokerAction::ConnectionsDropped { count },
        },
    );
    count
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_failures_name_the_fix() {
        let addr: SocketAddr = "0.0.0.0:123".parse().unwrap();
        let denied = bind_error("NTP", addr, io::ErrorKind::PermissionDenied.into());
        let help = miette::Diagnostic::help(&denied).unwrap().to_string();
        assert!(help.contains("setcap cap_net_bind_service=+ep"), "{help}");
        let code = miette::Diagnostic::code(&denied).unwrap().to_string();
        assert_eq!(code, "hil::lab::privileged_port");
        let taken = bind_error("NTP", addr, io::ErrorKind::AddrInUse.into());
        assert!(matches!(taken, LabError::PortInUse { .. }));
        assert!(taken.to_string().contains("0.0.0.0:123"));
    }
}
