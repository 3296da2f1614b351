//! Helpers shared by the interop tests: the catalogue (generated once per test
//! binary), a lab per test, and the external peers (openssl, mosquitto clients,
//! esptool and pyserial from the project venv), plus a SOCKS5 hop that lets
//! mosquitto's clients reach `broker.hil.test` without touching /etc/hosts.
//! `cli` runs the `hil` binary as a user does; `netns` makes the network
//! namespaces of the served-network tests; `served` serves a virtual board
//! from its own process.
#![allow(dead_code, clippy::unwrap_used)]

pub mod cli;
pub mod netns;
pub mod served;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use hil::lab::{DevicePolicy, Lab, LabConfig};
use hil::pki::{Catalogue, Profile, ProfileId};
use hil::timeline::{Event, EventKind, HandshakeOutcome};
use hil::vboard::{BoardIndex, BoardOptions, VirtualBoard};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::process::Command;

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The catalogue for this test binary, generated for the current time so that
/// peers reading the host clock (openssl, mosquitto) agree with the lab.
pub fn catalogue() -> &'static Catalogue {
    static CATALOGUE: OnceLock<Catalogue> = OnceLock::new();
    CATALOGUE.get_or_init(|| {
        let now = time::OffsetDateTime::now_utc();
        Catalogue::generate(now.replace_nanosecond(0).unwrap()).unwrap()
    })
}

pub fn profile(id: ProfileId) -> Arc<Profile> {
    Arc::new(catalogue().profile(id).unwrap().clone())
}

/// Fails (never skips) when an external peer is missing.
pub fn require(tool: &str) {
    let found = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join(tool).is_file()))
        .unwrap_or(false);
    assert!(found, "`{tool}` is not installed: run ci/setup");
}

pub struct TestLab {
    pub lab: Lab,
    pub dir: tempfile::TempDir,
}

pub async fn start_lab(id: ProfileId, policy: DevicePolicy) -> TestLab {
    start_lab_with(id, policy, |_| {}).await
}

pub async fn start_lab_with(
    id: ProfileId,
    policy: DevicePolicy,
    tweak: impl FnOnce(&mut LabConfig),
) -> TestLab {
    let dir = tempfile::tempdir().unwrap();
    let mut config = LabConfig::new(profile(id), dir.path());
    config.default_policy = policy;
    tweak(&mut config);
    let lab = Lab::start(config).await.unwrap();
    TestLab { lab, dir }
}

/// Runs a command with stdin closed and a time limit; the child is killed at the
/// limit.
pub async fn run(cmd: &mut Command, limit: Duration) -> Output {
    cmd.stdin(std::process::Stdio::null()).kill_on_drop(true);
    match tokio::time::timeout(limit, cmd.output()).await {
        Ok(out) => out.unwrap(),
        Err(_) => panic!("{cmd:?} did not finish within {limit:?}"),
    }
}

/// `openssl s_client` against the lab with strict verification of `host`.
pub fn s_client(addr: SocketAddr, anchors: &Path, host: &str) -> Command {
    let mut cmd = s_client_without_sni(addr, anchors, host);
    cmd.arg("-servername").arg(host);
    cmd
}

/// The same, sending no SNI (the name is still verified).
pub fn s_client_without_sni(addr: SocketAddr, anchors: &Path, host: &str) -> Command {
    require("openssl");
    let mut cmd = Command::new("openssl");
    cmd.arg("s_client")
        .arg("-connect")
        .arg(addr.to_string())
        .arg("-verify_return_error")
        .arg("-verify_hostname")
        .arg(host)
        .arg("-CAfile")
        .arg(anchors);
    cmd
}

pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The handshake outcome the lab recorded for the `nth` connection (0-based).
pub async fn outcome(lab: &Lab, nth: usize) -> HandshakeOutcome {
    let timeline = lab.timeline();
    let pred = |e: &Event| matches!(e.kind, EventKind::TlsHandshake { .. });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let found: Vec<HandshakeOutcome> = timeline
            .snapshot()
            .into_iter()
            .filter(pred)
            .filter_map(|e| match e.kind {
                EventKind::TlsHandshake { outcome, .. } => Some(outcome),
                _ => None,
            })
            .collect();
        if let Some(o) = found.get(nth) {
            return o.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no handshake outcome #{nth}; timeline: {:#?}",
            timeline.snapshot()
        );
        let from = timeline.cursor();
        timeline.wait_for(from, Duration::from_secs(1), pred).await;
    }
}

/// A SOCKS5 server (RFC 1928, no authentication, CONNECT only) sending every
/// connection to `target`, whatever name the client asked for: the client still
/// verifies the certificate against the name it was given.
pub async fn socks_to(target: SocketAddr) -> SocketAddr {
    socks_to_from(target, std::net::Ipv4Addr::LOCALHOST.into()).await
}

/// The same hop, connecting to `target` from `source` (a loopback address), so
/// the lab sees the client as the device at `source`.
pub async fn socks_to_from(target: SocketAddr, source: std::net::IpAddr) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut client, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = [0u8; 2];
                client.read_exact(&mut head).await?;
                let mut methods = vec![0u8; usize::from(head[1])];
                client.read_exact(&mut methods).await?;
                client.write_all(&[5, 0]).await?;
                let mut req = [0u8; 4];
                client.read_exact(&mut req).await?;
                match req[3] {
                    1 => {
                        let mut skip = [0u8; 6];
                        client.read_exact(&mut skip).await?;
                    }
                    3 => {
                        let mut len = [0u8; 1];
                        client.read_exact(&mut len).await?;
                        let mut skip = vec![0u8; usize::from(len[0]) + 2];
                        client.read_exact(&mut skip).await?;
                    }
                    _ => {
                        let mut skip = [0u8; 18];
                        client.read_exact(&mut skip).await?;
                    }
                }
                let socket = tokio::net::TcpSocket::new_v4()?;
                socket.bind(SocketAddr::new(source, 0))?;
                let mut upstream = socket.connect(target).await?;
                client.write_all(&[5, 0, 0, 1, 127, 0, 0, 1, 0, 0]).await?;
                tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
                Ok::<(), std::io::Error>(())
            });
        }
    });
    addr
}

/// The project venv's Python, where ci/setup installs esptool and pyserial.
pub fn python() -> PathBuf {
    let venv = std::env::var_os("HIL_VENV")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join(".venv"));
    let python = venv.join("bin").join("python");
    let ok = std::process::Command::new(&python)
        .args(["-c", "import esptool, serial"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "esptool/pyserial not found in {} - run ci/setup to install the test peers",
        venv.display()
    );
    python
}

/// Runs `python -m esptool ARGS` with a deadline; returns its output.
pub async fn esptool(args: &[&str]) -> Output {
    run_python(&["-m", "esptool"], args, Duration::from_secs(240)).await
}

/// esptool against the ESP8266 at `port`; naming the chip skips esptool's
/// detection of it.
pub async fn esptool_on(port: &str, args: &[&str]) -> Output {
    let mut all = vec!["--port", port, "--chip", "esp8266"];
    all.extend_from_slice(args);
    esptool(&all).await
}

/// `len` bytes of flash from `offset`, as esptool reads them (through its
/// stub) into `file`.
pub async fn esptool_read_flash(port: &str, offset: u32, len: usize, file: &Path) -> Vec<u8> {
    let (offset, len) = (format!("{offset:#x}"), len.to_string());
    let file_arg = file.to_str().unwrap();
    assert_ok(&esptool_on(port, &["read_flash", &offset, &len, file_arg]).await);
    std::fs::read(file).unwrap()
}

/// A virtual board, its flash kept in `dir`.
pub async fn board(dir: &Path, index: u32) -> VirtualBoard {
    let options = BoardOptions::new(BoardIndex::new(index).unwrap(), dir.join("flash.bin"));
    VirtualBoard::start(options).await.unwrap()
}

/// `hil monitor` on the board at `port` for 2 s from a reset, at the ROM's
/// 74880 baud: what the ROM prints as the board boots. It must succeed.
pub async fn hil_monitor_boot(port: &str) -> String {
    let args = ["monitor", "--port", port, "--baud", "74880", "--reset"];
    let out = Command::new(env!("CARGO_BIN_EXE_hil"))
        .args(args)
        .args(["--seconds", "2"])
        .output()
        .await
        .unwrap();
    assert_ok(&out)
}

/// Runs a Python snippet with arguments.
pub async fn python_script(script: &str, args: &[&str]) -> Output {
    run_python(&["-c", script], args, Duration::from_secs(120)).await
}

async fn run_python(prefix: &[&str], args: &[&str], deadline: Duration) -> Output {
    let mut command = tokio::process::Command::new(python());
    command.args(prefix).args(args).kill_on_drop(true);
    let output = tokio::time::timeout(deadline, command.output())
        .await
        .expect("peer timed out")
        .expect("peer did not start");
    output
}

/// Asserts success, printing everything the peer said if not.
pub fn assert_ok(output: &Output) -> String {
    let text = text(output);
    assert!(
        output.status.success(),
        "peer failed ({}):\n{text}",
        output.status
    );
    text
}

/// Deterministic pseudo-random bytes (xorshift), so failures reproduce.
pub fn noise(len: usize, mut seed: u32) -> Vec<u8> {
    (0..len)
        .map(|_| {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            (seed >> 24) as u8
        })
        .collect()
}

/// A tiny ESP8266 ELF: code for IRAM (into the image at 0) and code that runs
/// from flash at `irom_addr` (0x4021_0000 is flash 0x10000, where espflash
/// writes it).
pub fn tiny_elf(iram: &[u8], irom_addr: u32, irom: &[u8]) -> Vec<u8> {
    let names = b"\0.text\0.irom0.text\0.shstrtab\0";
    let text_at = 52;
    let irom_at = text_at + iram.len();
    let names_at = irom_at + irom.len();
    let headers_at = (names_at + names.len()).div_ceil(4) * 4;
    let mut elf = Vec::new();
    elf.extend([0x7f, b'E', b'L', b'F', 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    let half = |v: u16| v.to_le_bytes().to_vec();
    let word = |v: u32| v.to_le_bytes().to_vec();
    elf.extend(half(2)); // executable
    elf.extend(half(94)); // Xtensa
    elf.extend(word(1));
    elf.extend(word(0x4010_0004)); // entry
    elf.extend(word(0)); // no program headers
    elf.extend(word(headers_at as u32));
    elf.extend(word(0));
    elf.extend(half(52));
    elf.extend(half(32));
    elf.extend(half(0));
    elf.extend(half(40));
    elf.extend(half(4));
    elf.extend(half(3)); // .shstrtab
    elf.extend(iram);
    elf.extend(irom);
    elf.extend(names);
    elf.resize(headers_at, 0);
    let section = |name: u32, kind: u32, flags: u32, addr: u32, offset: usize, size: usize| {
        [
            name,
            kind,
            flags,
            addr,
            offset as u32,
            size as u32,
            0,
            0,
            4,
            0,
        ]
        .iter()
        .flat_map(|w| w.to_le_bytes())
        .collect::<Vec<u8>>()
    };
    elf.extend([0u8; 40]);
    elf.extend(section(1, 1, 6, 0x4010_0000, text_at, iram.len()));
    elf.extend(section(7, 1, 6, irom_addr, irom_at, irom.len()));
    elf.extend(section(19, 3, 0, 0, names_at, names.len()));
    elf
}

/// Debian's ser2net; a test that needs it fails (never skips) without it.
pub fn ser2net_binary() -> std::path::PathBuf {
    ["/usr/sbin/ser2net", "/usr/bin/ser2net"]
        .iter()
        .map(std::path::PathBuf::from)
        .find(|p| p.is_file())
        .expect("ser2net is not installed: run ci/setup")
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}
