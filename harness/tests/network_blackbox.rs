//! The black-box suite through the network the lab serves, end to end: a
//! virtual board plays a real board in a namespace of its own, joins the lab's
//! network by DHCP as its efuse MAC, and its unmodified release firmware meets
//! the lab by the production broker's name (the lease's DNS) and by a literal
//! address (the lab's nftables redirection). `hil run --network` finds the
//! board by its MAC; the serial link is a separate cable (RFC 2217 over a
//! second veth). No packet leaves the namespaces, and everything the test
//! makes is removed when it ends, even when it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use common::netns::{require_root, require_tools, Netns};
use common::{root, text};

/// Virtual board 7's efuse MAC (`18:fe:34:48:49:<index>`).
const BOARD_INDEX: &str = "7";
const BOARD_MAC: &str = "18:fe:34:48:49:07";

/// A lab namespace and a board namespace, joined by the board's "Wi-Fi" (a
/// veth pair the lab serves) and by its serial cable (another veth pair); the
/// processes started in them are killed and the namespaces deleted on drop.
struct Bench {
    lab: Netns,
    board: Netns,
    wifi_lab: String,
    cable_board_ip: String,
    children: Vec<Child>,
}

impl Bench {
    fn new() -> Bench {
        require_root("this test makes network namespaces and needs root");
        require_tools(&["ip", "nft", "socat"]);
        let pid = std::process::id();
        let mut bench = Bench {
            lab: Netns::new(format!("hil-bb-lab-{pid}")),
            board: Netns::new(format!("hil-bb-board-{pid}")),
            wifi_lab: format!("hwl{pid}"),
            cable_board_ip: "10.98.7.2".into(),
            children: Vec::new(),
        };
        let (lab, board) = (&bench.lab, &bench.board);
        let wifi_board = format!("hwb{pid}");
        let (cable_lab, cable_board) = (format!("hcl{pid}"), format!("hcb{pid}"));
        lab.veth(&bench.wifi_lab, board, &wifi_board);
        lab.veth(&cable_lab, board, &cable_board);
        // The board's Wi-Fi has the board's MAC: the lab's DHCP sees the MAC the
        // flasher read from the board's efuse.
        board.ip(&["link", "set", &wifi_board, "address", BOARD_MAC]);
        lab.ip(&["addr", "add", "10.98.7.1/30", "dev", &cable_lab]);
        board.ip(&["addr", "add", "10.98.7.2/30", "dev", &cable_board]);
        for (ns, link) in [
            (lab, "lo"),
            (board, "lo"),
            (lab, bench.wifi_lab.as_str()),
            (lab, cable_lab.as_str()),
            (board, wifi_board.as_str()),
            (board, cable_board.as_str()),
        ] {
            ns.ip(&["link", "set", link, "up"]);
        }
        // The board: a virtual ESP8266 running the twin of what it holds, its
        // Wi-Fi the veth end, its serial port reachable over the cable.
        let dir = std::env::temp_dir().join(format!("hil-bb-{pid}"));
        std::fs::create_dir_all(&dir).unwrap();
        let vboard = bench
            .board
            .exec(env!("CARGO_BIN_EXE_hil"))
            .args([
                "vboard",
                "--index",
                BOARD_INDEX,
                "--listen",
                "127.0.0.1:4000",
                "--twin",
            ])
            .args(["--wifi", &wifi_board, "--flash"])
            .arg(dir.join("board.flash"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        bench.children.push(vboard);
        let cable = bench
            .board
            .exec("socat")
            .arg(format!(
                "TCP-LISTEN:4000,bind={},reuseaddr,fork",
                bench.cable_board_ip
            ))
            .arg("TCP:127.0.0.1:4000")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        bench.children.push(cable);
        bench
    }

    /// Waits until the board's serial port answers over the cable.
    fn wait_for_board(&self) {
        let began = Instant::now();
        while began.elapsed() < Duration::from_secs(20) {
            let probe = self
                .lab
                .exec("bash")
                .arg("-c")
                .arg(format!("exec 3<>/dev/tcp/{}/4000", self.cable_board_ip))
                .output()
                .unwrap();
            if probe.status.success() {
                // Give the board a moment to see that client go before the run's.
                std::thread::sleep(Duration::from_millis(300));
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        panic!("the virtual board never answered over its cable");
    }

    /// `hil run` in the lab namespace against the board, serving its network.
    fn hil_run(&self, feature: &Path, firmware: &str, runs: &Path) -> Output {
        self.lab
            .exec(env!("CARGO_BIN_EXE_hil"))
            .arg("run")
            .arg(feature)
            .arg("--board")
            .arg(format!("rfc2217://{}:4000", self.cable_board_ip))
            .args(["--network", &self.wifi_lab, "--firmware", firmware])
            .arg("--runs-dir")
            .arg(runs)
            .current_dir(root())
            .env("CI", "true")
            .env_remove("HIL_SERVE_NETWORK")
            .env_remove("HIL_DEVICE_IP")
            .env_remove("HIL_BOARD")
            .output()
            .unwrap()
    }
}

impl Drop for Bench {
    // The fields drop after this: the processes die before their namespaces go.
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(
            std::env::temp_dir().join(format!("hil-bb-{}", std::process::id())),
        );
    }
}

fn timeline_of(runs: &Path) -> String {
    let run = std::fs::read_dir(runs)
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    std::fs::read_to_string(run.join("timeline.jsonl")).unwrap()
}

#[test]
fn the_black_box_suite_runs_through_dhcp_dns_and_the_redirection() {
    let bench = Bench::new();
    bench.wait_for_board();
    let dir = tempfile::tempdir().unwrap();

    // The release binary dials its production broker by name: the lease's DNS
    // is the lab's, which answers for that name.
    let runs = dir.path().join("runs");
    let out = bench.hil_run(
        &root().join("features/blackbox.feature"),
        "reference",
        &runs,
    );
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let timeline = timeline_of(&runs);
    let lease = timeline
        .lines()
        .find(|l| l.contains("\"event\":\"dhcp_lease\"") && l.contains(BOARD_MAC))
        .unwrap_or_else(|| panic!("no lease for the board:\n{all}"));
    let leased: serde_json::Value = serde_json::from_str(lease).unwrap();
    let ip = leased["ip"].as_str().unwrap().to_owned();
    assert!(ip.starts_with("10.77.0."), "{lease}");
    assert!(
        timeline
            .lines()
            .any(|l| l.contains("\"event\":\"tls_client_hello\"")
                && l.contains(&format!("\"peer\":\"{ip}:"))
                && l.contains("\"sni\":\"mqtt.example.com\"")),
        "a ClientHello for the production name came from the board's leased address:\n{timeline}"
    );

    // A build that dials its broker by a literal public address meets the lab
    // too: the redirection on 8883 takes it there.
    let feature = dir.path().join("literal.feature");
    std::fs::write(
        &feature,
        "Feature: literal address\n  Scenario: a broker dialled by its address\n    Given the board under test\n    And the board is not provisioned\n    And the broker presents the \"valid\" certificate\n    When the board boots\n    Then the device starts a TLS handshake within 20 s\n    And the TLS handshake does not complete\n    And the device never completes an MQTT connection\n",
    )
    .unwrap();
    let runs = dir.path().join("runs-literal");
    let out = bench.hil_run(&feature, "reference+broker_host=203.0.113.7", &runs);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    let timeline = timeline_of(&runs);
    assert!(
        timeline
            .lines()
            .any(|l| l.contains("\"event\":\"tls_client_hello\"")
                && l.contains(&format!("\"peer\":\"{ip}:"))),
        "the connection to 203.0.113.7:8883 landed on the lab's TLS front:\n{timeline}"
    );
    assert!(
        timeline.contains("[tls] connecting host=203.0.113.7"),
        "the firmware dialled the literal address:\n{timeline}"
    );
}
