//! Checks for serving the boards' network (`hil lab --serve-network`): the
//! interface, the network's address range, the privilege, the DHCP port, nft,
//! and for an access point, hostapd, iw and the adapter's AP mode.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

use super::net::holders_of;
use super::procfs::Proto;
use super::wifi::{supported_modes, wiphy_of};
use super::Check;
use crate::lab::network::{self, iface, Ipv4Cidr, NetworkError};

const SETCAP: &str = "run hil as root, or grant the binary the capabilities once: `sudo setcap \
     cap_net_admin,cap_net_bind_service,cap_net_raw=+ep $(command -v hil)`";

/// Every check for serving `interface` with `subnet`; `ap` adds the access
/// point's.
pub fn check_network(interface: &str, subnet: Ipv4Cidr, ap: bool) -> Vec<Check> {
    let mut checks = Vec::new();
    let exists = iface::interfaces()
        .unwrap_or_default()
        .iter()
        .any(|i| i.name == interface);
    checks.push(check_interface(interface, ap));
    checks.push(check_subnet(interface, subnet));
    checks.push(check_net_admin());
    if exists {
        checks.push(check_dhcp_port(interface));
    }
    checks.push(check_nft());
    if ap {
        checks.push(tool_check("hostapd", "hostapd", "runs the access point"));
        checks.push(tool_check(
            "iw",
            "iw",
            "tells whether the adapter can be an access point",
        ));
        if let (Some(iw), true) = (network::find_tool("iw"), exists) {
            checks.push(check_ap_mode(&iw, interface));
        }
    }
    checks
}

fn check_interface(interface: &str, ap: bool) -> Check {
    const NAME: &str = "network: interface";
    let all = iface::interfaces().unwrap_or_default();
    let Some(found) = all.iter().find(|i| i.name == interface) else {
        let known: Vec<&str> = all.iter().map(|i| i.name.as_str()).collect();
        return Check::fail(
            NAME,
            format!(
                "no interface `{interface}` on this host (there are: {})",
                known.join(", ")
            ),
            "plug the adapter in, or pass the interface the boards' traffic arrives on \
             (`ip -brief link` lists them)",
        );
    };
    let addresses: Vec<String> = found.ipv4.iter().map(ToString::to_string).collect();
    let addresses = if addresses.is_empty() {
        "no IPv4 address yet".to_owned()
    } else {
        addresses.join(", ")
    };
    match (found.up, found.lower_up, ap) {
        (false, _, true) => Check::ok(NAME, format!("{interface} is down: hostapd brings it up")),
        (false, _, false) => Check::fail(
            NAME,
            format!("{interface} is down"),
            format!("`sudo ip link set {interface} up`"),
        ),
        (true, false, false) => Check::warn(
            NAME,
            format!("{interface} is up but has no carrier ({addresses})"),
            "plug the cable in, or bring the switch or bridge it is on up; boards on it \
             cannot get a lease until then",
        ),
        (true, _, _) => Check::ok(NAME, format!("{interface} is up ({addresses})")),
    }
}

fn check_subnet(interface: &str, subnet: Ipv4Cidr) -> Check {
    const NAME: &str = "network: subnet";
    let network = subnet.as_network();
    match iface::overlapping(&network, interface).first() {
        None => Check::ok(NAME, format!("{network} is not used on this host")),
        Some(used) => {
            let suggestion = iface::free_subnet(interface)
                .map(|s| format!(" (e.g. --subnet {s})"))
                .unwrap_or_default();
            let detail = if used.route {
                format!(
                    "{network} overlaps {}, routed through `{}`",
                    used.network, used.interface
                )
            } else {
                format!(
                    "{network} overlaps {}, an address of `{}`",
                    used.network, used.interface
                )
            };
            Check::fail(
                NAME,
                detail,
                format!("serve a network nothing on this host uses{suggestion}"),
            )
        }
    }
}

fn check_net_admin() -> Check {
    const NAME: &str = "network: privileges";
    match iface::has_net_admin() {
        Some(true) => Check::ok(NAME, "CAP_NET_ADMIN: yes (addresses and nftables rules)"),
        Some(false) => Check::fail(
            NAME,
            "CAP_NET_ADMIN: no (needed to add the lab's address and its nftables rules)",
            SETCAP,
        ),
        None => Check::warn(
            NAME,
            "cannot tell whether this process has CAP_NET_ADMIN (/proc/self/status unreadable)",
            SETCAP,
        ),
    }
}

fn check_dhcp_port(interface: &str) -> Check {
    const NAME: &str = "network: udp/67";
    match network::check_dhcp_port(interface) {
        Ok(()) => Check::ok(
            NAME,
            format!("the DHCP server can listen on port 67 of {interface}"),
        ),
        Err(NetworkError::DhcpPortDenied { .. }) => Check::fail(
            NAME,
            format!("listening on port 67 of {interface} is not permitted"),
            SETCAP,
        ),
        Err(NetworkError::DhcpPortInUse { .. }) => {
            let holders: Vec<String> =
                holders_of(Proto::Udp, 67, IpAddr::V4(Ipv4Addr::UNSPECIFIED))
                    .into_iter()
                    .map(|(row, holders)| {
                        if holders.is_empty() {
                            format!("{} (uid {}, process not visible)", row.local, row.uid)
                        } else {
                            let names: Vec<String> =
                                holders.iter().map(ToString::to_string).collect();
                            format!("{} by {}", row.local, names.join(", "))
                        }
                    })
                    .collect();
            let by = if holders.is_empty() {
                String::new()
            } else {
                format!(": {}", holders.join("; "))
            };
            Check::fail(
                NAME,
                format!("another DHCP server listens on port 67{by}"),
                "stop it (dnsmasq, a NetworkManager shared connection, systemd-networkd's \
                 DHCPServer=, another lab), or serve another interface; `sudo ss -lunp \
                 'sport = :67'` names it",
            )
        }
        Err(other) => Check::fail(
            NAME,
            format!("cannot open the DHCP socket on {interface}: {other}"),
            "check the interface (`ip link show`) and this host's network configuration",
        ),
    }
}

fn tool_check(program: &'static str, package: &str, why: &str) -> Check {
    let name = format!("tool: {program}");
    match network::find_tool(program) {
        Some(path) => Check::ok(name, path.display().to_string()),
        None => Check::fail(
            name,
            format!("{program} not found on PATH, /usr/sbin or /sbin ({why})"),
            format!("`sudo apt-get install {package}`, or run ci/setup"),
        ),
    }
}

fn check_nft() -> Check {
    let found = tool_check("nft", "nftables", "installs the lab's redirections");
    let Some(path) = network::find_tool("nft") else {
        return found;
    };
    match Command::new(&path).args(["list", "tables"]).output() {
        Ok(out) if out.status.success() => Check::ok(
            "tool: nft",
            format!("{} (nftables answers)", path.display()),
        ),
        Ok(out) => Check::fail(
            "tool: nft",
            format!(
                "`nft list tables` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            "nft needs CAP_NET_ADMIN (run as root) and a kernel with nf_tables \
             (`sudo modprobe nf_tables nft_chain_nat`)",
        ),
        Err(e) => Check::fail(
            "tool: nft",
            format!("cannot run {}: {e}", path.display()),
            "`sudo apt-get install nftables`, or run ci/setup",
        ),
    }
}

fn check_ap_mode(iw: &std::path::Path, interface: &str) -> Check {
    const NAME: &str = "network: ap mode";
    let run = |args: &[&str]| Command::new(iw).args(args).output();
    let info = match run(&["dev", interface, "info"]) {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        Ok(out) => {
            return Check::fail(
                NAME,
                format!(
                    "{interface} is not a wireless interface (`iw dev {interface} info`: {})",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                "for an access point name a Wi-Fi adapter's interface (`iw dev` lists them); \
                 for a wired segment leave the access point out",
            )
        }
        Err(e) => {
            return Check::fail(
                NAME,
                format!("cannot run iw: {e}"),
                "`sudo apt-get install iw`, or run ci/setup",
            )
        }
    };
    let Some(index) = wiphy_of(&info) else {
        return Check::fail(
            NAME,
            format!("`iw dev {interface} info` names no wiphy"),
            "check the adapter's driver (`dmesg`, `lsusb`)",
        );
    };
    let list = match run(&["list"]) {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
        _ => {
            return Check::fail(
                NAME,
                "`iw list` failed",
                "check the adapter's driver (`dmesg`, `lsusb`)",
            )
        }
    };
    match supported_modes(&list, index) {
        Some(modes) if modes.iter().any(|m| m == "AP") => {
            Check::ok(NAME, format!("{interface} (phy{index}) supports AP mode"))
        }
        Some(modes) => Check::fail(
            NAME,
            format!(
                "{interface} (phy{index}) cannot be an access point: its supported interface \
                 modes are {}",
                modes.join(", ")
            ),
            "use a USB Wi-Fi adapter whose Linux driver supports AP mode (`iw list` shows \
             \"* AP\" under \"Supported interface modes\"), or serve a wired segment the \
             boards' access point is bridged to",
        ),
        None => Check::fail(
            NAME,
            format!("`iw list` shows no supported interface modes for phy{index}"),
            "check the adapter's driver (`dmesg`, `lsusb`)",
        ),
    }
}
