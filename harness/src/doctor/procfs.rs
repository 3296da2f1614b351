//! Readers for the Linux /proc files the doctor consults: socket tables, open file
//! descriptors and capability sets. Parsers take text so tests feed them samples.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::Path;

/// CAP_NET_BIND_SERVICE's bit in the capability sets (linux/capability.h).
pub(crate) const CAP_NET_BIND_SERVICE: u32 = 10;
/// TCP_LISTEN in the `st` column of /proc/net/tcp.
const TCP_LISTEN: u8 = 0x0A;

/// One row of /proc/net/{tcp,udp}{,6}.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SocketRow {
    pub(crate) local: SocketAddr,
    pub(crate) state: u8,
    pub(crate) uid: u32,
    pub(crate) inode: u64,
}

/// Which socket table to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Proto {
    Udp,
    Tcp,
}

/// The kernel prints each 32-bit word of an address as a host-order integer, so
/// the bytes come back with `to_ne_bytes`.
fn hex_words(hex: &str) -> Option<Vec<u8>> {
    if !hex.len().is_multiple_of(8) || hex.is_empty() {
        return None;
    }
    let mut bytes = Vec::with_capacity(hex.len() / 2);
    for chunk in hex.as_bytes().chunks(8) {
        let word = u32::from_str_radix(std::str::from_utf8(chunk).ok()?, 16).ok()?;
        bytes.extend(word.to_ne_bytes());
    }
    Some(bytes)
}

fn parse_addr(text: &str) -> Option<SocketAddr> {
    let (ip, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let bytes = hex_words(ip)?;
    let ip = match bytes.len() {
        4 => IpAddr::V4(Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])),
        16 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&bytes);
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

/// Parses one data line of /proc/net/{tcp,udp}{,6}; `None` for the header or junk.
pub(crate) fn parse_socket_line(line: &str) -> Option<SocketRow> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 10 || !fields[0].ends_with(':') {
        return None;
    }
    Some(SocketRow {
        local: parse_addr(fields[1])?,
        state: u8::from_str_radix(fields[3], 16).ok()?,
        uid: fields[7].parse().ok()?,
        inode: fields[9].parse().ok()?,
    })
}

/// The sockets bound to `port` (listening ones, for TCP), from both address families.
pub(crate) fn sockets_on_port(proto: Proto, port: u16) -> Vec<SocketRow> {
    let files: &[&str] = match proto {
        Proto::Udp => &["/proc/net/udp", "/proc/net/udp6"],
        Proto::Tcp => &["/proc/net/tcp", "/proc/net/tcp6"],
    };
    let mut rows = Vec::new();
    for file in files {
        let Ok(text) = std::fs::read_to_string(file) else {
            continue;
        };
        rows.extend(
            text.lines()
                .filter_map(parse_socket_line)
                .filter(|row| row.local.port() == port)
                .filter(|row| proto == Proto::Udp || row.state == TCP_LISTEN),
        );
    }
    rows
}

/// A process holding something open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Holder {
    pub(crate) pid: u32,
    pub(crate) command: String,
}

impl std::fmt::Display for Holder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "pid {} ({})", self.pid, self.command)
    }
}

fn command_of(pid: u32) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| c.trim().to_string())
        .unwrap_or_else(|_| "?".into())
}

/// Every other process with an open descriptor whose link satisfies `matches`.
/// Processes this user may not inspect are skipped silently: the answer is then
/// "none found", which the caller words as such.
fn scan_fds(matches: impl Fn(&Path) -> bool) -> Vec<Holder> {
    let me = std::process::id();
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut holders = Vec::new();
    for entry in procs.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == me {
            continue;
        }
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue;
        };
        let held = fds.flatten().any(|fd| {
            std::fs::read_link(fd.path())
                .map(|target| matches(&target))
                .unwrap_or(false)
        });
        if held {
            holders.push(Holder {
                pid,
                command: command_of(pid),
            });
        }
    }
    holders.sort_by_key(|h| h.pid);
    holders
}

/// Processes other than this one holding the device at `path` open. Compared by
/// device number, so a udev symlink (/dev/hil-board-…) finds holders of /dev/ttyUSB0.
pub(crate) fn device_holders(path: &Path) -> Vec<Holder> {
    let Ok(wanted) = std::fs::metadata(path).map(|m| m.rdev()) else {
        return Vec::new();
    };
    scan_fds(|target| {
        target.starts_with("/dev")
            && std::fs::metadata(target)
                .map(|m| m.file_type().is_char_device() && m.rdev() == wanted)
                .unwrap_or(false)
    })
}

/// Processes holding the socket with this inode.
pub(crate) fn socket_holders(inode: u64) -> Vec<Holder> {
    let link = format!("socket:[{inode}]");
    scan_fds(|target| target.as_os_str() == link.as_str())
}

/// The effective capability set from /proc/self/status text.
pub(crate) fn parse_cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
}

/// Whether this process may bind ports below `ip_unprivileged_port_start`.
pub(crate) fn has_net_bind_service() -> Option<bool> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_cap_eff(&status).map(|caps| caps & (1 << CAP_NET_BIND_SERVICE) != 0)
}

/// `net.ipv4.ip_unprivileged_port_start`, where the kernel has it (Linux ≥ 4.11).
pub(crate) fn unprivileged_port_start() -> Option<u16> {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .ok()?
        .trim()
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_lines() {
        // systemd-resolved's stub listener, as /proc/net/udp prints it on x86_64.
        let udp = "  2: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   991        0 23791 2 0000000000000000 0";
        let row = parse_socket_line(udp).unwrap();
        if cfg!(target_endian = "little") {
            assert_eq!(row.local, "127.0.0.53:53".parse().unwrap());
        }
        assert_eq!((row.state, row.uid, row.inode), (7, 991, 23791));

        let tcp6 = "   0: 00000000000000000000000000000000:22B3 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 40123 1 0000000000000000 100 0 0 10 0";
        let row = parse_socket_line(tcp6).unwrap();
        assert_eq!(row.local, "[::]:8883".parse().unwrap());
        assert_eq!(row.state, TCP_LISTEN);
        assert_eq!(row.inode, 40123);

        let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode";
        assert_eq!(parse_socket_line(header), None);
        assert_eq!(parse_socket_line("garbage"), None);
        assert_eq!(
            parse_socket_line("  0: ZZZZ:0035 0:0 07 0:0 0:0 0 0 0 1"),
            None
        );
    }

    #[test]
    fn cap_eff() {
        let status = "Name:\thil\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000400\nCapEff:\t0000000000000400\nCapBnd:\t000001ffffffffff\n";
        let caps = parse_cap_eff(status).unwrap();
        assert_eq!(caps, 0x400);
        assert_ne!(caps & (1 << CAP_NET_BIND_SERVICE), 0);
        let none = parse_cap_eff("CapEff:\t0000000000000000\n").unwrap();
        assert_eq!(none & (1 << CAP_NET_BIND_SERVICE), 0);
        assert_eq!(parse_cap_eff("Name:\tx\n"), None);
        assert_eq!(parse_cap_eff("CapEff:\tnot-hex\n"), None);
    }

    #[test]
    fn finds_a_device_holder_in_another_process() {
        // This process is excluded by design, so the holder must be a child.
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let fds = std::fs::read_dir(format!("/proc/{}/fd", child.id())).unwrap();
        let dev_null_rdev = std::fs::metadata("/dev/null").unwrap().rdev();
        assert!(fds.flatten().any(|fd| std::fs::metadata(fd.path())
            .map(|m| m.rdev() == dev_null_rdev)
            .unwrap_or(false)));
        let holders = device_holders(Path::new("/dev/null"));
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(holders.iter().any(|h| h.pid == child.id()), "{holders:?}");
    }
}
