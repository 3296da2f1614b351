//! The hardware watchdog at 0x60000900. The SDK enables it and feeds it from its
//! timers; the machine records the configuration and the feeds. It does not reset
//! the chip when a feed is missed (a missed feed is reported by [`Watchdog::overdue`]).

/// Control: bit 0 enables.
pub const CTL: u32 = 0x00;
/// Stage 1 timeout exponent.
pub const OP: u32 = 0x04;
/// Stage 0 (no-feed) timeout exponent.
pub const OP_ND: u32 = 0x08;
/// Feed: write 0x73.
pub const RST: u32 = 0x14;

/// The feed value.
pub const FEED: u32 = 0x73;

/// The watchdog's registers and its last feed.
#[derive(Debug, Clone, Default)]
pub struct Watchdog {
    ctl: u32,
    op: u32,
    op_nd: u32,
    /// Cycle of the last feed (or of enabling).
    pub last_feed: u64,
    /// How many feeds it got.
    pub feeds: u64,
}

impl Watchdog {
    /// Disabled, as after an external reset.
    pub fn new() -> Watchdog {
        Watchdog::default()
    }

    /// Reads a register; `None` if not modelled.
    pub fn read(&mut self, offset: u32) -> Option<u32> {
        Some(match offset {
            CTL => self.ctl,
            OP => self.op,
            OP_ND => self.op_nd,
            RST => 0,
            _ => return None,
        })
    }

    /// Writes a register at cycle `now`; false if not modelled.
    pub fn write(&mut self, offset: u32, value: u32, now: u64) -> bool {
        match offset {
            CTL => {
                if value & 1 != 0 && self.ctl & 1 == 0 {
                    self.last_feed = now;
                }
                self.ctl = value;
            }
            OP => self.op = value & 0xF,
            OP_ND => self.op_nd = value & 0xF,
            RST => {
                if value == FEED {
                    self.feeds += 1;
                    self.last_feed = now;
                }
            }
            _ => return false,
        }
        true
    }

    /// Whether it is enabled.
    pub fn enabled(&self) -> bool {
        self.ctl & 1 != 0
    }

    /// Whether an enabled watchdog went unfed for longer than both stages
    /// (2^(OP+OP_ND) ticks of its 0.8 µs clock... taken as 80 MHz cycles / 64).
    pub fn overdue(&self, now: u64) -> bool {
        if !self.enabled() {
            return false;
        }
        let ticks = (1u64 << (self.op.max(1) + 1)) + (1u64 << (self.op_nd.max(1) + 1));
        now.saturating_sub(self.last_feed) > ticks * 64 * 1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feeds_are_counted() {
        let mut w = Watchdog::new();
        assert!(!w.overdue(u64::MAX / 2));
        w.write(OP, 11, 0);
        w.write(CTL, 0x3D, 100);
        assert!(w.enabled());
        w.write(RST, FEED, 1000);
        w.write(RST, 0x12, 2000);
        assert_eq!((w.feeds, w.last_feed), (1, 1000));
        assert!(w.overdue(u64::MAX / 2));
        assert_eq!(w.read(0x40), None);
    }
}
