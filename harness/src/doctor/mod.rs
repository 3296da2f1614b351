//! `hil doctor`'s checks: what a CI runner needs before `hil run` can drive a real
//! board. Each check is a value ([`Check`]) carrying, when something is wrong, the
//! command or change that fixes it.
//!
//! ```no_run
//! use hil::doctor::{run_checks, Options, Status};
//!
//! let checks = run_checks(&Options::default());
//! for check in checks.iter().filter(|c| c.status == Status::Fail) {
//!     println!("{}: {} -> {}", check.name, check.detail, check.fix.as_deref().unwrap_or(""));
//! }
//! ```

mod firewall;
mod net;
mod network;
mod procfs;
mod serial;
mod tools;
mod wifi;

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use serde::Serialize;

use crate::lab::network::Ipv4Cidr;
use crate::serial::PortSpec;

pub use firewall::check_firewall;
pub use net::{check_lab_bind, check_lab_ports, check_privileges};
pub use network::check_network;
pub use serial::{check_board, check_serial_ports};
pub use tools::check_tools;

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Nothing to do.
    Ok,
    /// Worth fixing, but runs can go ahead.
    Warn,
    /// Runs will fail until this is fixed.
    Fail,
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// What was checked, e.g. `serial: access`.
    pub name: String,
    /// The outcome.
    pub status: Status,
    /// What was found.
    pub detail: String,
    /// How to fix it; present on every warning and failure.
    pub fix: Option<String>,
}

impl Check {
    pub(crate) fn ok(name: impl Into<String>, detail: impl Into<String>) -> Check {
        Check {
            name: name.into(),
            status: Status::Ok,
            detail: detail.into(),
            fix: None,
        }
    }

    pub(crate) fn warn(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check::problem(Status::Warn, name.into(), detail.into(), fix.into())
    }

    pub(crate) fn fail(
        name: impl Into<String>,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check::problem(Status::Fail, name.into(), detail.into(), fix.into())
    }

    fn problem(status: Status, name: String, detail: String, fix: String) -> Check {
        Check {
            name,
            status,
            detail,
            fix: Some(fix),
        }
    }
}

/// What to check.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// The board to check; without one, the serial ports found are listed.
    pub board: Option<PortSpec>,
    /// The address the lab will bind; `0.0.0.0` when not given.
    pub lab_bind: Option<IpAddr>,
    /// The project's Python venv (esptool, PlatformIO), when known.
    pub venv: Option<PathBuf>,
    /// The interface the lab will serve the boards' network on, if any.
    pub network: Option<String>,
    /// The network it will serve there; the lab's default when not given.
    pub subnet: Option<Ipv4Cidr>,
    /// Whether it will run a Wi-Fi access point there.
    pub ap: bool,
}

/// Runs every check that applies to `options`, in a stable order.
pub fn run_checks(options: &Options) -> Vec<Check> {
    let mut checks = match &options.board {
        Some(board) => check_board(board),
        None => vec![check_serial_ports()],
    };
    if let Some(interface) = &options.network {
        let subnet = options.subnet.unwrap_or(Ipv4Cidr::LAB_DEFAULT);
        checks.extend(check_network(interface, subnet, options.ap));
    }
    let lab = options
        .lab_bind
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    let foreign = options.lab_bind.map(check_lab_bind);
    // Binding ports on an address this host lacks would only repeat that failure.
    let skip_ports = foreign.as_ref().is_some_and(|c| c.status == Status::Fail);
    checks.extend(foreign);
    checks.push(check_privileges());
    if !skip_ports {
        checks.extend(check_lab_ports(lab));
    }
    checks.push(check_firewall(lab));
    checks.extend(check_tools(options.venv.as_deref()));
    checks
}

/// Whether any check failed (warnings do not count).
pub fn any_failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Fail)
}
