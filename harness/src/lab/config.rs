//! How a lab is set up: addresses, run directory, clock, certificates, policies.

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use time::OffsetDateTime;

use super::network::NetworkConfig;
use super::policy::DevicePolicy;
use crate::pki::Profile;
use crate::timeline::Timeline;

/// The lab's clock: starts at a chosen instant and runs at the rate of the host's
/// monotonic clock, so certificates generated for that instant stay valid (or
/// expired) exactly as the catalogue says for the whole run.
#[derive(Debug, Clone, Copy)]
pub struct LabClock {
    at: OffsetDateTime,
    origin: Instant,
}

impl LabClock {
    /// A clock reading `at` now.
    pub fn starting_at(at: OffsetDateTime) -> LabClock {
        LabClock {
            at,
            origin: Instant::now(),
        }
    }

    /// The lab's time now.
    pub fn now(&self) -> OffsetDateTime {
        self.at + self.origin.elapsed()
    }
}

/// Which MQTT broker sits behind the lab.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BrokerBackend {
    /// rumqttd in this process, behind the lab's own TLS front (every policy, every
    /// event).
    #[default]
    Embedded,
    /// A spawned mosquitto terminating TLS itself: an independent TLS stack and
    /// broker, with fewer events (see the README).
    Mosquitto,
}

/// Everything [`crate::lab::Lab::start`] needs.
#[derive(Debug, Clone)]
pub struct LabConfig {
    /// The address every service binds to (loopback by default; the runner's LAN
    /// address for real boards).
    pub bind: IpAddr,
    /// The address the DNS server gives out for the lab's names; `None`: `bind`
    /// (or 127.0.0.1 when `bind` is unspecified).
    pub advertise: Option<IpAddr>,
    /// Port of the MQTT/TLS front (0: any free port).
    pub mqtt_tls_port: u16,
    /// Port of the NTP server (0: any free port).
    pub ntp_port: u16,
    /// Port of the DNS server (0: any free port).
    pub dns_port: u16,
    /// Where the profile's files and the timeline are written.
    pub run_dir: PathBuf,
    /// The lab clock's starting time.
    pub at: OffsetDateTime,
    /// The certificate profile presented to devices without one of their own.
    pub profile: Arc<Profile>,
    /// The policy for devices without one of their own.
    pub default_policy: DevicePolicy,
    /// The broker behind the lab.
    pub backend: BrokerBackend,
    /// How long a handshake may take before the front gives up on it and records
    /// why (the client stopped sending, or the stall it was told to do).
    pub handshake_timeout: Duration,
    /// Extra names the DNS server resolves to the lab (besides `*.hil.test`).
    pub names: Vec<String>,
    /// The timeline to record into; `None`: a new one writing
    /// `run_dir/timeline.jsonl`.
    pub timeline: Option<Timeline>,
    /// A network to serve for real boards (DHCP, redirections, an access
    /// point). With one, every service listens on the network's lab address and
    /// `bind` is not used.
    pub network: Option<NetworkConfig>,
}

impl LabConfig {
    /// Loopback, ephemeral ports, the profile's own clock, the default policy.
    pub fn new(profile: Arc<Profile>, run_dir: impl Into<PathBuf>) -> LabConfig {
        LabConfig {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            advertise: None,
            mqtt_tls_port: 0,
            ntp_port: 0,
            dns_port: 0,
            run_dir: run_dir.into(),
            at: profile.at(),
            profile,
            default_policy: DevicePolicy::default(),
            backend: BrokerBackend::Embedded,
            handshake_timeout: Duration::from_secs(20),
            names: Vec::new(),
            timeline: None,
            network: None,
        }
    }
}
