//! Crashes and reboots the harness did not cause, read from the device's events.
//!
//! Every harness reset (`BoardEvent::Reset`) is followed by one boot: the ROM's
//! banner and the firmware's boot line (either alone: after a hard reset the
//! banner arrives at 74880 baud, which a console at 115200 reads as garbage the
//! serial session recognises as `BoardEvent::RomBannerGarbled`). A crash report
//! of the core, a hardware watchdog banner (`rst cause:4`), or a second boot
//! after one reset is a reboot the harness did not cause.
//!
//! A crash report is judged once it is whole: at 115200 its stack rows arrive a
//! few hundred milliseconds after its header, and a backtrace decoded from half
//! a dump names the wrong functions or none.

use std::time::Duration;

use super::observed::Observed;
use crate::crash::{self, Crash, CrashKind};
use crate::logprofile::SemanticEvent;
use crate::timeline::{BoardEvent, EventKind};

/// How many lines after a crash header can belong to its dump.
const DUMP_LINES: usize = 64;

/// How long a dump without its end marker may pause before it counts as
/// ended: a core that dies while printing still reboots, and a dump that
/// stops early must not keep the verdict waiting forever. At 115200 a stack
/// row takes about 5 ms, so a pause this long is no row still on the wire.
pub(crate) const DUMP_QUIET: Duration = Duration::from_millis(500);

/// One reboot the harness did not cause.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reboot {
    /// Where its report (or its banner) starts.
    pub seq: u64,
    /// When.
    pub t_us: u64,
    /// What it was.
    pub crash: Crash,
}

/// What the events show of the board's reboots.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Reboots {
    /// Every whole reboot, in order.
    pub seen: Vec<Reboot>,
    /// A crash report still arriving: where it starts, and the instant at which
    /// it counts as whole even if nothing more comes.
    pub arriving: Option<(u64, u64)>,
}

/// The banner's `rst cause`, heard in clear or garbled.
fn banner(o: &Observed) -> Option<Option<u8>> {
    if let EventKind::Board {
        what: BoardEvent::RomBannerGarbled { cause },
    } = &o.event.kind
    {
        return Some(*cause);
    }
    let line = o.line()?;
    match crash::banner_cause(line) {
        Some(cause) => Some(Some(cause)),
        None if o.said(SemanticEvent::RomBanner) => Some(None),
        None => None,
    }
}

/// Where the dump that starts at `events[start]` ends (exclusive), and whether
/// it is known to be whole there.
fn dump_extent(events: &[Observed], start: usize, kind: &CrashKind) -> (usize, bool) {
    // A hardware watchdog prints no dump: its line is all there is.
    if matches!(kind, CrashKind::HardwareWatchdog) {
        return (start + 1, true);
    }
    let mut lines = 0;
    for (i, o) in events.iter().enumerate().skip(start + 1) {
        if banner(o).is_some() || o.is_harness_reset() {
            return (i, true);
        }
        let Some(line) = o.line() else {
            continue;
        };
        let trimmed = line.trim();
        if trimmed == "<<<stack<<<" {
            // The decoder's cut line may follow; it is part of the dump either way.
            let end = events[i + 1..]
                .iter()
                .position(|o| o.line().is_some())
                .map_or(i + 1, |p| i + 1 + p);
            let cut = events
                .get(end)
                .and_then(Observed::line)
                .is_some_and(|l| l.contains("CUT HERE FOR EXCEPTION DECODER"));
            return (if cut { end + 1 } else { i + 1 }, true);
        }
        if crash::header(line).is_some() || o.said(SemanticEvent::Boot) {
            return (i, true);
        }
        lines += 1;
        if lines >= DUMP_LINES {
            return (i + 1, true);
        }
    }
    (events.len(), false)
}

/// Reads the reboots in `events` after the first harness reset; `now_us` says
/// whether a dump still arriving has gone quiet.
pub(crate) fn scan(events: &[Observed], now_us: u64) -> Reboots {
    let mut out = Reboots::default();
    let mut armed = false;
    let mut boots = 0;
    let mut after_banner = false;
    // The `wdt reset` line a watchdog banner is followed by is that same reboot.
    let mut watchdog_banner = false;
    let mut i = 0;
    while i < events.len() {
        let o = &events[i];
        i += 1;
        if o.is_harness_reset() {
            armed = true;
            boots = 0;
            after_banner = false;
            watchdog_banner = false;
            continue;
        }
        if !armed {
            continue;
        }
        let push = |out: &mut Reboots, crash: Crash| {
            out.seen.push(Reboot {
                seq: o.seq(),
                t_us: o.t_us(),
                crash,
            })
        };
        if let Some(cause) = banner(o) {
            if cause == Some(4) {
                push(
                    &mut out,
                    Crash {
                        kind: CrashKind::HardwareWatchdog,
                        ..Crash::unexpected_boot()
                    },
                );
                // This banner starts the board's next boot.
                boots = 1;
                after_banner = true;
                watchdog_banner = true;
                continue;
            }
            boots += 1;
            after_banner = true;
        } else if let Some(line) = o.line() {
            if let Some(kind) = crash::header(line) {
                if watchdog_banner && kind == CrashKind::HardwareWatchdog {
                    watchdog_banner = false;
                    continue;
                }
                let (end, whole) = dump_extent(events, i - 1, &kind);
                let last_t = events[i - 1..end]
                    .iter()
                    .filter(|o| o.line().is_some())
                    .map(Observed::t_us)
                    .max()
                    .unwrap_or(o.t_us());
                let quiet_at = last_t.saturating_add(DUMP_QUIET.as_micros() as u64);
                if !whole && now_us < quiet_at {
                    out.arriving = Some((o.seq(), quiet_at));
                    return out;
                }
                let dump: Vec<&str> = events[i - 1..end]
                    .iter()
                    .filter_map(Observed::line)
                    .collect();
                if let Some(crash) = Crash::parse(&dump) {
                    push(&mut out, crash);
                }
                // The banner and boot that follow are this crash's reboot.
                boots = 0;
                after_banner = false;
                watchdog_banner = false;
                i = end.max(i);
                continue;
            }
            if o.said(SemanticEvent::Crash) {
                // The firmware's own words for a crash (its log profile knows them).
                push(
                    &mut out,
                    Crash {
                        kind: CrashKind::Panic {
                            at: line.trim().to_owned(),
                        },
                        ..Crash::unexpected_boot()
                    },
                );
                boots = 0;
                after_banner = false;
                continue;
            }
            if o.said(SemanticEvent::Boot) {
                if !after_banner {
                    boots += 1;
                }
                after_banner = false;
            } else if o.said.is_some() {
                after_banner = false;
            }
            if !line.trim().is_empty() {
                watchdog_banner = false;
            }
        } else {
            continue;
        }
        if boots > 1 {
            push(&mut out, Crash::unexpected_boot());
            boots = 1;
        }
    }
    out
}

/// What the crash watch sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CrashWatch {
    /// No reboot the harness did not cause.
    Calm,
    /// A crash report is still arriving; it is judged when whole, or at this
    /// instant (timeline µs) if nothing more comes.
    Arriving {
        /// The instant.
        until_us: u64,
    },
    /// A reboot: where its report starts, and what it was.
    Crashed(u64, Crash),
}

/// The first reboot in `events` after the first harness reset whose report
/// starts before `before` (a sequence number: reboots from there on are the ones
/// a scenario expects), judged once its dump is whole.
pub(crate) fn first_crash(events: &[Observed], now_us: u64, before: Option<u64>) -> CrashWatch {
    let reboots = scan(events, now_us);
    let limit = before.unwrap_or(u64::MAX);
    if let Some(first) = reboots.seen.iter().find(|r| r.seq < limit) {
        return CrashWatch::Crashed(first.seq, first.crash.clone());
    }
    match reboots.arriving {
        Some((seq, until_us)) if seq < limit => CrashWatch::Arriving { until_us },
        _ => CrashWatch::Calm,
    }
}
