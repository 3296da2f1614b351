//! The scenario runner: Gherkin features run by cucumber against boards and the
//! lab, one world per scenario.
//!
//! An [`Environment`] is the long-lived part (the lab, the certificate catalogue,
//! the boards); [`Environment::run`] runs a [`Suite`] against it with one firmware
//! and returns a [`RunReport`]. The main job runs the same suite once per
//! firmware variant against one environment.
//!
//! ```no_run
//! use std::path::PathBuf;
//! use hil::runner::{BoardChoice, CheckContext, Environment, EnvironmentOptions, RunOptions, Selection, Suite};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let check = CheckContext { log_profiles: "fixtures/log-profiles".into() };
//! let suite = Suite::load(&[PathBuf::from("features")], &Selection::default(), &check)?;
//! let env = Environment::start(EnvironmentOptions::new(
//!     "virtual:4".parse::<BoardChoice>()?,
//!     "hil-runs/example",
//! ))
//! .await?;
//! let report = env.run(&suite, &RunOptions::default(), std::sync::Arc::new(|_| {})).await?;
//! println!("{} failed", report.count(hil::runner::Status::Failed));
//! # Ok(()) }
//! ```

mod board;
mod checks;
mod context;
mod firmware;
mod results;
mod snapshot;
pub mod steps;
mod suite;
mod world;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicUsize};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cucumber::gherkin;
use cucumber::WriterExt as _;
use futures::future::LocalBoxFuture;
use tokio::sync::Semaphore;

pub use board::{BadBoard, BoardChoice};
pub use checks::{describe, StepFailure};
pub use context::{Progress, SnapshotMode};
pub use firmware::{FirmwareSource, UnknownFirmware};
pub use results::{Failure, RunEvent, RunReport, ScenarioResult, Status};
pub use snapshot::{normalise, normalise_line};
pub use suite::{
    CheckContext, Problem, ScenarioInfo, Selection, Shard, Suite, SuiteError, TagFilter,
};
pub use world::ScenarioWorld;

use board::{Board, BoardPool};
use context::RunContext;

use crate::lab::{Lab, LabConfig};
use crate::logprofile::LogProfile;
use crate::pki::{Catalogue, ProfileId};
use crate::timeline::{BoardEvent, Event, EventKind, HarnessEvent, Timeline};
use crate::vfirmware::TwinNetwork;

/// Why a run could not go on.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum RunnerError {
    /// The board pool is closed or empty.
    #[error("no board is available")]
    #[diagnostic(code(hil::runner::no_board))]
    NoBoard,
    /// A run directory or report file could not be written.
    #[error("cannot write {}", path.display())]
    #[diagnostic(
        code(hil::runner::write),
        help("check the directory exists and is writable")
    )]
    Write {
        /// The path.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// No loopback address had the MQTT/TLS port free.
    #[error("no loopback address in 127.0.2.0/24 has port {port} free for the lab")]
    #[diagnostic(
        code(hil::runner::no_lab_address),
        help("another process holds the port on every address; stop old `hil` runs")
    )]
    NoLabAddress {
        /// The port wanted.
        port: u16,
    },
    /// A real board's network address is needed to tell its traffic apart.
    #[error("the lab needs the board's IP address to give it its own policy")]
    #[diagnostic(
        code(hil::runner::device_ip),
        help("give the board a fixed DHCP lease and pass it with --device-ip")
    )]
    DeviceIpNeeded,
    /// No interface of this host routes to the board.
    #[error("no route from this host to the board at {device}")]
    #[diagnostic(
        code(hil::runner::no_route),
        help("check the runner and the board share a network, or pass --lab-bind with the runner's LAN address")
    )]
    NoRouteToDevice {
        /// The board's address.
        device: IpAddr,
    },
    /// A log profile could not be loaded.
    #[error(transparent)]
    #[diagnostic(transparent)]
    LogProfile(#[from] crate::logprofile::LogProfileError),
    /// A firmware name that is neither a file nor a variant.
    #[error(transparent)]
    #[diagnostic(transparent)]
    Firmware(#[from] UnknownFirmware),
}

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
    /// For a real board: its own address, as the lab sees it.
    pub device_ip: Option<IpAddr>,
}

impl EnvironmentOptions {
    /// The boards chosen, writing into `run_dir`.
    pub fn new(board: BoardChoice, run_dir: impl Into<PathBuf>) -> EnvironmentOptions {
        EnvironmentOptions {
            board,
            run_dir: run_dir.into(),
            lab_bind: None,
            device_ip: None,
        }
    }
}

/// The lab, the catalogue and the boards, shared by the runs made against them.
pub struct Environment {
    lab: Arc<Lab>,
    timeline: Timeline,
    catalogue: Arc<Catalogue>,
    pool: BoardPool,
    pool_is_virtual: bool,
    network: TwinNetwork,
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
            .field("boards", &self.pool.size())
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

impl Environment {
    /// Generates the catalogue, starts the lab and the boards.
    pub async fn start(options: EnvironmentOptions) -> Result<Environment, crate::Error> {
        let begun = Instant::now();
        std::fs::create_dir_all(&options.run_dir).map_err(write_error(&options.run_dir))?;
        let at = time::OffsetDateTime::now_utc();
        let catalogue = Arc::new(Catalogue::generate(at)?);
        let timeline_path = options.run_dir.join("timeline.jsonl");
        let timeline = Timeline::with_jsonl(&timeline_path).map_err(write_error(&timeline_path))?;
        let valid = Arc::new(catalogue.profile(ProfileId::Valid)?.clone());
        let mut config = LabConfig::new(valid, options.run_dir.join("lab"));
        config.timeline = Some(timeline.clone());
        config.at = at;
        let mut warnings = Vec::new();
        let (lab, pool_is_virtual) = match &options.board {
            BoardChoice::Virtual { .. } => (start_virtual_lab(config).await?, true),
            BoardChoice::Port(_) => {
                let device = options.device_ip.ok_or(RunnerError::DeviceIpNeeded)?;
                // The board is provisioned with the lab's addresses, so the lab
                // binds one it can reach: by default the interface that routes
                // to the board.
                config.bind = match options.lab_bind {
                    Some(ip) => ip,
                    None => {
                        address_towards(device).ok_or(RunnerError::NoRouteToDevice { device })?
                    }
                };
                config.mqtt_tls_port = MQTT_TLS_PORT;
                config.ntp_port = 123;
                config.dns_port = 53;
                match Lab::start(config.clone()).await {
                    Ok(lab) => (lab, false),
                    // A provisioned device is told the lab's DNS and NTP ports; only
                    // a black-box run needs 53 and 123, so say so and go on.
                    Err(
                        crate::lab::LabError::PortInUse { service, addr }
                        | crate::lab::LabError::PrivilegedPort { service, addr },
                    ) if service != "MQTT/TLS" => {
                        warnings.push(format!(
                            "{service} could not bind {addr}; DNS and NTP use free ports, so black-box                              scenarios (unprovisioned boards) will not reach the lab (see `hil doctor`)"
                        ));
                        config.ntp_port = 0;
                        config.dns_port = 0;
                        (Lab::start(config).await?, false)
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        };
        let addrs = lab.addrs();
        let network = TwinNetwork {
            dns: Some(addrs.dns),
            ntp: Some(SocketAddr::new(addrs.ntp.ip(), addrs.ntp.port())),
            // The lab's access point takes whatever network the firmware was built
            // for: an unprovisioned release binary joins its factory Wi-Fi here.
            access_point: None,
        };
        let boards = match &options.board {
            BoardChoice::Virtual { count } => {
                let mut boards = Vec::new();
                for k in 1..=u32::from(*count) {
                    boards.push(
                        Board::start_virtual(
                            k,
                            &options.run_dir.join("boards"),
                            network.clone(),
                            &timeline,
                        )
                        .await?,
                    );
                }
                boards
            }
            BoardChoice::Port(spec) => {
                let device = options.device_ip.ok_or(RunnerError::DeviceIpNeeded)?;
                vec![Board::real(spec.clone(), device)]
            }
        };
        let manifest = serde_json::json!({
            "lab": addrs,
            "lab_clock": at.to_string(),
            "board": options.board.to_string(),
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
            pool: BoardPool::new(boards),
            pool_is_virtual,
            network,
            run_dir: options.run_dir,
            startup: begun.elapsed(),
            warnings,
        })
    }

    /// How many boards run scenarios at once at most.
    pub fn boards(&self) -> usize {
        self.pool.size()
    }

    /// Where the lab listens.
    pub fn lab(&self) -> &Lab {
        &self.lab
    }

    /// Runs `suite` with `options`, reporting progress as it goes. Scenario
    /// failures are in the report; `Err` means the run itself could not start.
    pub async fn run(
        &self,
        suite: &Suite,
        options: &RunOptions,
        progress: Progress,
    ) -> Result<RunReport, crate::Error> {
        let begun = Instant::now();
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
        if let Some(firmware) = &options.firmware {
            progress(RunEvent::Preparing {
                boards: self.pool.size(),
                firmware: firmware.to_string(),
            });
            self.pool.install(firmware, &self.timeline).await?;
        }
        let ctx = Arc::new(RunContext {
            lab: self.lab.clone(),
            timeline: self.timeline.clone(),
            catalogue: self.catalogue.clone(),
            default_profile: Arc::new(self.catalogue.profile(ProfileId::Valid)?.clone()),
            pool: self.pool.clone(),
            pool_is_virtual: self.pool_is_virtual,
            firmware: options.firmware.clone(),
            log_profile: Arc::new(log_profile),
            log_profile_forced: options.log_profile.is_some(),
            log_profiles_dir: options.log_profiles_dir.clone(),
            settle: options.settle.unwrap_or(if self.pool_is_virtual {
                Duration::from_secs(10)
            } else {
                Duration::from_secs(20)
            }),
            quiet: options.quiet,
            restart_downtime: options.restart_downtime,
            snapshots: options.snapshots,
            // insta resolves relative snapshot paths against its caller's source file.
            snapshots_dir: std::path::absolute(&options.snapshots_dir)
                .unwrap_or_else(|_| options.snapshots_dir.clone()),
            run_dir: run_dir.clone(),
            network: self.network.clone(),
            adhoc: Arc::new(Semaphore::new(options.jobs.max(1))),
            adhoc_next: AtomicU32::new(0),
            results: Mutex::new(Vec::new()),
            progress,
            numbering: AtomicUsize::new(0),
        });

        let junit_path = run_dir.join("junit.xml");
        let json_path = run_dir.join("cucumber.json");
        let junit = std::fs::File::create(&junit_path).map_err(write_error(&junit_path))?;
        let json = std::fs::File::create(&json_path).map_err(write_error(&json_path))?;
        let writer = cucumber::writer::JUnit::for_tee(junit, 0)
            .tee::<ScenarioWorld, _>(cucumber::writer::Json::for_tee(json))
            .normalized();
        let any_step = regex::Regex::new("^(.*)$").map_err(|_| RunnerError::NoBoard)?;
        let before_ctx = ctx.clone();
        let after_ctx = ctx.clone();
        let jobs = options.jobs.max(1).min(self.pool.size().max(1));
        cucumber::Cucumber::<ScenarioWorld, _, _, _, _, cucumber::cli::Empty>::custom(
            SuiteParser,
            cucumber::runner::Basic::default(),
            writer,
        )
        .with_cli(cucumber::cli::Opts::<_, _, _, cucumber::cli::Empty>::default())
        .max_concurrent_scenarios(jobs)
        .given(any_step.clone(), run_step)
        .when(any_step.clone(), run_step)
        .then(any_step, run_step)
        .before(move |feature, _rule, scenario, world| {
            let ctx = before_ctx.clone();
            Box::pin(async move { world.begin(ctx, feature, scenario) })
        })
        .after(move |_feature, _rule, _scenario, finished, world| {
            let ctx = after_ctx.clone();
            Box::pin(async move {
                if let Some(world) = world {
                    world.end(&ctx, finished).await;
                }
            })
        })
        .run(suite.features().to_vec())
        .await;

        let scenarios = ctx.results.lock().map(|r| r.clone()).unwrap_or_default();
        Ok(RunReport {
            scenarios,
            duration: begun.elapsed(),
            run_dir,
        })
    }
}

/// What one run does.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Flash this onto every board first (`None`: run what the boards hold; on
    /// virtual boards that is the reference firmware).
    pub firmware: Option<FirmwareSource>,
    /// Scenarios at once (at most one per board).
    pub jobs: usize,
    /// How long a negative expectation waits for the outcome at most.
    pub settle: Option<Duration>,
    /// How long "does not reboot" watches when it ends a scenario.
    pub quiet: Duration,
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
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            firmware: Some(FirmwareSource::reference()),
            jobs: 1,
            settle: None,
            quiet: Duration::from_secs(2),
            restart_downtime: Duration::from_secs(3),
            log_profile: None,
            log_profiles_dir: PathBuf::from("fixtures/log-profiles"),
            snapshots: SnapshotMode::Review,
            snapshots_dir: PathBuf::from("features/snapshots"),
            name: None,
        }
    }
}

/// Hands cucumber the suite's features, already parsed, checked and selected.
struct SuiteParser;

impl cucumber::Parser<Vec<gherkin::Feature>> for SuiteParser {
    type Cli = cucumber::cli::Empty;
    type Output =
        futures::stream::Iter<std::vec::IntoIter<cucumber::parser::Result<gherkin::Feature>>>;

    fn parse(self, input: Vec<gherkin::Feature>, _cli: Self::Cli) -> Self::Output {
        futures::stream::iter(input.into_iter().map(Ok).collect::<Vec<_>>())
    }
}

/// Every step goes through here: the vocabulary decides, not cucumber's regexes.
fn run_step(world: &mut ScenarioWorld, step: cucumber::step::Context) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        if let Err(failure) = world.execute(&step.step.value).await {
            let message = failure.message();
            world.record_failure(&step.step, failure);
            // cucumber turns an unwinding step into a failed one, with this text.
            std::panic::resume_unwind(Box::new(message));
        }
    })
}

fn slug(text: &str) -> String {
    let s: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    let parts: Vec<&str> = s.split('-').filter(|p| !p.is_empty()).collect();
    parts.join("-").chars().take(60).collect()
}

impl ScenarioWorld {
    fn begin(
        &mut self,
        ctx: Arc<RunContext>,
        feature: &gherkin::Feature,
        scenario: &gherkin::Scenario,
    ) {
        let info = ScenarioInfo {
            feature: feature.name.clone(),
            path: feature.path.clone().unwrap_or_default(),
            name: scenario.name.clone(),
            line: scenario.position.line,
            tags: feature.tags.iter().chain(&scenario.tags).cloned().collect(),
        };
        let number = ctx.next_number();
        self.artifacts = Some(ctx.run_dir.join("scenarios").join(format!(
            "{number:03}-{}",
            slug(&format!("{}-{}", stem(&info.path), info.name))
        )));
        (ctx.progress)(RunEvent::Started { info: info.clone() });
        self.info = Some(info);
        self.started = Some(Instant::now());
        self.start = Some(ctx.timeline.cursor());
        self.ctx = Some(ctx);
    }

    fn record_failure(&mut self, step: &gherkin::Step, failure: StepFailure) {
        self.infrastructure |= failure.infrastructure;
        if self.failure.is_none() {
            self.failure = Some(failure);
            self.failed_step = Some((
                format!("{}{}", step.keyword, step.value),
                step.position.line,
            ));
        }
    }

    /// Runs the checks that hold until the end, puts the board back in reset,
    /// writes the artifacts and the result.
    async fn end(&mut self, ctx: &RunContext, finished: &cucumber::event::ScenarioFinished) {
        use cucumber::event::ScenarioFinished as F;
        let ends_well = matches!(finished, F::StepPassed);
        let mut late_failure = None;
        if ends_well && self.failure.is_none() {
            if let Err(failure) = self.finish_deferred(ctx).await {
                late_failure = Some(failure.message());
                self.infrastructure |= failure.infrastructure;
                self.failure = Some(failure);
                self.failed_step = Some(("(checks that hold until the scenario ends)".into(), 0));
            }
        }
        let teardown = Instant::now();
        if let Err(failure) = self.stop_session().await {
            self.infrastructure = true;
            if self.failure.is_none() {
                self.failure = Some(failure);
            }
        }
        if let Some(device) = self.device() {
            ctx.lab.policies().clear(device);
        }
        self.mqtt = None;
        let events = match self.start {
            Some(start) => self.device_events(ctx, start),
            None => Vec::new(),
        };
        let artifacts = self
            .artifacts
            .clone()
            .unwrap_or_else(|| ctx.run_dir.join("scenarios"));
        if let Err(e) = self.write_artifacts(&artifacts, &events) {
            ctx.timeline.record(
                crate::timeline::Source::Harness,
                None,
                EventKind::Diagnostic {
                    text: format!("could not write artifacts to {}: {e}", artifacts.display()),
                },
            );
        }
        self.overhead += teardown.elapsed();
        let status = if self.infrastructure || matches!(finished, F::BeforeHookFailed(_)) {
            Status::Error
        } else if self.failure.is_some() || matches!(finished, F::StepFailed(..)) {
            Status::Failed
        } else if matches!(finished, F::StepSkipped) {
            Status::Skipped
        } else {
            Status::Passed
        };
        let failure = self.failure.as_ref().map(|f| {
            let (step, line) = self.failed_step.clone().unwrap_or_default();
            Failure {
                step,
                line,
                expectation: f.expectation.clone(),
                found: f.found.clone(),
                window: f.window.clone(),
            }
        });
        let result = ScenarioResult {
            info: self.info.clone().unwrap_or_else(|| ScenarioInfo {
                feature: String::new(),
                path: PathBuf::new(),
                name: String::new(),
                line: 0,
                tags: Vec::new(),
            }),
            status,
            duration: self.started.map(|s| s.elapsed()).unwrap_or_default(),
            overhead: self.overhead,
            provisioning: provisioning_time(&events, &self.log()),
            failure,
            artifacts,
            firmware: self.firmware.clone().unwrap_or_default(),
            events,
        };
        if let Ok(mut results) = ctx.results.lock() {
            results.push(result.clone());
        }
        (ctx.progress)(RunEvent::Finished {
            result: Box::new(result),
        });
        // The board goes back to the pool before anything else can fail.
        self.lease = None;
        if let Some(message) = late_failure {
            std::panic::resume_unwind(Box::new(message));
        }
    }

    fn write_artifacts(&self, dir: &Path, events: &[Event]) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let mut transcript = String::new();
        let mut jsonl = String::new();
        for event in events {
            if let EventKind::SerialLine { line } = &event.kind {
                transcript.push_str(&format!("[{:>10.3}] {line}\n", event.t_us as f64 / 1e6));
            } else if let EventKind::Harness { what } = &event.kind {
                let text = match what {
                    HarnessEvent::ProvisioningSent { line } => format!("sent {line}"),
                    HarnessEvent::StepStarted { step, .. } => format!("step: {step}"),
                    _ => continue,
                };
                transcript.push_str(&format!("[{:>10.3}] >> {text}\n", event.t_us as f64 / 1e6));
            }
            jsonl.push_str(&serde_json::to_string(event).unwrap_or_default());
            jsonl.push('\n');
        }
        std::fs::write(dir.join("transcript.txt"), transcript)?;
        std::fs::write(dir.join("timeline.jsonl"), jsonl)?;
        let manifest = serde_json::json!({
            "scenario": self.info.as_ref().map(|i| i.name.clone()),
            "location": self.info.as_ref().map(|i| i.location()),
            "device": self.device(),
            "firmware": self.firmware,
            "presented_profile": self.presented.map(|p| p.as_str()),
            "log_profile": self.log().name(),
            "provisioned": self.provision,
            "policy": format!("{:?}", self.policy.tls),
            "mqtt_policy": format!("{:?}", self.policy.mqtt),
            "ntp_policy": format!("{:?}", self.policy.ntp),
            "dns_policy": format!("{:?}", self.policy.dns),
        });
        std::fs::write(
            dir.join("lab.json"),
            serde_json::to_vec_pretty(&manifest).unwrap_or_default(),
        )
    }
}

/// From the first harness reset to the device's `prov ok`.
fn provisioning_time(events: &[Event], log: &LogProfile) -> Option<Duration> {
    let reset = events.iter().find(|e| {
        matches!(
            &e.kind,
            EventKind::Board {
                what: BoardEvent::Reset
            }
        )
    })?;
    let ok = events.iter().find(|e| {
        e.seq > reset.seq
            && matches!(&e.kind, EventKind::SerialLine { line }
                if log.recognise(line).is_some_and(|r| r.event == crate::logprofile::SemanticEvent::ProvOk))
    })?;
    Some(Duration::from_micros(ok.t_us.saturating_sub(reset.t_us)))
}

fn stem(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default()
}
