//! The scenario runner: Gherkin features run by cucumber against boards and the
//! lab, one world per scenario.
//!
//! Layers, each importing only the ones below it:
//! - [`adapter`](self) hands the suite to cucumber and routes every step to
//!   the scenario;
//! - the scenario ([`ScenarioWorld`]) arranges the board and the lab, acts, and
//!   drives the expectations with a small waiter;
//! - [`expect`] says what each Then step means, as pure functions of the
//!   device's events and a clock;
//! - the [timeline](crate::timeline) holds the events.
//!
//! An [`Environment`] is the long-lived part (the lab, the certificate catalogue,
//! the boards); [`Environment::run`] runs a [`Suite`] against it with one
//! firmware and returns a [`RunReport`]; the main job runs one per firmware
//! variant, side by side on one environment.
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
//! let options = RunOptions { jobs: 4, ..RunOptions::default() };
//! let report = env.run(&suite, &options, std::sync::Arc::new(|_| {})).await?;
//! println!("{} failed", report.count(hil::runner::Status::Failed));
//! # Ok(()) }
//! ```

mod adapter;
mod board;
mod context;
mod environment;
pub mod expect;
mod firmware;
mod interrupt;
mod plan;
mod results;
mod scenario;
mod snapshot;
pub mod steps;
mod suite;

use std::net::IpAddr;
use std::path::PathBuf;

pub use board::{BadBoard, BoardChoice};
pub use context::{Progress, SnapshotMode};
pub use environment::{Environment, EnvironmentOptions, RunOptions, MQTT_TLS_PORT};
pub use firmware::{BadImage, FirmwareSource, UnknownFirmware, FIRMWARE_AS_FOUND};
pub use interrupt::Interrupt;
pub use results::{
    CrashReport, Failure, RunEvent, RunReport, ScenarioResult, Status, StepOutcome, StepRecord,
};
pub use scenario::ScenarioWorld;
pub use snapshot::{normalise, normalise_line, Snapshot};
pub use suite::{
    CheckContext, Problem, ScenarioInfo, Selection, Shard, Suite, SuiteError, TagFilter,
};

/// Why a run could not go on.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum RunnerError {
    /// The board pool is closed or empty.
    #[error("no board is available")]
    #[diagnostic(code(hil::runner::no_board))]
    NoBoard,
    /// Virtual boards were asked for from a `hil` built without them.
    #[error("this hil was built without virtual boards (cargo's `virtual` feature)")]
    #[diagnostic(
        code(hil::runner::no_virtual_boards),
        help("give real boards (--board /dev/ttyUSB0, rfc2217://host:port), or install a hil with its default features: `cargo install --path harness`")
    )]
    NoVirtualBoards,
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
    /// Each real board's network address is needed to tell its traffic apart.
    #[error("the lab needs each board's IP address to give it its own policy: {boards} board(s), {addresses} address(es)")]
    #[diagnostic(
        code(hil::runner::device_ip),
        help("serve the boards' network with --network IFACE (the lab's DHCP finds each board by its MAC), or give every board a fixed DHCP lease and its address with --device-ip, in the order of --board")
    )]
    DeviceIpNeeded {
        /// Boards given.
        boards: usize,
        /// Addresses given.
        addresses: usize,
    },
    /// The served network has no address left for a board.
    #[error("the lab's network has no address left for the board with MAC {mac}")]
    #[diagnostic(
        code(hil::runner::pool_full),
        help("serve a larger subnet (--subnet), or fewer boards")
    )]
    PoolFull {
        /// The board's MAC.
        mac: String,
    },
    /// The board's MAC could not be read as a MAC.
    #[error("the board on {spec} reports a MAC the lab cannot use: `{mac}`")]
    #[diagnostic(code(hil::runner::bad_mac))]
    BadMac {
        /// The board.
        spec: String,
        /// What it reported.
        mac: String,
    },
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

/// One event in a line, for failure messages and reports.
pub fn describe(event: &crate::timeline::Event) -> String {
    use crate::timeline::EventKind;
    let t = event.t_us as f64 / 1e6;
    let what = match &event.kind {
        EventKind::SerialLine { line } => format!("serial  {line}"),
        EventKind::Diagnostic { text } => format!("note    {text}"),
        other => {
            let json = serde_json::to_string(other).unwrap_or_default();
            format!("{:<7} {json}", format!("{:?}", event.source).to_lowercase())
        }
    };
    format!("[{t:>9.3}] {what}")
}
