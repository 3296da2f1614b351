//! The twin as the virtual board's firmware: what it finds around it at boot
//! (DHCP, Wi-Fi), and the runner that starts it for images carrying a
//! descriptor.

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use hil_contract::descriptor::Descriptor;
use hil_contract::esp8266::APP_BAUD;
use hil_twin::{AccessPoint, BoardEnv, Exit, Pace, Restart, Timings};
use tokio::sync::mpsc;

use super::descriptor_of;
use crate::vboard::{BoxFuture, FirmwareBoot, FirmwareRunner, ResetCause};

/// What the board's surroundings offer the twin: what DHCP would hand out and the
/// Wi-Fi in range. The runner reads it at every boot, so a scenario can change it
/// between boots.
#[derive(Debug, Clone, Default)]
pub struct TwinNetwork {
    /// DNS server handed out by "DHCP" (the lab's).
    pub dns: Option<SocketAddr>,
    /// NTP server handed out by "DHCP" (the lab's).
    pub ntp: Option<SocketAddr>,
    /// The access point in range; `None` accepts any credentials.
    pub access_point: Option<AccessPoint>,
    /// A host interface the board joins for real: at every boot it asks for a
    /// DHCP lease there as its efuse MAC, takes the address and the route, and
    /// the lease's DNS and NTP replace `dns` and `ntp` (Linux, CAP_NET_ADMIN).
    pub wifi: Option<String>,
}

/// How long a board joining a real network waits for a DHCP answer at boot.
const DHCP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// Runs the twin for images that carry a descriptor.
#[derive(Debug, Clone, Default)]
pub struct TwinRunner {
    network: Arc<RwLock<TwinNetwork>>,
    pace: Pace,
}

impl TwinRunner {
    /// A runner offering `network` to every boot.
    pub fn new(network: TwinNetwork) -> TwinRunner {
        TwinRunner {
            network: Arc::new(RwLock::new(network)),
            pace: Pace::Default,
        }
    }

    /// Runs the twin at `pace`: [`Pace::Hardware`] takes a real ESP8266's time
    /// for each step ([`Timings::esp8266_80mhz`]).
    pub fn with_pace(mut self, pace: Pace) -> TwinRunner {
        self.pace = pace;
        self
    }

    /// Changes what the next boot gets.
    pub fn set_network(&self, network: TwinNetwork) {
        if let Ok(mut slot) = self.network.write() {
            *slot = network;
        }
    }

    fn network(&self) -> TwinNetwork {
        self.network.read().map(|n| n.clone()).unwrap_or_default()
    }
}

/// The board takes its address on a real interface by DHCP as it starts (a real
/// board asks a moment later, after its boot lines). Without a lease the
/// firmware finds no network it can join and says so, again and again.
async fn join_network(env: &mut BoardEnv, interface: &str) {
    let hostname = format!("ESP-{:02X}{:02X}{:02X}", env.mac[3], env.mac[4], env.mac[5]);
    let joined = match crate::vboard::wifi::lease(interface, env.mac, &hostname, DHCP_TIMEOUT).await
    {
        Ok(Some(lease)) => crate::vboard::wifi::configure(interface, &lease)
            .await
            .ok()
            .map(|()| lease),
        _ => None,
    };
    match joined {
        Some(lease) => {
            env.ip = lease.ip;
            env.dns = lease.dns.map(|ip| SocketAddr::from((ip, 53)));
            env.ntp = lease.ntp.map(|ip| SocketAddr::from((ip, 123)));
        }
        None => {
            env.access_point = Some(AccessPoint {
                ssid: format!("(no DHCP answer on {interface})"),
                password: String::new(),
            });
        }
    }
}

/// The core's `ESP.getResetReason()` with spaces as dashes, as the sketch
/// prints it (esp8266/Arduino cores/esp8266/Esp.cpp: "Power On", "External
/// System", "Exception", "Software/System restart", "Hardware Watchdog").
fn reset_reason(cause: ResetCause) -> &'static str {
    match cause {
        // A brown-out is a power-on to the chip.
        ResetCause::PowerOn | ResetCause::BrownOut => "Power-On",
        ResetCause::Exception => Restart::Exception.reason(),
        ResetCause::SoftwareRestart => Restart::Software.reason(),
        ResetCause::HardwareWatchdog => Restart::HardwareWatchdog.reason(),
        _ => "External-System",
    }
}

/// The board's reset for the twin's restart.
fn reset_cause(restart: Restart) -> ResetCause {
    match restart {
        Restart::Software => ResetCause::SoftwareRestart,
        Restart::HardwareWatchdog => ResetCause::HardwareWatchdog,
        _ => ResetCause::Exception,
    }
}

impl FirmwareRunner for TwinRunner {
    fn run(&self, boot: FirmwareBoot) -> BoxFuture<()> {
        let Ok(descriptor) = descriptor_of(&boot.image) else {
            // Not a twin image: nothing we can run.
            return Box::pin(async {});
        };
        let network = self.network();
        let timings = Timings::for_pace(self.pace);
        Box::pin(async move {
            let FirmwareBoot {
                mut console,
                index,
                cause,
                ..
            } = boot;
            console.set_baud(APP_BAUD);
            let mut env = BoardEnv {
                ip: index.device_ip(),
                mac: index.mac(),
                access_point: network.access_point,
                dns: network.dns,
                ntp: network.ntp,
                reset_reason: reset_reason(cause).into(),
                timings,
            };
            if let Some(interface) = &network.wifi {
                join_network(&mut env, interface).await;
            }
            let (output, mut printed) = mpsc::unbounded_channel();
            let (typed, input) = mpsc::unbounded_channel();
            let mut twin_console = hil_twin::Console { output, input };
            let firmware = hil_twin::run(&descriptor, &env, &mut twin_console);
            tokio::pin!(firmware);
            loop {
                tokio::select! {
                    exit = &mut firmware => {
                        while let Ok(bytes) = printed.try_recv() {
                            console.write(&bytes);
                        }
                        if let Exit::Reboot { cause } = exit {
                            // The chip restarts: the board's next boot is the
                            // restart, with the ROM's cause and rate for it.
                            console.restart(reset_cause(cause));
                        }
                        return;
                    }
                    Some(bytes) = printed.recv() => console.write(&bytes),
                    received = console.read() => match received {
                        Some(bytes) => { let _ = typed.send(bytes); }
                        None => return,
                    },
                }
            }
        })
    }
}

/// The twin running without a board (tests, benchmarks): its serial output as
/// lines with their time since boot, provisioned as soon as it asks.
#[derive(Debug)]
pub struct DetachedTwin {
    lines: mpsc::UnboundedReceiver<(std::time::Duration, String)>,
    task: tokio::task::JoinHandle<Exit>,
}

impl DetachedTwin {
    /// Boots `descriptor` with `env`; `provisioning` is the `PROV` line to answer
    /// `[prov] ready` with (`None`: run unprovisioned).
    pub fn start(
        descriptor: Descriptor,
        env: BoardEnv,
        provisioning: Option<String>,
    ) -> DetachedTwin {
        let (output, mut printed) = mpsc::unbounded_channel::<Vec<u8>>();
        let (typed, input) = mpsc::unbounded_channel();
        let (lines_tx, lines) = mpsc::unbounded_channel();
        let started = tokio::time::Instant::now();
        tokio::spawn(async move {
            let mut partial = Vec::new();
            while let Some(bytes) = printed.recv().await {
                partial.extend_from_slice(&bytes);
                while let Some(end) = partial.iter().position(|b| *b == b'\n') {
                    let raw: Vec<u8> = partial.drain(..=end).collect();
                    let line = String::from_utf8_lossy(&raw).trim_end().to_owned();
                    if line.starts_with("[prov] ready")
                        || line.starts_with("Waiting for provisioning")
                    {
                        if let Some(prov) = &provisioning {
                            let _ = typed.send(prov.clone().into_bytes());
                        }
                    }
                    if lines_tx.send((started.elapsed(), line)).is_err() {
                        return;
                    }
                }
            }
        });
        let task = tokio::spawn(async move {
            let mut console = hil_twin::Console { output, input };
            hil_twin::run(&descriptor, &env, &mut console).await
        });
        DetachedTwin { lines, task }
    }

    /// The next line, waiting at most `within`.
    pub async fn next_line(
        &mut self,
        within: std::time::Duration,
    ) -> Option<(std::time::Duration, String)> {
        tokio::time::timeout(within, self.lines.recv())
            .await
            .ok()
            .flatten()
    }
}

impl Drop for DetachedTwin {
    fn drop(&mut self) {
        self.task.abort();
    }
}
