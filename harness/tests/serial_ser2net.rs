//! RFC 2217 as a real server behaves: Debian's ser2net 4.3, started on loopback
//! with a configuration this test writes, in front of a pseudo-terminal (the way
//! labgrid's exporter serves a `RawSerialPort`: no modem lines, so SET-CONTROL is
//! never answered) and in front of a virtual board (ser2net's own RFC 2217
//! client as connector, which passes rates and DTR/RTS on).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

mod common;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::cli::{check, checks, hil, lossy};
use common::{free_port, ser2net_binary, text};
use serialport::SerialPort;

/// A ser2net on 127.0.0.1 serving one connection; killed when dropped.
struct Ser2net {
    child: Child,
    port: u16,
}

impl Ser2net {
    /// `connector` is ser2net's connector line, e.g. `serialdev,/dev/pts/3,115200n81,local`.
    fn start(dir: &Path, connector: &str) -> Ser2net {
        let port = free_port();
        let config = dir.join(format!("ser2net-{port}.yaml"));
        std::fs::write(
            &config,
            format!(
                "connection: &board\n  accepter: telnet(rfc2217),tcp,127.0.0.1,{port}\n  \
                 connector: {connector}\n  options:\n    kickolduser: true\n"
            ),
        )
        .unwrap();
        let child = Command::new(ser2net_binary())
            .args(["-n", "-d", "-c"])
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "ser2net never listened on {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        // That probe was a client: give ser2net a moment to let it go.
        std::thread::sleep(Duration::from_millis(300));
        Ser2net { child, port }
    }

    fn url(&self) -> String {
        format!("rfc2217://127.0.0.1:{}", self.port)
    }
}

impl Drop for Ser2net {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A pseudo-terminal whose far end prints a numbered line every 100 ms, as a
/// running firmware would.
struct TalkingPty {
    path: String,
    stop: Arc<AtomicBool>,
    _slave: serialport::TTYPort,
}

impl TalkingPty {
    fn start() -> TalkingPty {
        let (mut master, slave) = serialport::TTYPort::pair().expect("a pseudo-terminal pair");
        let path = slave.name().expect("the pty's path");
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            while !stopping.load(Ordering::Relaxed) {
                let _ = master.write_all(format!("[app] tick {n}\r\n").as_bytes());
                n += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        TalkingPty {
            path,
            stop,
            _slave: slave,
        }
    }
}

impl Drop for TalkingPty {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[test]
fn monitor_with_reset_works_through_ser2net_in_front_of_a_pty() {
    let dir = tempfile::tempdir().unwrap();
    let pty = TalkingPty::start();
    let server = Ser2net::start(
        dir.path(),
        &format!("serialdev,{},115200n81,local", pty.path),
    );
    let started = Instant::now();
    let out = hil(
        &[
            "monitor",
            "--port",
            &server.url(),
            "--reset",
            "--seconds",
            "2",
        ],
        dir.path(),
    );
    let all = text(&out);
    assert!(out.status.success(), "{all}");
    assert!(all.contains("[app] tick"), "{all}");
    // The reset did not wait for answers that never come.
    assert!(started.elapsed() < Duration::from_secs(5), "{all}");
}

#[test]
fn doctor_says_which_options_ser2net_answers_for_a_pty() {
    let dir = tempfile::tempdir().unwrap();
    let pty = TalkingPty::start();
    let server = Ser2net::start(
        dir.path(),
        &format!("serialdev,{},115200n81,local", pty.path),
    );
    let out = hil(
        &[
            "doctor",
            "--board",
            &server.url(),
            "--lab-bind",
            "127.0.0.1",
            "--json",
        ],
        dir.path(),
    );
    let all = checks(&out);
    assert_eq!(check(&all, "rfc2217: protocol")["status"], "ok", "{all:#?}");
    let options = check(&all, "rfc2217: options");
    assert_eq!(options["status"], "warn", "{options:#?}");
    let detail = options["detail"].as_str().unwrap();
    assert!(
        detail.contains(
            "answers baud rate, data size, parity, stop size but never control (DTR/RTS)"
        ),
        "{detail}"
    );
    assert!(
        options["fix"].as_str().unwrap().contains("pty"),
        "{options:#?}"
    );
}

#[test]
fn a_network_port_that_fails_gets_network_help() {
    let dir = tempfile::tempdir().unwrap();
    // Something that accepts and closes at once: a server that went away.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            drop(stream);
        }
    });
    let url = format!("rfc2217://127.0.0.1:{port}");
    let out = hil(&["reset", "--port", &url], dir.path());
    let all = text(&out);
    assert_eq!(out.status.code(), Some(2), "{all}");
    assert!(!all.contains("dialout"), "{all}");
    assert!(all.contains("RFC 2217"), "{all}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flashes_a_virtual_board_behind_ser2net_at_the_flashing_rate() {
    let dir = tempfile::tempdir().unwrap();
    let board = common::board(dir.path(), 31).await;
    let board_port = board.url().rsplit(':').next().unwrap().to_string();
    let server = Ser2net::start(
        dir.path(),
        &format!("telnet(rfc2217),tcp,127.0.0.1,{board_port}"),
    );
    let url = server.url();
    let image = std::fs::read(common::root().join("fixtures/firmware/reference-nodemcuv2.bin"))
        .expect("the reference image");
    let image_path = dir.path().join("app.bin");
    std::fs::write(&image_path, &image).unwrap();
    let cwd = dir.path().to_path_buf();
    let flashed = tokio::task::spawn_blocking(move || {
        hil(
            &["flash", "--port", &url, image_path.to_str().unwrap()],
            &cwd,
        )
    })
    .await
    .unwrap();
    let all = text(&flashed);
    assert!(flashed.status.success(), "{all}");
    assert!(all.contains("written and verified"), "{all}");
    assert!(
        lossy(&flashed.stdout).contains("Baud rate: 921600"),
        "{all}"
    );
}
