//! GPIO (0x60000300) and the pin multiplexer IOMUX (0x60000800): output and enable
//! latches, the input register with the boot-mode straps the ROM samples at reset,
//! pin interrupt status, and the sixteen pin function registers.

/// Output levels.
pub const OUT: u32 = 0x00;
/// Set output bits.
pub const OUT_W1TS: u32 = 0x04;
/// Clear output bits.
pub const OUT_W1TC: u32 = 0x08;
/// Output enables.
pub const ENABLE: u32 = 0x0C;
/// Set enable bits.
pub const ENABLE_W1TS: u32 = 0x10;
/// Clear enable bits.
pub const ENABLE_W1TC: u32 = 0x14;
/// Input levels (bits 0..16) and the boot straps (bits 16..19).
pub const IN: u32 = 0x18;
/// Pin interrupt status.
pub const STATUS: u32 = 0x1C;
/// Set status bits.
pub const STATUS_W1TS: u32 = 0x20;
/// Clear status bits.
pub const STATUS_W1TC: u32 = 0x24;
/// First pin configuration register (GPIO_PIN0; sixteen of them).
pub const PIN0: u32 = 0x28;

/// GPIO and IOMUX.
#[derive(Debug, Clone)]
pub struct Gpio {
    out: u32,
    enable: u32,
    status: u32,
    pins: [u32; 16],
    /// Input levels of GPIO0..15 (pulled up pins read 1).
    pub input: u16,
    /// The boot mode the straps gave at reset (GPIO15, GPIO0, GPIO2 as bits 2, 1, 0):
    /// 3 boots from flash, 1 waits for the UART loader.
    pub boot_mode: u8,
    iomux_conf: u32,
    iomux: [u32; 16],
}

impl Gpio {
    /// Pins as a NodeMCU leaves them: GPIO0 and GPIO2 high, GPIO15 low, `boot_mode`
    /// latched.
    pub fn new(boot_mode: u8) -> Gpio {
        Gpio {
            out: 0,
            enable: 0,
            status: 0,
            pins: [0; 16],
            input: 0x7FFF,
            boot_mode,
            iomux_conf: 0,
            iomux: [0; 16],
        }
    }

    /// Reads a GPIO register; `None` if not modelled.
    pub fn read(&mut self, offset: u32) -> Option<u32> {
        Some(match offset {
            OUT => self.out,
            ENABLE => self.enable,
            IN => u32::from(self.input) | u32::from(self.boot_mode & 7) << 16,
            STATUS => self.status,
            o if (PIN0..PIN0 + 64).contains(&o) && o % 4 == 0 => {
                self.pins[((o - PIN0) / 4) as usize]
            }
            _ => return None,
        })
    }

    /// Writes a GPIO register; false if not modelled.
    pub fn write(&mut self, offset: u32, value: u32) -> bool {
        match offset {
            OUT => self.out = value & 0xFFFF,
            OUT_W1TS => self.out |= value & 0xFFFF,
            OUT_W1TC => self.out &= !value,
            ENABLE => self.enable = value & 0xFFFF,
            ENABLE_W1TS => self.enable |= value & 0xFFFF,
            ENABLE_W1TC => self.enable &= !value,
            STATUS => self.status = value & 0xFFFF,
            STATUS_W1TS => self.status |= value & 0xFFFF,
            STATUS_W1TC => self.status &= !value,
            o if (PIN0..PIN0 + 64).contains(&o) && o % 4 == 0 => {
                self.pins[((o - PIN0) / 4) as usize] = value
            }
            _ => return false,
        }
        true
    }

    /// Output levels the firmware drives.
    pub fn outputs(&self) -> u16 {
        (self.out & self.enable) as u16
    }

    /// Whether a pin interrupt is pending.
    pub fn irq(&self) -> bool {
        self.status != 0
    }

    /// Reads an IOMUX register (0x00 CONF, 0x04..0x44 the pins); `None` if not modelled.
    pub fn iomux_read(&mut self, offset: u32) -> Option<u32> {
        match offset {
            0 => Some(self.iomux_conf),
            o if (4..0x44).contains(&o) && o % 4 == 0 => Some(self.iomux[(o / 4 - 1) as usize]),
            _ => None,
        }
    }

    /// Writes an IOMUX register; false if not modelled.
    pub fn iomux_write(&mut self, offset: u32, value: u32) -> bool {
        match offset {
            0 => self.iomux_conf = value,
            o if (4..0x44).contains(&o) && o % 4 == 0 => self.iomux[(o / 4 - 1) as usize] = value,
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn straps_and_latches() {
        let mut g = Gpio::new(3);
        let input = g.read(IN).unwrap_or(0);
        assert_eq!((input >> 16) & 7, 3);
        assert_eq!(input & 1, 1, "GPIO0 high");
        assert_eq!(input & (1 << 15), 0, "GPIO15 low");
        g.write(ENABLE_W1TS, 1 << 2);
        g.write(OUT_W1TS, 1 << 2 | 1 << 4);
        assert_eq!(g.outputs(), 1 << 2);
        g.write(OUT_W1TC, 1 << 2);
        assert_eq!(g.outputs(), 0);
        assert!(g.iomux_write(0x10, 0x80));
        assert_eq!(g.iomux_read(0x10), Some(0x80));
        assert_eq!(g.read(0x200), None);
    }
}
