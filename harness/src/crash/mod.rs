//! Crashes as the ESP8266 Arduino core reports them on the serial port: the
//! postmortem dump (`Exception (28):`, the `epc1=` registers, the `>>>stack>>>`
//! words), `Soft WDT reset`, `wdt reset`, panics and aborts, read from the lines
//! of a transcript; and, with the firmware's ELF, the code addresses decoded to
//! function and file:line ([`Symbols`]).
//!
//! ```
//! use hil::crash::{Crash, CrashKind};
//!
//! let lines = [
//!     "Exception (28):",
//!     "epc1=0x40202176 epc2=0x00000000 epc3=0x00000000 excvaddr=0x00000000 depc=0x00000000",
//!     "",
//!     ">>>stack>>>",
//!     "3fffff50:  3fffdad0 00000000 3ffee7c8 40201b8c",
//!     "<<<stack<<<",
//! ];
//! let crash = Crash::parse(&lines).expect("a dump");
//! assert_eq!(crash.kind, CrashKind::Exception { cause: 28 });
//! assert_eq!(crash.epc1, Some(0x4020_2176));
//! assert_eq!(crash.code_addresses(), [0x4020_2176, 0x4020_1b8c]);
//! assert!(crash.summary().contains("LoadProhibited"));
//! ```

mod symbols;

use std::fmt;
use std::sync::OnceLock;

use regex::Regex;
use serde::Serialize;

pub use symbols::{SourceFrame, Symbols, SymbolsError};

/// What stopped the firmware.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CrashKind {
    /// A CPU exception (`Exception (n):`), with the Xtensa EXCCAUSE number.
    Exception {
        /// EXCCAUSE.
        cause: u32,
    },
    /// The software watchdog fired (`Soft WDT reset`): a loop that never yields.
    SoftWatchdog,
    /// The hardware watchdog fired (`wdt reset`, or a ROM banner with `rst cause:4`).
    HardwareWatchdog,
    /// `panic()` or a failed assertion (`Panic file:line func`).
    Panic {
        /// What the core printed after `Panic`.
        at: String,
    },
    /// `abort()` was called.
    Abort,
    /// A C++ exception nobody caught.
    UnhandledException {
        /// Its `what()`.
        what: String,
    },
    /// The core's stack-smashing check.
    StackOverflow,
    /// The chip restarted with no dump: a boot the harness did not cause.
    UnexpectedBoot,
}

/// One crash, as far as the serial output tells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Crash {
    /// What happened.
    pub kind: CrashKind,
    /// The faulting instruction (`epc1`), for exceptions.
    pub epc1: Option<u32>,
    /// The faulting data address (`excvaddr`), for exceptions.
    pub excvaddr: Option<u32>,
    /// Words of the stack dump that are code addresses, in stack order: what an
    /// exception decoder turns into a backtrace.
    pub stack_code: Vec<u32>,
}

/// The Xtensa EXCCAUSE names and what they mean on an ESP8266.
const CAUSES: &[(u32, &str, &str)] = &[
    (0, "IllegalInstruction", "an illegal instruction, often a jump through a bad function pointer"),
    (1, "Syscall", "a SYSCALL instruction"),
    (2, "InstructionFetchError", "an error while fetching an instruction"),
    (3, "LoadStoreError", "a load or store error, e.g. an 8- or 16-bit read of IRAM or flash"),
    (4, "Level1Interrupt", "a level-1 interrupt"),
    (5, "Alloca", "a MOVSP instruction with the caller's registers not in the register file"),
    (6, "IntegerDivideByZero", "an integer division by zero"),
    (8, "Privileged", "a privileged instruction"),
    (9, "LoadStoreAlignment", "an unaligned load or store"),
    (12, "InstrPIFDataError", "a PIF data error while fetching an instruction"),
    (13, "LoadStorePIFDataError", "a PIF data error on a load or store"),
    (14, "InstrPIFAddrError", "a PIF address error while fetching an instruction"),
    (15, "LoadStorePIFAddrError", "a PIF address error on a load or store"),
    (16, "InstTLBMiss", "an instruction TLB miss"),
    (17, "InstTLBMultiHit", "multiple instruction TLB entries matched"),
    (18, "InstFetchPrivilege", "an instruction fetch with too little privilege"),
    (20, "InstFetchProhibited", "an instruction fetch from a region that forbids it (a call through a null or stale pointer)"),
    (24, "LoadStoreTLBMiss", "a data TLB miss"),
    (25, "LoadStoreTLBMultiHit", "multiple data TLB entries matched"),
    (26, "LoadStorePrivilege", "a load or store with too little privilege"),
    (28, "LoadProhibited", "a load from an address that forbids loads (a null or stale pointer read)"),
    (29, "StoreProhibited", "a store to an address that forbids stores (a null or stale pointer write)"),
];

/// The name and meaning of an EXCCAUSE value, as exception decoders print them.
pub fn exception_cause(cause: u32) -> (&'static str, &'static str) {
    CAUSES.iter().find(|(n, _, _)| *n == cause).map_or(
        ("Reserved", "a cause the Xtensa ISA reserves"),
        |(_, name, what)| (name, what),
    )
}

fn patterns() -> &'static Patterns {
    static PATTERNS: OnceLock<Patterns> = OnceLock::new();
    PATTERNS.get_or_init(Patterns::new)
}

struct Patterns {
    exception: Regex,
    registers: Regex,
    stack_row: Regex,
    panic: Regex,
    unhandled: Regex,
    banner: Regex,
}

impl Patterns {
    fn new() -> Patterns {
        // Every pattern is a literal of this file; the tests compile them all.
        let re = |p: &str| Regex::new(p).expect("a literal pattern of this module");
        Patterns {
            // The NONOS SDK's "Fatal exception 28(...)" is the same event.
            exception: re(r"^\s*(?:Exception \((\d+)\):|Fatal exception \(?(\d+)\)?)"),
            registers: re(r"epc1=0x([0-9a-fA-F]{8}).*?excvaddr=0x([0-9a-fA-F]{8})"),
            stack_row: re(r"^\s*[0-9a-fA-F]{8}:\s+((?:[0-9a-fA-F]{8}\s*){1,4})"),
            // The core's `panic()` names where: `Panic core_esp8266_main.cpp:137 __yield`
            // (a file and a line), so "Panic button pressed" is no crash.
            panic: re(r"^\s*Panic (\S+:\d+\b.*)$"),
            unhandled: re(r"^\s*Unhandled C\+\+ exception: (.*)$"),
            banner: re(r"^\s*ets Jan  8 2013,rst cause:(\d+), boot mode:\((\d+),(\d+)\)"),
        }
    }
}

/// Whether a word is a code address worth decoding: IRAM (0x40100000..) or
/// the flash-mapped code the sketch lives in (0x40200000..0x40300000).
pub fn is_code_address(word: u32) -> bool {
    (0x4010_0000..0x4011_0000).contains(&word) || (0x4020_0000..0x4030_0000).contains(&word)
}

/// If `line` starts a crash report of the core, what kind of crash.
pub fn header(line: &str) -> Option<CrashKind> {
    let p = patterns();
    let trimmed = line.trim();
    if let Some(c) = p.exception.captures(line) {
        let cause = c
            .get(1)
            .or_else(|| c.get(2))
            .and_then(|m| m.as_str().parse().ok())?;
        return Some(CrashKind::Exception { cause });
    }
    if trimmed.starts_with("Soft WDT reset") {
        return Some(CrashKind::SoftWatchdog);
    }
    if trimmed.starts_with("wdt reset") {
        return Some(CrashKind::HardwareWatchdog);
    }
    if trimmed.starts_with("Abort called") {
        return Some(CrashKind::Abort);
    }
    if trimmed.starts_with("Stack overflow detected") {
        return Some(CrashKind::StackOverflow);
    }
    if let Some(c) = p.panic.captures(line) {
        return Some(CrashKind::Panic {
            at: c[1].trim().to_owned(),
        });
    }
    if let Some(c) = p.unhandled.captures(line) {
        return Some(CrashKind::UnhandledException {
            what: c[1].trim().to_owned(),
        });
    }
    None
}

/// The `rst cause` of a ROM banner line (` ets Jan  8 2013,rst cause:2, ...`).
pub fn banner_cause(line: &str) -> Option<u8> {
    patterns()
        .banner
        .captures(line)
        .and_then(|c| c[1].parse().ok())
}

impl Crash {
    /// Reads a crash from `lines`, the first of which is its header (see
    /// [`header`]); the registers and the stack dump follow it. Stops at the end
    /// of the stack dump, or at the first line that belongs to no dump.
    pub fn parse<S: AsRef<str>>(lines: &[S]) -> Option<Crash> {
        let first = lines.first()?;
        let mut crash = Crash {
            kind: header(first.as_ref())?,
            epc1: None,
            excvaddr: None,
            stack_code: Vec::new(),
        };
        let p = patterns();
        let mut in_stack = false;
        for line in lines.iter().skip(1).map(AsRef::as_ref) {
            let trimmed = line.trim();
            if let Some(c) = p.registers.captures(line) {
                crash.epc1 = u32::from_str_radix(&c[1], 16).ok();
                crash.excvaddr = u32::from_str_radix(&c[2], 16).ok();
            } else if trimmed == ">>>stack>>>" {
                in_stack = true;
            } else if trimmed == "<<<stack<<<" {
                break;
            } else if in_stack {
                if let Some(c) = p.stack_row.captures(line) {
                    crash.stack_code.extend(
                        c[1].split_whitespace()
                            .filter_map(|w| u32::from_str_radix(w, 16).ok())
                            .filter(|w| is_code_address(*w)),
                    );
                }
            } else if header(line).is_some() || p.banner.is_match(line) {
                break;
            }
        }
        Some(crash)
    }

    /// A crash with no dump: the chip restarted on its own.
    pub fn unexpected_boot() -> Crash {
        Crash {
            kind: CrashKind::UnexpectedBoot,
            epc1: None,
            excvaddr: None,
            stack_code: Vec::new(),
        }
    }

    /// The addresses to decode: the faulting instruction first, then the stack's
    /// code words (duplicates removed, order kept).
    pub fn code_addresses(&self) -> Vec<u32> {
        let mut out: Vec<u32> = Vec::new();
        for a in self.epc1.iter().chain(&self.stack_code) {
            if is_code_address(*a) && !out.contains(a) {
                out.push(*a);
            }
        }
        out
    }

    /// One line for people: what happened and where.
    pub fn summary(&self) -> String {
        let what = match &self.kind {
            CrashKind::Exception { cause } => {
                let (name, meaning) = exception_cause(*cause);
                format!("Exception ({cause}) {name}: {meaning}")
            }
            CrashKind::SoftWatchdog => {
                "a software watchdog reset (a loop that never yields)".to_owned()
            }
            CrashKind::HardwareWatchdog => {
                "a hardware watchdog reset (interrupts blocked too long)".to_owned()
            }
            CrashKind::Panic { at } => format!("a panic at {at}"),
            CrashKind::Abort => "abort() was called".to_owned(),
            CrashKind::UnhandledException { what } => {
                format!("an unhandled C++ exception ({what})")
            }
            CrashKind::StackOverflow => "a stack overflow".to_owned(),
            CrashKind::UnexpectedBoot => {
                "the chip restarted without a crash report (a boot the harness did not cause)"
                    .to_owned()
            }
        };
        match (self.epc1, self.excvaddr) {
            (Some(epc1), Some(addr)) => {
                format!("{what}, at epc1=0x{epc1:08x} excvaddr=0x{addr:08x}")
            }
            (Some(epc1), None) => format!("{what}, at epc1=0x{epc1:08x}"),
            _ => what,
        }
    }
}

impl fmt::Display for Crash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dump as core 3.1.2's postmortem prints it (CRLF already stripped).
    const DUMP: &[&str] = &[
        "Exception (29):",
        "epc1=0x4020217a epc2=0x00000000 epc3=0x00000000 excvaddr=0x00000000 depc=0x00000000",
        "",
        ">>>stack>>>",
        "",
        "ctx: cont",
        "sp: 3ffffe00 end: 3fffffd0 offset: 0190",
        "3fffff90:  3fffdad0 00000000 3ffee7c8 40202190  ",
        "3fffffa0:  3fffdad0 00000000 3ffee7f4 40206ab4 <",
        "3fffffb0:  feefeffe feefeffe 3ffe85e0 40100d19  ",
        "<<<stack<<<",
        "",
        "--------------- CUT HERE FOR EXCEPTION DECODER ---------------",
        " ets Jan  8 2013,rst cause:2, boot mode:(3,6)",
    ];

    #[test]
    fn an_exception_dump_gives_cause_registers_and_code_words() {
        let crash = Crash::parse(DUMP).unwrap();
        assert_eq!(crash.kind, CrashKind::Exception { cause: 29 });
        assert_eq!(crash.epc1, Some(0x4020_217a));
        assert_eq!(crash.excvaddr, Some(0));
        assert_eq!(crash.stack_code, [0x4020_2190, 0x4020_6ab4, 0x4010_0d19]);
        assert_eq!(
            crash.code_addresses(),
            [0x4020_217a, 0x4020_2190, 0x4020_6ab4, 0x4010_0d19]
        );
        let summary = crash.summary();
        assert!(summary.contains("StoreProhibited"), "{summary}");
        assert!(summary.contains("epc1=0x4020217a"), "{summary}");
    }

    #[test]
    fn every_cause_of_the_table_has_its_name() {
        assert_eq!(exception_cause(0).0, "IllegalInstruction");
        assert_eq!(exception_cause(6).0, "IntegerDivideByZero");
        assert_eq!(exception_cause(28).0, "LoadProhibited");
        assert_eq!(exception_cause(29).0, "StoreProhibited");
        assert_eq!(exception_cause(7).0, "Reserved");
    }

    #[test]
    fn other_crash_headers_are_recognised() {
        assert_eq!(header("Soft WDT reset"), Some(CrashKind::SoftWatchdog));
        assert_eq!(header(" wdt reset"), Some(CrashKind::HardwareWatchdog));
        assert_eq!(header("Abort called"), Some(CrashKind::Abort));
        assert_eq!(
            header("Panic core_esp8266_main.cpp:137 __yield"),
            Some(CrashKind::Panic {
                at: "core_esp8266_main.cpp:137 __yield".into()
            })
        );
        assert_eq!(
            header("Fatal exception 28(LoadProhibitedCause):"),
            Some(CrashKind::Exception { cause: 28 })
        );
        assert_eq!(header("[mqtt] connected client_id=x"), None);
        assert_eq!(header("Exception handling is fine"), None);
    }

    #[test]
    fn banners_give_their_reset_cause() {
        assert_eq!(
            banner_cause(" ets Jan  8 2013,rst cause:4, boot mode:(3,6)"),
            Some(4)
        );
        assert_eq!(banner_cause("[boot] fw=x"), None);
    }

    #[test]
    fn a_dump_cut_short_still_names_the_crash() {
        let crash = Crash::parse(&["Exception (0):"]).unwrap();
        assert_eq!(crash.kind, CrashKind::Exception { cause: 0 });
        assert!(crash.code_addresses().is_empty());
        assert!(Crash::parse(&["no crash here"]).is_none());
        let empty: [&str; 0] = [];
        assert!(Crash::parse(&empty).is_none());
    }
}
