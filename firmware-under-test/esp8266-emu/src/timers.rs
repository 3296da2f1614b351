//! The FRC timers at 0x60000600: FRC1 counts down from its load value and
//! interrupts at zero (the core's `timer1`), FRC2 counts up freely and interrupts
//! when it meets its alarm (the SDK's software timers run on it). Both count the
//! 80 MHz APB clock through a prescaler (1, 16 or 256). The CPU's own timer,
//! CCOMPARE0, lives in the `lx106` crate.
//!
//! Time is the machine's cycle count (one CPU cycle at 80 MHz per APB tick).
//!
//! Each expiry is also a pulse on the timer's edge-triggered CPU interrupt line
//! ([`Timers::take_edges`]): the SDK never writes FRC2's interrupt-clear register
//! (its `ets_timer_handler_isr` only reads the count and rewrites the alarm), so
//! each alarm match must be a new edge whatever the status bit says.

/// FRC1 load value.
pub const FRC1_LOAD: u32 = 0x00;
/// FRC1 count (read).
pub const FRC1_COUNT: u32 = 0x04;
/// FRC1 control.
pub const FRC1_CTRL: u32 = 0x08;
/// FRC1 interrupt clear.
pub const FRC1_INT: u32 = 0x0C;
/// FRC2 load value (sets the count).
pub const FRC2_LOAD: u32 = 0x20;
/// FRC2 count (read).
pub const FRC2_COUNT: u32 = 0x24;
/// FRC2 control.
pub const FRC2_CTRL: u32 = 0x28;
/// FRC2 interrupt clear.
pub const FRC2_INT: u32 = 0x2C;
/// FRC2 alarm.
pub const FRC2_ALARM: u32 = 0x30;

/// CTRL bit: the timer runs.
pub const CTRL_ENABLE: u32 = 1 << 7;
/// CTRL bit (FRC1): reload from LOAD at zero.
pub const CTRL_AUTOLOAD: u32 = 1 << 6;
/// CTRL bit (read-only): the interrupt is pending.
pub const CTRL_INT: u32 = 1 << 8;

fn prescale(ctrl: u32) -> u64 {
    match (ctrl >> 2) & 3 {
        0 => 1,
        1 => 16,
        _ => 256,
    }
}

/// FRC1 and FRC2.
#[derive(Debug, Clone, Default)]
pub struct Timers {
    frc1_load: u32,
    frc1_ctrl: u32,
    /// FRC1's count at `frc1_since`.
    frc1_start: u32,
    frc1_since: u64,
    frc1_int: bool,
    frc2_ctrl: u32,
    frc2_start: u32,
    frc2_since: u64,
    frc2_alarm: u32,
    frc2_int: bool,
    /// The alarm value that already fired (so it fires once until rewritten).
    frc2_fired_at: Option<u32>,
    /// Expiries not yet seen by the interrupt controller (bit 0 FRC1, bit 1 FRC2).
    edges: u32,
}

impl Timers {
    /// Both stopped.
    pub fn new() -> Timers {
        Timers::default()
    }

    fn frc1_count(&self, now: u64) -> u32 {
        if self.frc1_ctrl & CTRL_ENABLE == 0 {
            return self.frc1_start;
        }
        let ticks = (now - self.frc1_since) / prescale(self.frc1_ctrl);
        (self.frc1_start as u64).saturating_sub(ticks) as u32
    }

    fn frc2_count(&self, now: u64) -> u32 {
        if self.frc2_ctrl & CTRL_ENABLE == 0 {
            return self.frc2_start;
        }
        let ticks = (now - self.frc2_since) / prescale(self.frc2_ctrl);
        self.frc2_start.wrapping_add(ticks as u32)
    }

    /// Reads a register at `now` (machine cycles); `None` if not modelled.
    pub fn read(&mut self, offset: u32, now: u64) -> Option<u32> {
        self.update(now);
        Some(match offset {
            FRC1_LOAD => self.frc1_load,
            FRC1_COUNT => self.frc1_count(now),
            FRC1_CTRL => self.frc1_ctrl | if self.frc1_int { CTRL_INT } else { 0 },
            FRC2_LOAD => self.frc2_start,
            FRC2_COUNT => self.frc2_count(now),
            FRC2_CTRL => self.frc2_ctrl | if self.frc2_int { CTRL_INT } else { 0 },
            FRC2_ALARM => self.frc2_alarm,
            FRC1_INT | FRC2_INT => 0,
            _ => return None,
        })
    }

    /// Writes a register at `now`; false if not modelled.
    pub fn write(&mut self, offset: u32, value: u32, now: u64) -> bool {
        self.update(now);
        match offset {
            FRC1_LOAD => {
                self.frc1_load = value & 0x7F_FFFF;
                self.frc1_start = self.frc1_load;
                self.frc1_since = now;
            }
            FRC1_CTRL => {
                let count = self.frc1_count(now);
                self.frc1_ctrl = value & 0xFF;
                self.frc1_start = count;
                self.frc1_since = now;
            }
            FRC1_INT => self.frc1_int = false,
            FRC2_LOAD => {
                self.frc2_start = value;
                self.frc2_since = now;
            }
            FRC2_CTRL => {
                let count = self.frc2_count(now);
                self.frc2_ctrl = value & 0xFF;
                self.frc2_start = count;
                self.frc2_since = now;
            }
            FRC2_INT => self.frc2_int = false,
            FRC2_ALARM => {
                self.frc2_alarm = value;
                self.frc2_fired_at = None;
            }
            _ => return false,
        }
        true
    }

    /// Latches the interrupts whose moment has come by `now`, reloading FRC1.
    pub fn update(&mut self, now: u64) {
        if let Some(at) = self.frc1_fires_at() {
            if now >= at {
                self.frc1_int = true;
                self.edges |= 1;
                if self.frc1_ctrl & CTRL_AUTOLOAD != 0 && self.frc1_load != 0 {
                    // Reload, keeping the phase of the missed periods.
                    let period = self.frc1_load as u64 * prescale(self.frc1_ctrl);
                    let late = (now - at) % period;
                    self.frc1_start = self.frc1_load;
                    self.frc1_since = now - late;
                } else {
                    self.frc1_start = 0;
                    self.frc1_since = now;
                }
            }
        }
        if let Some(at) = self.frc2_fires_at() {
            if now >= at {
                self.frc2_int = true;
                self.edges |= 2;
                // The count passes the alarm: keep counting from here.
                let count = self.frc2_count(now);
                self.frc2_start = count;
                self.frc2_since = now;
                self.frc2_fired_at = Some(self.frc2_alarm);
            }
        }
    }

    fn frc1_fires_at(&self) -> Option<u64> {
        if self.frc1_ctrl & CTRL_ENABLE == 0 || self.frc1_start == 0 {
            return None;
        }
        Some(self.frc1_since + self.frc1_start as u64 * prescale(self.frc1_ctrl))
    }

    fn frc2_fires_at(&self) -> Option<u64> {
        if self.frc2_ctrl & CTRL_ENABLE == 0 || self.frc2_fired_at == Some(self.frc2_alarm) {
            return None;
        }
        let ticks = self.frc2_alarm.wrapping_sub(self.frc2_start) as u64;
        Some(self.frc2_since + ticks * prescale(self.frc2_ctrl))
    }

    /// The next cycle at which an interrupt latches, if any.
    pub fn next_event(&self) -> Option<u64> {
        match (self.frc1_fires_at(), self.frc2_fires_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The expiries since the last call: bit 0 FRC1, bit 1 FRC2. Each one is a
    /// rising edge on the timer's interrupt line.
    pub fn take_edges(&mut self) -> u32 {
        std::mem::take(&mut self.edges)
    }

    /// The FRC2 alarm value last written.
    pub fn frc2_alarm(&self) -> u32 {
        self.frc2_alarm
    }

    /// Whether FRC1's interrupt is pending.
    pub fn frc1_irq(&self) -> bool {
        self.frc1_int
    }

    /// Whether FRC2's interrupt is pending.
    pub fn frc2_irq(&self) -> bool {
        self.frc2_int
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frc1_counts_down_and_reloads() {
        let mut t = Timers::new();
        t.write(FRC1_LOAD, 1000, 0);
        t.write(FRC1_CTRL, CTRL_ENABLE | CTRL_AUTOLOAD | (1 << 2), 0);
        assert_eq!(t.next_event(), Some(16_000));
        assert_eq!(t.read(FRC1_COUNT, 1600), Some(900));
        assert!(!t.frc1_irq());
        t.update(16_000);
        assert!(t.frc1_irq());
        assert_eq!(t.read(FRC1_COUNT, 16_000), Some(1000));
        t.write(FRC1_INT, 1, 16_001);
        assert!(!t.frc1_irq());
        assert_eq!(t.next_event(), Some(32_000));
    }

    #[test]
    fn frc2_meets_its_alarm_once() {
        let mut t = Timers::new();
        t.write(FRC2_CTRL, CTRL_ENABLE | (2 << 2), 0);
        t.write(FRC2_ALARM, 10, 0);
        assert_eq!(t.next_event(), Some(2560));
        assert_eq!(t.read(FRC2_COUNT, 2559), Some(9));
        t.update(2560);
        assert!(t.frc2_irq());
        assert_eq!(t.take_edges(), 2);
        assert_eq!(t.take_edges(), 0, "one edge per match");
        assert_eq!(t.next_event(), None);
        // The SDK rewrites the alarm without clearing the status: a new edge.
        t.write(FRC2_ALARM, 20, 2600);
        assert_eq!(t.next_event(), Some(20 * 256));
        t.update(20 * 256);
        assert_eq!(t.take_edges(), 2);
    }
}
