//! UART0 (0x60000000) and UART1 (0x60000F00): the FIFOs, the interrupt and status
//! registers the ROM and the core's `uart.cpp` use, and the line rate from the clock
//! divisor.
//!
//! Transmission is instantaneous: a byte written to the FIFO leaves at once (the TX
//! FIFO always reads empty) and is recorded with the line rate it left at, which is
//! what a listener needs to tell the ROM's 74880 baud from the sketch's 115200.
//!
//! Reception takes the line's time: bytes handed to [`Uart::receive`] are on the
//! wire one after the other, each arriving in the RX FIFO ten bit times (8N1) after
//! the one before, at the rate the divisor gives then. The FIFO holds 128 bytes;
//! one more is lost and raises the overflow interrupt. The FIFO-full interrupt
//! follows the CONF1 threshold; the timeout interrupt (CONF1 bit 31) comes once
//! the line has been quiet for the CONF1 timeout (in byte times) with bytes left.

use std::collections::VecDeque;

use crate::machine::CPU_HZ;

/// FIFO register (read: next RX byte; write: a byte to send).
pub const FIFO: u32 = 0x00;
/// Raw interrupt status.
pub const INT_RAW: u32 = 0x04;
/// Interrupt status (raw and enabled).
pub const INT_ST: u32 = 0x08;
/// Interrupt enable.
pub const INT_ENA: u32 = 0x0C;
/// Interrupt clear (write 1s).
pub const INT_CLR: u32 = 0x10;
/// Clock divisor: line rate = UART clock / divisor.
pub const CLKDIV: u32 = 0x14;
/// Auto-baud configuration.
pub const AUTOBAUD: u32 = 0x18;
/// Status: RX FIFO count in bits 0..8, TX FIFO count in bits 16..24.
pub const STATUS: u32 = 0x1C;
/// Configuration 0 (frame format, FIFO resets in bits 17 (RX) and 18 (TX)).
pub const CONF0: u32 = 0x20;
/// Configuration 1 (RX full threshold bits 0..7, RX timeout enable bit 31).
pub const CONF1: u32 = 0x24;
/// Low pulse (auto-baud).
pub const LOWPULSE: u32 = 0x28;
/// High pulse (auto-baud).
pub const HIGHPULSE: u32 = 0x2C;
/// Received edge count (auto-baud).
pub const RXD_CNT: u32 = 0x30;
/// Date register (a version constant).
pub const DATE: u32 = 0x78;
/// ID register.
pub const ID: u32 = 0x7C;

/// INT bit: RX FIFO holds at least the CONF1 threshold.
pub const INT_RXFIFO_FULL: u32 = 1 << 0;
/// INT bit: TX FIFO below its threshold (always: it drains at once).
pub const INT_TXFIFO_EMPTY: u32 = 1 << 1;
/// INT bit: a received byte found the RX FIFO full and was lost.
pub const INT_RXFIFO_OVF: u32 = 1 << 4;
/// INT bit: RX FIFO holds bytes and the line went quiet.
pub const INT_RXFIFO_TOUT: u32 = 1 << 8;
/// The RX FIFO's size.
pub const RX_FIFO_LEN: usize = 128;
/// Bits per frame on the line: start, eight data bits, stop (8N1).
pub const BITS_PER_FRAME: u64 = 10;

/// One byte that left a UART.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TxByte {
    /// The byte.
    pub byte: u8,
    /// The line rate it was sent at (UART clock / divisor).
    pub baud: u32,
    /// The machine's cycle count when it was written.
    pub cycle: u64,
}

/// One UART.
#[derive(Debug, Clone)]
pub struct Uart {
    /// Bytes received, not yet read.
    pub rx: VecDeque<u8>,
    /// Bytes on the wire: each with the cycle at which it reaches the RX FIFO.
    incoming: VecDeque<(u64, u8)>,
    /// When the last byte reached the FIFO (for the timeout interrupt).
    last_arrival: u64,
    /// The timeout interrupt has fired for the current quiet spell.
    tout_fired: bool,
    /// CPU cycles per bit at the divisor and clock the last write saw.
    cycles_per_bit: u64,
    /// Bytes sent, not yet taken by the machine's user.
    pub tx: Vec<TxByte>,
    int_latched: u32,
    int_ena: u32,
    clkdiv: u32,
    autobaud: u32,
    conf0: u32,
    conf1: u32,
}

impl Default for Uart {
    fn default() -> Self {
        Uart::new()
    }
}

impl Uart {
    /// A UART as after reset: divisor for 115200 at 80 MHz, thresholds as the chip's.
    pub fn new() -> Uart {
        Uart {
            rx: VecDeque::new(),
            incoming: VecDeque::new(),
            last_arrival: 0,
            tout_fired: true,
            cycles_per_bit: 694,
            tx: Vec::new(),
            int_latched: 0,
            int_ena: 0,
            clkdiv: 694,
            autobaud: 0,
            conf0: 0x1C,
            conf1: 0x6060,
        }
    }

    /// The line rate for a UART clock of `clock_hz` (rounded).
    pub fn baud(&self, clock_hz: u32) -> u32 {
        let div = self.clkdiv & 0xF_FFFF;
        if div == 0 {
            return 0;
        }
        (clock_hz + div / 2) / div
    }

    /// Sets the clock divisor (what the ROM's `uart_div_modify` does).
    pub fn set_clkdiv(&mut self, div: u32) {
        self.clkdiv = div & 0xF_FFFF;
    }

    fn int_raw(&self) -> u32 {
        let mut raw = self.int_latched | INT_TXFIFO_EMPTY;
        let threshold = (self.conf1 & 0x7F).max(1) as usize;
        if self.rx.len() >= threshold {
            raw |= INT_RXFIFO_FULL;
        }
        raw
    }

    /// Puts `bytes` on the RX line after whatever is already on it, starting at
    /// `now` (machine cycles) if the line is free: each byte reaches the FIFO one
    /// frame time after the previous, at the rate the divisor gives with the UART
    /// clock at `clock_hz`.
    pub fn receive(&mut self, bytes: &[u8], now: u64, clock_hz: u32) {
        let div = u64::from(self.clkdiv.max(1));
        self.cycles_per_bit = (div * CPU_HZ / u64::from(clock_hz.max(1))).max(1);
        let frame = BITS_PER_FRAME * self.cycles_per_bit.max(1);
        let mut at = self.incoming.back().map_or(now, |&(t, _)| t.max(now));
        for &b in bytes {
            at += frame;
            self.incoming.push_back((at, b));
        }
    }

    /// Bytes still on the wire.
    pub fn incoming(&self) -> usize {
        self.incoming.len()
    }

    fn tout_at(&self) -> Option<u64> {
        if self.conf1 & (1 << 31) == 0 || self.rx.is_empty() || self.tout_fired {
            return None;
        }
        let bytes = u64::from((self.conf1 >> 24) & 0x7F).max(1);
        Some(self.last_arrival + bytes * BITS_PER_FRAME * self.cycles_per_bit.max(1))
    }

    /// Moves the bytes that have arrived by `now` into the FIFO (or loses them to a
    /// full one) and latches the timeout interrupt when its moment has come.
    pub fn update(&mut self, now: u64) {
        while let Some(&(at, b)) = self.incoming.front() {
            if at > now {
                break;
            }
            self.incoming.pop_front();
            if self.rx.len() < RX_FIFO_LEN {
                self.rx.push_back(b);
            } else {
                self.int_latched |= INT_RXFIFO_OVF;
            }
            self.last_arrival = at;
            self.tout_fired = false;
        }
        if self.tout_at().is_some_and(|t| now >= t) {
            self.int_latched |= INT_RXFIFO_TOUT;
            self.tout_fired = true;
        }
    }

    /// The next cycle at which something arrives or the timeout latches.
    pub fn next_event(&self) -> Option<u64> {
        let next = self.incoming.front().map(|&(t, _)| t);
        match (next, self.tout_at()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether the UART's interrupt output is asserted.
    pub fn irq(&self) -> bool {
        self.int_raw() & self.int_ena != 0
    }

    /// Reads a register; `None` if the UART does not model it.
    pub fn read(&mut self, offset: u32) -> Option<u32> {
        Some(match offset {
            FIFO => self.rx.pop_front().map_or(0, u32::from),
            INT_RAW => self.int_raw(),
            INT_ST => self.int_raw() & self.int_ena,
            INT_ENA => self.int_ena,
            CLKDIV => self.clkdiv,
            AUTOBAUD => self.autobaud,
            STATUS => self.rx.len().min(128) as u32,
            CONF0 => self.conf0,
            CONF1 => self.conf1,
            LOWPULSE | HIGHPULSE => 0xFFFFF,
            RXD_CNT => 0,
            DATE => 0x0620_0000,
            ID => 0x0000_0500,
            _ => return None,
        })
    }

    /// Writes a register; false if the UART does not model it. A byte written to the
    /// FIFO is sent at once at the rate `clock_hz` and the divisor give.
    pub fn write(&mut self, offset: u32, value: u32, clock_hz: u32, cycle: u64) -> bool {
        match offset {
            FIFO => {
                let baud = self.baud(clock_hz);
                self.tx.push(TxByte {
                    byte: value as u8,
                    baud,
                    cycle,
                });
            }
            INT_ENA => self.int_ena = value & 0x1FF,
            INT_CLR => self.int_latched &= !value,
            CLKDIV => self.set_clkdiv(value),
            AUTOBAUD => self.autobaud = value,
            CONF0 => {
                if value & (1 << 17) != 0 {
                    self.rx.clear();
                }
                self.conf0 = value;
            }
            CONF1 => self.conf1 = value,
            _ => return false,
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tx_records_the_line_rate_and_rx_feeds_the_fifo() {
        let mut uart = Uart::new();
        assert!(uart.write(CLKDIV, 80_000_000 / 115_200, 80_000_000, 0));
        assert!(uart.write(FIFO, b'A' as u32, 80_000_000, 7));
        assert_eq!(
            uart.tx,
            vec![TxByte {
                byte: b'A',
                baud: 115_274,
                cycle: 7
            }]
        );
        // The ROM's divisor on a 26 MHz crystal the chip believes is 40 MHz: 74880-ish.
        assert_eq!(uart.baud(52_000_000), 74_928);
        uart.rx.extend(b"hi");
        assert_eq!(uart.read(STATUS), Some(2));
        assert!(!uart.irq());
        assert!(uart.write(CONF1, 1, 0, 0));
        assert!(uart.write(INT_ENA, INT_RXFIFO_FULL, 0, 0));
        assert!(uart.irq());
        assert_eq!(uart.read(FIFO), Some(b'h' as u32));
        assert_eq!(uart.read(FIFO), Some(b'i' as u32));
        assert!(!uart.irq());
        assert_eq!(uart.read(0x40), None);
    }

    #[test]
    fn received_bytes_take_the_line_time_and_interrupt_at_the_threshold() {
        let mut uart = Uart::new();
        uart.set_clkdiv(80_000_000 / 115_200);
        uart.write(CONF1, 4, 0, 0);
        uart.write(INT_ENA, INT_RXFIFO_FULL | INT_RXFIFO_OVF, 0, 0);
        uart.receive(b"hello", 1000, 80_000_000);
        // 694 cycles a bit, ten bits a byte.
        assert_eq!(uart.next_event(), Some(1000 + 6940));
        uart.update(1000 + 6939);
        assert_eq!(uart.read(STATUS), Some(0), "not there before its stop bit");
        uart.update(1000 + 3 * 6940);
        assert_eq!(uart.read(STATUS), Some(3));
        assert!(!uart.irq(), "below the threshold of 4");
        uart.update(1000 + 4 * 6940);
        assert!(uart.irq());
        assert_eq!(uart.read(FIFO), Some(u32::from(b'h')));
        assert!(!uart.irq(), "reading drains it below the threshold");
        // More bytes queue behind those still on the wire.
        uart.receive(b"!", 0, 80_000_000);
        assert_eq!(uart.incoming(), 2);
        uart.update(u64::MAX);
        let got: Vec<u8> = std::iter::from_fn(|| uart.rx.pop_front()).collect();
        assert_eq!(got, b"ello!");
    }

    #[test]
    fn a_full_fifo_loses_bytes_and_says_so_and_a_quiet_line_times_out() {
        let mut uart = Uart::new();
        uart.set_clkdiv(80_000_000 / 115_200);
        uart.write(INT_ENA, INT_RXFIFO_OVF | INT_RXFIFO_TOUT, 0, 0);
        uart.write(CONF1, 0x7F | 2 << 24 | 1 << 31, 0, 0);
        uart.receive(&[0x55; RX_FIFO_LEN + 1], 0, 80_000_000);
        uart.update(u64::from(RX_FIFO_LEN as u32) * 6940);
        assert_eq!(uart.rx.len(), RX_FIFO_LEN);
        assert!(!uart.irq());
        let last = (RX_FIFO_LEN as u64 + 1) * 6940;
        uart.update(last);
        assert_eq!(uart.rx.len(), RX_FIFO_LEN);
        assert_eq!(uart.read(INT_ST), Some(INT_RXFIFO_OVF));
        uart.write(INT_CLR, INT_RXFIFO_OVF, 0, 0);
        assert!(!uart.irq());
        // Two byte times of silence: the timeout, once.
        assert_eq!(uart.next_event(), Some(last + 2 * 6940));
        uart.update(last + 2 * 6940);
        assert_eq!(uart.read(INT_ST), Some(INT_RXFIFO_TOUT));
        uart.write(INT_CLR, INT_RXFIFO_TOUT, 0, 0);
        assert_eq!(uart.next_event(), None);
        uart.update(u64::MAX);
        assert!(!uart.irq());
    }

    #[test]
    fn rx_fifo_reset_empties_it() {
        let mut uart = Uart::new();
        uart.rx.extend(b"junk");
        assert!(uart.write(CONF0, 0x1C | 1 << 17, 0, 0));
        assert_eq!(uart.read(STATUS), Some(0));
    }
}
