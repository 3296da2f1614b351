//! The lab as the board's network: on an interface the board's traffic arrives
//! on (a USB Wi-Fi adapter run as an access point, or a wired or bridged
//! segment), the lab
//!
//! - takes an address on a network of its own (10.77.0.1/24 unless told
//!   otherwise), refusing one that overlaps a network this host already uses;
//! - hands out addresses by DHCP with itself as router, DNS and NTP server
//!   (options 1, 3, 6, 42, 51, 54), recording each lease on the timeline
//!   ([`EventKind::DhcpLease`]) and answering [`ServedNetwork::lease_for`];
//! - redirects the board's connections to *any* address on the broker's port
//!   (8883), NTP (UDP 123) and DNS (UDP and TCP 53) to its own services with an
//!   nftables table of its own (`ip hil-lab-<interface>`), so a release binary
//!   that dials its production broker by name or by a literal IP meets the lab;
//!   the same table keeps the board's other traffic from being forwarded;
//! - for Wi-Fi, writes a hostapd configuration and runs hostapd for it.
//!
//! Everything it changes it undoes when the lab stops (or the handle is
//! dropped): the table is deleted, an address it added is removed, hostapd is
//! stopped. A table left by a run that crashed is found and replaced at start.
//!
//! ```no_run
//! use std::sync::Arc;
//! use std::time::Duration;
//! use hil::lab::network::{MacAddr, NetworkConfig};
//! use hil::lab::{Lab, LabConfig};
//! use hil::pki::{Catalogue, ProfileId};
//!
//! # async fn demo() -> Result<(), hil::Error> {
//! let catalogue = Catalogue::generate(time::OffsetDateTime::now_utc())?;
//! let profile = Arc::new(catalogue.profile(ProfileId::Valid)?.clone());
//! let mut config = LabConfig::new(profile, "run");
//! config.network = Some(NetworkConfig::new("wlx00c0ca123456"));
//! let lab = Lab::start(config).await?;
//! let network = lab.network().expect("served");
//! let board: MacAddr = "18:fe:34:48:49:01".parse().expect("a MAC");
//! if let Some(ip) = network.wait_for_lease(board, Duration::from_secs(30)).await {
//!     println!("the board is {ip}");
//! }
//! lab.shutdown().await;
//! # Ok(()) }
//! ```
//!
//! [`EventKind::DhcpLease`]: crate::timeline::EventKind::DhcpLease

mod addr;
pub(crate) mod dhcp;
mod hostapd;
pub mod iface;
pub(crate) mod nft;

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use self::addr::{CidrError, Ipv4Cidr, MacAddr, MacError};
pub use self::dhcp::Lease;
use self::hostapd::Hostapd;
pub use self::hostapd::{ApConfig, ApConfigError};
use self::nft::NftFailure;
pub(crate) use self::nft::Redirects;
use crate::timeline::{Event, EventKind, Source, Timeline};

/// The network served when none is given: a /24 unlikely to be in use, with the
/// lab at .1.
pub const DEFAULT_SUBNET: &str = "10.77.0.0/24";
/// The broker's port a board dials; connections to it on any address meet the
/// lab's TLS front.
pub const MQTT_TLS_PORT: u16 = 8883;

/// How to serve a network on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetworkConfig {
    /// The interface the boards' traffic arrives on.
    pub interface: String,
    /// The network to serve. A host address (`10.77.0.5/24`) is the lab's
    /// address on it; a network address (`10.77.0.0/24`) lets the lab use the
    /// interface's own address in it, or the first host address.
    pub subnet: Ipv4Cidr,
    /// How long a DHCP lease lasts.
    pub lease_time: Duration,
    /// TCP ports redirected to the TLS front whatever address the board dials.
    pub broker_ports: Vec<u16>,
    /// The Wi-Fi access point to run on the interface, if any.
    pub ap: Option<ApConfig>,
}

impl NetworkConfig {
    /// 10.77.0.0/24 on `interface`, one-hour leases, port 8883 redirected, no
    /// access point.
    pub fn new(interface: impl Into<String>) -> NetworkConfig {
        NetworkConfig {
            interface: interface.into(),
            subnet: Ipv4Cidr::LAB_DEFAULT,
            lease_time: Duration::from_secs(3600),
            broker_ports: vec![MQTT_TLS_PORT],
            ap: None,
        }
    }
}

/// What can go wrong while serving a network.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum NetworkError {
    /// A name no interface can have, or one nft would misread.
    #[error("`{interface}` is not an interface name the lab can serve")]
    #[diagnostic(
        code(hil::lab::interface_name),
        help("interface names are at most 15 characters of letters, digits and `-_.@:`; `ip -brief link` lists them")
    )]
    InterfaceName {
        /// The name given.
        interface: String,
    },
    /// No such interface in this network namespace.
    #[error("there is no interface `{interface}` on this host")]
    #[diagnostic(
        code(hil::lab::no_such_interface),
        help("interfaces here: {known}; plug the adapter in, or name the interface the board's traffic arrives on")
    )]
    NoSuchInterface {
        /// The name given.
        interface: String,
        /// The interfaces that exist.
        known: String,
    },
    /// The interface is down.
    #[error("interface `{interface}` is down")]
    #[diagnostic(
        code(hil::lab::interface_down),
        help("bring it up: `sudo ip link set {interface} up` (an adapter run as an access point is brought up by hostapd)")
    )]
    InterfaceDown {
        /// The interface.
        interface: String,
    },
    /// The network overlaps one this host already uses.
    #[error("{subnet} overlaps {network}, which this host already uses on `{other}`")]
    #[diagnostic(
        code(hil::lab::subnet_overlap),
        help("serve a network nothing on this host uses{suggestion}: boards and this host would not know which way to send")
    )]
    SubnetOverlap {
        /// The network asked for.
        subnet: Ipv4Cidr,
        /// The network in use.
        network: Ipv4Cidr,
        /// Where it is in use (an interface, or a route through one).
        other: String,
        /// A free one to suggest, as `, e.g. 10.78.0.0/24`.
        suggestion: String,
    },
    /// The access point cannot be served.
    #[error("the access point cannot be served")]
    #[diagnostic(
        code(hil::lab::ap_config),
        help("the ESP8266 joins WPA2-PSK networks on 2.4 GHz channels 1-13")
    )]
    Ap(#[source] ApConfigError),
    /// This process may not configure the network.
    #[error("serving a network needs CAP_NET_ADMIN (addresses and nftables rules), which this process lacks")]
    #[diagnostic(
        code(hil::lab::net_admin),
        help("run it as root, or grant the binary the capabilities once: `sudo setcap cap_net_admin,cap_net_bind_service,cap_net_raw=+ep $(command -v hil)`")
    )]
    NoNetAdmin,
    /// A program the network needs is not installed.
    #[error("`{tool}` is not installed (looked on PATH, /usr/sbin and /sbin)")]
    #[diagnostic(
        code(hil::lab::tool_missing),
        help("install it: `sudo apt-get install {package}` (ci/setup installs it)")
    )]
    ToolMissing {
        /// The program.
        tool: &'static str,
        /// The Debian package that has it.
        package: &'static str,
    },
    /// nft refused the rules.
    #[error("nft could not {what}: {detail}")]
    #[diagnostic(
        code(hil::lab::nft),
        help("nftables needs CAP_NET_ADMIN and a kernel with nf_tables and NAT (nft_chain_nat); `sudo nft list tables` shows whether nft works here")
    )]
    Nft {
        /// What it was asked to do.
        what: &'static str,
        /// What it said.
        detail: String,
    },
    /// The lab's address could not be added to the interface.
    #[error("cannot add {address} to `{interface}`: {detail}")]
    #[diagnostic(
        code(hil::lab::address),
        help("check the interface with `ip address show {interface}`; adding an address needs CAP_NET_ADMIN")
    )]
    Address {
        /// The interface.
        interface: String,
        /// The address.
        address: Ipv4Cidr,
        /// What `ip` said.
        detail: String,
    },
    /// Binding the DHCP port is not permitted.
    #[error("the DHCP server may not listen on UDP port 67 of `{interface}`: permission denied")]
    #[diagnostic(
        code(hil::lab::dhcp_port_denied),
        help("port 67 is privileged and binding to one interface may need CAP_NET_RAW: run as root, or `sudo setcap cap_net_admin,cap_net_bind_service,cap_net_raw=+ep $(command -v hil)`")
    )]
    DhcpPortDenied {
        /// The interface.
        interface: String,
    },
    /// Another DHCP server has the port.
    #[error("another program already listens on UDP port 67 for `{interface}`")]
    #[diagnostic(
        code(hil::lab::dhcp_port_in_use),
        help("stop the other DHCP server (dnsmasq, a NetworkManager shared connection, systemd-networkd's DHCPServer=, another lab); `sudo ss -lunp 'sport = :67'` names it")
    )]
    DhcpPortInUse {
        /// The interface.
        interface: String,
    },
    /// Another running lab serves the interface.
    #[error("`{interface}` is already served by another lab (hil, pid {pid})")]
    #[diagnostic(
        code(hil::lab::network_held),
        help("one lab serves an interface at a time: stop that run (`kill {pid}`), or serve another interface")
    )]
    Held {
        /// The interface.
        interface: String,
        /// The process serving it.
        pid: u32,
    },
    /// The DHCP socket failed otherwise.
    #[error("cannot open the DHCP server's socket on `{interface}`")]
    #[diagnostic(code(hil::lab::dhcp_socket))]
    DhcpSocket {
        /// The interface.
        interface: String,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// The hostapd configuration could not be written.
    #[error("cannot write the access point's configuration {}", path.display())]
    #[diagnostic(
        code(hil::lab::run_dir),
        help("check that the run directory is writable")
    )]
    HostapdConfig {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// hostapd did not bring the access point up.
    #[error("hostapd did not start the access point on `{interface}`: {reason}\n{output}")]
    #[diagnostic(
        code(hil::lab::hostapd),
        help("the adapter must support AP mode (`iw list`: \"AP\" under \"Supported interface modes\") and nothing else may manage it: `nmcli device set {interface} managed no`, or stop wpa_supplicant on it")
    )]
    Hostapd {
        /// The interface.
        interface: String,
        /// Why.
        reason: String,
        /// hostapd's last lines.
        output: String,
    },
}

/// The programs the network runs, found once.
#[derive(Debug, Clone)]
struct Tools {
    nft: PathBuf,
    ip: PathBuf,
}

/// `name` on PATH, or in /usr/sbin or /sbin (which a user's PATH may lack).
pub fn find_tool(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/sbin")])
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

fn tool(name: &'static str, package: &'static str) -> Result<PathBuf, NetworkError> {
    find_tool(name).ok_or(NetworkError::ToolMissing {
        tool: name,
        package,
    })
}

/// Checks everything that can be checked before anything is changed: the
/// configuration, the privilege, the programs, the interface (exists; up, unless
/// hostapd will bring it up), the DHCP port, and that the network overlaps
/// nothing this host uses. [`crate::lab::Lab::start`] runs it too; callers run it first to fail
/// fast, before slow work such as generating certificates.
pub fn preflight(config: &NetworkConfig) -> Result<(), NetworkError> {
    checked(config).map(drop)
}

fn checked(config: &NetworkConfig) -> Result<(Tools, Option<ApConfig>), NetworkError> {
    let interface = &config.interface;
    if !nft::safe_name(interface) {
        return Err(NetworkError::InterfaceName {
            interface: interface.clone(),
        });
    }
    let ap = config
        .ap
        .as_ref()
        .map(hostapd::validate)
        .transpose()
        .map_err(NetworkError::Ap)?;
    if iface::has_net_admin() == Some(false) {
        return Err(NetworkError::NoNetAdmin);
    }
    let tools = Tools {
        nft: tool("nft", "nftables")?,
        ip: tool("ip", "iproute2")?,
    };
    if ap.is_some() {
        tool("hostapd", "hostapd")?;
    }
    let all = iface::interfaces().unwrap_or_default();
    let Some(found) = all.iter().find(|i| &i.name == interface) else {
        let known: Vec<&str> = all.iter().map(|i| i.name.as_str()).collect();
        return Err(NetworkError::NoSuchInterface {
            interface: interface.clone(),
            known: known.join(", "),
        });
    };
    if !found.up && ap.is_none() {
        return Err(NetworkError::InterfaceDown {
            interface: interface.clone(),
        });
    }
    // Another lab serving the interface is named by the table it keeps there.
    let table = nft::table_name(interface);
    if let Ok(listing) = nft::run(&tools.nft, &["list", "table", "ip", &table], None) {
        if let Some(pid) =
            nft::owner_of(&listing).filter(|pid| *pid != std::process::id() && alive(*pid))
        {
            return Err(NetworkError::Held {
                interface: interface.clone(),
                pid,
            });
        }
    }
    // Bound and released at once: whether the DHCP port can be had is told now.
    drop(dhcp_socket(interface)?);
    let subnet = config.subnet.as_network();
    if let Some(used) = iface::overlapping(&subnet, interface).into_iter().next() {
        let other = if used.route {
            format!("{} (a route)", used.interface)
        } else {
            used.interface
        };
        return Err(NetworkError::SubnetOverlap {
            subnet,
            network: used.network,
            other,
            suggestion: iface::free_subnet(interface)
                .map(|s| format!(", e.g. {s}"))
                .unwrap_or_default(),
        });
    }
    Ok((tools, ap))
}

/// What the lab did to the interface, and what it serves there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NetworkInfo {
    /// The interface.
    pub interface: String,
    /// The lab's address with the network's prefix.
    pub address: Ipv4Cidr,
    /// Whether the lab added that address (and removes it when it stops), or
    /// found it on the interface.
    pub assigned_address: bool,
    /// The first and last address DHCP may hand out.
    pub pool: (Ipv4Addr, Ipv4Addr),
    /// The lease time, in seconds.
    pub lease_secs: u64,
    /// The nftables table, as `nft list table` names it.
    pub table: String,
    /// A table of that name was there at start (left by a run that did not stop
    /// cleanly) and was replaced.
    pub replaced_stale_table: bool,
    /// The process that had written the stale table, from its comment.
    pub stale_owner: Option<u32>,
    /// Redirections as `proto/port -> address:port`.
    pub redirects: Vec<String>,
    /// The access point's SSID, when hostapd runs.
    pub ssid: Option<String>,
    /// hostapd's configuration file, when hostapd runs.
    pub hostapd_config: Option<PathBuf>,
}

/// Undoes what the network changed; runs once, on stop or on drop.
#[derive(Debug)]
struct Cleanup {
    tools: Tools,
    interface: String,
    added: Option<Ipv4Cidr>,
    table: bool,
    hostapd: Option<Hostapd>,
}

impl Cleanup {
    fn run(&mut self) {
        if std::mem::take(&mut self.table) {
            let _ = nft::run(
                &self.tools.nft,
                &["-f", "-"],
                Some(&nft::delete_script(&self.interface)),
            );
        }
        if let Some(address) = self.added.take() {
            let _ = iface::remove_address(&self.tools.ip, &self.interface, address);
        }
        if let Some(mut hostapd) = self.hostapd.take() {
            hostapd.stop();
        }
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.run();
    }
}

/// A network whose interface, address and access point are ready, before the
/// lab's services are bound to its address. Dropping it undoes what it did.
#[derive(Debug)]
pub(crate) struct Prepared {
    config: NetworkConfig,
    address: Ipv4Cidr,
    reserved: Vec<Ipv4Addr>,
    socket: tokio::net::UdpSocket,
    hostapd_config: Option<PathBuf>,
    ap: Option<ApConfig>,
    cleanup: Cleanup,
}

fn note(timeline: &Timeline, text: String) {
    timeline.record(Source::Harness, None, EventKind::Diagnostic { text });
}

/// The DHCP server's socket: UDP 0.0.0.0:67 bound to the interface, allowed to
/// broadcast. Without SO_REUSEADDR, so a second server on the interface is told.
fn dhcp_socket(interface: &str) -> Result<socket2::Socket, NetworkError> {
    use socket2::{Domain, Protocol, Socket, Type};
    let fail = |source: io::Error| match source.kind() {
        io::ErrorKind::PermissionDenied => NetworkError::DhcpPortDenied {
            interface: interface.to_owned(),
        },
        io::ErrorKind::AddrInUse => NetworkError::DhcpPortInUse {
            interface: interface.to_owned(),
        },
        _ => NetworkError::DhcpSocket {
            interface: interface.to_owned(),
            source,
        },
    };
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).map_err(fail)?;
    socket
        .bind_device(Some(interface.as_bytes()))
        .map_err(fail)?;
    socket.set_broadcast(true).map_err(fail)?;
    let any = SocketAddr::from((Ipv4Addr::UNSPECIFIED, dhcp::SERVER_PORT));
    socket.bind(&any.into()).map_err(fail)?;
    socket.set_nonblocking(true).map_err(fail)?;
    Ok(socket)
}

/// Whether the DHCP server could listen on UDP port 67 of `interface` now
/// (bound and released at once).
pub fn check_dhcp_port(interface: &str) -> Result<(), NetworkError> {
    dhcp_socket(interface).map(drop)
}

impl Prepared {
    /// Checks, binds the DHCP port, starts hostapd when asked, and makes sure the
    /// interface has the lab's address.
    pub async fn start(
        config: &NetworkConfig,
        run_dir: &Path,
        timeline: &Timeline,
    ) -> Result<Prepared, NetworkError> {
        let (tools, ap) = checked(config)?;
        let interface = config.interface.clone();
        // The port first: a second lab on the interface fails before it changes
        // anything.
        let socket =
            tokio::net::UdpSocket::from_std(dhcp_socket(&interface)?.into()).map_err(|source| {
                NetworkError::DhcpSocket {
                    interface: interface.clone(),
                    source,
                }
            })?;
        let mut cleanup = Cleanup {
            tools: tools.clone(),
            interface: interface.clone(),
            added: None,
            table: false,
            hostapd: None,
        };
        let mut hostapd_config = None;
        if let Some(ap) = &ap {
            let path = hostapd::write_config(run_dir, &interface, ap).map_err(|source| {
                NetworkError::HostapdConfig {
                    path: run_dir.join(format!("hostapd-{interface}.conf")),
                    source,
                }
            })?;
            let running = Hostapd::start(&path, timeline).await.map_err(|failure| {
                let (reason, output) = match failure {
                    hostapd::StartFailure::Spawn(e) => {
                        (format!("cannot run hostapd ({e})"), String::new())
                    }
                    hostapd::StartFailure::NotEnabled { reason, output } => (reason, output),
                };
                NetworkError::Hostapd {
                    interface: interface.clone(),
                    reason,
                    output,
                }
            })?;
            cleanup.hostapd = Some(running);
            note(
                timeline,
                format!("hostapd serves SSID {:?} on {interface}", ap.ssid),
            );
            hostapd_config = Some(path);
        }
        let now = iface::interfaces().unwrap_or_default();
        let found = now.iter().find(|i| i.name == interface);
        if !found.is_some_and(|i| i.up) {
            return Err(NetworkError::InterfaceDown { interface });
        }
        let own: Vec<Ipv4Cidr> = found
            .map(|i| i.ipv4.clone())
            .unwrap_or_default()
            .into_iter()
            .filter(|c| config.subnet.is_host(c.address()))
            .collect();
        let wanted = config.subnet.address();
        let explicit = config.subnet.is_host(wanted);
        let existing = if explicit {
            own.iter().find(|c| c.address() == wanted).copied()
        } else {
            own.first().copied()
        };
        let address = match existing {
            Some(found) => {
                note(
                    timeline,
                    format!("{interface} already has {found}: the lab uses it"),
                );
                config.subnet.with_address(found.address())
            }
            None => {
                let address = if explicit {
                    config.subnet
                } else {
                    config.subnet.with_address(config.subnet.first_host())
                };
                iface::add_address(&tools.ip, &interface, address).map_err(|detail| {
                    NetworkError::Address {
                        interface: interface.clone(),
                        address,
                        detail,
                    }
                })?;
                cleanup.added = Some(address);
                note(
                    timeline,
                    format!("assigned {address} to {interface} (removed when the lab stops)"),
                );
                address
            }
        };
        let reserved = own
            .iter()
            .map(|c| c.address())
            .filter(|ip| *ip != address.address())
            .collect();
        Ok(Prepared {
            config: config.clone(),
            address,
            reserved,
            socket,
            hostapd_config,
            ap,
            cleanup,
        })
    }

    /// The lab's address on the network: where its services must listen.
    pub fn address(&self) -> Ipv4Addr {
        self.address.address()
    }

    /// Installs the redirections to the services now listening, and starts the
    /// DHCP server.
    pub fn serve(
        mut self,
        redirects: Redirects,
        timeline: &Timeline,
        shutdown: watch::Receiver<bool>,
    ) -> Result<ServedNetwork, NetworkError> {
        let interface = self.config.interface.clone();
        for target in [
            redirects.tls,
            redirects.ntp,
            redirects.dns_udp,
            redirects.dns_tcp,
        ] {
            if let IpAddr::V4(ip) = target.ip() {
                debug_assert!(nft::usable_target(ip), "{target} cannot be a DNAT target");
            }
        }
        let stale = nft::run(
            &self.cleanup.tools.nft,
            &["list", "table", "ip", &nft::table_name(&interface)],
            None,
        )
        .ok();
        let stale_owner = stale.as_deref().and_then(nft::owner_of);
        // A table whose owner still runs is no leftover: another lab serves the
        // interface, and taking it over would cut its boards off mid-run.
        if let Some(pid) = stale_owner.filter(|pid| *pid != std::process::id() && alive(*pid)) {
            return Err(NetworkError::Held {
                interface: interface.clone(),
                pid,
            });
        }
        let script = nft::script(&interface, &redirects, std::process::id());
        nft::run(&self.cleanup.tools.nft, &["-f", "-"], Some(&script)).map_err(|failure| {
            NetworkError::Nft {
                what: "install the lab's redirections",
                detail: match failure {
                    NftFailure::Missing(e) => format!("cannot run nft ({e})"),
                    NftFailure::Refused(text) => text,
                },
            }
        })?;
        self.cleanup.table = true;
        let table = format!("ip {}", nft::table_name(&interface));
        if stale.is_some() {
            let by = stale_owner.map_or(String::new(), |pid| format!(" (left by pid {pid})"));
            note(
                timeline,
                format!("replaced a stale nftables table {table}{by}"),
            );
        }
        let mut described = Vec::new();
        for port in &redirects.broker_ports {
            described.push(format!("tcp/{port} -> {}", redirects.tls));
        }
        described.push(format!("udp/123 -> {}", redirects.ntp));
        described.push(format!("udp/53 -> {}", redirects.dns_udp));
        described.push(format!("tcp/53 -> {}", redirects.dns_tcp));
        note(
            timeline,
            format!(
                "nftables table {table}: from {interface}, {}",
                described.join(", ")
            ),
        );
        let server = Arc::new(Mutex::new(dhcp::Server::new(dhcp::ServerConfig {
            subnet: self.address.as_network(),
            address: self.address.address(),
            reserved: self.reserved.clone(),
            lease_time: self.config.lease_time,
        })));
        let pool: Vec<Ipv4Addr> = self
            .address
            .hosts()
            .filter(|ip| *ip != self.address.address() && !self.reserved.contains(ip))
            .collect();
        let pool = (
            pool.first().copied().unwrap_or(Ipv4Addr::UNSPECIFIED),
            pool.last().copied().unwrap_or(Ipv4Addr::UNSPECIFIED),
        );
        let task = tokio::spawn(dhcp::serve(
            self.socket,
            server.clone(),
            timeline.clone(),
            shutdown,
        ));
        let info = NetworkInfo {
            interface,
            address: self.address,
            assigned_address: self.cleanup.added.is_some(),
            pool,
            lease_secs: self.config.lease_time.as_secs(),
            table,
            replaced_stale_table: stale.is_some(),
            stale_owner,
            redirects: described,
            ssid: self.ap.as_ref().map(|a| a.ssid.clone()),
            hostapd_config: self.hostapd_config,
        };
        Ok(ServedNetwork {
            info,
            ap: self.ap,
            server,
            timeline: timeline.clone(),
            task: Some(task),
            cleanup: self.cleanup,
        })
    }
}

/// A network the lab serves. Stops with the lab ([`crate::lab::Lab::shutdown`])
/// or when dropped, undoing what it changed.
#[derive(Debug)]
pub struct ServedNetwork {
    info: NetworkInfo,
    ap: Option<ApConfig>,
    server: dhcp::Shared,
    timeline: Timeline,
    task: Option<JoinHandle<()>>,
    cleanup: Cleanup,
}

impl ServedNetwork {
    /// The interface, address, pool, table and access point.
    pub fn info(&self) -> &NetworkInfo {
        &self.info
    }

    /// The access point hostapd runs, when it runs: what a board is
    /// provisioned to join.
    pub fn access_point(&self) -> Option<&ApConfig> {
        self.ap.as_ref()
    }

    /// The lab's address on the network.
    pub fn address(&self) -> Ipv4Addr {
        self.info.address.address()
    }

    /// The address the board with `mac` holds a lease for, if any.
    pub fn lease_for(&self, mac: MacAddr) -> Option<IpAddr> {
        self.server
            .lock()
            .ok()?
            .lease_for(mac, Instant::now())
            .map(IpAddr::V4)
    }

    /// Promises the board with `mac` an address before it asks (the flasher
    /// read its MAC): DHCP will give it that address and no other, and no other
    /// board that one, so per-device policies can be set for it before the board
    /// boots. The same address on every call; `None` when the pool is exhausted.
    pub fn reserve(&self, mac: MacAddr) -> Option<IpAddr> {
        self.server
            .lock()
            .ok()?
            .reserve(mac, Instant::now())
            .map(IpAddr::V4)
    }

    /// Every lease held now.
    pub fn leases(&self) -> Vec<Lease> {
        self.server
            .lock()
            .map(|s| s.leases(Instant::now()))
            .unwrap_or_default()
    }

    /// The board's address as soon as it holds a lease, or `None` after
    /// `timeout`.
    pub async fn wait_for_lease(&self, mac: MacAddr, timeout: Duration) -> Option<IpAddr> {
        // The cursor first: a lease acknowledged between the look-up and the
        // wait is still seen.
        let cursor = self.timeline.cursor();
        if let Some(ip) = self.lease_for(mac) {
            return Some(ip);
        }
        let wanted = mac.to_string();
        let event: Event = self
            .timeline
            .wait_for(
                cursor,
                timeout,
                |e| matches!(&e.kind, EventKind::DhcpLease { mac, .. } if *mac == wanted),
            )
            .await?;
        match event.kind {
            EventKind::DhcpLease { ip, .. } => Some(ip),
            _ => None,
        }
    }

    /// Stops the DHCP server and hostapd, deletes the table, and removes the
    /// address if the lab added it.
    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
        self.cleanup.run();
    }
}

impl Drop for ServedNetwork {
    fn drop(&mut self) {
        self.halt();
    }
}

/// Whether process `pid` is running (and not a zombie).
fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| {
            stat.rsplit_once(')')
                .map(|(_, rest)| rest.trim_start().to_owned())
        })
        .is_some_and(|rest| !rest.starts_with('Z') && !rest.starts_with('X'))
}
