//! The RTC block's registers at 0x60000700 that boot needs: the software reset
//! request, the reset cause the ROM reports, and the scratch registers the SDK keeps
//! across resets. RTC *memory* (0x60001000..) is RAM in [`crate::memory`].

/// Software system reset: writing bit 31 resets the chip.
pub const SW_SYS_RST: u32 = 0x00;
/// RTC scratch registers 0..3 (kept across resets): offsets 0x30, 0x34, 0x38, 0x3C.
pub const STORE0: u32 = 0x30;
/// The reset cause as the hardware latches it (low bits).
pub const RESET_CAUSE: u32 = 0x14;
/// The wake-up cause.
pub const WAKEUP_CAUSE: u32 = 0x18;
/// Interrupt/state register the SDK's `pm_wait4wakeup` polls: bits 0..2 nonzero once
/// the chip is awake. The chip never sleeps here, so it reads 1 (awake).
pub const WAKE_STATE: u32 = 0x28;

/// Why the chip started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResetCause {
    /// Power applied (`rst cause:1`).
    PowerOn,
    /// EN pulled low and released, what auto-reset does (`rst cause:2`).
    External,
    /// The hardware watchdog fired (`rst cause:4`).
    Watchdog,
}

impl ResetCause {
    /// The number the ROM prints after `rst cause:`.
    pub fn code(self) -> u32 {
        match self {
            ResetCause::PowerOn => 1,
            ResetCause::External => 2,
            ResetCause::Watchdog => 4,
        }
    }
}

/// The RTC registers modelled.
#[derive(Debug, Clone)]
pub struct Rtc {
    cause: ResetCause,
    store: [u32; 4],
    /// Set when the firmware asked for a software reset.
    pub reset_requested: bool,
}

impl Rtc {
    /// After a reset for `cause`.
    pub fn new(cause: ResetCause) -> Rtc {
        Rtc {
            cause,
            store: [0; 4],
            reset_requested: false,
        }
    }

    /// The reset cause.
    pub fn cause(&self) -> ResetCause {
        self.cause
    }

    /// Reads a register; `None` if not modelled.
    pub fn read(&mut self, offset: u32) -> Option<u32> {
        Some(match offset {
            SW_SYS_RST => 0,
            RESET_CAUSE => self.cause.code(),
            WAKEUP_CAUSE => 0,
            WAKE_STATE => 1,
            o if (STORE0..STORE0 + 16).contains(&o) && o % 4 == 0 => {
                self.store[((o - STORE0) / 4) as usize]
            }
            _ => return None,
        })
    }

    /// Writes a register; false if not modelled.
    pub fn write(&mut self, offset: u32, value: u32) -> bool {
        match offset {
            SW_SYS_RST => {
                if value & (1 << 31) != 0 {
                    self.reset_requested = true;
                }
            }
            o if (STORE0..STORE0 + 16).contains(&o) && o % 4 == 0 => {
                self.store[((o - STORE0) / 4) as usize] = value
            }
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cause_and_reset_request() {
        let mut rtc = Rtc::new(ResetCause::External);
        assert_eq!(rtc.read(RESET_CAUSE), Some(2));
        assert!(rtc.write(STORE0 + 4, 0xABCD));
        assert_eq!(rtc.read(STORE0 + 4), Some(0xABCD));
        assert!(!rtc.reset_requested);
        assert!(rtc.write(SW_SYS_RST, 1 << 31));
        assert!(rtc.reset_requested);
        assert_eq!(rtc.read(0x90), None);
    }
}
