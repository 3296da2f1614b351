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
    BoardChoice, CheckContext, Environment, EnvironmentOptions, FirmwareSource, Progress, RunEvent,
    RunOptions, RunReport, Selection, Shard, SnapshotMode, Status, Suite, TagFilter,
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
    /// number>, location:<USB path>, or rfc2217://host:port.
    #[arg(
        long,
        env = "HIL_BOARD",
        default_value = "virtual",
        help_heading = "Board"
    )]
    board: BoardChoice,
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
    /// A real board's IP address as the lab sees it (give it a fixed DHCP lease).
    #[arg(long, env = "HIL_DEVICE_IP", help_heading = "Board")]
    device_ip: Option<IpAddr>,
    /// For a real board: the runner's address the lab binds to (default: the
    /// address of the interface that routes to --device-ip).
    #[arg(long, env = "HIL_LAB_BIND", help_heading = "Board")]
    lab_bind: Option<IpAddr>,
    /// The firmware's ELF (with DWARF), to decode crash backtraces to function and
    /// file:line. Default: an `.elf` beside the --firmware image, if there is one.
    #[arg(long, value_name = "FILE", env = "HIL_ELF", help_heading = "Device")]
    elf: Option<PathBuf>,
}

/// Options `hil run` and `hil demo` share.
#[derive(Debug, Args)]
pub struct CommonRunArgs {
    /// Scenarios at once; each needs its own board (default: one per board).
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
    /// How long a negative expectation waits for the outcome at most, when the
    /// device does not retry sooner (default 10 s on virtual boards, 20 s on real ones).
    #[arg(long, value_name = "DURATION", value_parser = parse_positive, help_heading = "Device")]
    pub settle: Option<Duration>,
    /// How long a scenario still watches for a crash after its last step
    /// (default 300 ms on virtual boards, 1 s on real ones).
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
                        result.info.location()
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
        let firmware = match (&self.firmware, &self.board) {
            (Some(f), _) => Some(FirmwareSource::parse(f)?),
            (None, BoardChoice::Virtual { .. }) => Some(FirmwareSource::reference()),
            (None, BoardChoice::Port(_)) => None,
        };
        let board = match (self.board.clone(), self.common.jobs) {
            (BoardChoice::Virtual { count }, Some(jobs)) => BoardChoice::Virtual {
                count: count.max(jobs.clamp(1, 200) as u8),
            },
            (other, _) => other,
        };
        let boards = match &board {
            BoardChoice::Virtual { count } => usize::from(*count),
            BoardChoice::Port(_) => 1,
        };
        let jobs = self.common.jobs.unwrap_or(boards).clamp(1, boards);
        println!(
            "hil run: {} of {} scenario(s){}{} on {board}, {jobs} at a time",
            suite.scenarios().len(),
            suite.total(),
            self.tags
                .as_ref()
                .map(|t| format!(", tags {t}"))
                .unwrap_or_default(),
            self.shard
                .map(|s| format!(", shard {s}"))
                .unwrap_or_default(),
        );
        if suite.scenarios().is_empty() {
            println!("nothing to run");
            return Ok(ExitCode::SUCCESS);
        }
        let run_dir = new_run_dir(&self.common.runs_dir)?;
        let elf = self.elf.clone().or_else(|| match &firmware {
            Some(FirmwareSource::Image(image)) => {
                Some(image.with_extension("elf")).filter(|p| p.is_file())
            }
            _ => None,
        });
        let mut options = self.common.options(firmware, jobs);
        options.log_profile = self.log_profile.clone();
        options.elf = elf;
        let secrets = options.secrets.clone();
        let runtime = tokio::runtime::Runtime::new().into_diagnostic()?;
        let report = runtime.block_on(async {
            let mut env_options = EnvironmentOptions::new(board, &run_dir);
            env_options.device_ip = self.device_ip;
            env_options.lab_bind = self.lab_bind;
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
            let progress = console_progress(suite.scenarios().len());
            env.run(&suite, &options, progress).await
        })?;
        print_summary(&report);
        write_reports(&report, &secrets, &self.junit, &self.json, &self.report)?;
        println!("  artifacts and reports: {}", report.run_dir.display());
        Ok(ExitCode::from(report.exit_code()))
    }
}

/// JUnit XML, cucumber JSON and the HTML report into the run directory, and
/// copies where the user asked for them.
fn write_reports(
    report: &RunReport,
    secrets: &Secrets,
    junit: &Option<PathBuf>,
    json: &Option<PathBuf>,
    html_dir: &Option<PathBuf>,
) -> Result<()> {
    let written = hil::report::write_all(report, "hil run", secrets)
        .into_diagnostic()
        .wrap_err_with(|| format!("writing the reports into {}", report.run_dir.display()))?;
    let copies = [
        (&written.junit, junit.clone()),
        (&written.json, json.clone()),
        (
            &written.html,
            html_dir.as_ref().map(|d| d.join("index.html")),
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
