//! `hil monitor`: a board's serial output, line by line with timestamps.

use std::io::Read;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use hil::serial::{hard_reset, LineSplitter, PortSpec};
use miette::{IntoDiagnostic, Result};

/// Arguments of `hil monitor`.
#[derive(Debug, Args)]
pub struct MonitorArgs {
    /// The board: a device path, serial:<USB serial>, location:<bus-port> or
    /// rfc2217://host:port.
    #[arg(long, value_name = "PORT")]
    port: PortSpec,
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
        let stop = Arc::new(AtomicBool::new(false));
        let runtime = tokio::runtime::Runtime::new().into_diagnostic()?;
        let mut worker = {
            let stop = stop.clone();
            runtime.spawn_blocking(move || self.read_loop(&stop))
        };
        runtime.block_on(async {
            tokio::select! {
                result = tokio::signal::ctrl_c() => {
                    result.into_diagnostic()?;
                    stop.store(true, Ordering::Relaxed);
                    (&mut worker).await.into_diagnostic()?
                }
                result = &mut worker => result.into_diagnostic()?,
            }
        })
    }

    fn read_loop(self, stop: &AtomicBool) -> Result<ExitCode> {
        let started = Instant::now();
        let stamp = |line: &str| println!("[{:>10.3}] {line}", started.elapsed().as_secs_f64());
        let mut port = self.port.open(self.baud)?;
        port.set_timeout(Duration::from_millis(100))
            .into_diagnostic()?;
        if self.reset {
            hard_reset(port.as_mut()).into_diagnostic()?;
        }
        let deadline = self
            .seconds
            .map(|s| started + Duration::from_secs_f64(s.max(0.0)));
        let mut lines = LineSplitter::new();
        let mut buf = [0u8; 4096];
        while !stop.load(Ordering::Relaxed) && deadline.map_or(true, |d| Instant::now() < d) {
            match port.read(&mut buf) {
                Ok(n) => lines.feed(&buf[..n]).iter().for_each(|l| stamp(l)),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
                Err(e) => {
                    // The port went away (USB re-enumeration, server restart): mark
                    // the gap in the transcript and reopen by the same spec.
                    stamp(&format!("--- serial gap: {e}; reopening {} ---", self.port));
                    let lost = Instant::now();
                    port = loop {
                        if stop.load(Ordering::Relaxed) {
                            return Ok(ExitCode::SUCCESS);
                        }
                        match self.port.open(self.baud) {
                            Ok(p) => break p,
                            Err(_) => std::thread::sleep(Duration::from_millis(250)),
                        }
                    };
                    port.set_timeout(Duration::from_millis(100))
                        .into_diagnostic()?;
                    stamp(&format!(
                        "--- serial gap ends: reopened after {:.1} s ---",
                        lost.elapsed().as_secs_f64()
                    ));
                }
            }
        }
        if let Some(rest) = lines.finish() {
            stamp(&rest);
        }
        Ok(ExitCode::SUCCESS)
    }
}
