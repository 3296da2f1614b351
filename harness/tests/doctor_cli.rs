//! `hil doctor` against real ports: ptys made by Python's pty module (a kernel tty
//! pair, held open or locked with TIOCEXCL by that Python process), a closed TCP
//! port, a silent TCP server, and pyserial's RFC 2217 server (`PortManager`).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use common::cli::{check, checks};
use common::{root, text};

fn hil(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_hil"))
        .arg("doctor")
        .args(args)
        .current_dir(root())
        .output()
        .expect("run hil doctor")
}

/// A Python child that runs `script` and prints one line (a tty path or a port)
/// before sleeping; killed on drop.
struct Peer {
    child: Child,
    line: String,
}

impl Peer {
    fn start(python: &Path, script: &str, args: &[&str]) -> Peer {
        assert!(
            python.is_file() || python == Path::new("python3"),
            "{} is missing: run ci/setup",
            python.display()
        );
        let mut child = Command::new(python)
            .arg("-c")
            .arg(script)
            .args(args)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {} ({e}): run ci/setup", python.display()));
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(!line.is_empty(), "the Python peer printed nothing");
        Peer {
            child,
            line: line.trim().to_string(),
        }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> &'static Path {
    Path::new("python3")
}

/// The pty's master stays open so the slave stays usable; the slave is closed
/// (`close`), closed and made inaccessible (`forbidden`), held (`hold`) or held
/// and locked with TIOCEXCL (`exclusive`).
const PTY: &str = "import pty, os, sys, time, fcntl, termios
m, s = pty.openpty()
name = os.ttyname(s)
if sys.argv[1] == 'close':
    os.close(s)
elif sys.argv[1] == 'forbidden':
    os.close(s)
    os.chmod(name, 0)
elif sys.argv[1] == 'exclusive':
    fcntl.ioctl(s, termios.TIOCEXCL)
print(name, flush=True)
time.sleep(60)
";

#[test]
fn json_lists_every_check() {
    let out = hil(&["--json"]);
    let code = out.status.code();
    assert!(matches!(code, Some(0 | 1)), "{code:?}\n{}", text(&out));
    let checks = checks(&out);
    for name in [
        "serial: ports",
        "lab: privileges",
        "lab: udp/53",
        "lab: udp/123",
        "lab: tcp/8883",
        "firewall",
        "tool: libbearssl",
        "tool: openssl",
        "tool: mosquitto",
        "tool: esptool",
        "tool: platformio",
    ] {
        check(&checks, name);
    }
    for c in &checks {
        let status = c["status"].as_str().unwrap();
        assert!(["ok", "warn", "fail"].contains(&status), "{c}");
        assert!(!c["detail"].as_str().unwrap().is_empty(), "{c}");
        // Every problem comes with its fix.
        assert_eq!(status != "ok", c["fix"].is_string(), "{c}");
    }
    let failed = checks.iter().any(|c| c["status"] == "fail");
    assert_eq!(code == Some(1), failed, "exit code and failures disagree");
    // This machine has what ci/setup installs.
    assert_eq!(check(&checks, "tool: libbearssl")["status"], "ok");
    assert_eq!(check(&checks, "tool: esptool")["status"], "ok");
}

#[test]
fn missing_port_fails_with_a_fix() {
    let out = hil(&["--board", "/dev/does-not-exist"]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(all.contains("FAIL"), "{all}");
    assert!(all.contains("/dev/does-not-exist does not exist"), "{all}");
    assert!(
        all.contains("fix: check the path and that the board is plugged in"),
        "{all}"
    );
}

#[test]
fn bad_input_exits_2() {
    let out = hil(&["--board", "tcp://x:1"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let out = hil(&["--lab-bind", "not-an-ip"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
}

#[test]
fn free_pty_passes() {
    let pty = Peer::start(python(), PTY, &["close"]);
    let out = hil(&["--json", "--board", &pty.line]);
    let checks = checks(&out);
    for name in ["serial: exists", "serial: access", "serial: free"] {
        assert_eq!(check(&checks, name)["status"], "ok", "{name}: {checks:#?}");
    }
    // The pty was really opened: the master side stays alive afterwards.
    assert!(check(&checks, "serial: access")["detail"]
        .as_str()
        .unwrap()
        .contains("opens read/write"));
}

#[test]
fn pty_held_by_another_process_names_it() {
    let pty = Peer::start(python(), PTY, &["hold"]);
    let out = hil(&["--json", "--board", &pty.line]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let checks = checks(&out);
    let free = check(&checks, "serial: free");
    assert_eq!(free["status"], "fail", "{free}");
    let detail = free["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("pid {} (python3)", pty.pid())),
        "{detail}"
    );
    assert!(free["fix"]
        .as_str()
        .unwrap()
        .contains(&format!("kill {}", pty.pid())));
    // Holding a port is not a permission problem.
    assert_eq!(check(&checks, "serial: access")["status"], "ok");
}

#[test]
fn pty_locked_with_tiocexcl_names_the_holder() {
    let pty = Peer::start(python(), PTY, &["exclusive"]);
    let out = hil(&["--board", &pty.line]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&format!("is held open by pid {} (python3)", pty.pid())),
        "{all}"
    );
    // Without CAP_SYS_ADMIN, open(2) itself reports the lock.
    // (root bypasses TIOCEXCL, so there only the /proc scan can tell).
    if !is_root() {
        assert!(all.contains("exclusively, TIOCEXCL"), "{all}");
    }
}

/// A user who may not open the pty nor bind ports below 1024: this user unless
/// root, else `nobody` through util-linux's setpriv.
#[test]
fn unprivileged_user_gets_permission_fixes() {
    let pty = Peer::start(python(), PTY, &["forbidden"]);
    let hil_bin = env!("CARGO_BIN_EXE_hil");
    let args = ["doctor", "--json", "--board", pty.line.as_str()];
    let mut command = if is_root() {
        let mut c = Command::new("setpriv");
        c.args(["--reuid=65534", "--regid=65534", "--clear-groups", hil_bin]);
        c
    } else {
        Command::new(hil_bin)
    };
    let out = command
        .args(args)
        .current_dir(root())
        .output()
        .expect("setpriv (util-linux) is missing: run ci/setup");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let checks = checks(&out);
    let access = check(&checks, "serial: access");
    assert_eq!(access["status"], "fail", "{access}");
    assert!(access["detail"]
        .as_str()
        .unwrap()
        .contains("permission denied"));
    let fix = access["fix"].as_str().unwrap();
    assert!(fix.contains("sudo usermod -aG dialout $USER"), "{fix}");
    assert!(fix.contains("uucp"), "{fix}");
    assert!(fix.contains("ci/udev/99-hil-esp8266.rules"), "{fix}");

    let start: u16 = std::fs::read_to_string("/proc/sys/net/ipv4/ip_unprivileged_port_start")
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let dns = check(&checks, "lab: udp/53");
    if start > 53 {
        assert_eq!(dns["status"], "fail", "{dns}");
        assert!(
            dns["detail"].as_str().unwrap().contains("not permitted"),
            "{dns}"
        );
        let fix = dns["fix"].as_str().unwrap();
        assert!(
            fix.contains("sudo setcap cap_net_bind_service=+ep $(command -v hil)"),
            "{fix}"
        );
        assert!(
            fix.contains("net.ipv4.ip_unprivileged_port_start=53"),
            "{fix}"
        );
        let privileges = check(&checks, "lab: privileges");
        assert_eq!(privileges["status"], "warn", "{privileges}");
        assert!(privileges["detail"].as_str().unwrap().contains(&format!(
            "ip_unprivileged_port_start={start}, CAP_NET_BIND_SERVICE: no"
        )));
    } else {
        assert_ne!(dns["detail"].as_str().unwrap(), "", "{dns}");
        assert!(
            !dns["detail"].as_str().unwrap().contains("not permitted"),
            "{dns}"
        );
    }
}

fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(2) == Some("0"))
}

#[test]
fn rfc2217_closed_port_fails_with_a_fix() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let spec = format!("rfc2217://127.0.0.1:{port}");
    let out = hil(&["--board", &spec]);
    let all = text(&out);
    assert_eq!(out.status.code(), Some(1), "{all}");
    assert!(
        all.contains(&format!("cannot connect to 127.0.0.1:{port}")),
        "{all}"
    );
    assert!(all.contains("refused"), "{all}");
    assert!(all.contains("ser2net"), "{all}");
    assert!(all.contains("docs/board-farm.md"), "{all}");
}

#[test]
fn rfc2217_server_that_is_not_rfc2217_fails() {
    let silent = "import socket, time
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(4)
print(srv.getsockname()[1], flush=True)
held = []
while True:
    held.append(srv.accept()[0])
";
    let server = Peer::start(python(), silent, &[]);
    let spec = format!("rfc2217://127.0.0.1:{}", server.line);
    let out = hil(&["--json", "--board", &spec]);
    let checks = checks(&out);
    assert_eq!(check(&checks, "rfc2217: connect")["status"], "ok");
    let protocol = check(&checks, "rfc2217: protocol");
    assert_eq!(protocol["status"], "fail", "{protocol}");
    assert!(protocol["detail"]
        .as_str()
        .unwrap()
        .contains("does not speak RFC 2217"));
    assert!(protocol["fix"]
        .as_str()
        .unwrap()
        .contains("telnet(rfc2217)"));
}

#[test]
fn pyserial_rfc2217_server_passes() {
    let venv_python = root().join(".venv/bin/python");
    // pyserial's own RFC 2217 server logic, behind a loopback socket, serving
    // pyserial's loopback port (a pty has no modem lines to report).
    let server = "import socket, sys, serial, serial.rfc2217
port = serial.serial_for_url('loop://')
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(4)
print(srv.getsockname()[1], flush=True)
class Conn:
    def __init__(self, sock): self.sock = sock
    def write(self, data): self.sock.sendall(data)
while True:
    sock, _ = srv.accept()
    try:
        manager = serial.rfc2217.PortManager(port, Conn(sock))
        while True:
            data = sock.recv(4096)
            if not data:
                break
            for chunk in manager.filter(data):
                port.write(chunk)
    except OSError:
        pass
    sock.close()
";
    let server = Peer::start(&venv_python, server, &[]);
    let spec = format!("rfc2217://127.0.0.1:{}", server.line);
    let out = hil(&["--json", "--board", &spec]);
    let checks = checks(&out);
    assert_eq!(
        check(&checks, "rfc2217: connect")["status"],
        "ok",
        "{checks:#?}"
    );
    let protocol = check(&checks, "rfc2217: protocol");
    assert_eq!(protocol["status"], "ok", "{protocol}");
}
