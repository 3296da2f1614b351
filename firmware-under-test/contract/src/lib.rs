//! # hil-contract: what the harness and the firmware agree on
//!
//! The harness (`hil`), the reference firmware's behavioural twin (`hil-twin`)
//! and the virtual board all speak these; the sketch in
//! `firmware-under-test/esp8266` speaks them too, and the twin's lockstep test
//! keeps the two in step. They live in one small crate without native
//! libraries, so a `hil` built for real boards only (`--no-default-features`)
//! shares them without linking BearSSL.
//!
//! - [`descriptor`]: the twin's knobs and variants, as a virtual image carries them;
//! - [`provision`]: the `PROV` line's JSON schema and the compiled-in settings;
//! - [`bearssl`]: BearSSL's error numbers with their names and meanings;
//! - [`esp8266`]: baud rates, flash geometry and register addresses of the chip;
//! - [`pace`]: how fast a virtual board and its twin run;
//! - [`loader`] and [`slip`]: the ROM serial loader's and the flasher stub's protocol;
//! - [`rom`]: the lines the mask ROM prints while it loads an image;
//! - [`uart`]: how a UART at one rate hears another, and the ROM banner's garbled shape.
//!
//! ```
//! use hil_contract::{esp8266, loader};
//!
//! // A SYNC request as esptool sends it, framed for the wire.
//! let request = loader::request(loader::command::SYNC, &loader::SYNC_PAYLOAD, 0);
//! let frame = hil_contract::slip::encode(&request);
//! assert_eq!(frame.first(), Some(&0xC0));
//! assert_eq!(esp8266::ROM_LOG_BAUD, 74_880);
//! ```
#![deny(missing_docs)]

pub mod bearssl;
pub mod descriptor;
pub mod esp8266;
pub mod loader;
pub mod pace;
pub mod provision;
pub mod rom;
pub mod slip;
pub mod uart;
