//! TLS with the image's own BearSSL against independent peers on loopback,
//! through the user-mode network: `openssl s_server` (the system's OpenSSL) for
//! the handshake, mosquitto for MQTT over TLS. The PKI is made by the `openssl`
//! command: a CA, the broker's certificate for `broker.lab` signed by it, and an
//! unrelated CA for the wrong-anchor case.
//!
//! The peers keep wall time (mosquitto's keep-alive): the board must run near
//! real time, so these run in release builds only (ci/test does).

mod common;

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::lab::{dns_responder, lab_board, ntp_responder, run_with_network, settings};
use common::reference_machine_with;
use esp8266_emu::net::{NetConfig, UserNet};
use esp8266_emu::Machine;

const BROKER: &str = "broker.lab";

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl runs (ci/setup installs it)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The test's PKI in `dir`: ca.pem, broker.pem/broker.key, other-ca.pem.
fn pki(dir: &Path) {
    let ca = [
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign",
    ];
    let self_signed = |name: &str, cn: &str| {
        let key = format!("{name}.key");
        let pem = format!("{name}.pem");
        let subject = format!("/CN={cn}");
        let mut args = vec![
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "30", "-keyout", &key,
            "-out", &pem, "-subj", &subject,
        ];
        args.extend(ca);
        openssl(dir, &args);
    };
    self_signed("ca", "test lab CA");
    self_signed("other-ca", "someone else's CA");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "broker.key",
            "-out",
            "broker.csr",
            "-subj",
            "/CN=broker.lab",
        ],
    );
    std::fs::write(
        dir.join("broker.ext"),
        "subjectAltName=DNS:broker.lab\nbasicConstraints=CA:FALSE\n\
         keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
    )
    .expect("writes");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "broker.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "30",
            "-out",
            "broker.pem",
            "-extfile",
            "broker.ext",
        ],
    );
}

/// A child process killed when the test ends.
struct Peer(Child);

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("binds");
    listener.local_addr().expect("bound").port()
}

/// Waits until something listens on `addr`.
fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "nothing listens on {addr}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Lab {
    dir: tempdir::Dir,
    machine: Machine,
    net: UserNet,
}

/// A temporary directory removed at the end (no tempfile crate needed).
mod tempdir {
    use std::path::PathBuf;

    pub struct Dir(pub PathBuf);

    impl Dir {
        pub fn new(name: &str) -> Dir {
            let dir = std::env::temp_dir().join(format!(
                "esp8266-emu-{name}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("creates");
            Dir(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The board (at 127.0.1.3) with DNS and NTP on loopback and the broker's port
/// 8883 forwarded to `broker`.
fn lab(name: &str, broker: SocketAddr) -> Lab {
    let dir = tempdir::Dir::new(name);
    pki(&dir.0);
    let (dns, _questions) = dns_responder();
    let ntp = ntp_responder();
    let config = NetConfig::default()
        .bind_to(Ipv4Addr::new(127, 0, 1, 3))
        .forward_udp(53, dns)
        .forward_udp(123, ntp)
        .forward_tcp(8883, broker);
    Lab {
        dir,
        machine: reference_machine_with(&lab_board()),
        net: UserNet::new(config),
    }
}

fn path(dir: &tempdir::Dir, file: &str) -> PathBuf {
    dir.0.join(file)
}

fn s_server(dir: &tempdir::Dir, port: u16) -> Peer {
    let child = Command::new("openssl")
        .args(["s_server", "-quiet", "-accept"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("-cert")
        .arg(path(dir, "broker.pem"))
        .arg("-key")
        .arg(path(dir, "broker.key"))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("openssl s_server starts");
    let peer = Peer(child);
    wait_listening(SocketAddr::from(([127, 0, 0, 1], port)));
    peer
}

/// Runs the board until its `[tls]` outcome; the UART text from
/// `[tls] connecting` on, and the handshake's instructions per wall second.
fn handshake(lab: &mut Lab, ca: &str) -> (String, f64) {
    let mut s = settings(BROKER);
    s.ca_pem = Some(std::fs::read_to_string(path(&lab.dir, ca)).expect("reads the CA"));
    let out = run_with_network(&mut lab.machine, &mut lab.net, &s, "[tls] connecting", 15.0);
    assert!(
        out.contains("[tls] connecting host=broker.lab port=8883"),
        "{out}"
    );
    let m = &mut lab.machine;
    let (instructions, started, from) = (m.instructions, Instant::now(), m.seconds());
    let mut text = String::new();
    while m.seconds() < from + 30.0 && !text.contains("[tls] ok") && !text.contains("[tls] error") {
        m.run(800_000).expect("runs");
        lab.net.exchange(m).expect("the network runs");
        text.extend(m.take_uart0().iter().map(|b| char::from(b.byte)));
    }
    let rate = (m.instructions - instructions) as f64 / started.elapsed().as_secs_f64();
    eprintln!(
        "handshake: {} instructions in {:.2} emulated s, {:.1} M instructions per wall second",
        m.instructions - instructions,
        m.seconds() - from,
        rate / 1e6
    );
    (text, rate)
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "needs release speed; ci/test runs it with --release"
)]
fn the_images_bearssl_completes_a_handshake_with_openssl() {
    let port = free_port();
    let mut lab = lab("tls-ok", SocketAddr::from(([127, 0, 0, 1], port)));
    let _server = s_server(&lab.dir, port);
    let (text, _) = handshake(&mut lab, "ca.pem");
    assert!(text.contains("[tls] ok version=TLS1.2 suite="), "{text}");
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "needs release speed; ci/test runs it with --release"
)]
fn a_broker_certificate_from_another_ca_is_not_trusted() {
    let port = free_port();
    let mut lab = lab("tls-wrong-ca", SocketAddr::from(([127, 0, 0, 1], port)));
    let _server = s_server(&lab.dir, port);
    let (text, _) = handshake(&mut lab, "other-ca.pem");
    assert!(
        text.contains("[tls] error code=62 text=BR_ERR_X509_NOT_TRUSTED"),
        "{text}"
    );
}

#[test]
#[cfg_attr(
    debug_assertions,
    ignore = "needs release speed; ci/test runs it with --release"
)]
fn mqtt_connects_to_mosquitto_over_tls() {
    let port = free_port();
    let mut lab = lab("mqtt", SocketAddr::from(([127, 0, 0, 1], port)));
    let conf = path(&lab.dir, "mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            // Started as root, mosquitto would drop to its own user, who cannot
            // read the test's key; `user root` keeps it root (and does nothing
            // for anyone else).
            "listener {port} 127.0.0.1\nallow_anonymous true\nuser root\n\
             cafile {}\ncertfile {}\nkeyfile {}\n",
            path(&lab.dir, "ca.pem").display(),
            path(&lab.dir, "broker.pem").display(),
            path(&lab.dir, "broker.key").display(),
        ),
    )
    .expect("writes");
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mosquitto starts (ci/setup installs it)");
    let _broker = Peer(child);
    wait_listening(SocketAddr::from(([127, 0, 0, 1], port)));
    let (mut text, _) = handshake(&mut lab, "ca.pem");
    assert!(text.contains("[tls] ok version=TLS1.2"), "{text}");
    let m = &mut lab.machine;
    let from = m.seconds();
    while m.seconds() < from + 10.0 && !text.contains("[mqtt] published") {
        m.run(800_000).expect("runs");
        lab.net.exchange(m).expect("the network runs");
        text.extend(m.take_uart0().iter().map(|b| char::from(b.byte)));
    }
    assert!(text.contains("[mqtt] connected client_id="), "{text}");
    assert!(
        text.contains("[mqtt] subscribed topic=devices/commands"),
        "{text}"
    );
    assert!(
        text.contains("[mqtt] published topic=devices/telemetry"),
        "{text}"
    );
}
