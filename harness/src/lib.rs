//! # hil: a hardware-in-the-loop harness for ESP8266 MQTT/TLS firmware
//!
//! The harness flashes firmware to an ESP8266 (a real board, a remote one over
//! RFC 2217, or the virtual board), stands up a *lab* that impersonates the device's
//! broker with deliberately broken certificates, and checks what the device prints
//! and does on the network, scenario by scenario.
//!
//! This crate is the library behind the `hil` binary. Its parts:
//!
//! - [`pki`]: the certificate catalogue, every profile of the catalogue generated
//!   relative to an explicit lab clock.
//! - [`lab`]: the TLS front, MQTT broker, NTP and DNS servers the device talks to,
//!   under per-device policies.
//! - [`duration`]: durations as features write them (`-2 days`, `500 ms`).
//! - [`timeline`]: every event from the lab and the boards on one clock.
//! - [`crash`]: crash dumps read from the serial output, decoded through the ELF.
//! - [`bearssl`]: BearSSL's error numbers, the language the device reports in.
//! - [`flash`]: flashing through espflash 2.1, with skip-if-same and MD5 verification.
//! - [`image`]: the ESP8266 ROM's v1 application image, parsed and checked.
//! - [`serial`]: serial links to boards: local ports and RFC 2217.
//! - [`doctor`]: what a CI runner needs (ports, privileges, tools), each problem with its fix.
//! - [`vboard`]: the virtual ESP8266 board, reached over RFC 2217 on loopback.
//!
//! ```
//! use hil::pki::{Catalogue, ProfileId};
//! use time::macros::datetime;
//!
//! let catalogue = Catalogue::generate(datetime!(2026-01-01 0:00 UTC))?;
//! let valid = catalogue.profile(ProfileId::Valid)?;
//! assert_eq!(valid.host(), "broker.hil.test");
//! assert_eq!(valid.broker_chain().len(), 2); // leaf + "HIL Intermediate A"
//! # Ok::<(), hil::Error>(())
//! ```
#![deny(missing_docs)]

pub use hil_contract::bearssl;
pub mod artifact;
pub mod crash;
pub mod doctor;
pub mod duration;
pub mod farm;
pub mod flash;
pub mod image;
pub mod lab;
pub mod logprofile;
pub mod pki;
pub mod provisioning;
pub mod report;
pub mod runner;
pub mod serial;
pub mod timeline;
#[cfg(feature = "virtual")]
pub mod vboard;
pub mod vfirmware;

mod error;
// The targets drive the virtual board's loader and RFC 2217 server too.
#[cfg(feature = "virtual")]
#[doc(hidden)]
pub mod fuzz;
mod telnet;

pub use error::Error;
