//! `hil doctor --network IFACE [--ap]` against fakes: an `iw` on PATH that prints
//! `iw list` in iw 5.19's layout with and without AP mode, hostapd and iw hidden
//! (a private mount namespace lays /dev/null over the installed ones), the
//! capability dropped with capsh, an interface that is down, a network already
//! in use and a DHCP port already held. Every doctor runs in a network namespace
//! the test made (deleted on drop, failed test or not), so the ports it tries
//! are never this host's. Needs root, as CI runs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};

use common::cli::{check, checks};
use common::netns::require_root;
use common::text;
use serde_json::Value;

fn hil() -> &'static str {
    env!("CARGO_BIN_EXE_hil")
}

fn assert_check(checks: &[Value], name: &str, status: &str, detail: &[&str], fix: &[&str]) {
    let c = check(checks, name);
    assert_eq!(c["status"], status, "{c:#}");
    let d = c["detail"].as_str().unwrap();
    for s in detail {
        assert!(d.contains(s), "`{s}` not in the detail of {c:#}");
    }
    for s in fix {
        let f = c["fix"].as_str().unwrap_or_default();
        assert!(f.contains(s), "`{s}` not in the fix of {c:#}");
    }
}

/// A directory of fake programs put first on PATH.
struct Fakes {
    dir: tempfile::TempDir,
}

impl Fakes {
    fn new() -> Fakes {
        Fakes {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn add(&self, name: &str, script: &str) {
        let path = self.dir.path().join(name);
        std::fs::write(&path, script).unwrap();
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
    }

    fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    fn path(&self) -> String {
        format!(
            "{}:{}",
            self.dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        )
    }
}

/// `iw`: `dev IFACE info` names wiphy 1 for $FAKE_WIFI_IF and fails as iw does
/// for anything else; `list` prints $FAKE_IW_LIST.
const FAKE_IW: &str = "#!/bin/sh
if [ \"$1\" = dev ] && [ \"$3\" = info ]; then
  if [ -n \"$FAKE_WIFI_IF\" ] && [ \"$2\" = \"$FAKE_WIFI_IF\" ]; then
    printf 'Interface %s\\n\\tifindex 5\\n\\twdev 0x100000001\\n\\taddr 00:c0:ca:12:34:56\\n\\ttype managed\\n\\twiphy 1\\n\\ttxpower 20.00 dBm\\n' \"$2\"
    exit 0
  fi
  echo 'command failed: No such device (-19)' >&2
  exit 237
fi
if [ \"$1\" = list ]; then cat \"$FAKE_IW_LIST\"; exit 0; fi
exit 1
";

/// Two radios as `iw list` prints them: the board's adapter is phy1. phy0 (a
/// laptop's internal card) can be an access point either way.
fn iw_list(adapter_has_ap: bool) -> String {
    let adapter_modes = if adapter_has_ap {
        "\t\t * IBSS\n\t\t * managed\n\t\t * AP\n\t\t * AP/VLAN\n\t\t * monitor\n\t\t * mesh point\n"
    } else {
        "\t\t * managed\n\t\t * monitor\n"
    };
    format!(
        "Wiphy phy0
\twiphy index: 0
\tmax # scan SSIDs: 20
\tSupported interface modes:
\t\t * managed
\t\t * AP
\t\t * monitor
\tBand 1:
\t\tCapabilities: 0x1ff
Wiphy phy1
\twiphy index: 1
\tmax # scan SSIDs: 4
\tmax scan IEs length: 2257 bytes
\tSupported interface modes:
{adapter_modes}\tBand 1:
\t\tCapabilities: 0x17e
\t\t\tHT20/HT40
\t\tHE Iftypes: AP
\t\tFrequencies:
\t\t\t* 2412 MHz [1] (20.0 dBm)
\t\t\t* 2437 MHz [6] (20.0 dBm)
\tsoftware interface modes (can always be added):
\t\t * AP/VLAN
\t\t * monitor
\tvalid interface combinations:
\t\t * #{{ managed }} <= 1, #{{ AP, P2P-client, P2P-GO }} <= 1,
\t\t   total <= 2, #channels <= 1
"
    )
}

fn doctor(ns: &Netns, fakes: &Fakes, args: &[&str], env: &[(&str, &Path)]) -> Output {
    let mut cmd = ns.exec(hil());
    cmd.arg("doctor")
        .args(args)
        .arg("--json")
        .env("PATH", fakes.path())
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

#[test]
fn ap_mode_is_read_from_the_adapters_own_supported_modes() {
    let ns = Netns::new("a");
    ns.ip(&["link", "set", "lo", "up"]);
    let fakes = Fakes::new();
    fakes.add("iw", FAKE_IW);
    let with_ap = fakes.file("with-ap.txt", &iw_list(true));
    let without = fakes.file("without-ap.txt", &iw_list(false));
    // `lo` stands in for the adapter: it exists and is up everywhere.
    let wifi = Path::new("lo");

    let out = doctor(
        &ns,
        &fakes,
        &["--network", "lo", "--ap"],
        &[("FAKE_IW_LIST", &with_ap), ("FAKE_WIFI_IF", wifi)],
    );
    let c = checks(&out);
    assert_check(
        &c,
        "network: ap mode",
        "ok",
        &["lo (phy1) supports AP mode"],
        &[],
    );
    assert_check(
        &c,
        "tool: iw",
        "ok",
        &[&fakes.dir.path().display().to_string()],
        &[],
    );

    // AP appears in the software modes, the combinations and a band's HE
    // interface types, but not among the supported modes: no access point.
    let out = doctor(
        &ns,
        &fakes,
        &["--network", "lo", "--ap"],
        &[("FAKE_IW_LIST", &without), ("FAKE_WIFI_IF", wifi)],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let c = checks(&out);
    assert_check(
        &c,
        "network: ap mode",
        "fail",
        &["cannot be an access point", "managed, monitor"],
        &["supports AP mode", "Supported interface modes"],
    );

    // A wired interface is no access point.
    let out = doctor(
        &ns,
        &fakes,
        &["--network", "lo", "--ap"],
        &[("FAKE_IW_LIST", &with_ap)],
    );
    assert_check(
        &checks(&out),
        "network: ap mode",
        "fail",
        &["not a wireless interface", "No such device"],
        &["`iw dev` lists them", "wired segment"],
    );

    // Without --ap none of it is checked.
    let out = doctor(
        &ns,
        &fakes,
        &["--network", "lo"],
        &[("FAKE_IW_LIST", &with_ap)],
    );
    let c = checks(&out);
    assert!(c
        .iter()
        .all(|c| c["name"] != "network: ap mode" && c["name"] != "tool: hostapd"));
    assert_check(
        &c,
        "network: interface",
        "ok",
        &["lo is up", "127.0.0.1/8"],
        &[],
    );
    assert_check(
        &c,
        "network: privileges",
        "ok",
        &["CAP_NET_ADMIN: yes"],
        &[],
    );
    assert_check(&c, "tool: nft", "ok", &["nftables answers"], &[]);
}

/// Runs `hil doctor` in a private mount namespace where the installed hostapd
/// and iw are /dev/null (no longer files), as on a runner without them.
fn doctor_without_installed(ns: &Netns, fakes: &Fakes, programs: &[&str], args: &[&str]) -> Output {
    let mut hide = String::new();
    for p in programs {
        for dir in ["/usr/sbin", "/sbin", "/usr/bin", "/bin"] {
            hide.push_str(&format!(
                "[ -f {dir}/{p} ] && mount --bind /dev/null {dir}/{p}\n"
            ));
        }
    }
    let script = format!("{hide}exec \"$@\"");
    ns.exec("unshare")
        .args([
            "--mount",
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
            "sh",
        ])
        .arg(hil())
        .arg("doctor")
        .args(args)
        .arg("--json")
        .env("PATH", fakes.path())
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn missing_hostapd_and_iw_fail_with_the_package_to_install() {
    let ns = Netns::new("m");
    ns.ip(&["link", "set", "lo", "up"]);
    let fakes = Fakes::new();
    let out = doctor_without_installed(
        &ns,
        &fakes,
        &["hostapd", "iw"],
        &["--network", "lo", "--ap"],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let c = checks(&out);
    assert_check(
        &c,
        "tool: hostapd",
        "fail",
        &["hostapd not found"],
        &["apt-get install hostapd"],
    );
    assert_check(
        &c,
        "tool: iw",
        "fail",
        &["iw not found"],
        &["apt-get install iw"],
    );
    // Without iw the adapter's modes cannot be read: that check is left out.
    assert!(c.iter().all(|c| c["name"] != "network: ap mode"), "{c:#?}");

    // A hostapd on PATH is found even so.
    fakes.add("hostapd", "#!/bin/sh\nexit 0\n");
    let out = doctor_without_installed(
        &ns,
        &fakes,
        &["hostapd", "iw"],
        &["--network", "lo", "--ap"],
    );
    assert_check(
        &checks(&out),
        "tool: hostapd",
        "ok",
        &[&fakes.dir.path().join("hostapd").display().to_string()],
        &[],
    );
}

#[test]
fn without_cap_net_admin_the_privilege_and_nft_fail_with_setcap() {
    let ns = Netns::new("c");
    ns.ip(&["link", "set", "lo", "up"]);
    let out = ns
        .exec("capsh")
        .args([
            "--drop=cap_net_admin",
            "--",
            "-c",
            "exec \"$0\" doctor --network lo --json",
        ])
        .arg(hil())
        .stdin(Stdio::null())
        .output()
        .expect("capsh is installed: run ci/setup");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let c = checks(&out);
    assert_check(
        &c,
        "network: privileges",
        "fail",
        &["CAP_NET_ADMIN: no"],
        &["setcap cap_net_admin,cap_net_bind_service,cap_net_raw=+ep"],
    );
    assert_check(
        &c,
        "tool: nft",
        "fail",
        &["`nft list tables` failed"],
        &["CAP_NET_ADMIN"],
    );
}

/// A network namespace for the test; deleted on drop with whatever ran in it.
struct Netns {
    ns: common::netns::Netns,
    holders: Vec<Child>,
}

impl std::ops::Deref for Netns {
    type Target = common::netns::Netns;
    fn deref(&self) -> &Self::Target {
        &self.ns
    }
}

impl Netns {
    fn new(tag: &str) -> Netns {
        require_root("these tests need root");
        Netns {
            ns: common::netns::Netns::new(format!("hil-doctor-{}-{tag}", std::process::id())),
            holders: Vec::new(),
        }
    }

    fn doctor(&self, args: &[&str]) -> Output {
        self.exec(hil())
            .arg("doctor")
            .args(args)
            .arg("--json")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// A Python process in the namespace holding UDP 0.0.0.0:67.
    fn hold_dhcp_port(&mut self) -> u32 {
        let mut child = self
            .exec("python3")
            .arg("-c")
            .arg("import socket, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\ns.bind(('0.0.0.0', 67))\nprint('bound', flush=True)\ntime.sleep(60)")
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "bound");
        let pid = child.id();
        self.holders.push(child);
        pid
    }
}

impl Drop for Netns {
    // The fields drop after this: the holders die before the namespace goes.
    fn drop(&mut self) {
        for child in &mut self.holders {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[test]
fn down_interfaces_used_networks_and_a_held_dhcp_port_are_named_with_the_fix() {
    let mut ns = Netns::new("n");
    // A new namespace's loopback is down.
    let c = checks(&ns.doctor(&["--network", "lo"]));
    assert_check(
        &c,
        "network: interface",
        "fail",
        &["lo is down"],
        &["sudo ip link set lo up"],
    );
    // hostapd brings an access point's interface up itself.
    let c = checks(&ns.doctor(&["--network", "lo", "--ap"]));
    assert_check(
        &c,
        "network: interface",
        "ok",
        &["hostapd brings it up"],
        &[],
    );
    let c = checks(&ns.doctor(&["--network", "missing0"]));
    assert_check(
        &c,
        "network: interface",
        "fail",
        &["no interface `missing0`", "there are: lo"],
        &["ip -brief link"],
    );
    assert!(c.iter().all(|c| c["name"] != "network: udp/67"), "{c:#?}");

    ns.ip(&["link", "set", "lo", "up"]);
    ns.ip(&["addr", "add", "10.77.0.1/16", "dev", "lo"]);
    // A veth pair with both ends in the namespace stands in for a wired port.
    ns.ip(&[
        "link",
        "add",
        "hil-wired0",
        "type",
        "veth",
        "peer",
        "name",
        "hil-peer0",
    ]);
    ns.ip(&["link", "set", "hil-peer0", "up"]);
    ns.ip(&["link", "set", "hil-wired0", "up"]);
    let c = checks(&ns.doctor(&["--network", "hil-wired0"]));
    assert_check(
        &c,
        "network: subnet",
        "fail",
        &["10.77.0.0/24 overlaps 10.77.0.0/16", "`lo`"],
        &["e.g. --subnet 10.78.0.0/24"],
    );
    let c = checks(&ns.doctor(&["--network", "hil-wired0", "--subnet", "10.78.0.0/24"]));
    assert_check(
        &c,
        "network: subnet",
        "ok",
        &["10.78.0.0/24 is not used"],
        &[],
    );
    assert_check(&c, "network: udp/67", "ok", &["port 67 of hil-wired0"], &[]);

    let holder = ns.hold_dhcp_port();
    let c = checks(&ns.doctor(&["--network", "hil-wired0"]));
    assert_check(
        &c,
        "network: udp/67",
        "fail",
        &[
            "another DHCP server listens on port 67",
            &format!("0.0.0.0:67 by pid {holder} (python3)"),
        ],
        &["dnsmasq", "ss -lunp"],
    );
}
