//! Serial links to a board: a local port (by path, USB serial number or USB
//! location, reopened after re-enumeration) or an RFC 2217 URL (a remote board
//! exported by ser2net/labgrid, or the virtual board). Both are
//! `Box<dyn serialport::SerialPort>`, so espflash drives either.
//!
//! ```no_run
//! use hil::serial::PortSpec;
//!
//! let spec: PortSpec = "rfc2217://127.0.0.1:4000".parse()?;
//! let mut port = spec.open(115_200)?;
//! port.write_data_terminal_ready(false)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod console;
mod follow;
mod lines;
mod local;
pub(crate) mod rfc2217_client;
pub mod session;

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

pub use console::{boot_and_watch, BootPlan};
pub use follow::{follow, FollowOptions, SerialItem};
pub use lines::LineSplitter;
pub use local::{find_usb_port, open_local};
pub use rfc2217_client::{Acknowledged, Rfc2217Port};

/// What can go wrong opening or using a serial link.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum SerialError {
    /// A port spec that is neither a path, `serial:`, `location:` nor `rfc2217://`.
    #[error("`{spec}` is not a serial port")]
    #[diagnostic(
        code(hil::serial::bad_spec),
        help("use a device path (/dev/ttyUSB0), serial:<USB serial number>, location:<bus-port.port> or rfc2217://host:port")
    )]
    BadSpec {
        /// What was given.
        spec: String,
    },
    /// The local port could not be opened.
    #[error("cannot open serial port {path}")]
    #[diagnostic(
        code(hil::serial::open),
        help(
            "check the path, that the board is plugged in, and that you may use it (group dialout)"
        )
    )]
    Open {
        /// The device.
        path: String,
        /// Why.
        #[source]
        source: serialport::Error,
    },
    /// Setting up or driving a port reached over the network failed.
    #[error("the RFC 2217 session with {addr} failed")]
    #[diagnostic(
        code(hil::serial::remote),
        help(
            "the board is served over the network: check that the RFC 2217 server (ser2net, \
             a labgrid exporter) still runs and serves this board, that no other client holds \
             it, and the network between; `hil doctor` with this board lists what the server \
             answers"
        )
    )]
    Remote {
        /// host:port.
        addr: String,
        /// Why.
        #[source]
        source: serialport::Error,
    },
    /// No USB serial port matches.
    #[error("no USB serial port with {what}")]
    #[diagnostic(
        code(hil::serial::not_found),
        help(
            "plug the board in, or list ports with `ls -l /dev/serial/by-id` to see serial numbers"
        )
    )]
    NotFound {
        /// What was looked for.
        what: String,
    },
    /// The TCP connection to an RFC 2217 server failed.
    #[error("cannot reach the RFC 2217 server at {addr}")]
    #[diagnostic(
        code(hil::serial::rfc2217_connect),
        help("check the host and port; for a virtual board, is `hil vboard` running?")
    )]
    Rfc2217Connect {
        /// host:port.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The server never agreed to COM-PORT-OPTION.
    #[error("{addr} does not speak RFC 2217 (no DO COM-PORT-OPTION within 3 s)")]
    #[diagnostic(
        code(hil::serial::not_rfc2217),
        help("point at an RFC 2217 server (ser2net with `telnet(rfc2217)`, esp_rfc2217_server, hil vboard)")
    )]
    NotRfc2217 {
        /// host:port.
        addr: String,
    },
    /// Reading or writing an open port failed.
    #[error("serial I/O on {path} failed")]
    #[diagnostic(
        code(hil::serial::io),
        help("the board or its link went away; check the cable or the RFC 2217 server")
    )]
    Io {
        /// The port.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

impl SerialError {
    /// A failure setting up or driving the open port `spec`: a local device's
    /// help for a local port, a network port's help for an RFC 2217 one.
    pub fn on_port(spec: &PortSpec, source: serialport::Error) -> SerialError {
        match spec {
            PortSpec::Rfc2217(addr) => SerialError::Remote {
                addr: addr.clone(),
                source,
            },
            local => SerialError::Open {
                path: local.to_string(),
                source,
            },
        }
    }
}

/// Which port to open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortSpec {
    /// A device path, e.g. /dev/ttyUSB0.
    Path(PathBuf),
    /// The USB serial port whose adapter has this serial number.
    UsbSerial(String),
    /// The USB serial port at this bus location, e.g. `1-1.2`.
    UsbLocation(String),
    /// An RFC 2217 server, `host:port`.
    Rfc2217(String),
}

impl FromStr for PortSpec {
    type Err = SerialError;

    fn from_str(spec: &str) -> Result<PortSpec, SerialError> {
        let bad = || SerialError::BadSpec {
            spec: spec.to_string(),
        };
        if let Some(rest) = spec.strip_prefix("rfc2217://") {
            let addr = rest.split(['?', '/']).next().unwrap_or_default();
            let (host, port) = addr.rsplit_once(':').ok_or_else(bad)?;
            if host.is_empty() || port.parse::<u16>().is_err() {
                return Err(bad());
            }
            return Ok(PortSpec::Rfc2217(addr.to_string()));
        }
        if let Some(serial) = spec.strip_prefix("serial:") {
            return if serial.is_empty() {
                Err(bad())
            } else {
                Ok(PortSpec::UsbSerial(serial.to_string()))
            };
        }
        if let Some(location) = spec.strip_prefix("location:") {
            return if location.is_empty() {
                Err(bad())
            } else {
                Ok(PortSpec::UsbLocation(location.to_string()))
            };
        }
        if spec.is_empty() || spec.contains("://") {
            return Err(bad());
        }
        Ok(PortSpec::Path(PathBuf::from(spec)))
    }
}

impl fmt::Display for PortSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PortSpec::Path(path) => write!(f, "{}", path.display()),
            PortSpec::UsbSerial(serial) => write!(f, "serial:{serial}"),
            PortSpec::UsbLocation(location) => write!(f, "location:{location}"),
            PortSpec::Rfc2217(addr) => write!(f, "rfc2217://{addr}"),
        }
    }
}

impl PortSpec {
    /// Opens the port at `baud`, 8N1, no flow control. A USB spec is looked up
    /// again on every call, so calling this after re-enumeration finds the board
    /// under its new device name.
    pub fn open(&self, baud: u32) -> Result<Box<dyn serialport::SerialPort>, SerialError> {
        match self {
            PortSpec::Rfc2217(addr) => Ok(Box::new(Rfc2217Port::open(addr, baud)?)),
            local => open_local(local, baud),
        }
    }

    /// Whether this is a remote (RFC 2217) port.
    pub fn is_remote(&self) -> bool {
        matches!(self, PortSpec::Rfc2217(_))
    }
}

/// Writes the provisioning line at the firmware's prompt and notes on the
/// timeline that it was sent, never what: it holds passwords and keys.
pub(crate) fn send_provisioning(
    port: &mut dyn serialport::SerialPort,
    line: &str,
    timeline: Option<&crate::timeline::Timeline>,
    device: Option<std::net::IpAddr>,
) -> std::io::Result<()> {
    port.write_all(line.as_bytes())?;
    if let Some(timeline) = timeline {
        timeline.record(
            crate::timeline::Source::Harness,
            device,
            crate::timeline::EventKind::Harness {
                what: crate::timeline::HarnessEvent::ProvisioningSent {
                    line: crate::provisioning::redacted(line),
                },
            },
        );
    }
    Ok(())
}

/// Resets the board into its firmware the way esptool's hard reset does: EN held
/// low for 100 ms through RTS, with DTR released so GPIO0 stays high.
pub fn hard_reset(port: &mut dyn serialport::SerialPort) -> Result<(), serialport::Error> {
    port.write_data_terminal_ready(false)?;
    port.write_request_to_send(true)?;
    // The pulse width the RC on EN needs; not a wait for an event.
    std::thread::sleep(std::time::Duration::from_millis(100));
    port.write_request_to_send(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs() {
        assert_eq!(
            "rfc2217://127.0.0.1:4000?ign_set_control"
                .parse::<PortSpec>()
                .unwrap(),
            PortSpec::Rfc2217("127.0.0.1:4000".into())
        );
        assert_eq!(
            "/dev/ttyUSB0".parse::<PortSpec>().unwrap(),
            PortSpec::Path("/dev/ttyUSB0".into())
        );
        assert_eq!(
            "serial:A50285BI".parse::<PortSpec>().unwrap(),
            PortSpec::UsbSerial("A50285BI".into())
        );
        assert_eq!(
            "location:1-1.2".parse::<PortSpec>().unwrap(),
            PortSpec::UsbLocation("1-1.2".into())
        );
        for bad in [
            "",
            "rfc2217://nohost",
            "rfc2217://h:99999",
            "tcp://x:1",
            "serial:",
        ] {
            assert!(bad.parse::<PortSpec>().is_err(), "{bad}");
        }
    }
}
