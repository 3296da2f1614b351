//! `hil run`: Gherkin scenarios against boards and the lab, with live progress, a
//! summary table, JUnit XML, cucumber JSON, an HTML report and per-scenario
//! artifacts.

use std::io::Write as _;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use hil::artifact::Secrets;
use hil::runner::{
    BoardChoice, CheckContext, Environment, EnvironmentOptions, FirmwareSource, Interrupt,
    Progress, RunEvent, RunOptions, RunReport, ScenarioResult, Selection, Shard, SnapshotMode,
    Status, Suite, TagFilter,
};
use miette::{Context, IntoDiagnostic, Result};

use super::now;

/// Arguments of `hil run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Feature files or directories holding them.
    #[arg(value_name = "FEATURES", default_value = "features")]
    features: Vec<PathBuf>,
    #[command(flatten)]
    common: CommonRunArgs,
    /// The board: `virtual`, `virtual:N`, a tty (/dev/ttyUSB0), serial:<USB serial
    /// number>, location:<USB path>, rfc2217://host:port, or labgrid places:
    /// labgrid:PLACE, or labgrid:TAG=VALUE[,TAG=VALUE...][*N] for N free places
    /// whose tags match (reserved and acquired through labgrid's coordinator,
    /// released when the run ends, however it ends; a place's tag `ip=` gives its
    /// board's address). Repeat for several real boards (scenarios are spread
    /// over them). Default: virtual boards, as many as --jobs (one).
    #[arg(long, env = "HIL_BOARD", value_delimiter = ',', help_heading = "Board")]
    board: Vec<String>,
    #[command(flatten)]
    farm: super::farm::FarmArgs,
    /// Flash this first: an image file, or a twin variant with optional knobs
    /// (`no-ntp`, `reference+trust=insecure`). Default on virtual boards: reference.
    #[arg(
        long,
        env = "HIL_FIRMWARE",
        value_name = "IMAGE|VARIANT",
        help_heading = "Board"
    )]
    firmware: Option<String>,
    /// Only scenarios whose tags match, e.g. `@tls and not @slow`.
    #[arg(long, value_name = "EXPR", help_heading = "Selection")]
    tags: Option<TagFilter>,
    /// Exit 0 when --tags or --shard select no scenario (by default that is exit 2:
    /// a typo in a tag should not pass as "nothing to run").
    #[arg(long, help_heading = "Selection")]
    allow_empty: bool,
    /// Only this runner's share when N runners split the suite: K/N (1-based).
    #[arg(
        long,
        value_name = "K/N",
        env = "HIL_SHARD",
        help_heading = "Selection"
    )]
    shard: Option<Shard>,
    /// Also write JUnit XML here (always written into the run directory).
    #[arg(long, value_name = "FILE", help_heading = "Reports")]
    junit: Option<PathBuf>,
    /// Also write cucumber JSON here (always written into the run directory).
    #[arg(long, value_name = "FILE", help_heading = "Reports")]
    json: Option<PathBuf>,
    /// Also write the HTML report into this directory (always in the run directory).
    #[arg(long, value_name = "DIR", help_heading = "Reports")]
    report: Option<PathBuf>,
    /// Read every device's serial output through this log profile (a name in
    /// --log-profiles or a .toml path). Default: what the firmware speaks when the
    /// harness knows it, else `reference`.
    #[arg(long, value_name = "NAME", help_heading = "Device")]
    log_profile: Option<String>,
    /// A real board's IP address as the lab sees it (give it a fixed DHCP lease);
    /// repeat, in the order of --board. Not needed with --network: the lab's
    /// DHCP finds each board by its MAC.
    #[arg(
        long,
        env = "HIL_DEVICE_IP",
        value_delimiter = ',',
        help_heading = "Board"
    )]
    device_ip: Vec<IpAddr>,
    #[command(flatten)]
    network: super::lab::NetworkArgs,
    /// For a real board: the runner's address the lab binds to (default: the
    /// address of the interface that routes to --device-ip).
    #[arg(long, env = "HIL_LAB_BIND", help_heading = "Board")]
    lab_bind: Option<IpAddr>,
    /// Flash --firmware even when it is not an image the ROM boots (raw data).
    #[arg(long, help_heading = "Board")]
    force: bool,
    /// The firmware's ELF (with DWARF), to decode crash backtraces to function and
    /// file:line. Default: an `.elf` beside the --firmware image, if there is one.
    #[arg(long, value_name = "FILE", env = "HIL_ELF", help_heading = "Device")]
    elf: Option<PathBuf>,
    /// Provision no device: every scenario runs as if it said `Given the board
    /// is not provisioned`, for firmware that cannot read the PROV line (a
    /// release binary, a test build with a compiled-in lab root and broker
    /// name). Steps that need provisioning are refused before the run.
    /// (HIL_UNPROVISIONED: 1, true, yes or on.)
    #[arg(
        long,
        env = "HIL_UNPROVISIONED",
        value_parser = clap::builder::FalseyValueParser::new(),
        help_heading = "Your firmware"
    )]
    unprovisioned: bool,
    /// A name the lab's DNS resolves to the lab for the whole run, e.g. the NTP
    /// server your firmware looks up (`pool.ntp.org`); repeat for several. For
    /// the broker's name use --broker-name, which also issues the certificates
    /// for it.
    #[arg(
        long = "name",
        value_name = "HOST",
        value_parser = parse_host,
        env = "HIL_NAMES",
        value_delimiter = ',',
        help_heading = "Your firmware"
    )]
    names: Vec<String>,
}

/// A DNS name for `--name`: labels of letters, digits and hyphens; an IP
/// address needs no name.
fn parse_host(text: &str) -> Result<String, String> {
    let host = text.trim_end_matches('.').to_ascii_lowercase();
    let label_ok = |l: &str| {
        (1..=63).contains(&l.len())
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    let numeric = host
        .rsplit('.')
        .next()
        .is_some_and(|l| l.bytes().all(|b| b.is_ascii_digit()));
    if host.is_empty() || host.len() > 253 || !host.split('.').all(label_ok) || numeric {
        return Err(format!(
            "`{text}` is not a DNS name (labels of letters, digits and hyphens; an IP address needs no name)"
        ));
    }
    Ok(host)
}

/// `--pace`: how fast virtual boards run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PaceArg {
    /// As fast as this machine allows (bytes at once, no computing time).
    Default,
    /// A real ESP8266 at 80 MHz: line rate both ways, real boot, Wi-Fi, SNTP
    /// and handshake durations.
    Hardware,
}

impl From<PaceArg> for hil_contract::pace::Pace {
    fn from(pace: PaceArg) -> Self {
        match pace {
            PaceArg::Default => hil_contract::pace::Pace::Default,
            PaceArg::Hardware => hil_contract::pace::Pace::Hardware,
        }
    }
}

/// Options `hil run` and `hil demo` share.
#[derive(Debug, Args)]
pub struct CommonRunArgs {
    /// Scenarios at once, each on its own board: never more than the boards
    /// given (default: one per board; with virtual boards and no count, the
    /// number of virtual boards).
    #[arg(long, short = 'j', value_name = "N", help_heading = "Selection")]
    pub jobs: Option<usize>,
    /// Where runs are written; each run gets its own timestamped directory.
    #[arg(
        long,
        env = "HIL_RUNS_DIR",
        default_value = "hil-runs",
        value_name = "DIR",
        help_heading = "Reports"
    )]
    pub runs_dir: PathBuf,
    /// How fast virtual boards run: `default` as fast as this machine allows,
    /// `hardware` at a real ESP8266's pace (bytes at the UART's line rate, an
    /// 80 MHz chip's boot, Wi-Fi, SNTP and TLS handshake times), with a real
    /// board's default --settle and --grace.
    #[arg(
        long,
        value_enum,
        default_value_t = PaceArg::Default,
        value_name = "PACE",
        help_heading = "Board"
    )]
    pub pace: PaceArg,
    /// How long a negative expectation waits for the outcome at most, when the
    /// device does not retry sooner (default 10 s on virtual boards, 20 s on real
    /// ones and at --pace hardware).
    #[arg(long, value_name = "DURATION", value_parser = parse_positive, help_heading = "Device")]
    pub settle: Option<Duration>,
    /// How long a scenario still watches for a crash after its last step
    /// (default 150 ms on virtual boards, 1 s on real ones and at --pace hardware).
    #[arg(long, value_name = "DURATION", value_parser = parse_positive, help_heading = "Device")]
    pub grace: Option<Duration>,
    /// Directory of log profiles.
    #[arg(
        long,
        default_value = "fixtures/log-profiles",
        value_name = "DIR",
        help_heading = "Device"
    )]
    pub log_profiles: PathBuf,
    /// Directory of transcript snapshots.
    #[arg(
        long,
        default_value = "features/snapshots",
        value_name = "DIR",
        help_heading = "Reports"
    )]
    pub snapshots: PathBuf,
    /// Your test CA: the catalogue's root.
    #[command(flatten)]
    pub ca: super::pki::CaArgs,
    /// The broker name your firmware dials.
    #[command(flatten)]
    pub broker_name: super::pki::BrokerNameArgs,
}

fn parse_positive(text: &str) -> Result<Duration, String> {
    let d = hil::duration::parse_duration(text).map_err(|e| e.to_string())?;
    if d.is_negative() || d.is_zero() {
        return Err(format!("`{text}` must be a positive duration"));
    }
    Ok(Duration::from_millis(d.whole_milliseconds() as u64))
}

/// A fresh directory under `runs_dir` named by the time (and a counter when two
/// runs start in the same second).
pub fn new_run_dir(runs_dir: &Path) -> Result<PathBuf> {
    let stamp = now()
        .format(&time::macros::format_description!(
            "[year][month][day]-[hour][minute][second]"
        ))
        .into_diagnostic()?;
    for n in 0..100 {
        let name = if n == 0 {
            stamp.clone()
        } else {
            format!("{stamp}-{n}")
        };
        let dir = runs_dir.join(name);
        if !dir.exists() {
            std::fs::create_dir_all(&dir)
                .into_diagnostic()
                .wrap_err_with(|| format!("creating {}", dir.display()))?;
            return Ok(dir);
        }
    }
    miette::bail!(
        "cannot find a free run directory name under {}",
        runs_dir.display()
    )
}

/// Prints one line per finished scenario, with a running count.
pub fn console_progress(total: usize) -> Progress {
    let done = Arc::new(Mutex::new(0usize));
    Arc::new(move |event| {
        let mut out = std::io::stdout().lock();
        match event {
            RunEvent::Preparing { boards, firmware } => {
                let _ = writeln!(out, "  flashing {firmware} onto {boards} board(s)");
            }
            RunEvent::Started { .. } => {}
            RunEvent::Finished { result } => {
                let n = done.lock().map(|mut d| {
                    *d += 1;
                    *d
                });
                let mark = match result.status {
                    Status::Passed => "ok  ",
                    Status::Failed if result.failure.as_ref().is_some_and(|f| f.inconclusive) => {
                        "INC "
                    }
                    Status::Failed => "FAIL",
                    Status::Error => "ERR ",
                    Status::NotRun => "----",
                };
                let _ = writeln!(
                    out,
                    "  [{:>3}/{total}] {mark} {} › {} ({:.1} s)",
                    n.unwrap_or(0),
                    result.info.feature,
                    result.info.name,
                    result.duration.as_secs_f64()
                );
                if let Some(failure) = &result.failure {
                    let _ = writeln!(
                        out,
                        "             {}:{} {}\n             expected {}\n             but {}",
                        result.info.path.display(),
                        failure.line,
                        failure.step,
                        failure.expectation,
                        failure.found.lines().next().unwrap_or_default()
                    );
                    if let Some(crash) = &failure.crash {
                        for frame in &crash.backtrace {
                            let _ = writeln!(out, "               {frame}");
                        }
                    }
                }
                if let Some(error) = &result.error {
                    let _ = writeln!(
                        out,
                        "             {}: the harness could not run it: {error}",
                        match result.error_line {
                            0 => result.info.location(),
                            line => format!("{}:{line}", result.info.path.display()),
                        }
                    );
                }
            }
            _ => {}
        }
    })
}

/// The summary table: per feature, scenarios passed and failed.
pub fn print_summary(report: &RunReport) {
    let mut features: Vec<(String, usize, usize, usize)> = Vec::new();
    for r in &report.scenarios {
        let entry = match features.iter_mut().position(|f| f.0 == r.info.feature) {
            Some(i) => &mut features[i],
            None => {
                features.push((r.info.feature.clone(), 0, 0, 0));
                let last = features.len() - 1;
                &mut features[last]
            }
        };
        match r.status {
            Status::Passed => entry.1 += 1,
            Status::Failed => entry.2 += 1,
            _ => entry.3 += 1,
        }
    }
    println!();
    println!(
        "  {:<60} {:>6} {:>6} {:>6}",
        "FEATURE", "PASSED", "FAILED", "OTHER"
    );
    for (name, passed, failed, other) in &features {
        let name: String = name.chars().take(60).collect();
        println!("  {name:<60} {passed:>6} {failed:>6} {other:>6}");
    }
    println!(
        "  {:<60} {:>6} {:>6} {:>6}",
        format!(
            "{} scenarios in {:.1} s",
            report.scenarios.len(),
            report.duration.as_secs_f64()
        ),
        report.count(Status::Passed),
        report.count(Status::Failed),
        report.count(Status::Error) + report.count(Status::NotRun)
    );
}

impl CommonRunArgs {
    /// The run options these flags make.
    pub fn options(&self, firmware: Option<FirmwareSource>, jobs: usize) -> RunOptions {
        RunOptions {
            firmware,
            jobs,
            settle: self.settle,
            log_profiles_dir: self.log_profiles.clone(),
            snapshots: SnapshotMode::Review,
            snapshots_dir: self.snapshots.clone(),
            grace: self.grace,
            ..RunOptions::default()
        }
    }
}

/// Loads the features, reporting every problem at once.
pub fn load_suite(
    features: &[PathBuf],
    selection: &Selection,
    log_profiles: &Path,
) -> Result<Suite> {
    let check = CheckContext {
        log_profiles: log_profiles.to_path_buf(),
    };
    Ok(Suite::load(features, selection, &check)?)
}

impl RunArgs {
    /// Runs the scenarios.
    pub fn run(self) -> Result<ExitCode> {
        let selection = Selection {
            tags: self.tags.clone(),
            shard: self.shard,
        };
        let suite = load_suite(&self.features, &selection, &self.common.log_profiles)?;
        if self.unprovisioned {
            suite.check_unprovisioned()?;
        }
        // The CA and the name are checked before anything starts.
        let catalogue = super::pki::catalogue_options(&self.common.ca, &self.common.broker_name)?;
        let outputs = Outputs {
            junit: self.junit.clone(),
            json: self.json.clone(),
            html: self.report.clone(),
        };
        outputs.check()?;
        let (board, farm_specs, jobs) = self.boards()?;
        // Checked (privilege, interface, overlap) before anything slow happens.
        let network_config = self.network.config()?;
        if network_config.is_some() && matches!(board, BoardChoice::Virtual { .. }) {
            miette::bail!(miette::miette!(
                code = "hil::run::network",
                help = "virtual boards have the lab on loopback; --network is for real boards (--board /dev/ttyUSB0 ...)",
                "--network serves real boards"
            ));
        }
        let shown = if farm_specs.is_empty() {
            board.to_string()
        } else {
            let mut all: Vec<String> = farm_specs.iter().map(ToString::to_string).collect();
            if let BoardChoice::Ports(ports) = &board {
                all.extend(ports.iter().map(ToString::to_string));
            }
            all.join(", ")
        };
        let firmware = match (&self.firmware, &board) {
            (Some(f), _) => Some(FirmwareSource::parse(f)?),
            (None, BoardChoice::Virtual { .. }) => Some(FirmwareSource::reference()),
            (None, BoardChoice::Ports(_)) => None,
        };
        if let Some(firmware) = firmware.as_ref().filter(|_| !self.force) {
            if let Err(bad) = firmware.check() {
                // Nothing ran, but a CI job still gets its reports, saying why.
                let reason = bad.to_string();
                let _ = not_run_reports(&suite, &outputs, &reason);
                return Err(bad.into());
            }
        }
        println!(
            "hil run: {} of {} scenario(s){}{} on {shown}, {jobs} at a time{}",
            suite.scenarios().len(),
            suite.total(),
            self.tags
                .as_ref()
                .map(|t| format!(", tags {t}"))
                .unwrap_or_default(),
            self.shard
                .map(|s| format!(", shard {s}"))
                .unwrap_or_default(),
            if self.unprovisioned {
                ", unprovisioned"
            } else {
                ""
            },
        );
        if suite.scenarios().is_empty() {
            println!("nothing to run");
            let asked = self.tags.is_some() || self.shard.is_some();
            if asked && !self.allow_empty {
                miette::bail!(miette::miette!(
                    code = "hil::run::nothing_selected",
                    help = "check the tags (`hil run --tags` takes e.g. `@tls and not @slow`), or pass --allow-empty when an empty selection is fine",
                    "the selection matches none of the {} scenario(s)",
                    suite.total()
                ));
            }
            return Ok(ExitCode::SUCCESS);
        }
        // Farm places are taken once everything was checked, and given back
        // when `farm` is dropped, however this function returns.
        let mut device_ips = self.device_ip.clone();
        let (board, farm) = if farm_specs.is_empty() {
            (board, None)
        } else {
            let (session, held) = super::farm::FarmSession::acquire(&farm_specs, &self.farm)?;
            let mut ports: Vec<hil::serial::PortSpec> =
                held.iter().map(|place| place.port.clone()).collect();
            let only_places = matches!(&board, BoardChoice::Ports(more) if more.is_empty());
            if device_ips.is_empty() && only_places {
                device_ips = held.iter().filter_map(|place| place.device_ip).collect();
                if device_ips.len() != held.len() {
                    device_ips.clear();
                }
            }
            if let BoardChoice::Ports(more) = board {
                ports.extend(more);
            }
            (BoardChoice::Ports(ports), Some(session))
        };
        let run_dir = new_run_dir(&self.common.runs_dir)?;
        let elf = self.elf.clone().or_else(|| match &firmware {
            Some(FirmwareSource::Image(image)) => {
                Some(image.with_extension("elf")).filter(|p| p.is_file())
            }
            _ => None,
        });
        let firmware_name = firmware.as_ref().map_or_else(
            || hil::runner::FIRMWARE_AS_FOUND.to_owned(),
            ToString::to_string,
        );
        let mut options = self.common.options(firmware, jobs);
        options.log_profile = self.log_profile.clone();
        options.elf = elf;
        options.unprovisioned = self.unprovisioned;
        // The access point's passphrase is provisioned into every board.
        if let Some(ap) = network_config.as_ref().and_then(|n| n.ap.as_ref()) {
            options.secrets.add(&ap.psk);
        }
        let partial = Partial::new(
            &suite,
            &run_dir,
            &firmware_name,
            options.secrets.clone(),
            outputs.clone(),
        );
        let runtime = tokio::runtime::Runtime::new().into_diagnostic()?;
        let outcome = runtime.block_on(async {
            let release: Option<Releaser> = farm.as_ref().map(|session| {
                session.disarm();
                Arc::new(session.releaser()) as Releaser
            });
            stop_on_signals(options.interrupt.clone(), partial.clone(), release);
            let mut env_options = EnvironmentOptions::new(board, &run_dir);
            env_options.device_ips = device_ips;
            env_options.network = network_config;
            env_options.lab_bind = self.lab_bind;
            env_options.catalogue = catalogue;
            env_options.names = self.names.clone();
            env_options.pace = self.common.pace.into();
            let env = Environment::start(env_options).await?;
            for warning in &env.warnings {
                println!("  warning: {warning}");
            }
            let addrs = env.lab().addrs();
            println!(
                "  lab: MQTT/TLS {}, NTP {}, DNS {}; run directory {}",
                addrs.mqtt_tls,
                addrs.ntp,
                addrs.dns,
                run_dir.display()
            );
            let progress = partial.recording(console_progress(suite.scenarios().len()));
            env.run(&suite, &options, progress).await
        });
        let report = match outcome {
            Ok(report) => report,
            Err(e) => {
                // What the README promises is written even when the run could not
                // start: every scenario not run, with the reason.
                let _ = partial.write(&format!("the run could not go on: {e}"));
                return Err(e.into());
            }
        };
        print_summary(&report);
        outputs.write(&report, "hil run", &partial.secrets)?;
        println!("  artifacts and reports: {}", report.run_dir.display());
        if options.interrupt.is_triggered() {
            println!("  interrupted: the scenarios that did not finish are reported as not run");
            return Ok(ExitCode::from(super::EXIT_USAGE));
        }
        Ok(ExitCode::from(report.exit_code()))
    }

    /// The boards and how many scenarios run at once: `--jobs` never exceeds
    /// the boards given; with `--board virtual` (no count) it says how many.
    fn boards(&self) -> Result<(BoardChoice, Vec<hil::farm::FarmSpec>, usize)> {
        if let Some(0) = self.common.jobs {
            miette::bail!(miette::miette!(
                code = "hil::run::jobs",
                help = "--jobs is how many scenarios run at once, one per board: 1 or more",
                "--jobs 0 runs nothing"
            ));
        }
        let (choices, farm_specs) = split_boards(&self.board)?;
        let places: usize = farm_specs.iter().map(|spec| spec.count).sum();
        if !farm_specs.is_empty() {
            if choices
                .iter()
                .any(|c| matches!(c, BoardChoice::Virtual { .. }))
            {
                miette::bail!(miette::miette!(
                    code = "hil::run::boards",
                    help = "give labgrid places and real boards, or virtual boards alone",
                    "virtual boards cannot be mixed with labgrid places in one run"
                ));
            }
            let ports: Vec<hil::serial::PortSpec> = choices
                .into_iter()
                .flat_map(|c| match c {
                    BoardChoice::Ports(ports) => ports,
                    BoardChoice::Virtual { .. } => Vec::new(),
                })
                .collect();
            let jobs = self.jobs_for(places + ports.len());
            return Ok((BoardChoice::Ports(ports), farm_specs, jobs));
        }
        let board = match (choices.as_slice(), self.common.jobs) {
            ([], Some(jobs)) => BoardChoice::Virtual {
                count: u8::try_from(jobs)
                    .ok()
                    .filter(|n| *n <= MAX_VIRTUAL)
                    .ok_or_else(|| {
                        miette::miette!(
                        code = "hil::run::jobs",
                        help = "virtual boards are numbered 1 to 200 (127.0.1.k)",
                        "--jobs {jobs} asks for more virtual boards than the 200 a run can have"
                    )
                    })?,
            },
            ([], None) => BoardChoice::Virtual { count: 1 },
            ([board], _) => board.clone(),
            (many, _) => {
                let mut specs = Vec::new();
                for board in many {
                    match board {
                        BoardChoice::Ports(more) => specs.extend(more.iter().cloned()),
                        BoardChoice::Virtual { .. } => miette::bail!(miette::miette!(
                            code = "hil::run::boards",
                            help = "give `--board virtual:N` alone, or one --board per real board",
                            "virtual boards cannot be mixed with other boards in one run"
                        )),
                    }
                }
                BoardChoice::Ports(specs)
            }
        };
        if matches!(board, BoardChoice::Virtual { .. }) && !cfg!(feature = "virtual") {
            // Said before the run's header, which would name boards it cannot have.
            return Err(hil::runner::RunnerError::NoVirtualBoards.into());
        }
        let boards = match &board {
            BoardChoice::Virtual { count } => usize::from(*count),
            BoardChoice::Ports(specs) => specs.len(),
        };
        Ok((board, Vec::new(), self.jobs_for(boards)))
    }

    /// Scenarios at once on `boards` boards: `--jobs`, never more than the
    /// boards (and said so), one per board by default.
    fn jobs_for(&self, boards: usize) -> usize {
        match self.common.jobs {
            Some(jobs) if jobs > boards => {
                println!("  note: --jobs {jobs} > {boards} board(s) given: {boards} at a time");
                boards
            }
            Some(jobs) => jobs,
            None => boards,
        }
    }
}

/// Releases a run's farm places from a signal handler.
type Releaser = Arc<dyn Fn() + Send + Sync>;

/// `--board` values (split at commas by clap, and HIL_BOARD too) as boards and
/// labgrid places: a labgrid tag filter has commas of its own, so a piece that
/// is a `TAG=VALUE` belongs to the `labgrid:` piece before it.
fn split_boards(given: &[String]) -> Result<(Vec<BoardChoice>, Vec<hil::farm::FarmSpec>)> {
    let mut joined: Vec<String> = Vec::new();
    for piece in given {
        let continues = joined.last().is_some_and(|last| {
            last.starts_with("labgrid:") && last.contains('=') && !last.contains('*')
        }) && piece.contains('=')
            && !piece.contains(':')
            && !piece.starts_with('/');
        match joined.last_mut() {
            Some(last) if continues => {
                last.push(',');
                last.push_str(piece);
            }
            _ => joined.push(piece.clone()),
        }
    }
    let mut choices = Vec::new();
    let mut farm = Vec::new();
    for board in joined {
        if board.starts_with("labgrid:") {
            farm.push(board.parse::<hil::farm::FarmSpec>()?);
        } else {
            choices.push(board.parse::<BoardChoice>()?);
        }
    }
    Ok((choices, farm))
}

/// When nothing could run: the reports the user asked for (`--junit`, `--json`,
/// `--report`), every scenario not run, with the reason.
fn not_run_reports(suite: &Suite, outputs: &Outputs, reason: &str) -> Result<()> {
    let dir = tempfile_dir()?;
    let partial = Partial::new(suite, &dir, "none", Secrets::default(), outputs.clone());
    let written = partial.write(reason);
    let _ = std::fs::remove_dir_all(&dir);
    written
}

/// A scratch run directory for reports of a run that never started.
fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("hil-not-run-{}", std::process::id()));
    std::fs::create_dir_all(&dir).into_diagnostic()?;
    Ok(dir)
}

/// Virtual boards a run can have.
const MAX_VIRTUAL: u8 = 200;

/// Where the reports are copied besides the run directory.
#[derive(Debug, Clone)]
pub struct Outputs {
    /// `--junit`.
    pub junit: Option<PathBuf>,
    /// `--json`.
    pub json: Option<PathBuf>,
    /// `--report` (a directory).
    pub html: Option<PathBuf>,
}

impl Outputs {
    /// Refuses, before anything runs, a place a report could not be written to.
    pub fn check(&self) -> Result<()> {
        let files = [
            self.junit.clone(),
            self.json.clone(),
            self.html.as_ref().map(|d| d.join("index.html")),
        ];
        for file in files.into_iter().flatten() {
            writable(&file).wrap_err_with(|| {
                format!(
                    "cannot write a report to {} (fix the path or its permissions)",
                    file.display()
                )
            })?;
        }
        Ok(())
    }

    /// JUnit XML, cucumber JSON and the HTML report into the run directory, and
    /// copies where the user asked for them.
    pub fn write(&self, report: &RunReport, title: &str, secrets: &Secrets) -> Result<()> {
        let written = hil::report::write_all(report, title, secrets)
            .into_diagnostic()
            .wrap_err_with(|| format!("writing the reports into {}", report.run_dir.display()))?;
        let copies = [
            (&written.junit, self.junit.clone()),
            (&written.json, self.json.clone()),
            (
                &written.html,
                self.html.as_ref().map(|d| d.join("index.html")),
            ),
        ];
        for (from, to) in copies {
            if let Some(to) = to {
                hil::report::copy_to(from, &to)
                    .into_diagnostic()
                    .wrap_err_with(|| format!("writing {}", to.display()))?;
            }
        }
        Ok(())
    }
}

/// Whether `file` can be created (its directory made if needed), without
/// leaving anything behind that was not there.
fn writable(file: &Path) -> Result<()> {
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if file.is_dir() {
        miette::bail!("{} is a directory", file.display());
    }
    std::fs::create_dir_all(&dir).into_diagnostic()?;
    let probe = dir.join(format!(".hil-write-check-{}", std::process::id()));
    std::fs::write(&probe, b"").into_diagnostic()?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// What a run has finished so far, to write the reports of a run cut short.
#[derive(Clone)]
pub struct Partial {
    scenarios: Vec<hil::runner::ScenarioInfo>,
    run_dir: PathBuf,
    firmware: String,
    /// The run's secrets.
    pub secrets: Secrets,
    outputs: Outputs,
    finished: Arc<Mutex<Vec<ScenarioResult>>>,
}

impl Partial {
    /// Nothing finished yet of `suite`.
    pub fn new(
        suite: &Suite,
        run_dir: &Path,
        firmware: &str,
        secrets: Secrets,
        outputs: Outputs,
    ) -> Partial {
        Partial {
            scenarios: suite.scenarios().to_vec(),
            run_dir: run_dir.to_path_buf(),
            firmware: firmware.to_owned(),
            secrets,
            outputs,
            finished: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// `progress`, also keeping every finished scenario.
    pub fn recording(&self, progress: Progress) -> Progress {
        let finished = self.finished.clone();
        Arc::new(move |event: RunEvent| {
            if let RunEvent::Finished { result } = &event {
                if let Ok(mut all) = finished.lock() {
                    all.push((**result).clone());
                }
            }
            progress(event);
        })
    }

    /// Writes the reports of what finished, every other scenario not run.
    pub fn write(&self, reason: &str) -> Result<()> {
        let mut scenarios = self.finished.lock().map(|f| f.clone()).unwrap_or_default();
        for info in &self.scenarios {
            let done = scenarios.iter().any(|s| {
                s.info.path == info.path && s.info.line == info.line && s.info.name == info.name
            });
            if !done {
                let mut result = ScenarioResult::not_run(info.clone(), &self.firmware);
                result.error = Some(reason.to_owned());
                scenarios.push(result);
            }
        }
        let report = RunReport {
            scenarios,
            duration: Duration::ZERO,
            run_dir: self.run_dir.clone(),
            firmware: self.firmware.clone(),
        };
        self.outputs.write(&report, "hil run", &self.secrets)
    }
}

/// Ctrl-C or SIGTERM once: stop scheduling, end the running scenarios, write
/// every report, exit 2 (farm places are released on the way out). Twice: write
/// the reports of what finished, release the farm places and exit 2 at once.
pub fn stop_on_signals(interrupt: Interrupt, partial: Partial, release: Option<Releaser>) {
    // Caught from here on, not from when the task first runs.
    let Ok(mut signals) = super::stop::StopSignals::catch() else {
        return;
    };
    tokio::spawn(async move {
        let mut seen = 0;
        loop {
            signals.next().await;
            seen += 1;
            if seen == 1 {
                eprintln!("\nhil: stopping: no new scenario starts, the running ones end now; the reports are written (again to abort at once)");
                interrupt.trigger();
            } else {
                eprintln!("\nhil: aborting: writing the reports of what finished");
                let _ = partial.write("the run was aborted");
                if let Some(release) = &release {
                    eprintln!("hil: releasing the labgrid places");
                    release();
                }
                hil::artifact::abandon_writes_in_flight();
                std::process::exit(i32::from(super::EXIT_USAGE));
            }
        }
    });
}
