//! `hil reset`: reset a board into its firmware through DTR/RTS.

use std::process::ExitCode;

use clap::Args;
use hil::serial::{hard_reset, PortSpec};
use miette::{IntoDiagnostic, Result, WrapErr};

/// Arguments of `hil reset`.
#[derive(Debug, Args)]
pub struct ResetArgs {
    /// The board: a device path, serial:<USB serial>, location:<bus-port> or
    /// rfc2217://host:port.
    #[arg(long, value_name = "PORT")]
    port: PortSpec,
}

impl ResetArgs {
    /// Pulses EN.
    pub fn run(self) -> Result<ExitCode> {
        let mut port = self.port.open(115_200)?;
        hard_reset(port.as_mut())
            .into_diagnostic()
            .wrap_err_with(|| format!("resetting the board on {}", self.port))?;
        println!("Reset {}", self.port);
        Ok(ExitCode::SUCCESS)
    }
}
