//! A board farm for real: labgrid 26 from the project's venv (its coordinator,
//! an exporter and labgrid-client), Debian's ser2net run by the exporter, and two
//! virtual boards behind it, all on loopback. The exporter exports a
//! `RawSerialPort` per board on a pseudo-terminal path (what it needs to start
//! ser2net on acquire); a `ser2net` wrapper first on the exporter's PATH keeps
//! ser2net's accepter on 127.0.0.1 and gives it an RFC 2217 connector to the
//! virtual board instead of the pty (a pty carries no rates and no DTR/RTS).
//! `hil` then reserves, acquires and releases places through the coordinator.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::served::ServedBoard;
use common::{free_port, ser2net_binary, text};
use serialport::SerialPort;

fn venv_tool(name: &str) -> PathBuf {
    let venv = std::env::var_os("HIL_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| common::root().join(".venv"));
    let tool = venv.join("bin").join(name);
    assert!(
        tool.is_file(),
        "{} is missing: labgrid 26 is installed into the project's venv by ci/setup; run ci/setup",
        tool.display()
    );
    tool
}

fn wait_for_port(port: u16, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "{what} never listened on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A child process killed when dropped.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The whole farm: coordinator, exporter, two boards and two places.
struct Farm {
    dir: tempfile::TempDir,
    coordinator: String,
    _daemons: Vec<Daemon>,
    _boards: Vec<ServedBoard>,
    _ptys: Vec<(serialport::TTYPort, serialport::TTYPort)>,
}

impl Farm {
    fn start() -> Farm {
        let dir = tempfile::tempdir().unwrap();
        let coordinator_bin = venv_tool("labgrid-coordinator");
        let exporter_bin = venv_tool("labgrid-exporter");
        venv_tool("labgrid-client");
        let real_ser2net = ser2net_binary();
        let mut daemons = Vec::new();

        let port = free_port();
        let coordinator = format!("127.0.0.1:{port}");
        daemons.push(Daemon(
            Command::new(&coordinator_bin)
                .args(["-l", &coordinator])
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        ));
        wait_for_port(port, "labgrid-coordinator");

        // Two virtual boards running the twin, as a board machine's would.
        let mut boards = Vec::new();
        let mut served = Vec::new();
        for index in 1..=2u8 {
            let board = ServedBoard::start(dir.path(), index, &[]);
            boards.push(board.url.trim_start_matches("rfc2217://").to_string());
            served.push(board);
        }

        // A pty per board: the path the exporter exports.
        let mut ptys = Vec::new();
        let mut map = String::new();
        let mut exports = String::new();
        for (i, board) in boards.iter().enumerate() {
            let (master, slave) = serialport::TTYPort::pair().unwrap();
            let path = slave.name().unwrap();
            map.push_str(&format!("{path} {}\n", board.replace(':', ",")));
            exports.push_str(&format!(
                "hil-farm-{n}:\n  RawSerialPort:\n    port: {path}\n    speed: 115200\n",
                n = i + 1
            ));
            ptys.push((master, slave));
        }
        let bin = dir.path().join("bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::write(dir.path().join("boards.map"), map).unwrap();
        let wrapper = bin.join("ser2net");
        std::fs::write(
            &wrapper,
            format!(
                r#"#!/bin/bash
# labgrid's exporter runs the first ser2net on PATH: this one keeps the accepter
# on loopback and connects to the pty's virtual board over RFC 2217.
args=()
for arg in "$@"; do
  case $arg in
    *"accepter: "*",tcp,"*) arg="${{arg/,tcp,/,tcp,127.0.0.1,}}" ;;
    *"connector: serialdev"*)
      path=${{arg#*),}}; path=${{path%%,*}}
      board=$(awk -v p="$path" '$1 == p {{ print $2 }}' "{map}")
      arg="  connector: telnet(rfc2217),tcp,$board" ;;
  esac
  args+=("$arg")
done
exec "{real}" "${{args[@]}}"
"#,
                map = dir.path().join("boards.map").display(),
                real = real_ser2net.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::write(dir.path().join("exporter.yaml"), exports).unwrap();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        daemons.push(Daemon(
            Command::new(&exporter_bin)
                .args(["-c", &coordinator, "-n", "bench", "--hostname", "127.0.0.1"])
                .arg(dir.path().join("exporter.yaml"))
                .env("PATH", &path)
                .current_dir(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        ));

        let farm = Farm {
            dir,
            coordinator,
            _daemons: daemons,
            _boards: served,
            _ptys: ptys,
        };
        // The exporter's resources reach the coordinator.
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = farm.client(&["resources"]);
            if text(&out).matches("NetworkSerialPort").count() >= 2 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the exporter's ports never reached the coordinator: {}",
                text(&out)
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        for n in 1..=2 {
            let place = format!("esp-{n}");
            for args in [
                vec!["-p", &place, "create"],
                vec![
                    "-p",
                    &place,
                    "add-match",
                    &format!("bench/hil-farm-{n}/NetworkSerialPort"),
                ],
                vec![
                    "-p",
                    &place,
                    "set-tags",
                    "board=esp8266",
                    &format!("ip=127.0.1.{n}"),
                ],
            ] {
                let out = farm.client(&args);
                assert!(
                    out.status.success(),
                    "labgrid-client {args:?}: {}",
                    text(&out)
                );
            }
        }
        farm
    }

    fn client(&self, args: &[&str]) -> Output {
        Command::new(venv_tool("labgrid-client"))
            .args(["-x", &self.coordinator])
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `hil` from the repository root (the features name fixtures relative to
    /// it), with this farm's coordinator.
    fn hil(&self) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hil"));
        cmd.current_dir(common::root())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("LG_COORDINATOR", &self.coordinator)
            .stdin(Stdio::null());
        cmd
    }

    /// Whether the coordinator says `place` is free: not acquired, no reservation.
    fn is_free(&self, place: &str) -> bool {
        let out = self.client(&["-p", place, "show"]);
        let shown = text(&out);
        assert!(out.status.success(), "{shown}");
        shown.contains("acquired: None") && !shown.contains("reservation: ")
            || shown.contains("acquired: None") && shown.contains("reservation: None")
    }

    fn assert_all_free(&self) {
        for place in ["esp-1", "esp-2"] {
            assert!(
                self.is_free(place),
                "{place} was left taken:\n{}",
                text(&self.client(&["-p", place, "show"]))
            );
        }
        let reservations = text(&self.client(&["reservations"]));
        assert!(
            !reservations.contains("token"),
            "reservations were left behind:\n{reservations}"
        );
    }
}

fn firmware(farm: &Farm) -> PathBuf {
    let image = farm.dir.path().join("ref.bin");
    if !image.is_file() {
        let out = farm
            .hil()
            .args(["vfirmware", "build", "-o"])
            .arg(&image)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", text(&out));
    }
    image
}

fn run_args(farm: &Farm, runs: &Path, lab_bind: &str) -> Vec<String> {
    [
        "run",
        "features/tls_certificates.feature",
        "--shard",
        "1/8",
        "--board",
        "labgrid:board=esp8266*2",
        "--firmware",
        firmware(farm).to_str().unwrap(),
        "--lab-bind",
        lab_bind,
        "--runs-dir",
        runs.to_str().unwrap(),
    ]
    .iter()
    .map(ToString::to_string)
    .collect()
}

#[test]
fn a_farm_of_two_places_runs_the_catalogue_and_is_always_given_back() {
    let farm = Farm::start();

    // A coordinator that is down: exit 2, naming the address.
    let down = format!("127.0.0.1:{}", free_port());
    let out = farm
        .hil()
        .args(["reset", "--board", "labgrid:esp-1", "--coordinator", &down])
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains(&down), "{all}");
    assert!(all.contains("cannot be reached"), "{all}");

    // Two places by tag share a shipped catalogue subset; their tag ip= says
    // where each board is, so no --device-ip is given.
    let runs = farm.dir.path().join("runs");
    let out = farm
        .hil()
        .args(run_args(&farm, &runs, "127.0.0.71"))
        .arg("--junit")
        .arg(farm.dir.path().join("junit.xml"))
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(all.contains("acquired place esp-1"), "{all}");
    assert!(all.contains("acquired place esp-2"), "{all}");
    let junit = std::fs::read_to_string(farm.dir.path().join("junit.xml")).unwrap();
    assert!(junit.contains("failures=\"0\""), "{junit}");
    assert!(!junit.contains("tests=\"0\""), "{junit}");
    farm.assert_all_free();

    // A run killed with SIGTERM gives both places back.
    let mut child = farm
        .hil()
        .args(run_args(&farm, &runs, "127.0.0.72"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Its output is read to the end, so it never writes to a closed pipe.
    let (lines_tx, lines) = std::sync::mpsc::channel::<String>();
    let stderr = BufReader::new(child.stderr.take().unwrap());
    std::thread::spawn(move || {
        for line in stderr.lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || std::io::copy(&mut BufReader::new(stdout), &mut std::io::sink()));
    let mut acquired = 0;
    let mut seen = String::new();
    while acquired < 2 {
        let Ok(line) = lines.recv_timeout(Duration::from_secs(60)) else {
            break;
        };
        seen.push_str(&line);
        seen.push('\n');
        if line.contains("acquired place") {
            acquired += 1;
        }
    }
    assert_eq!(acquired, 2, "{seen}");
    std::thread::sleep(Duration::from_secs(2));
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    seen.extend(lines.try_iter().map(|l| l + "\n"));
    assert_eq!(status.code(), Some(2), "{seen}");
    assert!(seen.contains("released place esp-1"), "{seen}");
    farm.assert_all_free();

    // A place held by another client: refused with its holder's name...
    let out = farm.client(&["-p", "esp-1", "acquire"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = farm
        .hil()
        .args(["reset", "--board", "labgrid:esp-1", "--no-wait"])
        .output()
        .unwrap();
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(all.contains("place esp-1 is held by"), "{all}");
    let holder = text(&farm.client(&["-p", "esp-1", "show"]));
    let holder = holder
        .lines()
        .find_map(|l| l.trim().strip_prefix("acquired: "))
        .unwrap()
        .to_string();
    assert!(all.contains(&holder), "{holder} not named in {all}");

    // ... or waited for, saying so, until its holder lets it go.
    let mut child = farm
        .hil()
        .args(["reset", "--board", "labgrid:esp-1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    let mut said = String::new();
    while stderr.read_line(&mut line).unwrap() > 0 {
        said.push_str(&line);
        if line.contains("waiting for place esp-1 held by") {
            break;
        }
        line.clear();
    }
    assert!(said.contains(&holder), "{said}");
    let out = farm.client(&["-p", "esp-1", "release"]);
    assert!(out.status.success(), "{}", text(&out));
    let status = child.wait().unwrap();
    let mut rest = String::new();
    let _ = std::io::Read::read_to_string(&mut stderr, &mut rest);
    assert!(status.success(), "{said}{rest}");
    farm.assert_all_free();
}
