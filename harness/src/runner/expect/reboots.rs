//! Crashes and reboots the harness did not cause, read from the device's events.
//!
//! Every harness reset (`BoardEvent::Reset`) is followed by one boot: the ROM's
//! banner and the firmware's boot line (either alone: on a real board the
//! banner is garbage at 115200). A crash report of the core, a hardware
//! watchdog banner (`rst cause:4`), or a second boot after one reset is a crash.

use super::observed::Observed;
use crate::crash::{self, Crash, CrashKind};
use crate::logprofile::SemanticEvent;

/// How many lines after a crash header can belong to its dump.
const DUMP_LINES: usize = 64;

/// The first crash in `events` after the first harness reset: where its report
/// starts, and what it was.
pub(crate) fn first_crash(events: &[Observed]) -> Option<(u64, Crash)> {
    let mut armed = false;
    let mut boots = 0;
    let mut after_banner = false;
    for (i, o) in events.iter().enumerate() {
        if o.is_harness_reset() {
            armed = true;
            boots = 0;
            after_banner = false;
            continue;
        }
        let Some(line) = o.line() else {
            continue;
        };
        if !armed {
            continue;
        }
        if crash::header(line).is_some() {
            let dump: Vec<&str> = events[i..]
                .iter()
                .filter_map(Observed::line)
                .take(DUMP_LINES)
                .collect();
            return Crash::parse(&dump).map(|c| (o.seq(), c));
        }
        if o.said(SemanticEvent::Crash) {
            // The firmware's own words for a crash (its log profile knows them).
            return Some((
                o.seq(),
                Crash {
                    kind: CrashKind::Panic {
                        at: line.trim().to_owned(),
                    },
                    epc1: None,
                    excvaddr: None,
                    stack_code: Vec::new(),
                },
            ));
        }
        let banner = crash::banner_cause(line);
        if banner.is_some() || o.said(SemanticEvent::RomBanner) {
            if banner == Some(4) {
                return Some((
                    o.seq(),
                    Crash {
                        kind: CrashKind::HardwareWatchdog,
                        ..Crash::unexpected_boot()
                    },
                ));
            }
            boots += 1;
            after_banner = true;
        } else if o.said(SemanticEvent::Boot) {
            if !after_banner {
                boots += 1;
            }
            after_banner = false;
        } else if o.said.is_some() {
            after_banner = false;
        }
        if boots > 1 {
            return Some((o.seq(), Crash::unexpected_boot()));
        }
    }
    None
}
