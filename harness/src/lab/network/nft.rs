//! The served network's nftables table: destination NAT that brings a board's
//! MQTT/TLS, NTP and DNS traffic to the lab whatever address it dials, and a
//! forward filter that keeps the board's other traffic from being routed
//! anywhere.
//!
//! Rules go through the `nft` command, fed a script on standard input: one
//! script is one kernel transaction, so the table is replaced atomically (a
//! stale table from a crashed run is deleted and the new one created in the same
//! commit), and the text is the syntax the nft manual documents and an operator
//! reads back with `nft list table`.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};

/// What the table redirects, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Redirects {
    /// Destination ports of TCP connections redirected to the TLS front.
    pub broker_ports: Vec<u16>,
    /// The TLS front.
    pub tls: SocketAddr,
    /// The NTP server (UDP 123 is redirected here).
    pub ntp: SocketAddr,
    /// The DNS server over UDP (UDP 53).
    pub dns_udp: SocketAddr,
    /// The DNS server over TCP (TCP 53).
    pub dns_tcp: SocketAddr,
}

/// The table's name for `interface`: `hil-lab-<interface>`.
pub(crate) fn table_name(interface: &str) -> String {
    format!("hil-lab-{interface}")
}

fn target(addr: SocketAddr) -> String {
    // The lab serves IPv4 networks; the table is of family ip.
    format!("{}:{}", addr.ip(), addr.port())
}

/// The nft script that replaces the table for `interface` in one transaction.
/// `interface` must already be checked for characters nft would misread.
pub(crate) fn script(interface: &str, redirects: &Redirects, owner: u32) -> String {
    let table = table_name(interface);
    let mut prerouting = String::new();
    let mut rule = |proto: &str, port: u16, to: SocketAddr| {
        prerouting.push_str(&format!(
            "\t\tiifname \"{interface}\" {proto} dport {port} dnat to {}\n",
            target(to)
        ));
    };
    for port in &redirects.broker_ports {
        rule("tcp", *port, redirects.tls);
    }
    rule("udp", 123, redirects.ntp);
    rule("udp", 53, redirects.dns_udp);
    rule("tcp", 53, redirects.dns_tcp);
    // `table` (add) then `delete table`: the pair succeeds whether or not a
    // stale table exists, and the kernel applies the whole script or nothing.
    format!(
        "table ip {table}\n\
         delete table ip {table}\n\
         table ip {table} {{\n\
         \tcomment \"hil lab pid {owner}: redirects to the lab on {interface}\"\n\
         \tchain prerouting {{\n\
         \t\ttype nat hook prerouting priority dstnat; policy accept;\n\
         {prerouting}\
         \t}}\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority filter; policy accept;\n\
         \t\tiifname \"{interface}\" drop\n\
         \t\toifname \"{interface}\" drop\n\
         \t}}\n\
         }}\n"
    )
}

/// The script that removes the table.
pub(crate) fn delete_script(interface: &str) -> String {
    format!("delete table ip {}\n", table_name(interface))
}

/// Why an nft command failed.
#[derive(Debug)]
pub(crate) enum NftFailure {
    /// The program could not be run (not installed).
    Missing(std::io::Error),
    /// It ran and said no.
    Refused(String),
}

/// Runs `nft` with `args`, feeding `stdin` when given; returns its standard output.
pub(crate) fn run(nft: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, NftFailure> {
    let mut child = Command::new(nft)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(NftFailure::Missing)?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A failed write shows up as nft's own error below.
        let _ = pipe.write_all(text.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| NftFailure::Refused(e.to_string()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(NftFailure::Refused(
            String::from_utf8_lossy(&out.stderr).trim().to_owned(),
        ))
    }
}

/// The process that wrote a table, from its comment (`hil lab pid N: ...`).
pub(crate) fn owner_of(listing: &str) -> Option<u32> {
    let at = listing.find("hil lab pid ")? + "hil lab pid ".len();
    let digits: String = listing[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// Whether `name` is an interface name nft reads back unchanged inside quotes.
pub(crate) fn safe_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 15
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@' | ':'))
}

/// Addresses DNAT sends to must be the lab's own (not loopback: the kernel
/// drops packets from outside routed to 127/8).
pub(crate) fn usable_target(ip: Ipv4Addr) -> bool {
    !ip.is_loopback() && !ip.is_unspecified()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redirects() -> Redirects {
        let lab = |port| SocketAddr::from(([10, 77, 0, 1], port));
        Redirects {
            broker_ports: vec![8883],
            tls: lab(40311),
            ntp: lab(51123),
            dns_udp: lab(45817),
            dns_tcp: lab(45818),
        }
    }

    #[test]
    fn the_script_replaces_the_table_atomically_and_redirects_every_service() {
        let text = script("wlan0", &redirects(), 4242);
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        // Create-if-missing, delete, create: one transaction whatever was there.
        assert_eq!(lines[0], "table ip hil-lab-wlan0");
        assert_eq!(lines[1], "delete table ip hil-lab-wlan0");
        assert_eq!(lines[2], "table ip hil-lab-wlan0 {");
        for rule in [
            "iifname \"wlan0\" tcp dport 8883 dnat to 10.77.0.1:40311",
            "iifname \"wlan0\" udp dport 123 dnat to 10.77.0.1:51123",
            "iifname \"wlan0\" udp dport 53 dnat to 10.77.0.1:45817",
            "iifname \"wlan0\" tcp dport 53 dnat to 10.77.0.1:45818",
            "type nat hook prerouting priority dstnat; policy accept;",
            "type filter hook forward priority filter; policy accept;",
            "iifname \"wlan0\" drop",
            "oifname \"wlan0\" drop",
        ] {
            assert!(lines.contains(&rule), "missing `{rule}` in\n{text}");
        }
        assert_eq!(owner_of(&text), Some(4242));
        let mut more = redirects();
        more.broker_ports.push(443);
        assert!(script("wlan0", &more, 1).contains("tcp dport 443 dnat to 10.77.0.1:40311"));
        assert_eq!(delete_script("wlan0"), "delete table ip hil-lab-wlan0\n");
    }

    #[test]
    fn owners_are_read_back_from_a_listing() {
        let listing = "table ip hil-lab-veth0 {\n\tcomment \"hil lab pid 77: redirects to the lab on veth0\"\n}";
        assert_eq!(owner_of(listing), Some(77));
        assert_eq!(owner_of("table ip hil-lab-veth0 {\n}"), None);
    }

    #[test]
    fn interface_names_that_would_break_the_script_are_refused() {
        for ok in ["wlan0", "enx00e04c680001", "br-lab", "eth0.100", "veth@1"] {
            assert!(safe_name(ok), "{ok}");
        }
        for bad in [
            "",
            "wl\"an",
            "a b",
            "a;b",
            "averyveryverylongname",
            "eth\n0",
            "x}",
        ] {
            assert!(!safe_name(bad), "{bad:?}");
        }
    }
}
