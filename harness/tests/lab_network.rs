//! `hil lab --serve-network` as a runner with a real board uses it, with no
//! Wi-Fi hardware: each test makes a "lab" and a "board" network namespace
//! joined by a veth pair, runs `hil lab` in the lab one (`ip netns exec`) and
//! plays the board in the other with udhcpc, dig, openssl and sntp. Neither
//! namespace has a way out (the lab one holds only its veth end and loopback, no
//! default route), so no packet leaves them. The namespaces, the veth pair and
//! every nftables table inside go away when the test ends, failed or not (a
//! guard deletes the namespaces; a table lives and dies with its namespace).
//!
//! These tests need root (network namespaces), nftables, udhcpc, dig, openssl,
//! sntp and capsh: `ci/setup` installs them.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::netns::{ok, require_root, require_tools, Netns};
use common::text;
use serde_json::Value;

const BOARD_MAC: &str = "18:fe:34:aa:bb:01";

fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"))
}

/// Two namespaces joined by a veth pair; deleted on drop, with everything in
/// them (links, addresses, nftables tables) and the board's resolv.conf.
struct Namespaces {
    lab: Netns,
    board: Netns,
    lab_if: String,
    board_if: String,
}

impl Namespaces {
    fn new(tag: &str) -> Namespaces {
        require_root("these tests make network namespaces and need root");
        require_tools(&["ip", "nft", "udhcpc", "dig", "openssl", "sntp", "capsh"]);
        let pid = std::process::id();
        let (lab_if, board_if) = (format!("hl{pid}{tag}"), format!("hb{pid}{tag}"));
        assert!(lab_if.len() <= 15, "{lab_if}");
        // Each namespace is deleted when dropped, so a failure from here on
        // still deletes whatever was made.
        let ns = Namespaces {
            lab: Netns::new(format!("hil-lab-{pid}-{tag}")),
            board: Netns::new(format!("hil-board-{pid}-{tag}")),
            lab_if,
            board_if,
        };
        ns.lab.veth(&ns.lab_if, &ns.board, &ns.board_if);
        ns.lab.ip(&["link", "set", "lo", "up"]);
        ns.board.ip(&["link", "set", "lo", "up"]);
        ns.board
            .ip(&["link", "set", &ns.board_if, "address", BOARD_MAC]);
        ns.board.ip(&["link", "set", &ns.board_if, "up"]);
        ns.lab.ip(&["link", "set", &ns.lab_if, "up"]);
        ns
    }

    fn in_lab(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        self.lab.exec(program)
    }

    fn in_board(&self, program: &str) -> Command {
        self.board.exec(program)
    }

    /// `hil lab` in the lab namespace, with `args` after `lab`.
    fn hil_lab(&self, run_dir: &Path, args: &[&str]) -> Command {
        let mut cmd = self.in_lab(env!("CARGO_BIN_EXE_hil"));
        cmd.arg("lab")
            .args(args)
            .arg("--run-dir")
            .arg(run_dir)
            .env_remove("HIL_LAB_BIND")
            .env_remove("HIL_SERVE_NETWORK")
            .env_remove("HIL_AP_PSK");
        cmd
    }

    /// The lab namespace's table for the served interface, if there is one.
    fn table(&self) -> Option<String> {
        let out = run(self.in_lab("nft").args([
            "list",
            "table",
            "ip",
            &format!("hil-lab-{}", self.lab_if),
        ]));
        out.status
            .success()
            .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The IPv4 addresses of the lab's end, as `ip -brief` prints them.
    fn lab_addresses(&self) -> String {
        self.lab
            .ip(&["-4", "-brief", "address", "show", "dev", &self.lab_if])
    }

    fn resolv_dir(&self) -> PathBuf {
        Path::new("/etc/netns").join(self.board.name())
    }
}

impl Drop for Namespaces {
    // The board's resolv.conf lives outside its namespace, under /etc/netns;
    // the namespaces themselves go with the fields.
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(self.resolv_dir());
    }
}

/// A running `hil lab --json`: its first line, then its events as they come.
/// Dropping it interrupts it and, if it does not stop, kills it.
struct LabProcess {
    child: Child,
    lines: mpsc::Receiver<String>,
    ready: Value,
    events: Vec<Value>,
}

impl LabProcess {
    fn start(mut cmd: Command) -> LabProcess {
        let mut child = cmd
            .arg("--json")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start hil lab");
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lab = LabProcess {
            child,
            lines,
            ready: Value::Null,
            events: Vec::new(),
        };
        let first = match lab.lines.recv_timeout(Duration::from_secs(90)) {
            Ok(line) => line,
            Err(_) => {
                let _ = lab.child.kill();
                let out = lab.child.wait_with_output_now();
                panic!("hil lab printed no first line:\n{out}");
            }
        };
        lab.ready = serde_json::from_str(&first).unwrap_or_else(|e| panic!("{e}: {first}"));
        lab
    }

    /// The first event matching `pred` (already seen or arriving within `limit`).
    fn wait(&mut self, what: &str, limit: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        if let Some(e) = self.events.iter().find(|e| pred(e)) {
            return e.clone();
        }
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let event: Value =
                        serde_json::from_str(&line).unwrap_or_else(|e| panic!("{e}: {line}"));
                    self.events.push(event.clone());
                    if pred(&event) {
                        return event;
                    }
                }
                Err(_) => panic!(
                    "no {what} within {limit:?}; events so far:\n{}",
                    self.events
                        .iter()
                        .map(Value::to_string)
                        .collect::<Vec<_>>()
                        .join("\n")
                ),
            }
        }
    }

    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Sends `signal` and waits for the exit; its status and stderr.
    fn stop_with(mut self, signal: &str) -> (std::process::ExitStatus, Duration) {
        let started = Instant::now();
        self.signal(signal);
        let deadline = started + Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return (status, started.elapsed());
            }
            assert!(
                Instant::now() < deadline,
                "hil lab did not stop on SIG{signal}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

trait NowOutput {
    fn wait_with_output_now(&mut self) -> String;
}

impl NowOutput for Child {
    fn wait_with_output_now(&mut self) -> String {
        let _ = self.wait();
        let mut err = String::new();
        if let Some(mut stderr) = self.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut stderr, &mut err);
        }
        err
    }
}

impl Drop for LabProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = Command::new("kill")
                .args(["-INT", &self.child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if !matches!(self.child.try_wait(), Ok(None)) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// udhcpc's event script: records the lease's variables and configures the
/// interface as a board's DHCP client would (address and default route).
const UDHCPC_SCRIPT: &str = "#!/bin/sh
case \"$1\" in
  bound|renew)
    env | grep -E '^(ip|subnet|mask|router|dns|ntpsrv|lease|serverid|broadcast)=' | sort > \"$LEASE_FILE\"
    ip addr add \"$ip/$mask\" dev \"$interface\"
    ip route add default via \"$router\" dev \"$interface\"
    ;;
esac
exit 0
";

fn lease_vars(path: &Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("udhcpc wrote no lease ({e})"))
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

fn is_event(e: &Value, name: &str) -> bool {
    e["event"] == name
}

#[test]
fn a_board_gets_a_lease_and_meets_the_lab_by_name_and_by_literal_ip() {
    let ns = Namespaces::new("a");
    let dir = tempfile::tempdir().unwrap();
    let mut lab = LabProcess::start(ns.hil_lab(
        &dir.path().join("run"),
        &["--serve-network", &ns.lab_if, "--name", "mqtt.example.com"],
    ));
    let network = &lab.ready["network"];
    assert_eq!(network["interface"], ns.lab_if.as_str(), "{}", lab.ready);
    assert_eq!(network["address"], "10.77.0.1/24");
    assert_eq!(network["assigned_address"], true);
    assert_eq!(network["table"], format!("ip hil-lab-{}", ns.lab_if));
    // Every service listens on the network's address.
    for key in ["mqtt_tls", "ntp", "dns"] {
        let addr: std::net::SocketAddr = lab.ready[key].as_str().unwrap().parse().unwrap();
        assert_eq!(addr.ip().to_string(), "10.77.0.1", "{key}");
    }
    // Nothing can leave: the lab namespace holds only loopback and its veth end,
    // and routes nowhere else.
    let links = ns.lab.ip(&["-brief", "link"]);
    let names: Vec<&str> = links
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|n| n.split('@').next().unwrap_or(n))
        .collect();
    assert_eq!(names, ["lo", ns.lab_if.as_str()], "{links}");
    assert_eq!(ns.lab.ip(&["route", "show", "default"]), "");

    // The board asks for a lease, as its DHCP client does after joining.
    let script = dir.path().join("udhcpc.sh");
    std::fs::write(&script, UDHCPC_SCRIPT).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let lease_file = dir.path().join("lease.env");
    let started = Instant::now();
    ok(ns
        .in_board("udhcpc")
        .args(["-i", &ns.board_if, "-n", "-q", "-f", "-t", "5", "-T", "1"])
        .args(["-x", "hostname:esp-test", "-O", "ntpsrv", "-s"])
        .arg(&script)
        .env("LEASE_FILE", &lease_file));
    let lease_took = started.elapsed();
    let vars = lease_vars(&lease_file);
    let ip: std::net::Ipv4Addr = vars["ip"].parse().unwrap();
    assert!(
        ip.octets()[..3] == [10, 77, 0] && ip.octets()[3] > 1 && ip.octets()[3] < 255,
        "{vars:?}"
    );
    assert_eq!(vars["subnet"], "255.255.255.0", "{vars:?}");
    assert_eq!(vars["router"], "10.77.0.1", "{vars:?}");
    assert_eq!(vars["dns"], "10.77.0.1", "{vars:?}");
    assert_eq!(vars["ntpsrv"], "10.77.0.1", "option 42: {vars:?}");
    assert_eq!(vars["serverid"], "10.77.0.1", "{vars:?}");
    assert_eq!(vars["lease"], "3600", "{vars:?}");

    // The lease is on the timeline, by MAC, with the host name.
    let leased = lab.wait("the lease event", Duration::from_secs(5), |e| {
        is_event(e, "dhcp_lease")
    });
    assert_eq!(leased["mac"], BOARD_MAC, "{leased}");
    assert_eq!(leased["ip"], ip.to_string());
    assert_eq!(leased["hostname"], "esp-test");
    assert_eq!(leased["device"], ip.to_string());

    // The board uses the DNS server its lease names.
    std::fs::create_dir_all(ns.resolv_dir()).unwrap();
    std::fs::write(
        ns.resolv_dir().join("resolv.conf"),
        format!("nameserver {}\n", vars["dns"]),
    )
    .unwrap();
    let dig = |args: &[&str]| {
        ok(ns
            .in_board("dig")
            .args(["+short", "+time=3", "+tries=1"])
            .args(args))
        .trim()
        .to_owned()
    };
    assert_eq!(dig(&["mqtt.example.com"]), "10.77.0.1");
    // A resolver hard-wired in the firmware (TEST-NET-3 here) meets the lab too,
    // over UDP and over TCP.
    assert_eq!(dig(&["@203.0.113.53", "mqtt.example.com"]), "10.77.0.1");
    assert_eq!(
        dig(&["+tcp", "@203.0.113.53", "mqtt.example.com"]),
        "10.77.0.1"
    );
    lab.wait("the DNS query", Duration::from_secs(5), |e| {
        is_event(e, "dns_query") && e["name"] == "mqtt.example.com" && e["device"] == ip.to_string()
    });

    // By name and by a literal public-looking address, 8883 lands on the lab's
    // TLS front: the ClientHellos recorded from the board prove it.
    let s_client = |target: &str, sni: Option<&str>| {
        let mut cmd = ns.in_board("openssl");
        cmd.args(["s_client", "-connect", target]);
        if let Some(sni) = sni {
            cmd.args(["-servername", sni]);
        }
        let out = run(&mut cmd);
        assert!(
            text(&out).contains("CONNECTED"),
            "openssl s_client {target}:\n{}",
            text(&out)
        );
    };
    s_client("mqtt.example.com:8883", Some("mqtt.example.com"));
    let by_name = lab.wait("the ClientHello by name", Duration::from_secs(10), |e| {
        is_event(e, "tls_client_hello")
            && e["device"] == ip.to_string()
            && e["hello"]["sni"] == "mqtt.example.com"
    });
    s_client("203.0.113.7:8883", None);
    let by_ip = lab.wait("the ClientHello by IP", Duration::from_secs(10), |e| {
        is_event(e, "tls_client_hello")
            && e["device"] == ip.to_string()
            && e["hello"]["sni"].is_null()
    });
    assert_ne!(by_name["peer"], by_ip["peer"]);
    for hello in [&by_name, &by_ip] {
        let peer = hello["peer"].clone();
        let done = lab.wait("a completed handshake", Duration::from_secs(10), |e| {
            is_event(e, "tls_handshake") && e["peer"] == peer
        });
        assert_eq!(done["outcome"], "completed", "{done}");
    }

    // NTP to any address is the lab's clock.
    let sntp = run(ns.in_board("sntp").args(["-t", "3", "203.0.113.123"]));
    assert!(sntp.status.success(), "{}", text(&sntp));
    lab.wait("the NTP request", Duration::from_secs(5), |e| {
        is_event(e, "ntp_request") && e["device"] == ip.to_string() && e["answered"].is_string()
    });
    eprintln!("lease obtained in {lease_took:?}");

    let (status, took) = lab.stop_with("INT");
    assert!(status.success(), "{status}");
    eprintln!("stopped in {took:?}");
    assert_eq!(ns.table(), None);
}

#[test]
fn ctrl_c_removes_the_table_and_the_address_it_added() {
    let ns = Namespaces::new("c");
    let dir = tempfile::tempdir().unwrap();
    let lab = LabProcess::start(ns.hil_lab(
        &dir.path().join("run"),
        &["--serve-network", &ns.lab_if, "--subnet", "10.88.0.9/24"],
    ));
    // The lab's address as asked, added by the lab.
    assert_eq!(lab.ready["network"]["address"], "10.88.0.9/24");
    assert_eq!(lab.ready["network"]["assigned_address"], true);
    assert!(
        ns.lab_addresses().contains("10.88.0.9/24"),
        "{}",
        ns.lab_addresses()
    );
    let table = ns.table().expect("the table while the lab runs");
    assert!(table.contains("dnat to 10.88.0.9:"), "{table}");
    let (status, took) = lab.stop_with("INT");
    assert!(status.success(), "{status}");
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert_eq!(ns.table(), None, "the table outlived the lab");
    assert!(
        !ns.lab_addresses().contains("10.88.0.9"),
        "the address outlived the lab: {}",
        ns.lab_addresses()
    );
}

#[test]
fn a_stale_table_from_a_crashed_run_is_replaced_and_an_existing_address_kept() {
    let ns = Namespaces::new("s");
    // What a run killed with SIGKILL leaves: its table (and here, an address the
    // operator configured by hand, which the lab must use and leave alone).
    let table = format!("hil-lab-{}", ns.lab_if);
    let stale = format!(
        "table ip {table} {{\n comment \"hil lab pid 999999: redirects to the lab on {}\"\n chain stale {{\n  type nat hook prerouting priority dstnat; policy accept;\n  tcp dport 8883 dnat to 10.77.0.200:1\n }}\n}}\n",
        ns.lab_if
    );
    let mut nft = ns.in_lab("nft");
    nft.args(["-f", "-"]).stdin(Stdio::piped());
    let mut child = nft.spawn().unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), stale.as_bytes()).unwrap();
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    ns.lab
        .ip(&["addr", "add", "10.77.0.5/24", "dev", &ns.lab_if]);

    let dir = tempfile::tempdir().unwrap();
    let lab =
        LabProcess::start(ns.hil_lab(&dir.path().join("run"), &["--serve-network", &ns.lab_if]));
    let network = &lab.ready["network"];
    assert_eq!(network["replaced_stale_table"], true, "{network}");
    assert_eq!(network["stale_owner"], 999999, "{network}");
    assert_eq!(network["address"], "10.77.0.5/24", "{network}");
    assert_eq!(network["assigned_address"], false);
    let now = ns.table().expect("the lab's table");
    assert!(!now.contains("chain stale"), "{now}");
    assert!(
        now.contains("chain prerouting") && now.contains("chain forward"),
        "{now}"
    );
    assert!(
        now.contains(&format!("hil lab pid {}", lab.child.id())),
        "{now}"
    );
    // A second lab on the interface while this one serves it is refused, named.
    refused(
        &mut ns.hil_lab(&dir.path().join("second"), &["--serve-network", &ns.lab_if]),
        "hil::lab::network_held",
        &[&format!("pid {}", lab.child.id())],
    );
    assert!(ns
        .table()
        .is_some_and(|t| t.contains(&format!("hil lab pid {}", lab.child.id()))));

    // A CI runner cancels with SIGTERM: the same clean-up as Ctrl-C.
    let (status, _) = lab.stop_with("TERM");
    assert!(status.success(), "{status}");
    assert_eq!(ns.table(), None);
    // The address was there before the lab: it stays.
    assert!(
        ns.lab_addresses().contains("10.77.0.5/24"),
        "{}",
        ns.lab_addresses()
    );
}

/// A stand-in for hostapd: keeps the configuration it was given, says
/// AP-ENABLED as hostapd does, and notes the SIGTERM that stops it.
const FAKE_HOSTAPD: &str = "#!/bin/sh
trap 'echo term > \"$FAKE_DIR/term\"; exit 0' TERM
cp \"$1\" \"$FAKE_DIR/seen.conf\"
echo $$ > \"$FAKE_DIR/pid\"
iface=$(sed -n 's/^interface=//p' \"$1\")
echo \"$iface: interface state UNINITIALIZED->ENABLED\"
echo \"$iface: AP-ENABLED\"
while :; do sleep 1 & wait $!; done
";

#[test]
fn an_access_point_is_configured_served_by_hostapd_and_stopped_on_exit() {
    let ns = Namespaces::new("w");
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("bin");
    std::fs::create_dir(&fake).unwrap();
    let hostapd = fake.join("hostapd");
    std::fs::write(&hostapd, FAKE_HOSTAPD).unwrap();
    std::fs::set_permissions(
        &hostapd,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let path = format!(
        "{}:{}",
        fake.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let run_dir = dir.path().join("run");
    let mut cmd = ns.hil_lab(
        &run_dir,
        &[
            "--serve-network",
            &ns.lab_if,
            "--ap-ssid",
            "hil lab",
            "--ap-channel",
            "11",
            "--ap-country",
            "de",
        ],
    );
    cmd.env("PATH", path)
        .env("FAKE_DIR", &fake)
        .env("HIL_AP_PSK", "correct horse battery");
    let lab = LabProcess::start(cmd);
    let network = &lab.ready["network"];
    assert_eq!(network["ssid"], "hil lab", "{network}");
    let config = PathBuf::from(network["hostapd_config"].as_str().unwrap());
    assert!(config.starts_with(&run_dir), "{}", config.display());
    // The PSK never reaches the output.
    assert!(!lab.ready.to_string().contains("correct horse"));
    let mode =
        std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(&config).unwrap().permissions());
    assert_eq!(mode & 0o777, 0o600);
    let seen = std::fs::read_to_string(fake.join("seen.conf")).unwrap();
    assert_eq!(seen, std::fs::read_to_string(&config).unwrap());
    let pairs: Vec<(&str, &str)> = seen
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| l.split_once('=').expect("key=value"))
        .collect();
    for want in [
        ("interface", ns.lab_if.as_str()),
        ("driver", "nl80211"),
        ("ssid", "hil lab"),
        ("country_code", "DE"),
        ("channel", "11"),
        ("hw_mode", "g"),
        ("wpa", "2"),
        ("wpa_key_mgmt", "WPA-PSK"),
        ("rsn_pairwise", "CCMP"),
        ("wpa_passphrase", "correct horse battery"),
    ] {
        assert!(pairs.contains(&want), "{want:?} not in\n{seen}");
    }
    let pid: u32 = std::fs::read_to_string(fake.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());

    let (status, _) = lab.stop_with("INT");
    assert!(status.success(), "{status}");
    assert!(fake.join("term").exists(), "hostapd was not asked to stop");
    let deadline = Instant::now() + Duration::from_secs(5);
    while Path::new(&format!("/proc/{pid}")).exists() {
        // A zombie is gone enough: its stat says Z until the reaper runs.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.contains(") Z ") || stat.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "hostapd (pid {pid}) outlived the lab"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(ns.table(), None);
}

/// `hil lab --serve-network` that must refuse: exit 2, the code, the fix.
fn refused(cmd: &mut Command, code: &str, says: &[&str]) {
    let started = Instant::now();
    let out = run(cmd);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{cmd:?}\n{all}");
    assert!(all.contains(code), "no {code} in\n{all}");
    for s in says {
        assert!(all.contains(s), "no `{s}` in\n{all}");
    }
    // Refused before any certificate was generated.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn bad_network_input_exits_2_with_the_fix_and_changes_nothing() {
    let ns = Namespaces::new("b");
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let hil = env!("CARGO_BIN_EXE_hil");

    refused(
        &mut ns.hil_lab(&run_dir, &["--serve-network", "hil-nope0"]),
        "hil::lab::no_such_interface",
        &["hil-nope0", &ns.lab_if],
    );
    refused(
        &mut ns.hil_lab(&run_dir, &["--serve-network", "bad\"name"]),
        "hil::lab::interface_name",
        &[],
    );
    refused(
        &mut ns.hil_lab(
            &run_dir,
            &[
                "--serve-network",
                &ns.lab_if,
                "--ap-ssid",
                "lab",
                "--ap-psk",
                "short",
            ],
        ),
        "hil::lab::ap_config",
        &["8 to 63"],
    );
    let out = run(&mut ns.hil_lab(
        &run_dir,
        &["--serve-network", &ns.lab_if, "--subnet", "10.77.0.0/31"],
    ));
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("/8 and /30"), "{}", text(&out));

    // A network this host already uses (here on loopback) is refused, naming it
    // and suggesting a free one.
    ns.lab.ip(&["addr", "add", "10.77.0.5/16", "dev", "lo"]);
    refused(
        &mut ns.hil_lab(&run_dir, &["--serve-network", &ns.lab_if]),
        "hil::lab::subnet_overlap",
        &[
            "10.77.0.0/24 overlaps 10.77.0.0/16",
            "`lo`",
            "e.g. 10.78.0.0/24",
        ],
    );
    ns.lab.ip(&["addr", "del", "10.77.0.5/16", "dev", "lo"]);

    // Root with a capability dropped.
    let lab_without = |capability: &str| {
        let mut cmd = ns.in_lab("capsh");
        cmd.arg(format!("--drop={capability}"))
            .args([
                "--",
                "-c",
                "exec \"$0\" lab --serve-network \"$1\" --run-dir \"$2\"",
            ])
            .arg(hil)
            .arg(&ns.lab_if)
            .arg(&run_dir);
        cmd
    };
    refused(
        &mut lab_without("cap_net_admin"),
        "hil::lab::net_admin",
        &["setcap cap_net_admin"],
    );
    // Without the privilege for port 67 (a new namespace starts unprivileged
    // ports at 1024).
    refused(
        &mut lab_without("cap_net_bind_service"),
        "hil::lab::dhcp_port_denied",
        &["cap_net_bind_service"],
    );

    // An interface that is down.
    ns.lab.ip(&["link", "set", &ns.lab_if, "down"]);
    refused(
        &mut ns.hil_lab(&run_dir, &["--serve-network", &ns.lab_if]),
        "hil::lab::interface_down",
        &[&format!("ip link set {} up", ns.lab_if)],
    );

    // Nothing was changed by any of them.
    assert_eq!(ns.table(), None);
    assert!(
        !ns.lab_addresses().contains("10."),
        "{}",
        ns.lab_addresses()
    );
}

/// Moves the calling thread into the network namespace at `path`: sockets it
/// opens, programs it starts and threads it creates from then on live there.
#[allow(unsafe_code)]
fn enter(path: &Path) {
    use std::os::fd::AsRawFd;
    let file = std::fs::File::open(path).unwrap();
    // SAFETY: setns with a descriptor of a network namespace only changes this
    // thread's namespace; the descriptor stays open for the call.
    let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

#[test]
fn the_library_tells_a_boards_address_by_mac_and_undoes_everything_on_drop() {
    use hil::lab::network::{MacAddr, NetworkConfig, NetworkError};
    use hil::lab::{Lab, LabConfig, LabError};

    let ns = Namespaces::new("l");
    let lab_ns = Path::new("/run/netns").join(ns.lab.name());
    let (lab_if, board, board_if) = (
        ns.lab_if.clone(),
        ns.board.name().to_owned(),
        ns.board_if.clone(),
    );
    let dir = tempfile::tempdir().unwrap();
    let (run_dir, script, lease_file) = (
        dir.path().join("run"),
        dir.path().join("udhcpc.sh"),
        dir.path().join("lease.env"),
    );
    std::fs::write(&script, UDHCPC_SCRIPT).unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // A thread of its own enters the lab's namespace, so the test's other
    // threads stay where they were.
    let worker = std::thread::spawn(move || {
        enter(&lab_ns);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let now = time::OffsetDateTime::now_utc();
            let catalogue = hil::pki::Catalogue::generate(now).unwrap();
            let profile = std::sync::Arc::new(
                catalogue
                    .profile(hil::pki::ProfileId::Valid)
                    .unwrap()
                    .clone(),
            );

            // An interface that is not there: the typed error, nothing started.
            let mut bad = LabConfig::new(profile.clone(), &run_dir);
            bad.network = Some(NetworkConfig::new("hil-absent0"));
            match Lab::start(bad).await {
                Err(LabError::Network(NetworkError::NoSuchInterface { known, .. })) => {
                    assert!(known.contains(&lab_if), "{known}");
                }
                other => panic!("expected NoSuchInterface, got {other:?}"),
            }

            let mut config = LabConfig::new(profile, &run_dir);
            config.network = Some(NetworkConfig::new(lab_if.clone()));
            let lab = Lab::start(config).await.unwrap();
            let network = lab.network().expect("a served network");
            assert_eq!(network.address().to_string(), "10.77.0.1");
            let mac: MacAddr = BOARD_MAC.to_uppercase().parse().unwrap();
            assert_eq!(network.lease_for(mac), None);
            // Nobody asks: the wait ends empty at its deadline.
            assert_eq!(
                network
                    .wait_for_lease(mac, Duration::from_millis(200))
                    .await,
                None
            );

            // The runner knows the MAC from flashing: it can learn the board's
            // address (and set its policies) before the board boots.
            let promised = network.reserve(mac).expect("an address to promise");
            assert_eq!(network.reserve(mac), Some(promised));
            assert_eq!(network.lease_for(mac), None);

            let waiting = network.wait_for_lease(mac, Duration::from_secs(20));
            let client = async {
                let out = tokio::process::Command::new("ip")
                    .args(["netns", "exec", &board, "udhcpc", "-i", &board_if])
                    .args(["-n", "-q", "-f", "-t", "5", "-T", "1"])
                    .args(["-x", "hostname:esp-lib", "-s"])
                    .arg(&script)
                    .env("LEASE_FILE", &lease_file)
                    .stdin(Stdio::null())
                    .output()
                    .await
                    .unwrap();
                assert!(out.status.success(), "{}", text(&out));
            };
            let (leased, ()) = tokio::join!(waiting, client);
            let given = lease_vars(&lease_file)["ip"].clone();
            assert_eq!(leased.map(|ip| ip.to_string()), Some(given.clone()));
            assert_eq!(promised.to_string(), given);
            assert_eq!(
                network.lease_for(mac).map(|ip| ip.to_string()),
                Some(given.clone())
            );
            let leases = network.leases();
            assert_eq!(leases.len(), 1, "{leases:?}");
            assert_eq!(leases[0].mac, mac);
            assert_eq!(leases[0].hostname.as_deref(), Some("esp-lib"));
            // Asked again once leased, the answer is immediate.
            let started = Instant::now();
            assert!(network
                .wait_for_lease(mac, Duration::from_secs(5))
                .await
                .is_some());
            assert!(started.elapsed() < Duration::from_millis(100));
            // Dropped without shutdown, as on a panic: everything is undone.
            drop(lab);
        });
    });
    if let Err(panic) = worker.join() {
        std::panic::resume_unwind(panic);
    }
    assert_eq!(ns.table(), None, "the table outlived the dropped lab");
    assert!(
        !ns.lab_addresses().contains("10.77.0.1"),
        "{}",
        ns.lab_addresses()
    );
}
