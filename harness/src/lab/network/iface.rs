//! This host's interfaces, routes and capabilities, as the served network needs
//! them: does the interface exist and is it up, which networks are already in
//! use, may this process change addresses and firewall rules. Everything is read
//! in the calling process's network namespace.

use std::ffi::CStr;
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Command;

use super::addr::Ipv4Cidr;

/// One interface and its IPv4 addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// Its name.
    pub name: String,
    /// Administratively up (`ip link set NAME up`).
    pub up: bool,
    /// Carrier present (a cable, an associated radio, a veth peer that is up).
    pub lower_up: bool,
    /// The loopback interface.
    pub loopback: bool,
    /// Its IPv4 addresses with their prefixes.
    pub ipv4: Vec<Ipv4Cidr>,
}

/// Every interface of this network namespace, in kernel order.
#[allow(unsafe_code)]
pub fn interfaces() -> std::io::Result<Vec<Interface>> {
    let mut found: Vec<Interface> = Vec::new();
    let mut head: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills `head` with a list it allocated, which is freed
    // below with freeifaddrs and not used after.
    if unsafe { libc::getifaddrs(&mut head) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let mut cursor = head;
    while !cursor.is_null() {
        // SAFETY: `cursor` is a non-null node of the list getifaddrs returned.
        let entry = unsafe { &*cursor };
        cursor = entry.ifa_next;
        if entry.ifa_name.is_null() {
            continue;
        }
        // SAFETY: ifa_name is a NUL-terminated string owned by the list.
        let name = unsafe { CStr::from_ptr(entry.ifa_name) }
            .to_string_lossy()
            .into_owned();
        let flags = entry.ifa_flags;
        let index = match found.iter().position(|i| i.name == name) {
            Some(index) => index,
            None => {
                found.push(Interface {
                    name,
                    up: flags & libc::IFF_UP as u32 != 0,
                    lower_up: flags & libc::IFF_RUNNING as u32 != 0,
                    loopback: flags & libc::IFF_LOOPBACK as u32 != 0,
                    ipv4: Vec::new(),
                });
                found.len() - 1
            }
        };
        if entry.ifa_addr.is_null() {
            continue;
        }
        // SAFETY: ifa_addr points to a sockaddr whose family says its layout.
        let family = unsafe { (*entry.ifa_addr).sa_family };
        if i32::from(family) != libc::AF_INET {
            continue;
        }
        // SAFETY: an AF_INET address is a sockaddr_in; the netmask of an AF_INET
        // entry is one too (or null).
        let (address, mask) = unsafe {
            let address = (*(entry.ifa_addr as *const libc::sockaddr_in))
                .sin_addr
                .s_addr;
            let mask = if entry.ifa_netmask.is_null() {
                u32::MAX.to_be()
            } else {
                (*(entry.ifa_netmask as *const libc::sockaddr_in))
                    .sin_addr
                    .s_addr
            };
            (address, mask)
        };
        let address = Ipv4Addr::from(u32::from_be(address));
        let prefix = u8::try_from(u32::from_be(mask).count_ones()).unwrap_or(32);
        if let Some(cidr) = Ipv4Cidr::new(address, prefix) {
            found[index].ipv4.push(cidr);
        }
    }
    // SAFETY: `head` came from getifaddrs and is freed exactly once.
    unsafe { libc::freeifaddrs(head) };
    Ok(found)
}

/// One IPv4 route of the main table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The interface it leaves through.
    pub interface: String,
    /// The destination network.
    pub destination: Ipv4Cidr,
}

/// Parses /proc/net/route: each address is the kernel's 32-bit word printed in
/// host order, so its bytes come back with `to_ne_bytes`.
pub(crate) fn parse_routes(text: &str) -> Vec<Route> {
    let word = |hex: &str| u32::from_str_radix(hex, 16).ok().map(u32::to_ne_bytes);
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() < 8 {
                return None;
            }
            let destination = Ipv4Addr::from(word(fields[1])?);
            let mask = u32::from(Ipv4Addr::from(word(fields[7])?));
            let prefix = u8::try_from(mask.count_ones()).ok()?;
            Some(Route {
                interface: fields[0].to_owned(),
                destination: Ipv4Cidr::new(destination, prefix)?,
            })
        })
        .collect()
}

/// This namespace's IPv4 routes (empty when /proc cannot be read). Read through
/// /proc/thread-self: a thread that entered another network namespace (setns)
/// sees that namespace's routes, where /proc/self shows the main thread's.
pub fn routes() -> Vec<Route> {
    std::fs::read_to_string("/proc/thread-self/net/route")
        .or_else(|_| std::fs::read_to_string("/proc/self/net/route"))
        .map(|text| parse_routes(&text))
        .unwrap_or_default()
}

/// Something on this host that already uses addresses of a network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InUse {
    /// The interface it is on.
    pub interface: String,
    /// The network it uses.
    pub network: Ipv4Cidr,
    /// An address of that interface, or a route through it.
    pub route: bool,
}

/// What on this host, apart from `interface` itself, overlaps `subnet`: another
/// interface's address, or a route (the default route aside) through another
/// interface, e.g. a VPN's.
pub fn overlapping(subnet: &Ipv4Cidr, interface: &str) -> Vec<InUse> {
    let mut found = Vec::new();
    for iface in interfaces().unwrap_or_default() {
        if iface.name == interface {
            continue;
        }
        for cidr in iface.ipv4 {
            if cidr.as_network().overlaps(subnet) {
                found.push(InUse {
                    interface: iface.name.clone(),
                    network: cidr.as_network(),
                    route: false,
                });
            }
        }
    }
    for route in routes() {
        if route.interface == interface || route.destination.prefix() == 0 {
            continue;
        }
        let known = found
            .iter()
            .any(|f| f.interface == route.interface && f.network == route.destination);
        if !known && route.destination.overlaps(subnet) {
            found.push(InUse {
                interface: route.interface,
                network: route.destination,
                route: true,
            });
        }
    }
    found
}

/// A /24 in 10.77-10.99 that nothing on this host uses, to suggest.
pub fn free_subnet(interface: &str) -> Option<Ipv4Cidr> {
    (77u8..=99)
        .filter_map(|b| Ipv4Cidr::new(Ipv4Addr::new(10, b, 0, 0), 24))
        .find(|net| overlapping(net, interface).is_empty())
}

/// Linux capability numbers (linux/capability.h).
pub(crate) mod cap {
    /// Configure interfaces, addresses and netfilter.
    pub const NET_ADMIN: u32 = 12;
}

/// The effective capability set from /proc/self/status text.
pub(crate) fn parse_cap_eff(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
}

/// Whether this process holds capability `bit`; `None` when it cannot be told.
pub fn has_capability(bit: u32) -> Option<bool> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_cap_eff(&status).map(|caps| caps & (1u64 << bit) != 0)
}

/// Whether this process may configure the network (CAP_NET_ADMIN): addresses
/// and nftables. `None` when it cannot be told.
pub fn has_net_admin() -> Option<bool> {
    has_capability(cap::NET_ADMIN)
}

/// Runs `ip` with `args`; its error output when it fails.
pub(crate) fn ip(program: &Path, args: &[&str]) -> Result<(), String> {
    let out = Command::new(program)
        .args(args)
        .output()
        .map_err(|e| format!("cannot run `ip` ({e}): install iproute2"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// Adds `address` to `interface`.
pub(crate) fn add_address(
    program: &Path,
    interface: &str,
    address: Ipv4Cidr,
) -> Result<(), String> {
    ip(
        program,
        &[
            "addr",
            "add",
            &address.to_string(),
            "brd",
            "+",
            "dev",
            interface,
        ],
    )
}

/// Removes `address` from `interface`.
pub(crate) fn remove_address(
    program: &Path,
    interface: &str,
    address: Ipv4Cidr,
) -> Result<(), String> {
    ip(
        program,
        &["addr", "del", &address.to_string(), "dev", interface],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_listed_with_its_address() {
        let all = interfaces().unwrap();
        let lo = all
            .iter()
            .find(|i| i.loopback)
            .expect("a loopback interface");
        assert!(lo.up);
        assert!(
            lo.ipv4.iter().any(|c| c.to_string() == "127.0.0.1/8"),
            "{lo:?}"
        );
    }

    #[test]
    fn routes_parse_from_proc() {
        // /proc/net/route on a little-endian host: a default route through eth0,
        // 192.168.1.0/24 on eth0, and 10.8.0.0/16 through a VPN.
        let text =
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                    eth0\t00000000\t0101A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n\
                    eth0\t0001A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n\
                    tun0\t0000080A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n";
        let routes = parse_routes(text);
        assert_eq!(routes.len(), 3);
        if cfg!(target_endian = "little") {
            assert_eq!(routes[0].destination.prefix(), 0);
            assert_eq!(routes[1].destination.to_string(), "192.168.1.0/24");
            assert_eq!(routes[2].destination.to_string(), "10.8.0.0/16");
            assert_eq!(routes[2].interface, "tun0");
        }
        assert!(parse_routes("Iface\tDestination\ngarbage line\n").is_empty());
    }

    #[test]
    fn capabilities_from_status() {
        let status = "Name:\thil\nCapEff:\t0000000000001400\n";
        let caps = parse_cap_eff(status).unwrap();
        assert_ne!(caps & (1 << cap::NET_ADMIN), 0);
        assert_eq!(parse_cap_eff("CapEff:\tzz\n"), None);
        assert!(has_net_admin().is_some());
    }
}
