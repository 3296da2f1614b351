//! An emulator of the Xtensa LX106, the ESP8266's CPU core, as QEMU's `lx106` core
//! configures it (`target/xtensa/core-lx106/core-isa.h`): call0 ABI (no register
//! windows), little-endian, the code density option's 16-bit instructions, MUL16,
//! MULL, NSA/NSAU, L32R with LITBASE, XEA2 exceptions, three interrupt levels (1, the
//! debug level 2, the NMI at 3) and one CCOMPARE timer.
//!
//! The crate is the CPU alone. A machine (memory map, peripherals, ROM functions)
//! implements [`Bus`] and calls [`Cpu::step`]; it feeds interrupt lines with
//! [`Cpu::raise_interrupt`] / [`Cpu::clear_interrupt`] and, while the CPU waits in
//! WAITI, skips idle time with [`Cpu::cycles_until_timer`] and [`Cpu::advance_cycles`].
//!
//! The layers: [`decode`](mod@decode) turns bytes into an [`Instruction`] (with a
//! disassembly), `execute` gives it meaning, [`registers`] names the special
//! registers, [`exception`] takes exceptions and interrupts. The semantics are held to
//! QEMU's by a differential test (`tests/qemu_differential.rs`) that single-steps the
//! same code in both through QEMU's gdbstub.
//!
//! ```
//! use lx106::{Bus, BusFault, Cpu, ExceptionCause, StepOutcome};
//!
//! /// 256 bytes of RAM at address 0.
//! struct Ram([u8; 256]);
//! impl Bus for Ram {
//!     fn read8(&mut self, addr: u32) -> Result<u8, BusFault> {
//!         self.0.get(addr as usize).copied().ok_or(BusFault::Unmapped)
//!     }
//!     fn write8(&mut self, addr: u32, value: u8) -> Result<(), BusFault> {
//!         *self.0.get_mut(addr as usize).ok_or(BusFault::Unmapped)? = value;
//!         Ok(())
//!     }
//! }
//!
//! let mut ram = Ram([0; 256]);
//! // At 0x10: movi a3, 100; then syscall.
//! ram.0[0x10..0x16].copy_from_slice(&[0x32, 0xa0, 0x64, 0x00, 0x50, 0x00]);
//! let mut cpu = Cpu::new();
//! cpu.set_special_register(lx106::SpecialReg::Vecbase, 0x80);
//! cpu.set_special_register(lx106::SpecialReg::Ps, 0);
//! cpu.set_pc(0x10);
//! assert_eq!(cpu.step(&mut ram), StepOutcome::Executed);
//! assert_eq!(cpu.ar(3), 100);
//! assert_eq!(cpu.step(&mut ram), StepOutcome::Exception(ExceptionCause::Syscall));
//! assert_eq!(cpu.pc(), 0x80 + 0x30); // the kernel exception vector
//! assert_eq!(cpu.special_register(lx106::SpecialReg::Epc1), 0x13);
//! ```

#![deny(missing_docs)]

mod bus;
pub mod config;
mod cpu;
pub mod decode;
pub mod exception;
mod execute;
pub mod registers;

pub use bus::{Bus, BusFault};
pub use cpu::{Cpu, StepOutcome};
pub use decode::{decode, DecodeError, Instruction, Opcode};
pub use exception::ExceptionCause;
pub use registers::SpecialReg;
