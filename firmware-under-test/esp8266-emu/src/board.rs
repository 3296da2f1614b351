//! The chip as the CPU sees it: the memories of [`crate::memory`] and the
//! peripherals, decoded by address, behind the `lx106` crate's [`Bus`].
//!
//! Every access to a register no model answers is recorded in the
//! [`Unmodelled`] log (address, width, value, PC) and answered with 0 or dropped;
//! nothing is answered silently.

use std::collections::HashMap;

use lx106::{Bus, BusFault};

use crate::efuse::{Efuse, EFUSE_BASE};
use crate::gpio::Gpio;
use crate::memory::{
    Memory, FLASH_WINDOW, FLASH_WINDOW_SIZE, IRAM_BASE, IRAM_END, ROM_BASE, ROM_SIZE,
};
use crate::rtc::{ResetCause, Rtc};
use crate::spi_flash::{FlashOp, SpiFlash};
use crate::timers::Timers;
use crate::uart::Uart;
use crate::watchdog::Watchdog;

/// DPORT: edge interrupt enables (bit 0 watchdog, bit 1 FRC1, bit 2 FRC2).
pub const DPORT_EDGE_INT_ENABLE: u32 = 0x3FF0_0004;
/// DPORT: the cache and flash-mapping control (bit 8 enables the cache for the SDK's
/// `Cache_Read_Enable_2`).
pub const DPORT_CACHE_CTRL: u32 = 0x3FF0_000C;
/// DPORT: CPU clock (bit 0: 160 MHz).
pub const DPORT_CPU_CLOCK: u32 = 0x3FF0_0014;
/// DPORT: IRAM/cache size configuration (bits 3 and 4 give the cache 16 KiB of IRAM).
pub const DPORT_CACHE_SIZE: u32 = 0x3FF0_0024;
/// DPORT: UART pin swap.
pub const DPORT_UART_SWAP: u32 = 0x3FF0_0028;

/// WDEV (the MAC block): its free-running microsecond counter, what the SDK's
/// `system_get_time` reads.
pub const WDEV_MICROS: u32 = 0x3FF2_0C00;
/// WDEV: the hardware random number generator Arduino's `random()` reads.
pub const WDEV_RANDOM: u32 = 0x3FF2_0E44;

/// Interrupt number of the UARTs (level).
pub const INUM_UART: u32 = 5;
/// Interrupt number of the GPIO pins (level).
pub const INUM_GPIO: u32 = 4;
/// Interrupt number of FRC1 (edge).
pub const INUM_FRC1: u32 = 9;
/// Interrupt number of FRC2 (edge), the SDK's software timers.
pub const INUM_FRC2: u32 = 10;

/// One register the machine does not model, as the firmware touched it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmodelledAccess {
    /// The register's address.
    pub addr: u32,
    /// Whether it was a write.
    pub write: bool,
    /// Access width in bytes.
    pub width: u8,
    /// The value written (or 0 for a read) the first time.
    pub value: u32,
    /// The PC of the first access.
    pub pc: u32,
    /// How many times it was touched.
    pub count: u64,
}

/// The log of unmodelled registers: one entry per (address, read/write), in the
/// order first seen.
#[derive(Debug, Clone, Default)]
pub struct Unmodelled {
    entries: Vec<UnmodelledAccess>,
    index: HashMap<(u32, bool), usize>,
    reported: usize,
}

impl Unmodelled {
    fn record(&mut self, addr: u32, write: bool, width: u8, value: u32, pc: u32) {
        match self.index.get(&(addr, write)) {
            Some(&i) => self.entries[i].count += 1,
            None => {
                self.index.insert((addr, write), self.entries.len());
                self.entries.push(UnmodelledAccess {
                    addr,
                    write,
                    width,
                    value,
                    pc,
                    count: 1,
                });
            }
        }
    }

    /// Every register seen so far.
    pub fn entries(&self) -> &[UnmodelledAccess] {
        &self.entries
    }

    /// Registers first seen since the last call.
    pub fn take_new(&mut self) -> &[UnmodelledAccess] {
        let from = self.reported;
        self.reported = self.entries.len();
        &self.entries[from..]
    }
}

/// DPORT registers the machine models.
#[derive(Debug, Clone, Default)]
struct Dport {
    edge_int_enable: u32,
    cache_ctrl: u32,
    cpu_clock: u32,
    cache_size: u32,
    uart_swap: u32,
}

/// What the board was built with.
#[derive(Debug, Clone)]
pub struct BoardConfig {
    /// Why the chip starts.
    pub reset_cause: ResetCause,
    /// Boot mode straps (3: flash).
    pub boot_mode: u8,
    /// The station MAC in the eFuses.
    pub mac: [u8; 6],
    /// The access point the station can join (none: every join finds no AP).
    pub access_point: Option<crate::wifi::AccessPoint>,
}

impl Default for BoardConfig {
    fn default() -> Self {
        BoardConfig {
            reset_cause: ResetCause::External,
            boot_mode: 3,
            mac: [0x5C, 0xCF, 0x7F, 0x00, 0x00, 0x01],
            access_point: None,
        }
    }
}

/// Memories and peripherals.
#[derive(Debug, Clone)]
pub struct Board {
    /// RAM, ROM region and flash.
    pub mem: Memory,
    /// UART0, the console.
    pub uart0: Uart,
    /// UART1 (TX only on a NodeMCU).
    pub uart1: Uart,
    /// FRC1 and FRC2.
    pub timers: Timers,
    /// The hardware watchdog.
    pub watchdog: Watchdog,
    /// GPIO and IOMUX.
    pub gpio: Gpio,
    /// RTC registers.
    pub rtc: Rtc,
    /// eFuse words.
    pub efuse: Efuse,
    /// SPI0, the flash controller.
    pub spi0: SpiFlash,
    /// SPI1 (HSPI), registers only.
    pub spi1: SpiFlash,
    dport: Dport,
    /// The flash offset the next cache enable maps (set by `Cache_Read_Enable`).
    pub cache_segment: u32,
    /// The APB clock the UARTs divide: 52 MHz until the PLL is set for the 26 MHz
    /// crystal (the ROM's 74880 baud is 115200 at the wrong clock), 80 MHz after.
    pub apb_hz: u32,
    /// Machine cycles so far (the clock peripherals read).
    pub now: u64,
    /// The PC of the instruction being executed (for the log).
    pub pc: u32,
    /// Registers nothing models.
    pub unmodelled: Unmodelled,
    /// Set when an access may have changed an interrupt line.
    pub irq_dirty: bool,
    /// Flash operations done through the controller registers.
    pub flash_ops: u64,
    rng: u32,
}

impl Board {
    /// A board with `image` in flash.
    pub fn new(image: &[u8], config: &BoardConfig) -> Board {
        Board {
            mem: Memory::new(image),
            uart0: Uart::new(),
            uart1: Uart::new(),
            timers: Timers::new(),
            watchdog: Watchdog::new(),
            gpio: Gpio::new(config.boot_mode),
            rtc: Rtc::new(config.reset_cause),
            efuse: Efuse::new(config.mac),
            spi0: SpiFlash::new(),
            spi1: SpiFlash::new(),
            dport: Dport::default(),
            cache_segment: 0,
            apb_hz: 52_000_000,
            now: 0,
            pc: 0,
            unmodelled: Unmodelled::default(),
            irq_dirty: false,
            flash_ops: 0,
            rng: 0x2545_F491,
        }
    }

    /// Enables or disables the flash cache window (bit 8 of the cache control).
    pub fn set_cache(&mut self, on: bool) {
        if on {
            self.dport.cache_ctrl |= 0x100;
        } else {
            self.dport.cache_ctrl &= !0x100;
        }
        self.update_flash_map();
    }

    fn update_flash_map(&mut self) {
        self.mem.flash_map = (self.dport.cache_ctrl & 0x100 != 0).then_some(self.cache_segment);
    }

    /// The levels of the level-triggered interrupt lines 0..6.
    pub fn irq_lines(&self) -> u32 {
        let mut lines = 0;
        if self.uart0.irq() || self.uart1.irq() {
            lines |= 1 << INUM_UART;
        }
        if self.gpio.irq() {
            lines |= 1 << INUM_GPIO;
        }
        lines
    }

    /// The edge-triggered lines that pulsed since the last call: a timer's expiry
    /// reaches the CPU when DPORT's edge interrupt enable lets it through (bit 1
    /// FRC1, bit 2 FRC2), and is lost otherwise.
    pub fn take_irq_edges(&mut self) -> u32 {
        let edges = self.timers.take_edges();
        let mut out = 0;
        if edges & 1 != 0 && self.dport.edge_int_enable & 2 != 0 {
            out |= 1 << INUM_FRC1;
        }
        if edges & 2 != 0 && self.dport.edge_int_enable & 4 != 0 {
            out |= 1 << INUM_FRC2;
        }
        out
    }

    /// The next cycle at which a peripheral raises something, if any.
    pub fn next_event(&self) -> Option<u64> {
        [
            self.timers.next_event(),
            self.uart0.next_event(),
            self.uart1.next_event(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Brings the peripherals' state to `now`: timer expiries, UART bytes that
    /// arrived.
    pub fn update(&mut self, now: u64) {
        self.timers.update(now);
        self.uart0.update(now);
        self.uart1.update(now);
    }

    fn read_reg(&mut self, addr: u32, width: u8) -> u32 {
        let word = addr & !3;
        let value = self.read_word_reg(word);
        match value {
            Some(v) => v >> ((addr & 3) * 8),
            None => {
                self.unmodelled.record(addr, false, width, 0, self.pc);
                0
            }
        }
    }

    fn read_word_reg(&mut self, addr: u32) -> Option<u32> {
        let now = self.now;
        match addr {
            0x6000_0000..=0x6000_00FF => {
                // Reading the FIFO may lower the UART's interrupt.
                self.irq_dirty = true;
                self.uart0.read(addr - 0x6000_0000)
            }
            0x6000_0F00..=0x6000_0FFF => self.uart1.read(addr - 0x6000_0F00),
            0x6000_0100..=0x6000_01FF => self.spi1.read(addr - 0x6000_0100),
            0x6000_0200..=0x6000_02FF => self.spi0.read(addr - 0x6000_0200),
            0x6000_0300..=0x6000_03FF => self.gpio.read(addr - 0x6000_0300),
            0x6000_0600..=0x6000_06FF => self.timers.read(addr - 0x6000_0600, now),
            0x6000_0700..=0x6000_07FF => self.rtc.read(addr - 0x6000_0700),
            0x6000_0800..=0x6000_08FF => self.gpio.iomux_read(addr - 0x6000_0800),
            0x6000_0900..=0x6000_09FF => self.watchdog.read(addr - 0x6000_0900),
            WDEV_MICROS => Some((now / 80) as u32),
            WDEV_RANDOM => {
                // xorshift32: deterministic from reset, as a machine should be.
                let mut x = self.rng;
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                self.rng = x;
                Some(x)
            }
            DPORT_EDGE_INT_ENABLE => Some(self.dport.edge_int_enable),
            DPORT_CACHE_CTRL => Some(self.dport.cache_ctrl),
            DPORT_CPU_CLOCK => Some(self.dport.cpu_clock),
            DPORT_CACHE_SIZE => Some(self.dport.cache_size),
            DPORT_UART_SWAP => Some(self.dport.uart_swap),
            a if (EFUSE_BASE..EFUSE_BASE + 16).contains(&a) => {
                Some(self.efuse.word(((a - EFUSE_BASE) / 4) as usize))
            }
            _ => None,
        }
    }

    fn write_reg(&mut self, addr: u32, value: u32, width: u8) {
        let word = addr & !3;
        let shifted = value << ((addr & 3) * 8);
        if !self.write_word_reg(word, shifted) {
            self.unmodelled.record(addr, true, width, value, self.pc);
        }
    }

    fn write_word_reg(&mut self, addr: u32, value: u32) -> bool {
        let now = self.now;
        self.irq_dirty = true;
        match addr {
            0x6000_0000..=0x6000_00FF => {
                self.uart0
                    .write(addr - 0x6000_0000, value, self.apb_hz, now)
            }
            0x6000_0F00..=0x6000_0FFF => {
                self.uart1
                    .write(addr - 0x6000_0F00, value, self.apb_hz, now)
            }
            0x6000_0100..=0x6000_01FF => {
                let op = self
                    .spi1
                    .write(addr - 0x6000_0100, value, &mut self.mem.flash);
                op.is_some()
            }
            0x6000_0200..=0x6000_02FF => {
                match self
                    .spi0
                    .write(addr - 0x6000_0200, value, &mut self.mem.flash)
                {
                    None => false,
                    Some(FlashOp::UnknownUser(_)) => false,
                    Some(FlashOp::Other) => true,
                    Some(_) => {
                        self.flash_ops += 1;
                        true
                    }
                }
            }
            0x6000_0300..=0x6000_03FF => self.gpio.write(addr - 0x6000_0300, value),
            0x6000_0600..=0x6000_06FF => self.timers.write(addr - 0x6000_0600, value, now),
            0x6000_0700..=0x6000_07FF => self.rtc.write(addr - 0x6000_0700, value),
            0x6000_0800..=0x6000_08FF => self.gpio.iomux_write(addr - 0x6000_0800, value),
            0x6000_0900..=0x6000_09FF => self.watchdog.write(addr - 0x6000_0900, value, now),
            DPORT_EDGE_INT_ENABLE => {
                self.dport.edge_int_enable = value;
                true
            }
            DPORT_CACHE_CTRL => {
                self.dport.cache_ctrl = value;
                self.update_flash_map();
                true
            }
            DPORT_CPU_CLOCK => {
                self.dport.cpu_clock = value;
                true
            }
            DPORT_CACHE_SIZE => {
                self.dport.cache_size = value;
                true
            }
            DPORT_UART_SWAP => {
                self.dport.uart_swap = value;
                true
            }
            _ => false,
        }
    }

    #[inline]
    fn is_register(addr: u32) -> bool {
        // 0x60001000..0x60001400 (RTC memory) is RAM and is looked up first.
        (0x6000_0000..0x6001_0000).contains(&addr) || (0x3FF0_0000..0x3FF4_0000).contains(&addr)
    }

    /// IRAM and the flash behind the cache take only 32-bit accesses: a byte or
    /// halfword load or store there raises LoadStoreError (EXCCAUSE 3), which the
    /// core's non-32-bit access handler, when an image has it, carries out.
    #[inline]
    fn word_only(addr: u32) -> bool {
        addr.wrapping_sub(IRAM_BASE) < IRAM_END - IRAM_BASE
            || addr.wrapping_sub(FLASH_WINDOW) < FLASH_WINDOW_SIZE
    }

    #[inline]
    fn ram_read<const N: usize>(&mut self, addr: u32) -> Result<[u8; N], BusFault> {
        if let Some(ram) = self.mem.ram(addr) {
            return ram.read::<N>(addr).ok_or(BusFault::Unmapped);
        }
        if let Some(at) = self.mem.flash_offset(addr) {
            let mut out = [0; N];
            out.copy_from_slice(&self.mem.flash[at..at + N]);
            return Ok(out);
        }
        if addr.wrapping_sub(ROM_BASE) < ROM_SIZE {
            return self.mem.rom.read::<N>(addr).ok_or(BusFault::Unmapped);
        }
        if addr < 0x3FF0_0000 {
            // The ESP8266 reports a null (or low) pointer as a prohibited access.
            return Err(BusFault::Prohibited);
        }
        Err(BusFault::Unmapped)
    }
}

impl Bus for Board {
    #[inline]
    fn read8(&mut self, addr: u32) -> Result<u8, BusFault> {
        if Self::is_register(addr) && !self.mem.rtc.contains(addr) {
            return Ok(self.read_reg(addr, 1) as u8);
        }
        if Self::word_only(addr) {
            return Err(BusFault::Error);
        }
        self.ram_read::<1>(addr).map(|b| b[0])
    }

    #[inline]
    fn read16(&mut self, addr: u32) -> Result<u16, BusFault> {
        if Self::is_register(addr) && !self.mem.rtc.contains(addr) {
            return Ok(self.read_reg(addr, 2) as u16);
        }
        if Self::word_only(addr) {
            return Err(BusFault::Error);
        }
        self.ram_read::<2>(addr).map(u16::from_le_bytes)
    }

    #[inline]
    fn read32(&mut self, addr: u32) -> Result<u32, BusFault> {
        if Self::is_register(addr) && !self.mem.rtc.contains(addr) {
            return Ok(self.read_reg(addr, 4));
        }
        self.ram_read::<4>(addr).map(u32::from_le_bytes)
    }

    #[inline]
    fn write8(&mut self, addr: u32, value: u8) -> Result<(), BusFault> {
        if Self::word_only(addr) {
            return Err(BusFault::Error);
        }
        if let Some(ram) = self.mem.ram_mut(addr) {
            ram.write(addr, &[value]);
            return Ok(());
        }
        if Self::is_register(addr) {
            self.write_reg(addr, value.into(), 1);
            return Ok(());
        }
        Err(self.write_fault(addr))
    }

    #[inline]
    fn write16(&mut self, addr: u32, value: u16) -> Result<(), BusFault> {
        if Self::word_only(addr) {
            return Err(BusFault::Error);
        }
        if let Some(ram) = self.mem.ram_mut(addr) {
            ram.write(addr, &value.to_le_bytes());
            return Ok(());
        }
        if Self::is_register(addr) {
            self.write_reg(addr, value.into(), 2);
            return Ok(());
        }
        Err(self.write_fault(addr))
    }

    #[inline]
    fn write32(&mut self, addr: u32, value: u32) -> Result<(), BusFault> {
        if let Some(ram) = self.mem.ram_mut(addr) {
            ram.write(addr, &value.to_le_bytes());
            return Ok(());
        }
        if Self::is_register(addr) {
            self.write_reg(addr, value, 4);
            return Ok(());
        }
        Err(self.write_fault(addr))
    }

    #[inline]
    fn fetch(&mut self, pc: u32) -> Result<u32, BusFault> {
        let (bytes, off) = if pc.wrapping_sub(IRAM_BASE) < IRAM_END - IRAM_BASE - 3 {
            (self.mem.iram.bytes(), (pc - IRAM_BASE) as usize)
        } else if pc.wrapping_sub(FLASH_WINDOW) < FLASH_WINDOW_SIZE {
            match self.mem.flash_offset(pc) {
                Some(at) if at + 3 <= self.mem.flash.len() => (&self.mem.flash[..], at),
                _ => return Err(BusFault::Unmapped),
            }
        } else {
            let b = self.ram_read::<3>(pc)?;
            return Ok(u32::from(b[0]) | u32::from(b[1]) << 8 | u32::from(b[2]) << 16);
        };
        Ok(
            u32::from(bytes[off])
                | u32::from(bytes[off + 1]) << 8
                | u32::from(bytes[off + 2]) << 16,
        )
    }
}

impl Board {
    fn write_fault(&mut self, addr: u32) -> BusFault {
        if addr < 0x3FF0_0000 {
            BusFault::Prohibited
        } else {
            BusFault::Unmapped
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unmodelled_registers_are_logged_and_read_zero() {
        let mut board = Board::new(&[], &BoardConfig::default());
        board.pc = 0x4010_0123;
        assert_eq!(board.read32(0x6000_0D00), Ok(0));
        board.write32(0x6000_0D04, 7).unwrap();
        board.read32(0x6000_0D00).unwrap();
        let entries = board.unmodelled.entries();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].count, 2);
        assert!(entries[1].write && entries[1].value == 7 && entries[1].pc == 0x4010_0123);
        assert_eq!(board.unmodelled.take_new().len(), 2);
        assert!(board.unmodelled.take_new().is_empty());
    }

    #[test]
    fn the_cache_maps_flash_and_null_is_prohibited() {
        let mut board = Board::new(&[0xE9, 0, 0, 0], &BoardConfig::default());
        assert_eq!(board.read32(0x4020_0000), Err(BusFault::Unmapped));
        board.set_cache(true);
        assert_eq!(board.read32(0x4020_0000), Ok(0xE9));
        assert_eq!(board.read32(0), Err(BusFault::Prohibited));
        // Flash and IRAM take words only: bytes and halfwords are LoadStoreErrors.
        assert_eq!(board.read8(0x4020_0000), Err(BusFault::Error));
        assert_eq!(board.read16(0x4020_0002), Err(BusFault::Error));
        assert_eq!(board.write8(0x4010_0000, 1), Err(BusFault::Error));
        assert_eq!(board.write16(0x4010_8000, 1), Err(BusFault::Error));
        assert_eq!(board.read8(0x4010_0000), Err(BusFault::Error));
        board.write32(0x4010_0000, 0x1234_5678).unwrap();
        assert_eq!(board.read32(0x4010_0000), Ok(0x1234_5678));
        assert_eq!(board.write32(0x10, 0), Err(BusFault::Prohibited));
        // The efuse words and a UART byte through the bus.
        assert_eq!(board.read32(0x3FF0_005C), Ok(0x5C_CF7F));
        board.write32(0x6000_0000, u32::from(b'x')).unwrap();
        assert_eq!(board.uart0.tx[0].byte, b'x');
    }
}
