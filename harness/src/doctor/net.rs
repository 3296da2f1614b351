//! Network checks: the lab's ports can be bound on the lab address, and that
//! address belongs to this host and is reachable by a board.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpListener, UdpSocket};

use super::procfs::{
    has_net_bind_service, socket_holders, sockets_on_port, unprivileged_port_start, Holder, Proto,
    SocketRow,
};
use super::Check;

/// The lab's listeners (see `runner::Environment::start`): DNS, NTP, MQTT over TLS.
const LAB_PORTS: [(Proto, u16, &str); 3] = [
    (Proto::Udp, 53, "DNS"),
    (Proto::Udp, 123, "NTP"),
    (Proto::Tcp, 8883, "MQTT/TLS"),
];

fn proto_name(proto: Proto) -> &'static str {
    match proto {
        Proto::Udp => "udp",
        Proto::Tcp => "tcp",
    }
}

fn try_bind(proto: Proto, addr: SocketAddr) -> io::Result<()> {
    match proto {
        Proto::Udp => UdpSocket::bind(addr).map(drop),
        Proto::Tcp => TcpListener::bind(addr).map(drop),
    }
}

/// Whether a socket bound at `bound` collides with binding `wanted`.
fn collides(bound: IpAddr, wanted: IpAddr) -> bool {
    bound == wanted || bound.is_unspecified() || wanted.is_unspecified()
}

/// The sockets on `port` that collide with binding it on `lab`, with the processes
/// holding each (empty when this user cannot see them).
pub(super) fn holders_of(proto: Proto, port: u16, lab: IpAddr) -> Vec<(SocketRow, Vec<Holder>)> {
    sockets_on_port(proto, port)
        .into_iter()
        .filter(|row| collides(row.local.ip(), lab))
        .map(|row| {
            let holders = socket_holders(row.inode);
            (row, holders)
        })
        .collect()
}

/// The check for a port found in use, naming its holders and the fix that suits
/// them: systemd-resolved's stub listener gets advice of its own.
fn in_use(
    proto: Proto,
    name: String,
    what: &str,
    at: SocketAddr,
    found: &[(SocketRow, Vec<Holder>)],
) -> Check {
    let port = at.port();
    let stub = IpAddr::from([127, 0, 0, 53]);
    let resolved = found.iter().any(|(row, holders)| {
        row.local.ip() == stub
            || holders
                .iter()
                .any(|h| h.command.starts_with("systemd-resolve"))
    });
    let described: Vec<String> = found
        .iter()
        .map(|(row, holders)| {
            if holders.is_empty() {
                format!("{} (uid {}, process not visible)", row.local, row.uid)
            } else {
                let names: Vec<String> = holders.iter().map(|h| h.to_string()).collect();
                format!("{} by {}", row.local, names.join(", "))
            }
        })
        .collect();
    let detail = if described.is_empty() {
        format!("{what}: {at} is already in use")
    } else {
        format!("{what}: {at} is already in use: {}", described.join("; "))
    };
    let visible = found.iter().any(|(_, holders)| !holders.is_empty());
    let fix = if resolved {
        "systemd-resolved's stub listener holds 127.0.0.53:53: bind the lab to the \
         runner's LAN address with --lab-bind <LAN IP> instead of 0.0.0.0, or set \
         DNSStubListener=no in /etc/systemd/resolved.conf and `sudo systemctl restart \
         systemd-resolved`"
            .to_string()
    } else if visible {
        "stop the process named above (another lab or hil run?), or bind the lab to \
         another address with --lab-bind"
            .to_string()
    } else {
        let flag = if proto == Proto::Udp { "u" } else { "t" };
        format!(
            "find the holder with `sudo ss -l{flag}np 'sport = :{port}'` and stop it, or \
             bind the lab to another address with --lab-bind"
        )
    };
    Check::fail(name, detail, fix)
}

/// Binds each of the lab's ports on `lab` and says why one cannot be bound.
pub fn check_lab_ports(lab: IpAddr) -> Vec<Check> {
    LAB_PORTS
        .iter()
        .map(|&(proto, port, what)| check_port(proto, port, what, lab))
        .collect()
}

/// Binds `port` on `lab`; on failure tells permission from a holder, and names it.
fn check_port(proto: Proto, port: u16, what: &str, lab: IpAddr) -> Check {
    let name = format!("lab: {}/{port}", proto_name(proto));
    let at = SocketAddr::new(lab, port);
    match try_bind(proto, at) {
        Ok(()) => Check::ok(name, format!("{what} can bind {at}")),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied => Check::fail(
            name,
            format!("{what}: binding {at} is not permitted (port below net.ipv4.ip_unprivileged_port_start)"),
            "run hil as root, or grant the binary the capability: `sudo setcap \
             cap_net_bind_service=+ep $(command -v hil)`, or lower the limit: `sudo \
             sysctl net.ipv4.ip_unprivileged_port_start=53` (persist it in \
             /etc/sysctl.d/)",
        ),
        Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
            in_use(proto, name, what, at, &holders_of(proto, port, lab))
        }
        Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => Check::fail(
            name,
            format!("{what}: {lab} is not an address of this host"),
            "pass one of this host's addresses (`ip -brief address`) to --lab-bind",
        ),
        Err(e) => Check::fail(
            name,
            format!("{what}: binding {at} failed: {e}"),
            "check --lab-bind and the host's network configuration",
        ),
    }
}

/// How this process stands with privileged ports: the sysctl and the capability.
pub fn check_privileges() -> Check {
    const NAME: &str = "lab: privileges";
    let start = unprivileged_port_start();
    let cap = has_net_bind_service();
    let start_text = start.map_or("unknown".to_string(), |s| s.to_string());
    let cap_text = match cap {
        Some(true) => "yes",
        Some(false) => "no",
        None => "unknown",
    };
    let detail = format!(
        "net.ipv4.ip_unprivileged_port_start={start_text}, CAP_NET_BIND_SERVICE: {cap_text}"
    );
    let may_bind_53 = cap == Some(true) || start.is_some_and(|s| s <= 53);
    if may_bind_53 {
        Check::ok(NAME, detail)
    } else {
        Check::warn(
            NAME,
            format!("{detail}: ports 53 and 123 need one of them"),
            "run hil as root, or `sudo setcap cap_net_bind_service=+ep $(command -v hil)`, or \
             `sudo sysctl net.ipv4.ip_unprivileged_port_start=53`",
        )
    }
}

/// `--lab-bind`: an address of this host that a board can reach.
pub fn check_lab_bind(lab: IpAddr) -> Check {
    const NAME: &str = "lab: address";
    if lab.is_unspecified() {
        return Check::ok(NAME, format!("{lab}: every address of this host"));
    }
    match UdpSocket::bind(SocketAddr::new(lab, 0)) {
        Err(e) if e.kind() == io::ErrorKind::AddrNotAvailable => Check::fail(
            NAME,
            format!("{lab} is not an address of this host"),
            "pass one of this host's addresses (`ip -brief address`) to --lab-bind",
        ),
        Err(e) => Check::fail(
            NAME,
            format!("cannot bind {lab}: {e}"),
            "pass one of this host's addresses (`ip -brief address`) to --lab-bind",
        ),
        Ok(_) if lab.is_loopback() => Check::warn(
            NAME,
            format!("{lab} is a loopback address: a real board cannot reach it"),
            "for real boards pass the runner's LAN address (`ip -brief address`) to \
             --lab-bind; loopback only suits virtual boards",
        ),
        Ok(_) => Check::ok(NAME, format!("{lab} is an address of this host")),
    }
}

#[cfg(test)]
mod tests {
    use super::super::procfs::parse_socket_line;
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    #[test]
    fn a_port_in_use_names_its_holder() {
        // The holder must be another process: this one is left out of the scan.
        let mut child = Command::new("python3")
            .args([
                "-c",
                "import socket, time\ns = socket.socket(); s.bind(('127.0.0.1', 0)); s.listen(1)\nprint(s.getsockname()[1], flush=True)\ntime.sleep(30)",
            ])
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 is missing: run ci/setup");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().parse().unwrap();
        let lab = IpAddr::from([127, 0, 0, 1]);
        let held = check_port(Proto::Tcp, port, "MQTT/TLS", lab);
        let free_udp = check_port(Proto::Udp, port, "DNS", lab);
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(held.status, super::super::Status::Fail, "{held:?}");
        assert!(
            held.detail
                .contains(&format!("127.0.0.1:{port} by pid {} (python3)", child.id())),
            "{held:?}"
        );
        assert!(held.fix.unwrap().contains("stop the process named above"));
        // Another protocol on the same number is no conflict.
        assert_eq!(free_udp.status, super::super::Status::Ok, "{free_udp:?}");
    }

    #[test]
    fn systemd_resolved_gets_its_own_advice() {
        // Ubuntu's stub listener as /proc/net/udp shows it on x86_64.
        let line = "  2: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   991        0 23791 2 0000000000000000 0";
        let row = parse_socket_line(line).unwrap();
        let holder = Holder {
            pid: 512,
            command: "systemd-resolve".into(),
        };
        let at = SocketAddr::from(([0, 0, 0, 0], 53));
        let check = in_use(
            Proto::Udp,
            "lab: udp/53".into(),
            "DNS",
            at,
            &[(row.clone(), vec![holder])],
        );
        assert_eq!(check.status, super::super::Status::Fail);
        if cfg!(target_endian = "little") {
            assert!(
                check
                    .detail
                    .contains("127.0.0.53:53 by pid 512 (systemd-resolve)"),
                "{check:?}"
            );
        }
        let fix = check.fix.unwrap();
        assert!(
            fix.contains("--lab-bind <LAN IP> instead of 0.0.0.0"),
            "{fix}"
        );
        assert!(fix.contains("DNSStubListener=no"), "{fix}");

        // A holder this user cannot see: the fix says how to find it.
        let mut other = row;
        other.local = SocketAddr::from(([0, 0, 0, 0], 123));
        let at = SocketAddr::from(([0, 0, 0, 0], 123));
        let check = in_use(
            Proto::Udp,
            "lab: udp/123".into(),
            "NTP",
            at,
            &[(other, vec![])],
        );
        assert!(
            check.detail.contains("uid 991, process not visible"),
            "{check:?}"
        );
        assert!(check.fix.unwrap().contains("sudo ss -lunp 'sport = :123'"));
    }

    #[test]
    fn lab_bind_addresses() {
        use super::super::Status;
        assert_eq!(
            check_lab_bind(IpAddr::from([127, 0, 0, 1])).status,
            Status::Warn
        );
        assert_eq!(
            check_lab_bind(IpAddr::from([0, 0, 0, 0])).status,
            Status::Ok
        );
        // TEST-NET-3 (RFC 5737) is never configured on a host.
        let foreign = check_lab_bind(IpAddr::from([203, 0, 113, 77]));
        assert_eq!(foreign.status, Status::Fail, "{foreign:?}");
        assert!(foreign.detail.contains("not an address of this host"));
    }
}
