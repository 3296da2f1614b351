//! # hil-twin: the reference firmware's behavioural twin
//!
//! The virtual ESP8266 board cannot execute Xtensa code; when a flashed image is
//! valid, it runs this twin instead, selected by the image's descriptor. The twin
//! behaves like the reference firmware in `firmware-under-test/esp8266`: the same
//! serial lines, the same provisioning, the same network traffic.
//!
//! Its TLS is real BearSSL (the system's libbearssl, linked statically), configured
//! as the ESP8266 Arduino core's `BearSSL::WiFiClientSecure` configures it: see
//! [`tls`].
#![deny(missing_docs)]

pub mod firmware;
mod log;
pub mod mqtt;
pub mod net;
pub mod pace;
pub mod postmortem;
pub mod tls;

pub use firmware::{run, AccessPoint, BoardEnv, Console, Exit, Restart};
pub use pace::{Pace, Timings};
// What the twin shares with the harness and the sketch; re-exported so the
// twin's modules and its users name them as before.
pub use hil_contract::{bearssl, descriptor, provision};
