//! A board's console for the length of a scenario: reset the board, read the ROM
//! at its own 74880 baud, switch to the firmware's 115200, answer every
//! provisioning prompt, and record every line, until told to stop. Between
//! scenarios the port stays open with the chip held in reset, so the firmware does
//! nothing nobody is watching.

use std::io::Read;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serialport::SerialPort;

use super::{hard_reset, LineSplitter, PortSpec, SerialError};
use crate::timeline::{BoardEvent, EventKind, Source, Timeline};

pub use hil_contract::esp8266::{APP_BAUD, ROM_LOG_BAUD as ROM_BAUD};

/// Decides whether a line is the firmware's provisioning prompt.
pub type PromptTest = Arc<dyn Fn(&str) -> bool + Send + Sync>;

/// What a console session does.
#[derive(Clone)]
pub struct SessionOptions {
    /// Where lines go, attributed to `device`.
    pub timeline: Timeline,
    /// The board's network address.
    pub device: Option<IpAddr>,
    /// The line written at every provisioning prompt (`None`: never provision).
    pub provisioning: Option<String>,
    /// Recognises the prompt.
    pub is_prompt: PromptTest,
}

impl std::fmt::Debug for SessionOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionOptions")
            .field("device", &self.device)
            .field("provisions", &self.provisioning.is_some())
            .finish_non_exhaustive()
    }
}

/// A running console session. [`ConsoleSession::stop`] hands the port back.
#[derive(Debug)]
pub struct ConsoleSession {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<Result<Box<dyn SerialPort>, SerialError>>,
}

impl ConsoleSession {
    /// Resets the board on `port` (opened from `spec`) into its firmware and
    /// follows it on a blocking thread.
    pub fn start(
        spec: PortSpec,
        port: Box<dyn SerialPort>,
        options: SessionOptions,
    ) -> ConsoleSession {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::task::spawn_blocking(move || run(&spec, port, &options, &flag));
        ConsoleSession { stop, task }
    }

    /// Stops reading and returns the port (still open).
    pub async fn stop(self) -> Result<Box<dyn SerialPort>, SerialError> {
        self.stop.store(true, Ordering::Relaxed);
        match self.task.await {
            Ok(result) => result,
            Err(join) => Err(SerialError::Io {
                path: "console session".into(),
                source: std::io::Error::other(join.to_string()),
            }),
        }
    }
}

/// Opens `spec` at the ROM's rate with the chip held in reset, the state a board
/// waits in between scenarios.
pub fn open_held(spec: &PortSpec) -> Result<Box<dyn SerialPort>, SerialError> {
    let mut port = spec.open(ROM_BAUD)?;
    // Without modem control lines the board cannot be held; it runs unwatched
    // until the next session, which is all such a link allows.
    let _ = hold_in_reset(spec, port.as_mut());
    Ok(port)
}

/// Holds the chip in reset: RTS pulls EN low, DTR released so GPIO0 stays high.
pub fn hold_in_reset(spec: &PortSpec, port: &mut dyn SerialPort) -> Result<(), SerialError> {
    let io = |source| SerialError::on_port(spec, source);
    port.write_data_terminal_ready(false).map_err(io)?;
    port.write_request_to_send(true).map_err(io)
}

/// Watches the raw bytes a console at 115200 reads for the ROM's banner sent at
/// 74880: after a hard reset (EN pulled low, a brown-out) the ROM speaks at its
/// own rate again, and the lines that arrive are garbage of a known shape. The
/// line splitter turns such bytes into replacement characters, so the shape is
/// looked for before it: a reboot shows whatever the firmware and its log
/// profile.
#[derive(Debug, Default)]
pub(crate) struct BannerWatch {
    tail: Vec<u8>,
}

/// Bytes after a garbled banner head that carry its reset cause.
const CAUSE_BYTES: usize = 12;

/// Bytes kept between reads: a whole garbled banner head and then some.
const WATCH_TAIL: usize = 160;

impl BannerWatch {
    /// Feeds bytes as read; returns the reset cause of every garbled banner
    /// they complete (`None` inside when the cause could not be read).
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Vec<Option<u8>> {
        let mut found = Vec::new();
        self.tail.extend_from_slice(bytes);
        // Plain text never holds what a garbled banner starts with.
        while self.tail.iter().any(|b| *b == 0 || *b >= 0x80) {
            match hil_contract::uart::find_garbled_banner(&self.tail) {
                Some((end, cause)) => {
                    // The cause digit's garbled form follows the matched run:
                    // when it has not arrived yet, the next read brings it (the
                    // ROM goes on with `boot mode` and its `load` lines).
                    if cause.is_none() && self.tail.len() < end + CAUSE_BYTES {
                        break;
                    }
                    found.push(cause);
                    self.tail.drain(..end);
                }
                None => break,
            }
        }
        if self.tail.len() > WATCH_TAIL {
            let cut = self.tail.len() - WATCH_TAIL;
            self.tail.drain(..cut);
        }
        found
    }
}

/// Where the reader is in the boot: the ROM speaks at 74880 until it hands over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Rom,
    /// The ROM stopped (`ets_main.c`, `csum err`): nothing else will come at 115200.
    RomStopped,
    App,
}

fn looks_garbled(line: &str) -> bool {
    line.chars()
        .any(|c| c == char::REPLACEMENT_CHARACTER || (c.is_control() && c != '\t'))
}

fn run(
    spec: &PortSpec,
    mut port: Box<dyn SerialPort>,
    options: &SessionOptions,
    stop: &AtomicBool,
) -> Result<Box<dyn SerialPort>, SerialError> {
    let io = |source: std::io::Error| SerialError::Io {
        path: spec.to_string(),
        source,
    };
    let open = |source| SerialError::on_port(spec, source);
    port.set_baud_rate(ROM_BAUD).map_err(open)?;
    port.set_timeout(Duration::from_millis(50)).map_err(open)?;
    // Whatever arrived while the chip was held belongs to no one.
    let _ = port.clear(serialport::ClearBuffer::Input);
    let event = match hard_reset(port.as_mut()) {
        Ok(()) => BoardEvent::Reset,
        // A link without modem control lines (a pty, an adapter without DTR/RTS
        // wired to EN and GPIO0) cannot reset the board: say so and read on.
        Err(e) => BoardEvent::ResetImpossible {
            reason: format!("{e}: reset the board by hand"),
        },
    };
    options.timeline.record(
        Source::Board,
        options.device,
        EventKind::Board { what: event },
    );
    let released = Instant::now();
    let mut phase = Phase::Rom;
    let mut splitter = LineSplitter::new();
    let mut banners = BannerWatch::default();
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        let n = match port.read(&mut buf) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::TimedOut => 0,
            Err(e) => match reopen(spec, options, stop, &e) {
                Some(again) => {
                    port = again;
                    if phase == Phase::Rom {
                        phase = Phase::App;
                    }
                    continue;
                }
                // Stopped while the port was away.
                None => return Err(io(e)),
            },
        };
        if phase == Phase::App {
            for cause in banners.feed(&buf[..n]) {
                options.timeline.record(
                    Source::Serial,
                    options.device,
                    EventKind::Board {
                        what: BoardEvent::RomBannerGarbled { cause },
                    },
                );
            }
        }
        let mut switch = false;
        for line in splitter.feed(&buf[..n]) {
            options.timeline.record(
                Source::Serial,
                options.device,
                EventKind::SerialLine { line: line.clone() },
            );
            if phase == Phase::Rom {
                let trimmed = line.trim();
                if trimmed == "csum err" || trimmed.starts_with("ets_main.c") {
                    phase = Phase::RomStopped;
                    switch = false;
                } else if trimmed.starts_with("csum 0x") {
                    // The image checked out: the firmware speaks next, at 115200,
                    // unless the ROM's `csum err` follows in this same burst.
                    switch = true;
                } else if looks_garbled(&line) && !line.trim().is_empty() {
                    switch = true;
                }
            }
            if (options.is_prompt)(&line) {
                if let Some(prov) = &options.provisioning {
                    super::send_provisioning(
                        port.as_mut(),
                        prov,
                        Some(&options.timeline),
                        options.device,
                    )
                    .map_err(io)?;
                }
            }
        }
        // A ROM that prints nothing we know (another bootloader) must not keep the
        // console at the wrong rate for long.
        let silent_rom = phase == Phase::Rom && released.elapsed() > Duration::from_secs(2);
        if phase == Phase::Rom && (switch || silent_rom) {
            port.set_baud_rate(APP_BAUD).map_err(open)?;
            phase = Phase::App;
        }
    }
    if let Some(rest) = splitter.finish() {
        options.timeline.record(
            Source::Serial,
            options.device,
            EventKind::SerialLine { line: rest },
        );
    }
    let event = match hold_in_reset(spec, port.as_mut()) {
        Ok(()) => BoardEvent::HeldInReset,
        Err(e) => BoardEvent::HoldImpossible {
            reason: e.to_string(),
        },
    };
    options.timeline.record(
        Source::Board,
        options.device,
        EventKind::Board { what: event },
    );
    Ok(port)
}

/// The port went away (USB re-enumeration, an RFC 2217 server restarting):
/// records the gap, then opens the same spec again until it is back or the
/// session is stopped. The firmware is past its ROM by then: 115200.
fn reopen(
    spec: &PortSpec,
    options: &SessionOptions,
    stop: &AtomicBool,
    error: &std::io::Error,
) -> Option<Box<dyn SerialPort>> {
    options.timeline.record(
        Source::Board,
        options.device,
        EventKind::Board {
            what: BoardEvent::SerialGap {
                reason: error.to_string(),
            },
        },
    );
    let open = || -> Result<Box<dyn SerialPort>, SerialError> {
        let mut port = spec.open(APP_BAUD)?;
        port.set_timeout(Duration::from_millis(50))
            .map_err(|source| SerialError::on_port(spec, source))?;
        Ok(port)
    };
    let (port, after) = super::follow::open_when_back(&open, &|| stop.load(Ordering::Relaxed))?;
    options.timeline.record(
        Source::Board,
        options.device,
        EventKind::Board {
            what: BoardEvent::SerialReopened {
                after_ms: after.as_millis() as u64,
            },
        },
    );
    Some(port)
}

#[cfg(test)]
mod banner_tests {
    use super::BannerWatch;
    use hil_contract::uart::resample;

    #[test]
    fn a_garbled_banner_is_found_across_reads_once() {
        let banner = b"\r\n ets Jan  8 2013,rst cause:1, boot mode:(3,6)\r\n\r\nload 0x4010f000, len 3424, room 16 \r\n";
        let heard = resample(banner, 74_880, 115_200);
        let mut watch = BannerWatch::default();
        let mut all = watch.feed(b"[mqtt] published topic=hil/telemetry bytes=40 ok=1\r\n");
        for piece in heard.chunks(7) {
            all.extend(watch.feed(piece));
        }
        all.extend(watch.feed(b"\r\n[boot] fw=x version=1 reset=Power-On\r\n"));
        assert_eq!(all, vec![Some(1)]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_told_from_text() {
        assert!(looks_garbled("\u{fffd}\u{fffd}x"));
        assert!(looks_garbled("a\u{1}b"));
        assert!(!looks_garbled("load 0x40100000, len 84, room 16 "));
    }
}
