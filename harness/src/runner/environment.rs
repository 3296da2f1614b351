//! The long-lived part of a run: the lab, the catalogue and the boards, and
//! [`Environment::run`], which runs a suite with one firmware on some of them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::Semaphore;

use super::board::{Board, BoardChoice, BoardPool, VirtualNetwork};
use super::context::{Progress, RunContext, SnapshotMode};
use super::firmware::FirmwareSource;
use super::results::{RunEvent, RunReport, ScenarioResult};
use super::suite::Suite;
use super::RunnerError;
use crate::artifact::Secrets;
use crate::lab::network::{MacAddr, NetworkConfig};
use crate::lab::{Lab, LabConfig};
use crate::logprofile::LogProfile;
use crate::pki::{Catalogue, CatalogueOptions, ProfileId};
use crate::serial::PortSpec;
use crate::timeline::Timeline;
use hil_contract::pace::Pace;

fn write_error(path: &Path) -> impl FnOnce(std::io::Error) -> crate::Error + '_ {
    move |source| {
        crate::Error::Runner(RunnerError::Write {
            path: path.to_path_buf(),
            source,
        })
    }
}

/// This host's address on the interface that routes to `device` (connecting a
/// UDP socket sends nothing; it only picks the route).
fn address_towards(device: IpAddr) -> Option<IpAddr> {
    let any = if device.is_ipv4() {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
    } else {
        SocketAddr::new(IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED), 0)
    };
    let socket = std::net::UdpSocket::bind(any).ok()?;
    socket.connect(SocketAddr::new(device, 9)).ok()?;
    socket.local_addr().ok().map(|a| a.ip())
}

/// SHA-256 of a certificate's DER as `AB:CD:...`, the way `openssl x509
/// -fingerprint -sha256` and the header `hil pki export` writes show it.
fn sha256_fingerprint(der: &[u8]) -> String {
    openssl::sha::sha256(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// The port a device's compiled-in settings use for MQTT over TLS.
pub const MQTT_TLS_PORT: u16 = 8883;

/// How to set up an [`Environment`].
#[derive(Debug, Clone)]
pub struct EnvironmentOptions {
    /// The boards.
    pub board: BoardChoice,
    /// Where everything is written.
    pub run_dir: PathBuf,
    /// For a real board: the address the lab binds to (the runner's LAN address).
    pub lab_bind: Option<IpAddr>,
    /// For real boards: each one's address as the lab sees it, in the order of
    /// the boards (not needed with `network`).
    pub device_ips: Vec<IpAddr>,
    /// For real boards: the network the lab serves them (DHCP, redirections, an
    /// access point); each board's address then comes from its lease, found by
    /// the MAC the ROM loader reports.
    pub network: Option<NetworkConfig>,
    /// The catalogue's root and the broker name it is issued for (default: the
    /// lab's own root and `broker.hil.test`).
    pub catalogue: CatalogueOptions,
    /// More names the lab's DNS resolves to the lab for the whole run, e.g. the
    /// NTP server a firmware looks up by name. A query for one of them is no
    /// attempt to reach the broker.
    pub names: Vec<String>,
    /// How fast virtual boards run: [`Pace::Hardware`] gives them a real
    /// board's line rate and timings, and the run a real board's default
    /// settle and grace windows.
    pub pace: Pace,
}

impl EnvironmentOptions {
    /// The boards chosen, writing into `run_dir`.
    pub fn new(board: BoardChoice, run_dir: impl Into<PathBuf>) -> EnvironmentOptions {
        EnvironmentOptions {
            board,
            run_dir: run_dir.into(),
            lab_bind: None,
            device_ips: Vec::new(),
            network: None,
            catalogue: CatalogueOptions::default(),
            names: Vec::new(),
            pace: Pace::Default,
        }
    }
}

/// The lab, the catalogue and the boards, shared by the runs made against them.
pub struct Environment {
    lab: Arc<Lab>,
    timeline: Timeline,
    catalogue: Arc<Catalogue>,
    /// The boards no run holds.
    stock: std::sync::Mutex<Vec<Board>>,
    /// One permit per board in `stock`.
    free: Arc<Semaphore>,
    board_count: usize,
    pool_is_virtual: bool,
    /// Virtual boards at hardware pace wait like real boards.
    pace: Pace,
    network: VirtualNetwork,
    run_dir: PathBuf,
    /// Lab context up and down, once per run.
    pub startup: Duration,
    /// Things that work, but not as well as they could (printed by the CLI).
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for Environment {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Environment")
            .field("lab", &self.lab.addrs())
            .field("boards", &self.board_count)
            .finish_non_exhaustive()
    }
}

/// Binds the lab on the first 127.0.2.x whose MQTT/TLS port is free: devices
/// running compiled-in settings connect to port 8883, and several runs (or test
/// binaries) on one machine must not collide.
async fn start_virtual_lab(mut config: LabConfig) -> Result<Lab, crate::Error> {
    for x in 1..=254u8 {
        config.bind = IpAddr::V4(Ipv4Addr::new(127, 0, 2, x));
        config.mqtt_tls_port = MQTT_TLS_PORT;
        match Lab::start(config.clone()).await {
            Ok(lab) => return Ok(lab),
            Err(crate::lab::LabError::PortInUse { .. }) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(RunnerError::NoLabAddress {
        port: MQTT_TLS_PORT,
    }
    .into())
}

/// The lab for real boards: on the network it serves them, or bound where
/// their addresses route, with the ports a shipped firmware expects.
async fn start_real_lab(
    mut config: LabConfig,
    options: &EnvironmentOptions,
    specs: &[PortSpec],
    warnings: &mut Vec<String>,
) -> Result<Lab, crate::Error> {
    config.mqtt_tls_port = MQTT_TLS_PORT;
    config.ntp_port = 123;
    config.dns_port = 53;
    if let Some(network) = &options.network {
        crate::lab::network::preflight(network).map_err(crate::lab::LabError::from)?;
        config.network = Some(network.clone());
        return Ok(Lab::start(config).await?);
    }
    if options.device_ips.len() != specs.len() {
        return Err(RunnerError::DeviceIpNeeded {
            boards: specs.len(),
            addresses: options.device_ips.len(),
        }
        .into());
    }
    // Boards are provisioned with the lab's addresses, so the lab binds one they
    // can reach: by default the interface that routes to the first board.
    let first = options.device_ips[0];
    config.bind = match options.lab_bind {
        Some(ip) => ip,
        None => address_towards(first).ok_or(RunnerError::NoRouteToDevice { device: first })?,
    };
    match Lab::start(config.clone()).await {
        Ok(lab) => Ok(lab),
        // A provisioned device is told the lab's DNS and NTP ports; only a
        // black-box run needs 53 and 123, so say so and go on.
        Err(
            crate::lab::LabError::PortInUse { service, addr }
            | crate::lab::LabError::PrivilegedPort { service, addr },
        ) if service != "MQTT/TLS" => {
            warnings.push(format!(
                "{service} could not bind {addr}; DNS and NTP use free ports, so black-box \
                 scenarios (unprovisioned boards) will not reach the lab (see `hil doctor`)"
            ));
            config.ntp_port = 0;
            config.dns_port = 0;
            Ok(Lab::start(config).await?)
        }
        Err(e) => Err(e.into()),
    }
}

/// The real boards, each with the address the lab knows it by: the one given,
/// or, on a served network, the one its DHCP lease will carry (reserved for the
/// MAC the board's ROM reports, before the board asks, so its policy is in
/// place for its very first packet).
async fn real_boards(
    lab: &Lab,
    options: &EnvironmentOptions,
    specs: &[PortSpec],
) -> Result<Vec<Board>, crate::Error> {
    let mut boards = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let device = match lab.network() {
            None => options.device_ips[i],
            Some(network) => {
                let owned = spec.clone();
                let summary = tokio::task::spawn_blocking(move || crate::flash::identify(&owned))
                    .await
                    .map_err(|e| crate::serial::SerialError::Io {
                        path: spec.to_string(),
                        source: std::io::Error::other(e.to_string()),
                    })??;
                let mac: MacAddr = summary.mac.parse().map_err(|_| RunnerError::BadMac {
                    spec: spec.to_string(),
                    mac: summary.mac.clone(),
                })?;
                network
                    .reserve(mac)
                    .ok_or(RunnerError::PoolFull { mac: summary.mac })?
            }
        };
        boards.push(Board::real(spec.clone(), device));
    }
    Ok(boards)
}

impl Environment {
    /// Generates the catalogue, starts the lab and the boards.
    pub async fn start(options: EnvironmentOptions) -> Result<Environment, crate::Error> {
        let begun = Instant::now();
        std::fs::create_dir_all(&options.run_dir).map_err(write_error(&options.run_dir))?;
        let at = time::OffsetDateTime::now_utc();
        let catalogue = Arc::new(Catalogue::generate_with(at, &options.catalogue)?);
        let timeline_path = options.run_dir.join("timeline.jsonl");
        let timeline = Timeline::with_jsonl(&timeline_path).map_err(write_error(&timeline_path))?;
        let valid = Arc::new(catalogue.profile(ProfileId::Valid)?.clone());
        let mut config = LabConfig::new(valid, options.run_dir.join("lab"));
        config.timeline = Some(timeline.clone());
        config.at = at;
        config.names = options.names.clone();
        let mut warnings = Vec::new();
        let (lab, pool_is_virtual, boards) = match &options.board {
            BoardChoice::Virtual { .. } if !cfg!(feature = "virtual") => {
                return Err(RunnerError::NoVirtualBoards.into());
            }
            BoardChoice::Virtual { count } => {
                let lab = start_virtual_lab(config).await?;
                let network = VirtualNetwork::of(&lab).at_pace(options.pace);
                let mut boards = Vec::new();
                for k in 1..=u32::from(*count) {
                    boards.push(
                        Board::start_virtual(
                            k,
                            &options.run_dir.join("boards"),
                            &network,
                            &timeline,
                        )
                        .await?,
                    );
                }
                (lab, true, boards)
            }
            BoardChoice::Ports(specs) => {
                let lab = start_real_lab(config, &options, specs, &mut warnings).await?;
                let boards = real_boards(&lab, &options, specs).await?;
                (lab, false, boards)
            }
        };
        let network = VirtualNetwork::of(&lab).at_pace(options.pace);
        let addrs = lab.addrs();
        let root = catalogue.authorities().root();
        let manifest = serde_json::json!({
            "lab": addrs,
            "lab_clock": at.to_string(),
            "board": options.board.to_string(),
            "root": {
                "subject": root.info()?.subject,
                "sha256": sha256_fingerprint(root.der()),
            },
            "broker_name": catalogue.authorities().broker_name(),
            "names": options.names,
        });
        let manifest_path = options.run_dir.join("lab.json");
        std::fs::write(
            &manifest_path,
            serde_json::to_vec_pretty(&manifest).unwrap_or_default(),
        )
        .map_err(write_error(&manifest_path))?;
        Ok(Environment {
            lab: Arc::new(lab),
            timeline,
            catalogue,
            free: Arc::new(Semaphore::new(boards.len())),
            board_count: boards.len(),
            stock: std::sync::Mutex::new(boards),
            pool_is_virtual,
            pace: options.pace,
            network,
            run_dir: options.run_dir,
            startup: begun.elapsed(),
            warnings,
        })
    }

    /// How many boards the environment has.
    pub fn boards(&self) -> usize {
        self.board_count
    }

    /// Where the lab listens.
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    /// The lab's clock and where everything is written.
    pub fn run_dir(&self) -> &Path {
        &self.run_dir
    }

    /// Runs `suite` with `options` on `options.jobs` boards of the environment
    /// (waiting until that many are free: runs of several firmwares share one
    /// environment side by side), reporting progress as it goes. Scenario
    /// failures are in the report; `Err` means the run itself could not start.
    pub async fn run(
        &self,
        suite: &Suite,
        options: &RunOptions,
        progress: Progress,
    ) -> Result<RunReport, crate::Error> {
        let begun = Instant::now();
        if options.unprovisioned {
            suite.check_unprovisioned()?;
        }
        let run_dir = options
            .name
            .as_ref()
            .map_or_else(|| self.run_dir.clone(), |n| self.run_dir.join(n));
        std::fs::create_dir_all(&run_dir).map_err(write_error(&run_dir))?;
        let log_profile = match &options.log_profile {
            Some(name) => {
                LogProfile::load(name, &options.log_profiles_dir).map_err(RunnerError::from)?
            }
            None => LogProfile::reference(),
        };
        let wanted = options.jobs.clamp(1, self.board_count.max(1));
        let permits = self
            .free
            .clone()
            .acquire_many_owned(wanted as u32)
            .await
            .map_err(|_| RunnerError::NoBoard)?;
        let boards: Vec<Board> = match self.stock.lock() {
            Ok(mut stock) => {
                let keep = stock.len().saturating_sub(wanted);
                stock.split_off(keep)
            }
            Err(_) => Vec::new(),
        };
        let pool = BoardPool::new(boards);
        let outcome = self
            .run_on(
                &pool,
                suite,
                options,
                progress,
                run_dir.clone(),
                log_profile,
            )
            .await;
        if let Ok(mut stock) = self.stock.lock() {
            stock.extend(pool.into_boards());
        }
        drop(permits);
        let scenarios = outcome?;
        Ok(RunReport {
            scenarios,
            duration: begun.elapsed(),
            run_dir,
            firmware: options.firmware.as_ref().map_or_else(
                || super::firmware::FIRMWARE_AS_FOUND.into(),
                ToString::to_string,
            ),
        })
    }

    async fn run_on(
        &self,
        pool: &BoardPool,
        suite: &Suite,
        options: &RunOptions,
        progress: Progress,
        run_dir: PathBuf,
        log_profile: LogProfile,
    ) -> Result<Vec<ScenarioResult>, crate::Error> {
        if let Some(firmware) = &options.firmware {
            progress(RunEvent::Preparing {
                boards: pool.size(),
                firmware: firmware.to_string(),
            });
            pool.install(firmware, &self.timeline).await?;
        }
        // What the catalogue is issued for: the name a provisioned device is
        // told, and the one a test build is compiled with.
        let broker_names = vec![self.catalogue.authorities().broker_name().to_owned()];
        // Real boards, and virtual ones at a real board's pace, take a real
        // board's time: the windows are the real board's.
        let fast = self.pool_is_virtual && self.pace != Pace::Hardware;
        let ctx = Arc::new(RunContext {
            lab: self.lab.clone(),
            timeline: self.timeline.clone(),
            catalogue: self.catalogue.clone(),
            default_profile: Arc::new(self.catalogue.profile(ProfileId::Valid)?.clone()),
            pool: pool.clone(),
            pool_is_virtual: self.pool_is_virtual,
            firmware: options.firmware.clone(),
            elf: options.elf.clone(),
            log_profile: Arc::new(log_profile),
            log_profile_forced: options.log_profile.is_some(),
            log_profiles_dir: options.log_profiles_dir.clone(),
            settle: options.settle.unwrap_or(if fast {
                Duration::from_secs(10)
            } else {
                Duration::from_secs(20)
            }),
            quiet: options.quiet,
            grace: options.grace.unwrap_or(if fast {
                Duration::from_millis(150)
            } else {
                Duration::from_secs(1)
            }),
            restart_downtime: options.restart_downtime,
            snapshots: options.snapshots,
            snapshots_dir: options.snapshots_dir.clone(),
            run_dir,
            network: self.network.clone(),
            broker_names,
            unprovisioned: options.unprovisioned,
            secrets: options.secrets.clone(),
            interrupt: options.interrupt.clone(),
            adhoc: Arc::new(Semaphore::new(options.jobs.max(1))),
            adhoc_next: AtomicU32::new(0),
            results: Mutex::new(Vec::new()),
            progress,
            numbering: AtomicUsize::new(0),
        });
        super::adapter::run(ctx.clone(), suite, pool.size()).await;
        let mut scenarios = ctx.results.lock().map(|r| r.clone()).unwrap_or_default();
        // Scenarios cucumber never started (the run was cut short) are reported
        // as not run, never silently dropped.
        let firmware = options
            .firmware
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default();
        for info in suite.scenarios() {
            let ran = scenarios.iter().any(|s| {
                s.info.path == info.path && s.info.line == info.line && s.info.name == info.name
            });
            if !ran {
                let result = ScenarioResult::not_run(info.clone(), &firmware);
                (ctx.progress)(RunEvent::Finished {
                    result: Box::new(result.clone()),
                });
                scenarios.push(result);
            }
        }
        Ok(scenarios)
    }
}

/// What one run does.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Flash this onto every board first (`None`: run what the boards hold; on
    /// virtual boards that is the reference firmware).
    pub firmware: Option<FirmwareSource>,
    /// Boards the run takes from the environment, one scenario on each at once.
    pub jobs: usize,
    /// The firmware's ELF, to decode crash backtraces (`None`: an `.elf` beside
    /// an image file, if there is one).
    pub elf: Option<PathBuf>,
    /// How long a negative expectation waits for the outcome at most.
    pub settle: Option<Duration>,
    /// How long "does not reboot" watches when it ends a scenario.
    pub quiet: Duration,
    /// How long a scenario still watches for a crash after its last step
    /// (default 150 ms on virtual boards, 1 s on real ones).
    pub grace: Option<Duration>,
    /// How long `When the broker restarts` keeps the broker away.
    pub restart_downtime: Duration,
    /// The log profile for every scenario (`None`: what the firmware speaks, when
    /// the harness knows, else `reference`).
    pub log_profile: Option<String>,
    /// Where log profiles are found by name.
    pub log_profiles_dir: PathBuf,
    /// Snapshot behaviour.
    pub snapshots: SnapshotMode,
    /// Where snapshots live.
    pub snapshots_dir: PathBuf,
    /// A subdirectory of the environment's run directory for this run.
    pub name: Option<String>,
    /// Secrets to keep out of every artifact (passwords given in steps are
    /// added as the scenarios are read).
    pub secrets: Secrets,
    /// Stops the run early: no scenario starts after it, the running ones end
    /// where they are; all are reported as not run.
    pub interrupt: super::Interrupt,
    /// Every scenario runs as if it said `Given the board is not provisioned`:
    /// for firmware that cannot read the `PROV` line. A suite with steps that
    /// need provisioning is refused ([`Suite::check_unprovisioned`]).
    pub unprovisioned: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            firmware: Some(FirmwareSource::reference()),
            jobs: 1,
            elf: None,
            settle: None,
            quiet: Duration::from_secs(2),
            grace: None,
            restart_downtime: Duration::from_secs(3),
            log_profile: None,
            log_profiles_dir: PathBuf::from("fixtures/log-profiles"),
            snapshots: SnapshotMode::Review,
            snapshots_dir: PathBuf::from("features/snapshots"),
            name: None,
            secrets: Secrets::default(),
            interrupt: super::Interrupt::new(),
            unprovisioned: false,
        }
    }
}
