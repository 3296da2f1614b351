//! `hil monitor`: a board's serial output, line by line with timestamps.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use hil::serial::{follow, FollowOptions, PortSpec, SerialItem};
use miette::{IntoDiagnostic, Result};

use super::farm::{with_board, BoardArg, FarmArgs};

/// Arguments of `hil monitor`.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// The board: a device path, serial:<USB serial>, location:<bus-port>,
    /// rfc2217://host:port, or a labgrid place (labgrid:PLACE or
    /// labgrid:TAG=VALUE,...), acquired for the command and released after it.
    #[arg(long, visible_alias = "board", value_name = "PORT")]
    port: BoardArg,
    #[command(flatten)]
    farm: FarmArgs,
    /// Baud rate (74880 shows the ESP8266 ROM's boot lines).
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// Reset the board into its firmware first.
    #[arg(long)]
    reset: bool,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    seconds: Option<f64>,
}

impl MonitorArgs {
    /// Prints lines until Ctrl-C (or --seconds).
    pub fn run(self) -> Result<ExitCode> {
        let (board, farm) = (self.port.clone(), self.farm.clone());
        with_board(&board, &farm, true, |port, _| self.monitor(port))
    }

    fn monitor(self, port: PortSpec) -> Result<ExitCode> {
        let stop = Arc::new(AtomicBool::new(false));
        let runtime = tokio::runtime::Runtime::new().into_diagnostic()?;
        let mut signals = {
            let _inside = runtime.enter();
            super::stop::StopSignals::catch()?
        };
        let mut worker = {
            let stop = stop.clone();
            runtime.spawn_blocking(move || self.read_loop(&port, &stop))
        };
        runtime.block_on(async {
            tokio::select! {
                _ = signals.next() => {
                    stop.store(true, Ordering::Relaxed);
                    (&mut worker).await.into_diagnostic()?
                }
                result = &mut worker => result.into_diagnostic()?,
            }
        })
    }

    fn read_loop(self, port: &PortSpec, stop: &AtomicBool) -> Result<ExitCode> {
        let started = Instant::now();
        let deadline = self
            .seconds
            .map(|s| started + Duration::from_secs_f64(s.max(0.0)));
        let stop = || stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d);
        let stamp = |line: &str| println!("[{:>10.3}] {line}", started.elapsed().as_secs_f64());
        let options = FollowOptions {
            baud: self.baud,
            reset: self.reset,
            ..FollowOptions::default()
        };
        follow(port, &options, &stop, &mut |item| match item {
            SerialItem::Line(line) => stamp(&line),
            SerialItem::Gap { reason } => {
                stamp(&format!("--- serial gap: {reason}; reopening {port} ---"))
            }
            SerialItem::Reopened { after } => stamp(&format!(
                "--- serial gap ends: reopened after {:.1} s ---",
                after.as_secs_f64()
            )),
        })?;
        Ok(ExitCode::SUCCESS)
    }
}
