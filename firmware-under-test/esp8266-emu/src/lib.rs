//! An emulated ESP8266 that runs a real Arduino image instruction by instruction.
//!
//! The parts, one module each: the [`lx106`] CPU (its own crate); the memory map
//! ([`memory`]); the peripherals ([`uart`], [`timers`], [`watchdog`], [`gpio`] with
//! the IOMUX, [`rtc`], [`efuse`], [`spi_flash`]) behind the [`board`], which logs every
//! access to a register nothing models; the mask ROM's functions reimplemented
//! natively ([`rom`]: no ROM dump is shipped or read); the [`intercept`] table, the
//! one place the SDK's radio code is replaced at a function boundary; the Wi-Fi
//! station at the lwIP2 glue ([`wifi`]: an access point to join, Ethernet frames
//! out and in); the [`machine`] that runs them in virtual time; and [`net`], a
//! user-mode network between the board's frames and services on the host.
//!
//! ```no_run
//! use esp8266_emu::{BoardConfig, Machine, Symbols};
//!
//! let image = std::fs::read("fixtures/firmware/reference-nodemcuv2.bin").unwrap();
//! let mut machine = Machine::new(&image, &BoardConfig::default(), Symbols::empty());
//! machine.reset().unwrap();
//! machine.run(80_000_000).unwrap(); // one emulated second
//! let text: Vec<u8> = machine.take_uart0().iter().map(|b| b.byte).collect();
//! assert!(text.starts_with(b"\r\n ets Jan  8 2013,rst cause:2, boot mode:(3,6)"));
//! ```

#![deny(missing_docs)]

pub mod board;
pub mod efuse;
pub mod gpio;
pub mod intercept;
pub mod machine;
pub mod memory;
pub mod net;
pub mod rom;
pub mod rtc;
pub mod spi_flash;
pub mod symbols;
pub mod timers;
pub mod uart;
pub mod watchdog;
pub mod wifi;

pub use board::{Board, BoardConfig, UnmodelledAccess};
pub use machine::{Machine, Stop, WatchedCall};
pub use rtc::ResetCause;
pub use symbols::Symbols;
pub use wifi::{AccessPoint, DisconnectReason, Event, StationStatus};
