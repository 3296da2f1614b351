//! A board's console as the harness uses it at boot: reset the board, read its
//! lines (any bytes: the ROM's banner is garbage at 115200), answer the
//! provisioning prompt, and stop as soon as the outcome is known.

use std::io::Read;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::{hard_reset, LineSplitter, PortSpec, SerialError};
use crate::timeline::{EventKind, Source, Timeline};

/// What to do during one boot.
#[derive(Debug, Clone)]
pub struct BootPlan {
    /// The line to write when the firmware opens its provisioning window
    /// (`None`: leave it unprovisioned).
    pub provisioning: Option<String>,
    /// Give up after this long.
    pub timeout: Duration,
    /// Where lines are recorded, attributed to `device`.
    pub timeline: Option<Timeline>,
    /// The board's network address.
    pub device: Option<IpAddr>,
}

/// Resets the board on `spec` into its firmware and reads lines until `done`
/// returns true for one, or the plan's timeout; returns every line read.
pub fn boot_and_watch(
    spec: &PortSpec,
    plan: &BootPlan,
    done: &dyn Fn(&str) -> bool,
) -> Result<Vec<String>, SerialError> {
    let opened = |source| SerialError::on_port(spec, source);
    let mut port = spec.open(115_200)?;
    port.set_timeout(Duration::from_millis(100))
        .map_err(opened)?;
    hard_reset(port.as_mut()).map_err(opened)?;
    let deadline = Instant::now() + plan.timeout;
    let mut splitter = LineSplitter::new();
    let mut lines = Vec::new();
    let mut buf = [0u8; 1024];
    while Instant::now() < deadline {
        let n = match port.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => continue,
            Err(e) => {
                return Err(SerialError::Io {
                    path: spec.to_string(),
                    source: e,
                })
            }
        };
        for line in splitter.feed(&buf[..n]) {
            if let Some(timeline) = &plan.timeline {
                timeline.record(
                    Source::Serial,
                    plan.device,
                    EventKind::SerialLine { line: line.clone() },
                );
            }
            let prompt =
                line.starts_with("[prov] ready") || line.starts_with("Waiting for provisioning");
            if let (true, Some(prov)) = (prompt, &plan.provisioning) {
                super::send_provisioning(port.as_mut(), prov, plan.timeline.as_ref(), plan.device)
                    .map_err(|e| SerialError::Io {
                        path: spec.to_string(),
                        source: e,
                    })?;
            }
            let finished = done(&line);
            lines.push(line);
            if finished {
                return Ok(lines);
            }
        }
    }
    Ok(lines)
}
