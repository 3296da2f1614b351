//! Following a board's serial output as lines, across port loss: when the port
//! goes away (USB re-enumeration, an RFC 2217 server restarting), the transcript
//! gets a gap marker and the port is reopened by the same spec, which for
//! `serial:`/`location:` finds the board under its new device name.

use std::io::Read;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use super::{hard_reset, LineSplitter, PortSpec, SerialError};
use crate::timeline::{BoardEvent, EventKind, Source, Timeline};

/// One thing seen while following a port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SerialItem {
    /// A line of output (lossily decoded, without its line ending).
    Line(String),
    /// The port was lost; lines in between are missing.
    Gap {
        /// What the port reported.
        reason: String,
    },
    /// The port is back.
    Reopened {
        /// How long it was gone.
        after: Duration,
    },
}

/// Where the lines go besides the callback.
#[derive(Debug, Clone, Default)]
pub struct FollowOptions {
    /// Baud rate.
    pub baud: u32,
    /// Reset the board into its firmware after opening.
    pub reset: bool,
    /// Records lines (Source::Serial) and gaps (Source::Board) here.
    pub timeline: Option<Timeline>,
    /// The device address the events are attributed to.
    pub device: Option<IpAddr>,
}

/// Opens a lost port again as soon as it is back, unless `stop()` says to give
/// up first; returns it with how long it was gone.
pub(crate) fn open_when_back(
    open: &dyn Fn() -> Result<Box<dyn serialport::SerialPort>, SerialError>,
    stop: &dyn Fn() -> bool,
) -> Option<(Box<dyn serialport::SerialPort>, Duration)> {
    let lost = Instant::now();
    while !stop() {
        match open() {
            Ok(port) => return Some((port, lost.elapsed())),
            // The device node is not back yet; USB enumeration takes a moment and
            // announces nothing this thread could wait on.
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
    None
}

/// Follows `spec` until `stop()` says so, handing every item to `on_item`.
pub fn follow(
    spec: &PortSpec,
    options: &FollowOptions,
    stop: &dyn Fn() -> bool,
    on_item: &mut dyn FnMut(SerialItem),
) -> Result<(), SerialError> {
    let open = || -> Result<Box<dyn serialport::SerialPort>, SerialError> {
        let mut port = spec.open(options.baud)?;
        port.set_timeout(Duration::from_millis(100))
            .map_err(|source| SerialError::on_port(spec, source))?;
        Ok(port)
    };
    let mut emit = |item: SerialItem| {
        if let Some(timeline) = &options.timeline {
            let (source, kind) = match &item {
                SerialItem::Line(line) => {
                    (Source::Serial, EventKind::SerialLine { line: line.clone() })
                }
                SerialItem::Gap { reason } => (
                    Source::Board,
                    EventKind::Board {
                        what: BoardEvent::SerialGap {
                            reason: reason.clone(),
                        },
                    },
                ),
                SerialItem::Reopened { after } => (
                    Source::Board,
                    EventKind::Board {
                        what: BoardEvent::SerialReopened {
                            after_ms: after.as_millis() as u64,
                        },
                    },
                ),
            };
            timeline.record(source, options.device, kind);
        }
        on_item(item);
    };
    let mut port = open()?;
    if options.reset {
        hard_reset(port.as_mut()).map_err(|source| SerialError::on_port(spec, source))?;
    }
    let mut lines = LineSplitter::new();
    let mut buf = [0u8; 4096];
    while !stop() {
        match port.read(&mut buf) {
            Ok(n) => lines
                .feed(&buf[..n])
                .into_iter()
                .for_each(|l| emit(SerialItem::Line(l))),
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {}
            Err(e) => {
                if let Some(rest) = lines.finish() {
                    emit(SerialItem::Line(rest));
                }
                emit(SerialItem::Gap {
                    reason: e.to_string(),
                });
                let Some((again, after)) = open_when_back(&open, stop) else {
                    return Ok(());
                };
                port = again;
                emit(SerialItem::Reopened { after });
            }
        }
    }
    if let Some(rest) = lines.finish() {
        emit(SerialItem::Line(rest));
    }
    Ok(())
}
