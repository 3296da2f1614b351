//! The two address types a served network speaks in: an IPv4 network with a
//! prefix (`10.77.0.0/24`), and a board's hardware address.

use std::fmt;
use std::net::Ipv4Addr;
use std::str::FromStr;

use serde::Serialize;

/// An IPv4 address with a prefix length, e.g. `10.77.0.0/24` (a network) or
/// `10.77.0.5/24` (a host address on that network).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Cidr {
    address: Ipv4Addr,
    prefix: u8,
}

/// Why a `A.B.C.D/N` text is no network the lab can serve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{given}` is not an IPv4 network to serve: {reason}")]
pub struct CidrError {
    /// The text given.
    pub given: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl Ipv4Cidr {
    /// The network the lab serves unless told otherwise, 10.77.0.0/24.
    pub const LAB_DEFAULT: Ipv4Cidr = Ipv4Cidr {
        address: Ipv4Addr::new(10, 77, 0, 0),
        prefix: 24,
    };

    /// `address/prefix`; `None` when the prefix is above 32.
    pub fn new(address: Ipv4Addr, prefix: u8) -> Option<Ipv4Cidr> {
        (prefix <= 32).then_some(Ipv4Cidr { address, prefix })
    }

    /// The address as given (a host address or the network's).
    pub fn address(&self) -> Ipv4Addr {
        self.address
    }

    /// The prefix length.
    pub fn prefix(&self) -> u8 {
        self.prefix
    }

    fn mask_bits(&self) -> u32 {
        match self.prefix {
            0 => 0,
            p => u32::MAX << (32 - u32::from(p)),
        }
    }

    /// The netmask, e.g. 255.255.255.0 for /24 (DHCP option 1).
    pub fn netmask(&self) -> Ipv4Addr {
        Ipv4Addr::from(self.mask_bits())
    }

    /// The network address (host bits cleared).
    pub fn network(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address) & self.mask_bits())
    }

    /// The broadcast address (host bits set).
    pub fn broadcast(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.address) | !self.mask_bits())
    }

    /// Whether `ip` lies in this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask_bits() == u32::from(self.network())
    }

    /// Whether `ip` is a usable host address of this network (neither the
    /// network nor the broadcast address).
    pub fn is_host(&self, ip: Ipv4Addr) -> bool {
        self.contains(ip) && ip != self.network() && ip != self.broadcast()
    }

    /// Whether the two networks share any address.
    pub fn overlaps(&self, other: &Ipv4Cidr) -> bool {
        // Two prefixes overlap exactly when the shorter one contains the other's
        // network address.
        let shorter = if self.prefix <= other.prefix {
            self
        } else {
            other
        };
        let longer = if self.prefix <= other.prefix {
            other
        } else {
            self
        };
        shorter.contains(longer.network())
    }

    /// The first usable host address.
    pub fn first_host(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network()).saturating_add(1))
    }

    /// Every usable host address, in order.
    pub fn hosts(&self) -> impl Iterator<Item = Ipv4Addr> {
        let first = u32::from(self.network()).saturating_add(1);
        let last = u32::from(self.broadcast()).saturating_sub(1);
        (first..=last).map(Ipv4Addr::from)
    }

    /// The same network with `address` as the host part.
    pub fn with_address(&self, address: Ipv4Addr) -> Ipv4Cidr {
        Ipv4Cidr {
            address,
            prefix: self.prefix,
        }
    }

    /// The network itself (`10.77.0.0/24` for `10.77.0.5/24`).
    pub fn as_network(&self) -> Ipv4Cidr {
        self.with_address(self.network())
    }
}

impl fmt::Display for Ipv4Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix)
    }
}

impl Serialize for Ipv4Cidr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromStr for Ipv4Cidr {
    type Err = CidrError;

    /// `A.B.C.D/N`. The lab serves networks of /8 to /30: a /31 or /32 leaves no
    /// address for a board.
    fn from_str(text: &str) -> Result<Ipv4Cidr, CidrError> {
        let error = |reason| CidrError {
            given: text.to_owned(),
            reason,
        };
        let (ip, prefix) = text
            .trim()
            .split_once('/')
            .ok_or_else(|| error("write it as address/prefix, e.g. 10.77.0.0/24"))?;
        let address: Ipv4Addr = ip
            .parse()
            .map_err(|_| error("the part before `/` is not an IPv4 address"))?;
        let prefix: u8 = prefix
            .parse()
            .map_err(|_| error("the prefix after `/` is not a number"))?;
        if !(8..=30).contains(&prefix) {
            return Err(error(
                "the prefix must be between /8 and /30 (a /31 or /32 leaves no address for a board)",
            ));
        }
        let cidr = Ipv4Cidr { address, prefix };
        if address == cidr.broadcast() {
            return Err(error(
                "that is the broadcast address: give the network (host bits zero) or the lab's address in it",
            ));
        }
        if address.is_loopback()
            || address.is_multicast()
            || address.is_link_local()
            || address.is_unspecified()
            || address.is_broadcast()
        {
            return Err(error(
                "loopback, link-local, multicast and unspecified networks cannot be served; use a private range such as 10.77.0.0/24",
            ));
        }
        Ok(cidr)
    }
}

/// A board's hardware (MAC) address, as the flasher reads it from efuse and the
/// DHCP client sends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MacAddr(pub [u8; 6]);

/// A text that is no MAC address.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{given}` is not a MAC address (expected six hex pairs, e.g. 18:fe:34:48:49:01)")]
pub struct MacError {
    /// The text given.
    pub given: String,
}

impl fmt::Display for MacAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let [a, b, c, d, e, g] = self.0;
        write!(f, "{a:02x}:{b:02x}:{c:02x}:{d:02x}:{e:02x}:{g:02x}")
    }
}

impl Serialize for MacAddr {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl FromStr for MacAddr {
    type Err = MacError;

    /// Six hex pairs separated by `:` or `-`, either case.
    fn from_str(text: &str) -> Result<MacAddr, MacError> {
        let error = || MacError {
            given: text.to_owned(),
        };
        let parts: Vec<&str> = text.trim().split([':', '-']).collect();
        if parts.len() != 6 {
            return Err(error());
        }
        let mut bytes = [0u8; 6];
        for (byte, part) in bytes.iter_mut().zip(&parts) {
            if part.len() != 2 {
                return Err(error());
            }
            *byte = u8::from_str_radix(part, 16).map_err(|_| error())?;
        }
        Ok(MacAddr(bytes))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidr(text: &str) -> Ipv4Cidr {
        text.parse().unwrap()
    }

    #[test]
    fn networks_hosts_and_masks() {
        let net = cidr("10.77.0.0/24");
        assert_eq!(net.netmask(), Ipv4Addr::new(255, 255, 255, 0));
        assert_eq!(net.broadcast(), Ipv4Addr::new(10, 77, 0, 255));
        assert_eq!(net.first_host(), Ipv4Addr::new(10, 77, 0, 1));
        assert_eq!(net.hosts().count(), 254);
        assert!(net.is_host(Ipv4Addr::new(10, 77, 0, 254)));
        assert!(!net.is_host(Ipv4Addr::new(10, 77, 0, 0)));
        assert!(!net.contains(Ipv4Addr::new(10, 78, 0, 1)));
        let host = cidr("192.168.50.6/30");
        assert_eq!(host.network(), Ipv4Addr::new(192, 168, 50, 4));
        assert_eq!(
            host.hosts().collect::<Vec<_>>(),
            [
                Ipv4Addr::new(192, 168, 50, 5),
                Ipv4Addr::new(192, 168, 50, 6)
            ]
        );
        assert_eq!(host.as_network().to_string(), "192.168.50.4/30");
    }

    #[test]
    fn the_default_is_what_its_text_says() {
        assert_eq!(Ipv4Cidr::LAB_DEFAULT, cidr(super::super::DEFAULT_SUBNET));
    }

    #[test]
    fn overlap_is_symmetric_and_exact() {
        let a = cidr("10.77.0.0/24");
        for (other, overlaps) in [
            ("10.0.0.0/8", true),
            ("10.77.0.128/25", true),
            ("10.77.1.0/24", false),
            ("10.76.0.0/16", false),
            ("192.168.1.0/24", false),
        ] {
            let b = cidr(other);
            assert_eq!(a.overlaps(&b), overlaps, "{other}");
            assert_eq!(b.overlaps(&a), overlaps, "{other} reversed");
        }
    }

    #[test]
    fn bad_networks_say_why() {
        for (text, says) in [
            ("10.77.0.0", "address/prefix"),
            ("10.77.0/24", "not an IPv4 address"),
            ("10.77.0.0/x", "not a number"),
            ("10.77.0.0/31", "/8 and /30"),
            ("10.0.0.0/4", "/8 and /30"),
            ("10.77.0.255/24", "broadcast"),
            ("127.0.0.0/8", "loopback"),
            ("169.254.0.0/16", "link-local"),
        ] {
            let err = text.parse::<Ipv4Cidr>().unwrap_err();
            assert!(err.to_string().contains(says), "{text}: {err}");
        }
    }

    #[test]
    fn macs_parse_in_either_case_and_print_in_lower_case() {
        let mac: MacAddr = "18:FE:34:48:49:0a".parse().unwrap();
        assert_eq!(mac.0, [0x18, 0xfe, 0x34, 0x48, 0x49, 0x0a]);
        assert_eq!(mac.to_string(), "18:fe:34:48:49:0a");
        assert_eq!("18-fe-34-48-49-0a".parse::<MacAddr>().unwrap(), mac);
        for bad in [
            "18:fe:34:48:49",
            "18:fe:34:48:49:0a:00",
            "18:fe:34:48:49:g0",
            "18fe:34:48:49:0a:0",
        ] {
            assert!(bad.parse::<MacAddr>().is_err(), "{bad}");
        }
    }
}
