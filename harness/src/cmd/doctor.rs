//! `hil doctor`: checks what a CI runner needs and prints, for every problem, the fix.

use std::io::IsTerminal;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use hil::doctor::{any_failed, run_checks, Check, Options, Status};

use super::farm::{with_board, BoardArg, FarmArgs};
use miette::{IntoDiagnostic, Result};

use super::{EXIT_FAILED, EXIT_OK};

/// Arguments of `hil doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// The board to check: a device path, serial:<USB serial>, location:<bus-port>,
    /// rfc2217://host:port, or a labgrid place (labgrid:PLACE or
    /// labgrid:TAG=VALUE,...; acquired for the checks, released after them).
    /// Without it, the serial ports found are listed.
    #[arg(long, value_name = "SPEC")]
    board: Option<BoardArg>,
    #[command(flatten)]
    farm: FarmArgs,
    /// The address the lab will bind (as `hil run --lab-bind`); default 0.0.0.0.
    #[arg(long, value_name = "IP")]
    lab_bind: Option<IpAddr>,
    /// Check serving the boards' network on this interface (as `hil lab
    /// --serve-network`): it exists and is up, the network is free, CAP_NET_ADMIN,
    /// UDP port 67, nft.
    #[arg(long, value_name = "IFACE")]
    network: Option<String>,
    /// The network to serve (as `hil lab --subnet`).
    #[arg(long, value_name = "CIDR", requires = "network")]
    subnet: Option<hil::lab::network::Ipv4Cidr>,
    /// Also check running a Wi-Fi access point there: hostapd, iw, and that the
    /// adapter supports AP mode.
    #[arg(long, requires = "network")]
    ap: bool,
    /// Print the checks as JSON instead of a table.
    #[arg(long)]
    json: bool,
}

/// The project's venv: $HIL_VENV, else `.venv` next to `ci/setup` in the current
/// directory or one of its parents.
fn find_venv() -> Option<PathBuf> {
    if let Some(venv) = std::env::var_os("HIL_VENV") {
        return Some(PathBuf::from(venv));
    }
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .find(|dir| dir.join("ci/setup").is_file())
        .map(|root| root.join(".venv"))
}

fn render(checks: &[Check], colour: bool) -> String {
    let width = checks.iter().map(|c| c.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for check in checks {
        let (label, code) = match check.status {
            Status::Ok => ("ok  ", "32"),
            Status::Warn => ("WARN", "33"),
            Status::Fail => ("FAIL", "31"),
        };
        let label = if colour {
            format!("\x1b[{code}m{label}\x1b[0m")
        } else {
            label.to_string()
        };
        out.push_str(&format!(
            "{label}  {:width$}  {}\n",
            check.name, check.detail
        ));
        if let Some(fix) = &check.fix {
            for (i, line) in fix.lines().enumerate() {
                let lead = if i == 0 { "fix:" } else { "    " };
                out.push_str(&format!("      {:width$}  {lead} {line}\n", ""));
            }
        }
    }
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    out.push_str(&format!(
        "\n{} ok, {} warning(s), {} failed\n",
        count(Status::Ok),
        count(Status::Warn),
        count(Status::Fail)
    ));
    out
}

impl DoctorArgs {
    /// Runs the checks; exit 1 when one fails.
    pub fn run(self) -> Result<ExitCode> {
        match self.board.clone() {
            Some(board) => {
                let farm = self.farm.clone();
                with_board(&board, &farm, false, |port, _| self.check(Some(port)))
            }
            None => self.check(None),
        }
    }

    fn check(self, board: Option<hil::serial::PortSpec>) -> Result<ExitCode> {
        let options = Options {
            board,
            lab_bind: self.lab_bind,
            venv: find_venv(),
            network: self.network,
            subnet: self.subnet,
            ap: self.ap,
        };
        let checks = run_checks(&options);
        if self.json {
            #[derive(serde::Serialize)]
            struct Report<'a> {
                ok: bool,
                checks: &'a [Check],
            }
            let report = Report {
                ok: !any_failed(&checks),
                checks: &checks,
            };
            let text = serde_json::to_string_pretty(&report).into_diagnostic()?;
            println!("{text}");
        } else {
            print!("{}", render(&checks, std::io::stdout().is_terminal()));
        }
        Ok(ExitCode::from(if any_failed(&checks) {
            EXIT_FAILED
        } else {
            EXIT_OK
        }))
    }
}
