//! `hil reset`: reset a board into its firmware through DTR/RTS.

use std::process::ExitCode;

use clap::Args;
use hil::serial::{hard_reset, SerialError};
use miette::{Result, WrapErr};

use super::farm::{with_board, BoardArg, FarmArgs};

/// Arguments of `hil reset`.
#[derive(Debug, Args)]
pub struct ResetArgs {
    /// The board: a device path, serial:<USB serial>, location:<bus-port>,
    /// rfc2217://host:port, or a labgrid place (labgrid:PLACE or
    /// labgrid:TAG=VALUE,...), acquired for the command and released after it.
    #[arg(long, visible_alias = "board", value_name = "PORT")]
    port: BoardArg,
    #[command(flatten)]
    farm: FarmArgs,
}

impl ResetArgs {
    /// Pulses EN.
    pub fn run(self) -> Result<ExitCode> {
        with_board(&self.port, &self.farm, false, |spec, _| {
            let mut port = spec.open(115_200)?;
            hard_reset(port.as_mut())
                .map_err(|source| SerialError::on_port(&spec, source))
                .wrap_err_with(|| format!("resetting the board on {spec}"))?;
            println!("Reset {spec}");
            Ok(ExitCode::SUCCESS)
        })
    }
}
