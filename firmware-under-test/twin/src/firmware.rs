//! The reference firmware's behaviour: boot, provisioning, Wi-Fi, DNS, SNTP, TLS
//! through BearSSL, MQTT with PubSubClient's semantics, reconnect, crash.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

use base64::Engine as _;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use crate::descriptor::{
    Anchor, CaText, Clock, Connect, Crash, Descriptor, Fallback, Knobs, Publish, Reconnect,
    Subscribe, Trust,
};
use crate::log::{render, Line};
use crate::mqtt::{self, state, Incoming};
use crate::net::{self, LookupError};
use crate::pace::Timings;
use crate::provision::{self, Settings};
use crate::tls::{ClientIdentity, KnownKey, TlsClient, TlsConfig, TlsFailure, TrustMode};

/// The serial port as the firmware sees it: bytes out to the host, bytes in.
#[derive(Debug)]
pub struct Console {
    /// Bytes the firmware prints.
    pub output: mpsc::UnboundedSender<Vec<u8>>,
    /// Bytes the host writes.
    pub input: mpsc::UnboundedReceiver<Vec<u8>>,
}

/// The Wi-Fi network the board can join.
#[derive(Clone, PartialEq, Eq)]
pub struct AccessPoint {
    /// Its name.
    pub ssid: String,
    /// Its passphrase.
    pub password: String,
}

impl std::fmt::Debug for AccessPoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessPoint")
            .field("ssid", &self.ssid)
            .finish_non_exhaustive()
    }
}

/// What the board's surroundings give the firmware: its address (all sockets bind
/// to it, so the lab tells boards apart), the Wi-Fi it can join, and what DHCP
/// would hand out.
#[derive(Debug, Clone)]
pub struct BoardEnv {
    /// The board's address: 127.0.1.k for virtual board k.
    pub ip: Ipv4Addr,
    /// The board's MAC (client ids derive from it).
    pub mac: [u8; 6],
    /// The network in range; `None` accepts any credentials.
    pub access_point: Option<AccessPoint>,
    /// DHCP's DNS server.
    pub dns: Option<SocketAddr>,
    /// DHCP's NTP server (option 42).
    pub ntp: Option<SocketAddr>,
    /// The reset reason the core reports in the boot line.
    pub reset_reason: String,
    /// How long the chip takes for each step ([`Timings::instant`]: no time).
    pub timings: Timings,
}

/// Why the chip restarts itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Restart {
    /// An exception: the core printed its dump and restarted the chip.
    Exception,
    /// `ESP.restart()`: the core restarts the chip without a word.
    Software,
    /// The firmware hung with interrupts off until the hardware watchdog reset
    /// the chip.
    HardwareWatchdog,
}

impl Restart {
    /// `ESP.getResetReason()` at the next boot, as the sketch prints it (spaces
    /// made dashes): the core's strings are "Exception", "Software/System
    /// restart" and "Hardware Watchdog" (esp8266/Arduino cores/esp8266/Esp.cpp,
    /// EspClass::getResetReason).
    pub const fn reason(self) -> &'static str {
        match self {
            Restart::Exception => "Exception",
            Restart::Software => "Software/System-restart",
            Restart::HardwareWatchdog => "Hardware-Watchdog",
        }
    }
}

/// Why the firmware stopped running.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Exit {
    /// The chip restarts itself.
    Reboot {
        /// Why: the reset reason the next boot reports follows from it.
        cause: Restart,
    },
    /// The serial port went away (the board is shutting down).
    Detached,
}

/// How long the hardware watchdog lets a chip with interrupts off hang before
/// it resets it: esp8266/Arduino#2942 (tttapa, confirmed by igrr) measured
/// "~8375933µs (>8 seconds)", independent of the CPU clock.
pub const HARDWARE_WATCHDOG_MS: u64 = 8_376;

/// Milliseconds the firmware waits for `PROV` after `[prov] ready`.
pub const PROVISIONING_WINDOW_MS: u64 = 1500;
const DNS_TIMEOUT: Duration = Duration::from_secs(2);
const NTP_TIMEOUT: Duration = Duration::from_secs(2);
const WIFI_RETRY: Duration = Duration::from_secs(2);
const FLOOD_PERIOD: Duration = Duration::from_millis(10);
const HEAP_PERIOD: Duration = Duration::from_secs(30);

struct DeviceClock {
    boot: Instant,
    set: Option<(Instant, u64)>,
}

impl DeviceClock {
    fn now(&self) -> u64 {
        match self.set {
            Some((at, unix)) => unix + at.elapsed().as_secs(),
            None => self.boot.elapsed().as_secs(),
        }
    }
}

struct Device<'a> {
    knobs: &'a Knobs,
    env: &'a BoardEnv,
    console: &'a mut Console,
    partial_line: Vec<u8>,
    clock: DeviceClock,
    /// `setInsecure()` was called after a failed connection (the fallback knob);
    /// the core keeps it for every later connect().
    insecure_fallback: bool,
    /// Failed connects since boot (the fallback knob counts them).
    failed_connects: u32,
    /// An MQTT session has started since boot (the subscribe knob).
    connected_before: bool,
}

/// Runs the firmware until it crashes or its console is dropped.
pub async fn run(descriptor: &Descriptor, env: &BoardEnv, console: &mut Console) -> Exit {
    let mut device = Device {
        knobs: &descriptor.knobs,
        env,
        console,
        partial_line: Vec::new(),
        clock: DeviceClock {
            boot: Instant::now(),
            set: None,
        },
        insecure_fallback: false,
        failed_connects: 0,
        connected_before: false,
    };
    device.main().await
}

impl Device<'_> {
    fn say(&mut self, line: Line) -> Result<(), Exit> {
        for text in render(self.knobs.log, &line) {
            let mut bytes = text.into_bytes();
            bytes.extend_from_slice(b"\r\n");
            self.console
                .output
                .send(bytes)
                .map_err(|_| Exit::Detached)?;
        }
        Ok(())
    }

    /// The next whole input line, if one arrives before `deadline`.
    async fn read_line(&mut self, deadline: Instant) -> Result<Option<String>, Exit> {
        loop {
            if let Some(end) = self.partial_line.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = self.partial_line.drain(..=end).collect();
                return Ok(Some(
                    String::from_utf8_lossy(&line)
                        .trim_end_matches(['\r', '\n'])
                        .to_owned(),
                ));
            }
            match tokio::time::timeout_at(deadline, self.console.input.recv()).await {
                Err(_) => return Ok(None),
                Ok(None) => return Err(Exit::Detached),
                Ok(Some(bytes)) => self.partial_line.extend_from_slice(&bytes),
            }
        }
    }

    async fn main(&mut self) -> Exit {
        match self.run_firmware().await {
            Ok(never) => match never {},
            Err(exit) => exit,
        }
    }

    async fn run_firmware(&mut self) -> Result<std::convert::Infallible, Exit> {
        // The SDK and the core initialise before setup() runs; on a real board the
        // first byte at 115200 comes tens of milliseconds after the ROM's last
        // line, which is what lets a console reading the ROM at 74880 switch rates.
        tokio::time::sleep(self.env.timings.sdk_init).await;
        // `Serial.println()` first: the ROM's 74880-baud banner reads as garbage at
        // 115200 without a line end, and the boot line must start a line.
        self.console
            .output
            .send(b"\r\n".to_vec())
            .map_err(|_| Exit::Detached)?;
        let (name, version) = (self.knobs.name.clone(), self.knobs.version.clone());
        self.say(Line::Boot {
            fw: name,
            version,
            reset: self.env.reset_reason.clone(),
        })?;
        let settings = self.provisioning().await?;
        self.join_wifi(&settings).await?;
        if self.knobs.clock == Clock::BuildTime {
            self.clock.set = Some((Instant::now(), self.knobs.build_time));
        }
        self.mqtt_forever(&settings).await
    }

    async fn provisioning(&mut self) -> Result<Settings, Exit> {
        self.say(Line::ProvReady {
            window_ms: PROVISIONING_WINDOW_MS,
        })?;
        let deadline = Instant::now() + Duration::from_millis(PROVISIONING_WINDOW_MS);
        while let Some(line) = self.read_line(deadline).await? {
            let Some(payload) = line.trim().strip_prefix("PROV ") else {
                continue;
            };
            match provision::parse(payload) {
                Ok(settings) => {
                    self.say(Line::ProvOk)?;
                    return Ok(settings);
                }
                Err(reason) => self.say(Line::ProvError {
                    reason: reason.to_string(),
                })?,
            }
        }
        Ok(provision::compiled_in_for(self.knobs))
    }

    async fn join_wifi(&mut self, settings: &Settings) -> Result<(), Exit> {
        loop {
            self.say(Line::WifiConnecting {
                ssid: settings.wifi.ssid.clone(),
            })?;
            let joined = match &self.env.access_point {
                None => true,
                Some(ap) => ap.ssid == settings.wifi.ssid && ap.password == settings.wifi.password,
            };
            // Scan, association and DHCP take their time, joined or not.
            self.pause(self.env.timings.wifi_join).await?;
            if joined {
                return self.say(Line::WifiConnected {
                    ip: self.env.ip.to_string(),
                });
            }
            self.say(Line::WifiFailed)?;
            self.idle(WIFI_RETRY).await?;
        }
    }

    /// Time the chip spends on a step (the pace's), discarding serial input.
    async fn pause(&mut self, how_long: Duration) -> Result<(), Exit> {
        if how_long.is_zero() {
            return Ok(());
        }
        self.idle(how_long).await
    }

    /// Waits, discarding serial input (the sketch does not read it after setup).
    async fn idle(&mut self, how_long: Duration) -> Result<(), Exit> {
        let deadline = Instant::now() + how_long;
        while self.read_line(deadline).await?.is_some() {}
        Ok(())
    }

    fn dns_server(&self, settings: &Settings) -> Option<SocketAddr> {
        settings
            .dns
            .as_deref()
            .and_then(|d| d.parse().ok())
            .or(self.env.dns)
    }

    async fn sync_clock(&mut self, settings: &Settings) -> Result<(), Exit> {
        if self.knobs.clock != Clock::Ntp || self.clock.set.is_some() {
            return Ok(());
        }
        let dns = self.dns_server(settings);
        let target = match (&settings.ntp, self.env.ntp) {
            (Some(text), _) => net::server_address(self.env.ip, dns, text, 123, DNS_TIMEOUT).await,
            (None, Some(dhcp)) => Ok(dhcp),
            (None, None) => {
                net::server_address(self.env.ip, dns, "pool.ntp.org", 123, DNS_TIMEOUT).await
            }
        };
        let result = match target {
            Ok(server) => net::sntp(self.env.ip, server, NTP_TIMEOUT).await,
            Err(e) => Err(e),
        };
        if result.is_ok() {
            self.pause(self.env.timings.sntp).await?;
        }
        match result {
            Ok(epoch) => {
                self.clock.set = Some((Instant::now(), epoch));
                self.say(Line::NtpSynced { epoch })
            }
            Err(_) => self.say(Line::NtpFailed),
        }
    }

    fn retry_delay(&self, attempt: u32) -> Duration {
        match self.knobs.reconnect {
            Reconnect::Immediate => Duration::ZERO,
            Reconnect::Backoff => Duration::from_millis((1000u64 << attempt.min(5)).min(30_000)),
            Reconnect::Fixed { ms } => Duration::from_millis(ms),
        }
    }

    async fn mqtt_forever(
        &mut self,
        settings: &Settings,
    ) -> Result<std::convert::Infallible, Exit> {
        let mut attempt = 0u32;
        // BearSSL leaves a rejected connection open until the next connect().
        let mut lingering: Option<TcpStream> = None;
        loop {
            self.sync_clock(settings).await?;
            let outcome = self.connect_once(settings, &mut lingering).await?;
            let rc = match outcome {
                Ok(session) => {
                    attempt = 0;
                    self.connected(settings, session).await?
                }
                Err(rc) => rc,
            };
            let delay = self.retry_delay(attempt);
            attempt = attempt.saturating_add(1);
            self.say(Line::MqttFailed {
                rc,
                retry_ms: delay.as_millis() as u64,
            })?;
            self.say(Line::MqttRetry {
                in_ms: delay.as_millis() as u64,
            })?;
            if delay.is_zero() {
                tokio::task::yield_now().await;
            } else {
                self.idle(delay).await?;
            }
        }
    }

    fn tls_config(&self, settings: &Settings, host: &str) -> TlsConfig {
        let mode = if self.insecure_fallback {
            TrustMode::Insecure
        } else {
            trust_mode(self.knobs, settings)
        };
        TlsConfig {
            server_name: (self.knobs.connect == Connect::Hostname).then(|| host.to_owned()),
            device_time: self.clock.now(),
            recv_buffer: self.knobs.rx_buffer + 325,
            xmit_buffer: self.knobs.tx_buffer + 85,
            client_identity: client_identity(settings),
            crypto: self.env.timings.crypto,
            ..TlsConfig::new(mode)
        }
    }

    /// One connection attempt; `Err(state)` when it failed before MQTT was up.
    async fn connect_once(
        &mut self,
        settings: &Settings,
        lingering: &mut Option<TcpStream>,
    ) -> Result<Result<Link, i32>, Exit> {
        let host = settings.broker.host.clone();
        let port = settings.broker.port;
        let dns = self.dns_server(settings);
        let ip = match dns {
            Some(server) => net::resolve(self.env.ip, server, &host, DNS_TIMEOUT).await,
            None => host.parse().map_err(|_| LookupError::Timeout),
        };
        let ip = match ip {
            Ok(ip) => {
                self.say(Line::DnsResolved {
                    host: host.clone(),
                    ip: ip.to_string(),
                })?;
                ip
            }
            Err(_) => {
                self.say(Line::DnsFailed { host: host.clone() })?;
                return Ok(Err(state::CONNECT_FAILED));
            }
        };
        let config = self.tls_config(settings, &host);
        let mode = mode_name(&config.mode);
        self.say(Line::TlsConnecting {
            host: host.clone(),
            port,
            mode,
        })?;
        *lingering = None;
        let mut socket = match self.tcp_connect(SocketAddr::from((ip, port))).await {
            Ok(socket) => socket,
            Err(e) => {
                self.connect_failed(0, format!("TCP connect failed ({})", e.kind()))?;
                return Ok(Err(state::CONNECT_FAILED));
            }
        };
        let mut tls = match TlsClient::new(&config) {
            Ok(tls) => tls,
            Err(e) => {
                self.connect_failed(0, e.to_string())?;
                return Ok(Err(state::CONNECT_FAILED));
            }
        };
        match tls.handshake(&mut socket).await {
            Ok(session) => {
                let mfln = if session.max_fragment_length < 16_384 {
                    session.max_fragment_length
                } else {
                    0
                };
                self.say(Line::TlsOk {
                    version: session.version_name(),
                    suite: session.suite_name(),
                    mfln,
                })?;
            }
            Err(failure) => {
                self.connect_failed(failure.code(), error_text(failure.code()))?;
                if !matches!(failure, TlsFailure::Io(_)) {
                    *lingering = Some(socket);
                }
                return Ok(Err(state::CONNECT_FAILED));
            }
        }
        let mut link = Link {
            socket,
            tls,
            inbuf: Vec::new(),
            buffer: self.knobs.mqtt_buffer,
        };
        let client_id = if settings.mqtt.client_id.is_empty() {
            format!(
                "ESP8266-{:02x}{:02x}{:02x}",
                self.env.mac[3], self.env.mac[4], self.env.mac[5]
            )
        } else {
            settings.mqtt.client_id.clone()
        };
        let connect = mqtt::connect(
            &client_id,
            settings.mqtt.username.as_deref(),
            settings.mqtt.password.as_deref(),
        );
        self.pause(self.env.timings.mqtt_connect).await?;
        if link.send(&connect).await.is_err() {
            return Ok(Err(state::CONNECTION_LOST));
        }
        let deadline = Instant::now() + Duration::from_secs(mqtt::SOCKET_TIMEOUT_SECS);
        match tokio::time::timeout_at(deadline, link.next()).await {
            Err(_) => {
                link.stop().await;
                Ok(Err(state::CONNECTION_TIMEOUT))
            }
            Ok(Ok(Incoming::Connack(0))) => {
                self.say(Line::MqttConnected { client_id })?;
                Ok(Ok(link))
            }
            Ok(Ok(Incoming::Connack(code))) => {
                link.stop().await;
                Ok(Err(i32::from(code)))
            }
            Ok(Ok(_)) | Ok(Err(_)) => Ok(Err(state::CONNECTION_LOST)),
        }
    }

    /// A failed `connect()`: `[tls] error` with `getLastSSLError()`, then the
    /// fallback knob's `setInsecure()`, which sticks for every later attempt.
    fn connect_failed(&mut self, code: i32, text: String) -> Result<(), Exit> {
        self.say(Line::TlsError { code, text })?;
        self.failed_connects = self.failed_connects.saturating_add(1);
        if let Fallback::InsecureAfter(n) = self.knobs.fallback {
            if self.failed_connects >= n {
                self.insecure_fallback = true;
            }
        }
        Ok(())
    }

    async fn tcp_connect(&self, to: SocketAddr) -> std::io::Result<TcpStream> {
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from((self.env.ip, 0)))?;
        let stream = tokio::time::timeout(Duration::from_secs(5), socket.connect(to))
            .await
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        stream.set_nodelay(true)?;
        Ok(stream)
    }

    /// The connected loop: subscribe, publish, answer, keep alive. Returns the state
    /// when the connection ends.
    async fn connected(&mut self, settings: &Settings, mut link: Link) -> Result<i32, Exit> {
        // A clean session's subscriptions end with its connection, so a firmware
        // that subscribes on its first connection only hears no commands after a
        // reconnect.
        let wanted = self.knobs.subscribe == Subscribe::EveryConnect || !self.connected_before;
        self.connected_before = true;
        let subscribe = wanted
            .then(|| mqtt::subscribe(1, &settings.topics.subscribe, self.knobs.mqtt_buffer))
            .flatten();
        if let Some(packet) = subscribe {
            if link.send(&packet).await.is_err() {
                return Ok(state::CONNECTION_LOST);
            }
            self.say(Line::MqttSubscribed {
                topic: settings.topics.subscribe.clone(),
            })?;
        }
        self.say(Line::Heap {
            free: self.free_heap(),
        })?;
        match self.knobs.crash {
            Crash::Never => {}
            Crash::AfterConnect => {
                self.crash()?;
                return Err(Exit::Reboot {
                    cause: Restart::Exception,
                });
            }
            // ESP.restart(): nothing printed, the connection dies with the chip.
            Crash::RestartAfterConnect => {
                return Err(Exit::Reboot {
                    cause: Restart::Software,
                })
            }
            // Interrupts off, a spin: not a byte out, the socket left as it was
            // (the broker hears nothing) until the hardware watchdog fires.
            Crash::WdtAfterConnect => {
                tokio::time::sleep(Duration::from_millis(HARDWARE_WATCHDOG_MS)).await;
                drop(link);
                return Err(Exit::Reboot {
                    cause: Restart::HardwareWatchdog,
                });
            }
        }
        let period = match self.knobs.publish {
            Publish::Interval => Duration::from_millis(settings.publish_interval_ms.max(1)),
            Publish::EveryLoop => FLOOD_PERIOD,
        };
        let keepalive = Duration::from_secs(u64::from(mqtt::KEEPALIVE_SECS));
        let mut next_publish = Instant::now() + period;
        let mut next_heap = Instant::now() + HEAP_PERIOD;
        let mut last_out = Instant::now();
        let mut last_in = Instant::now();
        let mut ping_outstanding = false;
        let mut sequence = 0u64;
        loop {
            let keepalive_due = last_out.min(last_in) + keepalive;
            tokio::select! {
                incoming = link.next() => {
                    let incoming = match incoming {
                        Ok(incoming) => incoming,
                        Err(failure) => {
                            // getLastSSLError() after the drop: says why (6 when a
                            // record outgrew a shrunk receive buffer).
                            if failure.code() != 0 {
                                self.say(Line::TlsError { code: failure.code(), text: error_text(failure.code()) })?;
                            }
                            return Ok(state::CONNECTION_LOST);
                        }
                    };
                    last_in = Instant::now();
                    match incoming {
                        Incoming::Publish(topic, payload) => {
                            let payload = String::from_utf8_lossy(&payload).into_owned();
                            self.say(Line::MqttMessage { topic, payload })?;
                        }
                        Incoming::Pingreq if link.send(&mqtt::PINGRESP).await.is_err() => {
                            return Ok(state::CONNECTION_LOST);
                        }
                        Incoming::Pingresp => ping_outstanding = false,
                        _ => {}
                    }
                }
                _ = sleep_until(next_publish) => {
                    next_publish += period;
                    sequence += 1;
                    let payload = format!(
                        "{{\"seq\":{sequence},\"uptime_ms\":{},\"heap\":{}}}",
                        self.clock.boot.elapsed().as_millis(),
                        self.free_heap()
                    );
                    let topic = settings.topics.publish.clone();
                    let ok = match mqtt::publish(&topic, payload.as_bytes(), false, self.knobs.mqtt_buffer) {
                        Some(packet) => {
                            if link.send(&packet).await.is_err() {
                                return Ok(state::CONNECTION_LOST);
                            }
                            last_out = Instant::now();
                            true
                        }
                        None => false,
                    };
                    self.say(Line::MqttPublished { topic, bytes: payload.len(), ok })?;
                }
                _ = sleep_until(keepalive_due) => {
                    if ping_outstanding {
                        link.stop().await;
                        return Ok(state::CONNECTION_TIMEOUT);
                    }
                    if link.send(&mqtt::PINGREQ).await.is_err() {
                        return Ok(state::CONNECTION_LOST);
                    }
                    ping_outstanding = true;
                    last_out = Instant::now();
                    last_in = Instant::now();
                }
                _ = sleep_until(next_heap) => {
                    next_heap += HEAP_PERIOD;
                    self.say(Line::Heap { free: self.free_heap() })?;
                }
                input = self.console.input.recv() => {
                    if input.is_none() {
                        return Err(Exit::Detached);
                    }
                }
            }
        }
    }

    fn free_heap(&self) -> usize {
        // A plausible ESP8266 figure: ~50 KB free after boot, minus the TLS and
        // MQTT buffers this firmware allocated.
        51_000usize.saturating_sub(
            self.knobs.rx_buffer + 325 + self.knobs.tx_buffer + 85 + self.knobs.mqtt_buffer,
        )
    }

    /// The core's postmortem dump for the exception; the caller reboots.
    fn crash(&mut self) -> Result<(), Exit> {
        for line in crate::postmortem::exception_dump() {
            self.console
                .output
                .send(format!("{line}\r\n").into_bytes())
                .map_err(|_| Exit::Detached)?;
        }
        Ok(())
    }
}

/// A TLS connection carrying MQTT.
struct Link {
    socket: TcpStream,
    tls: TlsClient,
    inbuf: Vec<u8>,
    buffer: usize,
}

impl Link {
    async fn send(&mut self, bytes: &[u8]) -> Result<(), TlsFailure> {
        self.tls.write_all(&mut self.socket, bytes).await
    }

    /// The next packet the device keeps. Cancel-safe at the awaited read: bytes
    /// are only consumed once a read completes.
    async fn next(&mut self) -> Result<Incoming, TlsFailure> {
        loop {
            while let Some(packet) = mqtt::take_packet(&mut self.inbuf, self.buffer) {
                if let Some(packet) = packet {
                    return Ok(packet);
                }
            }
            let mut chunk = [0u8; 1024];
            let n = self.tls.read(&mut self.socket, &mut chunk).await?;
            if n == 0 {
                return Err(TlsFailure::Closed(0));
            }
            self.inbuf.extend_from_slice(&chunk[..n]);
        }
    }

    /// PubSubClient's `stop()`: DISCONNECT is not sent on errors, the socket closes.
    async fn stop(&mut self) {
        let _ = self.socket.shutdown().await;
    }
}

fn mode_name(mode: &TrustMode) -> &'static str {
    match mode {
        TrustMode::TrustAnchors(_) => "trust-anchors",
        TrustMode::Insecure => "insecure",
        TrustMode::Fingerprint(_) => "fingerprint",
        TrustMode::KnownKey(_) => "known-key",
        TrustMode::SelfSigned => "self-signed",
    }
}

fn error_text(code: i32) -> String {
    crate::tls::error_name(code)
        .unwrap_or("BR_ERR_UNKNOWN")
        .to_owned()
}

/// DER blocks of every `label` PEM section in `text`; blocks that do not decode
/// are skipped, as X509List skips them.
fn pem_blocks(text: &str, label: &str) -> Vec<Vec<u8>> {
    let begin = format!("-----BEGIN {label}-----");
    let end = format!("-----END {label}-----");
    let mut blocks = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(&begin) {
        let body_start = start + begin.len();
        let Some(stop) = rest[body_start..].find(&end) else {
            break;
        };
        let body: String = rest[body_start..body_start + stop]
            .chars()
            .filter(|c| !c.is_whitespace())
            .collect();
        if let Ok(der) = base64::engine::general_purpose::STANDARD.decode(body) {
            blocks.push(der);
        }
        rest = &rest[body_start + stop + end.len()..];
    }
    blocks
}

/// A bad paste: one line of the base64 body goes missing.
fn mangle(pem: &str) -> String {
    let mut lines: Vec<&str> = pem.lines().collect();
    if lines.len() > 3 {
        lines.remove(2);
    }
    lines.join("\n")
}

fn trust_mode(knobs: &Knobs, settings: &Settings) -> TrustMode {
    match knobs.trust {
        Trust::Insecure => TrustMode::Insecure,
        Trust::SelfSigned => TrustMode::SelfSigned,
        Trust::Fingerprint => {
            let fp = settings
                .fingerprint
                .as_deref()
                .and_then(decode_hex)
                .and_then(|bytes| <[u8; 20]>::try_from(bytes).ok())
                .unwrap_or([0; 20]);
            TrustMode::Fingerprint(fp)
        }
        Trust::KnownKey => {
            let key = settings
                .known_key_pem
                .as_deref()
                .and_then(|pem| pem_blocks(pem, "PUBLIC KEY").into_iter().next())
                .and_then(|der| KnownKey::from_spki_der(&der).ok());
            match key {
                Some(key) => TrustMode::KnownKey(key),
                // setKnownKey with nothing parsable leaves no way to trust anyone.
                None => TrustMode::TrustAnchors(Vec::new()),
            }
        }
        Trust::Anchors => {
            let source = match knobs.anchor {
                Anchor::Root => settings.ca_pem.clone(),
                Anchor::Issuer => settings.issuer_pem.clone(),
            }
            .unwrap_or_default();
            let text = match knobs.ca {
                CaText::Intact => source,
                CaText::Malformed => mangle(&source),
            };
            TrustMode::TrustAnchors(pem_blocks(&text, "CERTIFICATE"))
        }
    }
}

fn client_identity(settings: &Settings) -> Option<ClientIdentity> {
    let chain = pem_blocks(settings.client_cert_pem.as_deref()?, "CERTIFICATE");
    let key = pem_blocks(settings.client_key_pem.as_deref()?, "PRIVATE KEY")
        .into_iter()
        .next()?;
    (!chain.is_empty()).then_some(ClientIdentity { chain, key })
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    let digits: Vec<u8> = text.bytes().filter(|b| !matches!(b, b':' | b' ')).collect();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::descriptor::Variant;

    /// Boots `descriptor` as a board on 127.0.0.1, provisioned for a broker at
    /// `broker` (an address, so no DNS) with no NTP server, and collects its lines
    /// with the time each was printed until `done` says stop.
    async fn boot(
        descriptor: Descriptor,
        broker: SocketAddr,
        done: impl Fn(&[String]) -> bool,
    ) -> Vec<(Instant, String)> {
        boot_at(descriptor, broker, Timings::instant(), done).await
    }

    /// [`boot`] with the chip's `timings`.
    async fn boot_at(
        descriptor: Descriptor,
        broker: SocketAddr,
        timings: Timings,
        done: impl Fn(&[String]) -> bool,
    ) -> Vec<(Instant, String)> {
        let settings = serde_json::json!({
            "wifi": {"ssid": "lab", "password": "secret"},
            "broker": {"host": broker.ip().to_string(), "port": broker.port()},
            "topics": {"publish": "t", "subscribe": "c"},
        });
        let prov = format!(
            "PROV {}\n",
            base64::engine::general_purpose::STANDARD.encode(settings.to_string())
        );
        let (output, mut printed) = mpsc::unbounded_channel();
        let (typed, input) = mpsc::unbounded_channel();
        let env = BoardEnv {
            ip: Ipv4Addr::LOCALHOST,
            mac: [0x5c, 0xcf, 0x7f, 0, 0, 1],
            access_point: None,
            dns: None,
            ntp: None,
            reset_reason: "External-System".into(),
            timings,
        };
        let firmware = tokio::spawn(async move {
            let mut console = Console { output, input };
            run(&descriptor, &env, &mut console).await
        });
        let mut lines: Vec<(Instant, String)> = vec![(Instant::now(), "<power on>".into())];
        let mut texts: Vec<String> = Vec::new();
        // A firmware that waits forever fails here instead of hanging the test
        // (with paused time the clock jumps to this limit when nothing else runs).
        let limit = Instant::now() + Duration::from_secs(600);
        while let Ok(Some(bytes)) = tokio::time::timeout_at(limit, printed.recv()).await {
            let line = String::from_utf8_lossy(&bytes).trim_end().to_owned();
            if line.starts_with("[prov] ready") {
                typed.send(prov.clone().into_bytes()).unwrap();
            }
            lines.push((Instant::now(), line.clone()));
            texts.push(line);
            if done(&texts) {
                break;
            }
        }
        firmware.abort();
        lines
    }

    fn count(lines: &[String], prefix: &str) -> usize {
        lines.iter().filter(|l| l.starts_with(prefix)).count()
    }

    /// A broker address that accepts TCP connections (the kernel completes them
    /// from the listen backlog) and never sends a byte.
    fn silent_broker() -> std::net::TcpListener {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap()
    }

    // Paused time: the 15 s wait passes in no time, and the times measured are
    // the firmware's own.
    #[tokio::test(start_paused = true)]
    async fn a_broker_that_never_answers_fails_the_connect_after_15_s_and_the_firmware_retries() {
        let broker = silent_broker();
        let lines = boot(
            Variant::Reference.descriptor(),
            broker.local_addr().unwrap(),
            |l| count(l, "[mqtt] retry") == 1,
        )
        .await;
        let text: Vec<&str> = lines.iter().map(|(_, l)| l.as_str()).collect();
        let at = text
            .iter()
            .position(|l| l.starts_with("[tls] connecting"))
            .expect("an attempt");
        assert_eq!(
            &text[at + 1..],
            [
                "[tls] error code=0 text=BR_ERR_OK",
                "[mqtt] failed rc=-2",
                "[mqtt] retry in_ms=1000"
            ],
            "{text:#?}"
        );
        let waited = lines[at + 1].0 - lines[at].0;
        assert_eq!(
            waited,
            Duration::from_millis(crate::tls::TLS_TIMEOUT_MS),
            "{text:#?}"
        );
    }

    fn modes(lines: &[(Instant, String)]) -> Vec<&str> {
        lines
            .iter()
            .filter_map(|(_, l)| l.strip_prefix("[tls] connecting "))
            .filter_map(|l| l.rsplit_once("mode=").map(|(_, m)| m))
            .collect()
    }

    fn fallback_insecure() -> Descriptor {
        let mut descriptor = Variant::Reference.descriptor();
        descriptor.set("fallback", "insecure").unwrap();
        descriptor
    }

    #[tokio::test(start_paused = true)]
    async fn the_insecure_fallback_follows_the_first_tls_error_and_sticks() {
        let broker = silent_broker();
        let at = broker.local_addr().unwrap();
        let three = |l: &[String]| count(l, "[mqtt] retry") == 3;
        let fallback = boot(fallback_insecure(), at, three).await;
        assert_eq!(
            modes(&fallback),
            ["trust-anchors", "insecure", "insecure"],
            "{fallback:#?}"
        );
        let reference = boot(Variant::Reference.descriptor(), at, three).await;
        assert_eq!(
            modes(&reference),
            ["trust-anchors", "trust-anchors", "trust-anchors"],
            "{reference:#?}"
        );
    }

    fn at(lines: &[(Instant, String)], prefix: &str) -> Instant {
        lines
            .iter()
            .find(|(_, l)| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("no `{prefix}` in {lines:#?}"))
            .0
    }

    #[tokio::test(start_paused = true)]
    async fn at_hardware_pace_setup_prints_after_280_ms_and_wifi_takes_2_3_s() {
        let broker = silent_broker();
        let lines = boot_at(
            Variant::Reference.descriptor(),
            broker.local_addr().unwrap(),
            Timings::esp8266_80mhz(),
            |l| count(l, "[tls] connecting") == 1,
        )
        .await;
        let power_on = lines[0].0;
        assert_eq!(at(&lines, "[boot]") - power_on, Duration::from_millis(280));
        assert_eq!(
            at(&lines, "[wifi] connected") - at(&lines, "[wifi] connecting"),
            Duration::from_millis(2_300)
        );
        // The default pace: only the SDK start (150 ms).
        let lines = boot(
            Variant::Reference.descriptor(),
            broker.local_addr().unwrap(),
            |l| count(l, "[tls] connecting") == 1,
        )
        .await;
        assert_eq!(
            at(&lines, "[boot]") - lines[0].0,
            Duration::from_millis(150)
        );
        assert_eq!(
            at(&lines, "[wifi] connected"),
            at(&lines, "[wifi] connecting")
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_fixed_reconnect_waits_the_same_every_time() {
        // A closed port: every connect fails at once.
        let closed = silent_broker().local_addr().unwrap();
        let mut descriptor = Variant::Reference.descriptor();
        descriptor.set("reconnect", "fixed:5s").unwrap();
        let lines = boot(descriptor, closed, |l| count(l, "[mqtt] retry") == 3).await;
        let retries: Vec<&str> = lines
            .iter()
            .filter(|(_, l)| l.starts_with("[mqtt] retry"))
            .map(|(_, l)| l.as_str())
            .collect();
        assert_eq!(retries, ["[mqtt] retry in_ms=5000"; 3], "{lines:#?}");
        let attempts: Vec<Instant> = lines
            .iter()
            .filter(|(_, l)| l.starts_with("[tls] connecting"))
            .map(|(t, _)| *t)
            .collect();
        assert!(attempts.len() >= 3, "{lines:#?}");
        for pair in attempts.windows(2) {
            assert!(pair[1] - pair[0] >= Duration::from_secs(5), "{lines:#?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn the_insecure_fallback_can_wait_for_n_failures() {
        let broker = silent_broker();
        let mut descriptor = Variant::Reference.descriptor();
        descriptor.set("fallback", "insecure-after:2").unwrap();
        let lines = boot(descriptor, broker.local_addr().unwrap(), |l| {
            count(l, "[mqtt] retry") == 3
        })
        .await;
        assert_eq!(
            modes(&lines),
            ["trust-anchors", "trust-anchors", "insecure"],
            "{lines:#?}"
        );
    }

    #[test]
    fn a_restart_names_the_reason_the_core_reports_next() {
        assert_eq!(Restart::Exception.reason(), "Exception");
        assert_eq!(Restart::Software.reason(), "Software/System-restart");
        assert_eq!(Restart::HardwareWatchdog.reason(), "Hardware-Watchdog");
    }

    #[test]
    fn a_mangled_ca_yields_no_usable_certificate() {
        let good = pem_blocks(provision::PRODUCTION_ROOT_PEM, "CERTIFICATE");
        assert_eq!(good.len(), 1);
        let bad = pem_blocks(&mangle(provision::PRODUCTION_ROOT_PEM), "CERTIFICATE");
        assert!(bad.is_empty() || bad[0] != good[0]);
    }

    #[test]
    fn fingerprints_parse_with_or_without_colons() {
        assert_eq!(decode_hex("0a:FF 01"), Some(vec![0x0a, 0xff, 0x01]));
        assert_eq!(decode_hex("abc"), None);
        assert_eq!(decode_hex("zz"), None);
    }
}
