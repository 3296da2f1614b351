//! Serial checks: the board's port exists, this user may open it, and nobody else
//! has it; or, for RFC 2217, the server answers and speaks the protocol.

use std::fs::OpenOptions;
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serialport::{SerialPort, SerialPortType};

use super::procfs::device_holders;
use super::Check;
use crate::serial::{find_usb_port, PortSpec, Rfc2217Port, SerialError};

const UDEV_RULES: &str = "ci/udev/99-hil-esp8266.rules";

/// One line per USB serial port: `/dev/ttyUSB0 10c4:ea60 serial 0001 (CP2102…)`.
fn describe_ports() -> Vec<String> {
    let Ok(ports) = serialport::available_ports() else {
        return Vec::new();
    };
    ports
        .into_iter()
        .map(|port| match port.port_type {
            SerialPortType::UsbPort(usb) => {
                let mut line = format!("{} USB {:04x}:{:04x}", port.port_name, usb.vid, usb.pid);
                if let Some(serial) = usb.serial_number {
                    line.push_str(&format!(" serial {serial}"));
                }
                if let Some(location) = usb.location {
                    line.push_str(&format!(" location {location}"));
                }
                if let Some(product) = usb.product {
                    line.push_str(&format!(" ({product})"));
                }
                line
            }
            SerialPortType::PciPort => format!("{} PCI", port.port_name),
            SerialPortType::BluetoothPort => format!("{} Bluetooth", port.port_name),
            SerialPortType::Unknown => port.port_name,
        })
        .collect()
}

fn port_list_hint() -> String {
    let ports = describe_ports();
    if ports.is_empty() {
        "no serial ports are visible on this host; plug the board in (check `dmesg` for \
         cp210x/ch341 messages)"
            .into()
    } else {
        format!("serial ports here: {}", ports.join("; "))
    }
}

/// Without a board: which serial ports this host has.
pub fn check_serial_ports() -> Check {
    let ports = describe_ports();
    if ports.is_empty() {
        Check::warn(
            "serial: ports",
            "no serial ports found",
            "plug a board in (check `dmesg` for cp210x/ch341 messages), or pass \
             --board rfc2217://host:port for a remote one; install the udev rules in \
             ci/udev/99-hil-esp8266.rules for stable /dev/hil-board-* names",
        )
    } else {
        Check::ok("serial: ports", ports.join("; "))
    }
}

/// The checks for `--board`: existence, access and exclusivity for a local port;
/// connection and protocol for RFC 2217.
pub fn check_board(spec: &PortSpec) -> Vec<Check> {
    match spec {
        PortSpec::Rfc2217(addr) => check_rfc2217(addr),
        local => check_local(local),
    }
}

fn check_local(spec: &PortSpec) -> Vec<Check> {
    let path = match find_usb_port(spec) {
        Ok(path) => PathBuf::from(path),
        Err(_) => {
            return vec![Check::fail(
                "serial: exists",
                format!("no USB serial port matches {spec}"),
                format!(
                    "{}; the serial number and location are shown by `ls -l /dev/serial/by-id \
                     /dev/serial/by-path`",
                    port_list_hint()
                ),
            )]
        }
    };
    let shown = path.display().to_string();
    if !path.exists() {
        return vec![Check::fail(
            "serial: exists",
            format!("{shown} does not exist"),
            format!(
                "check the path and that the board is plugged in; {}",
                port_list_hint()
            ),
        )];
    }
    let found = match spec {
        PortSpec::Path(_) => format!("{shown} exists"),
        usb => format!("{usb} is {shown}"),
    };
    let mut checks = vec![Check::ok("serial: exists", found)];
    let (access, busy) = check_access(&path);
    // A port this user cannot open cannot be tried for exclusivity either.
    let denied = access.status == super::Status::Fail;
    checks.push(access);
    if !denied {
        checks.push(check_free(&path, busy));
    }
    checks
}

fn check_access(path: &Path) -> (Check, bool) {
    const NAME: &str = "serial: access";
    let shown = path.display();
    // O_NONBLOCK: a tty without carrier would otherwise block open(2) forever.
    let opened = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(path);
    match opened {
        Ok(_) => (Check::ok(NAME, format!("{shown} opens read/write")), false),
        // EBUSY from open(2) on a tty: another process set TIOCEXCL.
        Err(e) if e.raw_os_error() == Some(libc::EBUSY) => (
            Check::ok(
                NAME,
                format!(
                    "{shown} is opened exclusively elsewhere (EBUSY), so access could not be tried"
                ),
            ),
            true,
        ),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => (
            Check::fail(
                NAME,
                format!("{shown}: permission denied"),
                format!(
                    "add this user to the group owning the port (dialout on Debian/Ubuntu, \
                     uucp on Arch/Fedora): `sudo usermod -aG dialout $USER`, then log in again; \
                     or install {UDEV_RULES} (sudo cp {UDEV_RULES} /etc/udev/rules.d/ && sudo \
                     udevadm control --reload && sudo udevadm trigger --subsystem-match=tty)"
                ),
            ),
            false,
        ),
        Err(e) => (
            Check::fail(
                NAME,
                format!("{shown} cannot be opened: {e}"),
                "check that it is a serial device (`ls -l` it) and that the board is plugged in",
            ),
            false,
        ),
    }
}

fn check_free(path: &Path, busy: bool) -> Check {
    const NAME: &str = "serial: free";
    let shown = path.display();
    let holders = device_holders(path);
    if !holders.is_empty() {
        let names: Vec<String> = holders.iter().map(|h| h.to_string()).collect();
        let pids: Vec<String> = holders.iter().map(|h| h.pid.to_string()).collect();
        return Check::fail(
            NAME,
            format!(
                "{shown} is held open by {}{}",
                names.join(", "),
                if busy { " (exclusively, TIOCEXCL)" } else { "" }
            ),
            format!(
                "stop what holds it (a monitor, screen/minicom, ModemManager, a stuck hil or \
                 esptool): `kill {}`; ModemManager: `sudo systemctl disable --now ModemManager`",
                pids.join(" ")
            ),
        );
    }
    if busy {
        return Check::fail(
            NAME,
            format!("{shown} is opened exclusively (TIOCEXCL) by a process this user cannot see"),
            format!("find it with `sudo fuser -v {shown}` and stop it"),
        );
    }
    // Only tried when no holder is visible: as root, setting and clearing TIOCEXCL
    // here would clear another process's exclusive claim.
    match serialport::new(path.to_string_lossy(), 115_200)
        .timeout(Duration::from_millis(100))
        .open()
    {
        Ok(port) => {
            drop(port);
            Check::ok(NAME, format!("{shown} is not held by any other process"))
        }
        Err(e) if e.kind() == serialport::ErrorKind::NoDevice => Check::fail(
            NAME,
            format!("{shown} is locked by another process ({e})"),
            format!("find it with `sudo fuser -v {shown}` and stop it"),
        ),
        Err(e) => Check::fail(
            NAME,
            format!("{shown} cannot be opened as a serial port: {e}"),
            "check that it is a tty (`stty -F` it)",
        ),
    }
}

/// One connection does both checks: RFC 2217 servers for a single board (ser2net,
/// esp_rfc2217_server) may take a while to accept the next client after one leaves.
fn check_rfc2217(addr: &str) -> Vec<Check> {
    const CONNECT: &str = "rfc2217: connect";
    const PROTOCOL: &str = "rfc2217: protocol";
    let farm_hint = "start the RFC 2217 server on the board host (ser2net with \
                     `telnet(rfc2217)`, esp_rfc2217_server.py, or `hil vboard`), check host, port \
                     and firewall; see docs/board-farm.md";
    let connected = || Check::ok(CONNECT, format!("{addr} accepts TCP connections"));
    match Rfc2217Port::open(addr, 115_200) {
        Ok(port) => vec![
            connected(),
            Check::ok(PROTOCOL, format!("{addr} agreed to COM-PORT-OPTION")),
            check_answers(addr, port),
        ],
        // The client reports I/O errors during negotiation as connect errors too;
        // a reset or a closed pipe means the connection itself was made.
        Err(SerialError::Rfc2217Connect { source, .. })
            if !matches!(
                source.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::UnexpectedEof
            ) =>
        {
            vec![Check::fail(
                CONNECT,
                format!("cannot connect to {addr}: {source}"),
                farm_hint,
            )]
        }
        Err(SerialError::Rfc2217Connect { source, .. }) => vec![
            connected(),
            Check::fail(
                PROTOCOL,
                format!("{addr} dropped the session during RFC 2217 negotiation: {source}"),
                "check the server's log; a server for one board refuses a second client \
                 while another job holds it: stop other jobs using it; see docs/board-farm.md",
            ),
        ],
        Err(SerialError::NotRfc2217 { .. }) => vec![
            connected(),
            Check::fail(
                PROTOCOL,
                format!("{addr} accepts connections but does not speak RFC 2217 (no DO COM-PORT-OPTION within 3 s)"),
                "point --board at an RFC 2217 server: ser2net needs `telnet(rfc2217)` in its \
                 accepter (plain `raw` will not do); see docs/board-farm.md",
            ),
        ],
        Err(e) => vec![
            connected(),
            Check::fail(
                PROTOCOL,
                format!("{addr}: {e}"),
                "the server dropped the session; a server for one board refuses a second \
                 client while another job holds it: stop other jobs using it; see \
                 docs/board-farm.md",
            ),
        ],
    }
}

/// Which COM-PORT-OPTION requests the server answers. DTR and RTS are probed by
/// releasing both, the lines' state while a board runs its firmware (EN and GPIO0
/// high), so the check never resets the board.
fn check_answers(addr: &str, mut port: Rfc2217Port) -> Check {
    const NAME: &str = "rfc2217: options";
    let released = port
        .write_data_terminal_ready(false)
        .and_then(|()| port.write_request_to_send(false));
    if let Err(e) = released {
        return Check::fail(
            NAME,
            format!("{addr} dropped the session when DTR/RTS were set: {e}"),
            "check the server's log; see docs/board-farm.md",
        );
    }
    let answered = port.acknowledged(Duration::from_secs(1));
    let options = [
        ("baud rate", answered.baud),
        ("data size", answered.data_size),
        ("parity", answered.parity),
        ("stop size", answered.stop_size),
        ("control (DTR/RTS)", answered.control),
    ];
    let names = |yes: bool| -> Vec<&str> {
        options
            .iter()
            .filter(|(_, a)| *a == yes)
            .map(|(name, _)| *name)
            .collect()
    };
    let (answers, silent) = (names(true), names(false));
    if silent.is_empty() {
        return Check::ok(
            NAME,
            format!("{addr} answers every option: {}", answers.join(", ")),
        );
    }
    let detail = format!(
        "{addr} answers {} but never {}",
        if answers.is_empty() {
            "nothing".to_string()
        } else {
            answers.join(", ")
        },
        silent.join(", ")
    );
    let fix = if answered.control {
        "hil sends these options without waiting for answers; if the board misbehaves, \
         check the server's serial settings"
            .to_string()
    } else {
        "hil sends DTR/RTS without waiting for an answer (as labgrid's client does), so \
         flashing and reset work when the server passes the lines on; a server in front of a \
         pty (ser2net for a labgrid RawSerialPort bridged with socat) has no lines to pass on: \
         serve the board's own tty, or reach it with ser2net's `telnet(rfc2217)` connector"
            .to_string()
    };
    Check::warn(NAME, detail, fix)
}
