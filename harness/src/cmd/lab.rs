//! `hil lab`: the lab on its own, for poking at it with real clients (openssl,
//! mosquitto_sub, sntp, dig) or a board, with its events streamed live.

use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand, ValueEnum};
use hil::duration::parse_duration;
use hil::lab::network::{ApConfig, Ipv4Cidr, NetworkConfig, NetworkInfo};
use hil::lab::{BrokerBackend, BrokerPolicy, DevicePolicy, Lab, LabConfig, NtpPolicy};
use hil::pki::{Catalogue, ProfileId};
use hil::timeline::{Event, EventKind};
use miette::{Context, IntoDiagnostic, Result};
use serde::Serialize;

use super::{now, parse_rfc3339};

/// Arguments of `hil lab`.
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LabArgs {
    #[command(subcommand)]
    command: Option<LabCommand>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum LabCommand {
    /// Time the lab: start-to-ready, and TLS handshakes per second on `valid`.
    Bench(BenchArgs),
}

/// Which broker sits behind the lab.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Backend {
    /// rumqttd in-process behind the lab's TLS front (every policy and event).
    Embedded,
    /// A spawned mosquitto terminating TLS itself.
    Mosquitto,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// The certificate profile the broker presents (see `hil pki list`).
    #[arg(long, default_value = "valid", value_name = "ID")]
    profile: String,
    /// A broker policy of the catalogue; repeat for several: sni-required,
    /// client-cert-required, client-cert-wrong-ca, tls13-only, tls10-only,
    /// mfln-ignored, mfln-honoured, stall-after-hello, close-mid-handshake,
    /// mqtt-bad-credentials, mqtt-not-authorized, no-connack, dns-nxdomain.
    #[arg(long = "policy", value_name = "NAME")]
    policies: Vec<String>,
    /// Skew the NTP server's answers, e.g. `-2 days` or `+10 years`.
    #[arg(long, value_name = "DURATION", allow_hyphen_values = true)]
    ntp_skew: Option<String>,
    /// Make the NTP server always report this instant (a stale clock).
    #[arg(long, value_name = "RFC3339", value_parser = parse_rfc3339, conflicts_with = "ntp_skew")]
    ntp_time: Option<time::OffsetDateTime>,
    /// Give up on a handshake that makes no progress after this long, and record
    /// why (the client stopped sending, or the stall asked for).
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "20 s",
        allow_hyphen_values = true
    )]
    handshake_timeout: String,
    /// Address every service binds to.
    #[arg(
        long,
        default_value = "127.0.0.1",
        value_name = "ADDR",
        env = "HIL_LAB_BIND"
    )]
    bind: IpAddr,
    /// Port of the MQTT/TLS listener (0: any free port).
    #[arg(long, default_value_t = 0, value_name = "PORT")]
    mqtt_port: u16,
    /// Port of the NTP server (0: any free port).
    #[arg(long, default_value_t = 0, value_name = "PORT")]
    ntp_port: u16,
    /// Port of the DNS server (0: any free port).
    #[arg(long, default_value_t = 0, value_name = "PORT")]
    dns_port: u16,
    /// Extra host name the DNS server resolves to the lab; repeat for several.
    #[arg(long = "name", value_name = "HOST")]
    names: Vec<String>,
    /// The broker behind the lab.
    #[arg(long, value_enum, default_value = "embedded")]
    broker: Backend,
    /// The lab clock's starting time (default: now).
    #[arg(long, value_name = "RFC3339", value_parser = parse_rfc3339)]
    at: Option<time::OffsetDateTime>,
    /// Where the profile's files and the timeline go (default: a new directory
    /// under hil-runs/).
    #[arg(long, value_name = "DIR")]
    run_dir: Option<PathBuf>,
    /// First line: one JSON object with the addresses; then events as JSON lines.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    ca: super::pki::CaArgs,
    #[command(flatten)]
    broker_name: super::pki::BrokerNameArgs,
    /// Boxed: the network's options would make every `hil` command's arguments
    /// as large as the lab's.
    #[command(flatten)]
    network: Box<NetworkArgs>,
}

/// Serving the network real boards join (see the README, "Serving the network
/// for real boards").
#[derive(Debug, Args)]
#[command(next_help_heading = "Network for real boards")]
pub struct NetworkArgs {
    /// Serve the boards' network on this interface: the lab takes an address on
    /// it, hands out addresses by DHCP (the lab as router, DNS and NTP), and
    /// redirects the boards' MQTT/TLS (8883), NTP and DNS traffic to any address
    /// to itself with nftables. The services then listen on that address
    /// (--bind does not apply). Needs root or CAP_NET_ADMIN.
    #[arg(
        long,
        visible_alias = "network",
        value_name = "IFACE",
        env = "HIL_SERVE_NETWORK"
    )]
    serve_network: Option<String>,
    /// The network to serve: `10.77.0.0/24` (the lab at .1, or at the
    /// interface's own address in it), or the lab's address with its prefix.
    #[arg(
        long,
        value_name = "CIDR",
        default_value = hil::lab::network::DEFAULT_SUBNET,
        requires = "serve_network"
    )]
    subnet: Ipv4Cidr,
    /// How long a DHCP lease lasts.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "1 h",
        requires = "serve_network"
    )]
    lease_time: String,
    /// A TCP port redirected to the TLS front whatever address the board dials
    /// (repeat for several; default 8883).
    #[arg(long = "redirect-port", value_name = "PORT", requires = "serve_network",
          value_parser = clap::value_parser!(u16).range(1..))]
    redirect_ports: Vec<u16>,
    /// Run a Wi-Fi access point on the interface with hostapd (WPA2-PSK,
    /// 2.4 GHz), with this SSID.
    #[arg(long, value_name = "SSID", requires_all = ["serve_network", "ap_psk"])]
    ap_ssid: Option<String>,
    /// The access point's WPA2 passphrase (8-63 characters) or 64-digit hex PSK.
    #[arg(long, value_name = "PSK", env = "HIL_AP_PSK", hide_env_values = true)]
    ap_psk: Option<String>,
    /// The access point's channel (1-13; 14 with --ap-country JP).
    #[arg(long, value_name = "N", default_value_t = 6, requires = "ap_ssid")]
    ap_channel: u8,
    /// The access point's regulatory domain, an ISO 3166-1 country code (e.g. DE).
    #[arg(long, value_name = "CC", requires = "ap_ssid")]
    ap_country: Option<String>,
}

impl NetworkArgs {
    /// The network to serve, checked (privilege, interface, overlap) before
    /// anything slow happens.
    pub fn config(&self) -> Result<Option<NetworkConfig>> {
        let Some(interface) = &self.serve_network else {
            return Ok(None);
        };
        let mut config = NetworkConfig::new(interface.clone());
        config.subnet = self.subnet;
        let lease = parse_duration(&self.lease_time)?;
        config.lease_time = Duration::try_from(lease)
            .ok()
            .filter(|d| d.as_secs() >= 60 && d.as_secs() <= u64::from(u32::MAX))
            .ok_or_else(|| {
                miette::miette!(
                    code = "hil::lab::lease_time",
                    help =
                        "a lease lasts from 1 min to about 136 years; boards renew at half of it",
                    "`{}` is not a lease time the lab can give",
                    self.lease_time
                )
            })?;
        if !self.redirect_ports.is_empty() {
            config.broker_ports = self.redirect_ports.clone();
        }
        if let Some(ssid) = &self.ap_ssid {
            let mut ap = ApConfig::new(ssid.clone(), self.ap_psk.clone().unwrap_or_default());
            ap.channel = self.ap_channel;
            ap.country = self.ap_country.clone();
            config.ap = Some(ap);
        }
        hil::lab::network::preflight(&config)?;
        Ok(Some(config))
    }
}

#[derive(Debug, Args)]
struct BenchArgs {
    /// How many handshakes to time.
    #[arg(long, default_value_t = 200)]
    handshakes: usize,
    /// How many clients handshake at once.
    #[arg(long, default_value_t = 4)]
    concurrency: usize,
}

/// The first line of `hil lab --json`.
#[derive(Serialize)]
struct Ready {
    mqtt_tls: String,
    ntp: String,
    dns: String,
    run_dir: PathBuf,
    profile: ProfileId,
    device_anchors: PathBuf,
    broker: String,
    /// The name the device dials for this profile (the lab's DNS resolves it).
    host: String,
    /// The network served to real boards, with --serve-network.
    #[serde(skip_serializing_if = "Option::is_none")]
    network: Option<NetworkInfo>,
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .into_diagnostic()
        .wrap_err("starting the async runtime")
}

impl LabArgs {
    /// Runs the lab until Ctrl-C, or the benchmark.
    pub fn run(self) -> Result<ExitCode> {
        match self.command {
            Some(LabCommand::Bench(bench)) => bench.run(),
            None => self.run.run(),
        }
    }
}

impl RunArgs {
    fn config(&self) -> Result<LabConfig> {
        let id: ProfileId = self.profile.parse()?;
        // Checked before the certificates are generated: a wrong interface or a
        // missing privilege is told at once.
        let network = self.network.config()?;
        let mut policy = DevicePolicy::default();
        for name in &self.policies {
            let p: BrokerPolicy = name.parse()?;
            policy = policy.with(p);
        }
        if let Some(skew) = &self.ntp_skew {
            policy.ntp = NtpPolicy::Skewed(parse_duration(skew)?);
        }
        if let Some(at) = self.ntp_time {
            policy.ntp = NtpPolicy::Fixed(at);
        }
        let handshake_timeout = parse_duration(&self.handshake_timeout)?;
        let handshake_timeout = Duration::try_from(handshake_timeout)
            .ok()
            .filter(|d| !d.is_zero())
            .ok_or_else(|| hil::duration::DurationError {
                given: self.handshake_timeout.clone(),
            })?;
        let at = self.at.unwrap_or_else(now);
        let reported = match policy.ntp {
            NtpPolicy::Skewed(by) => at.checked_add(by),
            NtpPolicy::Fixed(t) => Some(t),
            _ => Some(at),
        };
        if !reported.is_some_and(hil::lab::ntp_can_carry) {
            miette::bail!(miette::miette!(
                code = "hil::lab::ntp_range",
                help = "NTP carries 1968 to 2104 (RFC 4330 eras 0 and 1); pick a skew or a time inside it",
                "the NTP server would report a time NTP cannot carry"
            ));
        }
        let options = super::pki::catalogue_options(&self.ca, &self.broker_name)?;
        let catalogue = Catalogue::generate_with(at, &options)?;
        let profile = Arc::new(catalogue.profile(id)?.clone());
        let run_dir = match &self.run_dir {
            Some(dir) => dir.clone(),
            None => {
                let stamp = now()
                    .format(&time::macros::format_description!(
                        "lab-[year][month][day]-[hour][minute][second]"
                    ))
                    .into_diagnostic()?;
                PathBuf::from("hil-runs").join(stamp)
            }
        };
        let mut config = LabConfig::new(profile, run_dir);
        config.bind = self.bind;
        config.mqtt_tls_port = self.mqtt_port;
        config.ntp_port = self.ntp_port;
        config.dns_port = self.dns_port;
        config.names = self.names.clone();
        config.handshake_timeout = handshake_timeout;
        config.default_policy = policy;
        // Without --at the lab clock is the wall clock: generation took seconds
        // the clock must not lag by.
        config.at = if self.at.is_some() { at } else { now() };
        config.backend = match self.broker {
            Backend::Embedded => BrokerBackend::Embedded,
            Backend::Mosquitto => BrokerBackend::Mosquitto,
        };
        config.network = network;
        Ok(config)
    }

    fn run(self) -> Result<ExitCode> {
        let config = self.config()?;
        let id = config.profile.id();
        let host = config.profile.host().to_owned();
        runtime()?.block_on(async move {
            let lab = Lab::start(config).await?;
            let addrs = lab.addrs();
            let ready = Ready {
                mqtt_tls: addrs.mqtt_tls.to_string(),
                ntp: addrs.ntp.to_string(),
                dns: addrs.dns.to_string(),
                run_dir: lab.run_dir().to_owned(),
                profile: id,
                device_anchors: lab.device_anchors(),
                broker: lab.broker_addr().to_string(),
                host,
                network: lab.network().map(|n| n.info().clone()),
            };
            let mut out = std::io::stdout().lock();
            if self.json {
                writeln!(out, "{}", serde_json::to_string(&ready).into_diagnostic()?)
                    .into_diagnostic()?;
            } else {
                writeln!(
                    out,
                    "hil lab: profile {id}, run directory {}",
                    ready.run_dir.display()
                )
                .into_diagnostic()?;
                writeln!(out, "  mqtt+tls  {}", ready.mqtt_tls).into_diagnostic()?;
                writeln!(out, "  ntp       {}", ready.ntp).into_diagnostic()?;
                writeln!(out, "  dns       {}", ready.dns).into_diagnostic()?;
                writeln!(out, "  anchors   {}", ready.device_anchors.display())
                    .into_diagnostic()?;
                writeln!(
                    out,
                    "  host      {} (the lab's DNS resolves it)",
                    ready.host
                )
                .into_diagnostic()?;
                if let Some(network) = &ready.network {
                    print_network(&mut out, network)?;
                }
                writeln!(out, "Ctrl-C stops the lab.").into_diagnostic()?;
            }
            out.flush().into_diagnostic()?;
            drop(out);
            let timeline = lab.timeline().clone();
            let mut cursor = timeline.start();
            let mut stop = Box::pin(tokio::signal::ctrl_c());
            // A CI runner cancels with SIGTERM: the lab cleans up as on Ctrl-C.
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
                    .into_diagnostic()?;
            loop {
                let next = timeline.wait_for(cursor, Duration::from_secs(3600), |_| true);
                tokio::select! {
                    _ = &mut stop => break,
                    _ = term.recv() => break,
                    event = next => {
                        if event.is_none() {
                            continue;
                        }
                        let mut out = std::io::stdout().lock();
                        for event in timeline.since(cursor) {
                            cursor = event.cursor_after();
                            print_event(&mut out, &event, self.json)?;
                        }
                        out.flush().into_diagnostic()?;
                    }
                }
            }
            lab.shutdown().await;
            if !self.json {
                eprintln!("hil lab: stopped");
            }
            Ok(ExitCode::SUCCESS)
        })
    }
}

fn print_network(out: &mut impl Write, network: &NetworkInfo) -> Result<()> {
    let how = if network.assigned_address {
        "assigned by the lab, removed on exit"
    } else {
        "the interface's own"
    };
    writeln!(
        out,
        "  network   {} on {} ({how})",
        network.address, network.interface
    )
    .into_diagnostic()?;
    writeln!(
        out,
        "  dhcp      {} - {}, {} s leases; router, DNS and NTP: {}",
        network.pool.0,
        network.pool.1,
        network.lease_secs,
        network.address.address()
    )
    .into_diagnostic()?;
    let stale = match (network.replaced_stale_table, network.stale_owner) {
        (true, Some(pid)) => format!(" (replaced a stale one left by pid {pid})"),
        (true, None) => " (replaced a stale one)".into(),
        _ => String::new(),
    };
    writeln!(out, "  nftables  table {}{stale}", network.table).into_diagnostic()?;
    for redirect in &network.redirects {
        writeln!(out, "            {redirect}").into_diagnostic()?;
    }
    if let (Some(ssid), Some(config)) = (&network.ssid, &network.hostapd_config) {
        writeln!(
            out,
            "  wifi      SSID {ssid:?} (hostapd, {})",
            config.display()
        )
        .into_diagnostic()?;
    }
    Ok(())
}

fn print_event(out: &mut impl Write, event: &Event, json: bool) -> Result<()> {
    if json {
        writeln!(out, "{}", serde_json::to_string(event).into_diagnostic()?).into_diagnostic()
    } else {
        let device = event
            .device
            .map(|d| d.to_string())
            .unwrap_or_else(|| "-".into());
        let mut detail = serde_json::to_value(&event.kind).into_diagnostic()?;
        let name = detail
            .as_object_mut()
            .and_then(|o| o.remove("event"))
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        writeln!(
            out,
            "{:>10.3}s {:<15} {:<16} {}",
            event.t_us as f64 / 1e6,
            device,
            name,
            detail
        )
        .into_diagnostic()
    }
}

impl BenchArgs {
    fn run(self) -> Result<ExitCode> {
        use openssl::ssl::{SslConnector, SslMethod, SslVerifyMode};
        let at = now();
        let started = Instant::now();
        let catalogue = Catalogue::generate(at).wrap_err("generating the certificates")?;
        let generated = started.elapsed();
        let profile = Arc::new(catalogue.profile(ProfileId::Valid)?.clone());
        let dir = tempdir()?;
        runtime()?.block_on(async move {
            let started = Instant::now();
            let lab = Lab::start(LabConfig::new(profile.clone(), dir.clone())).await?;
            let ready = started.elapsed();
            let addr = lab.addrs().mqtt_tls;
            let mut builder = SslConnector::builder(SslMethod::tls_client()).into_diagnostic()?;
            builder.set_ca_file(lab.device_anchors()).into_diagnostic()?;
            builder.set_verify(SslVerifyMode::PEER);
            let connector = Arc::new(builder.build());
            let per_client = self.handshakes.div_ceil(self.concurrency.max(1));
            let started = Instant::now();
            let mut clients = tokio::task::JoinSet::new();
            for _ in 0..self.concurrency.max(1) {
                let connector = connector.clone();
                clients.spawn(async move {
                    let mut done = 0usize;
                    for _ in 0..per_client {
                        let tcp = tokio::net::TcpStream::connect(addr).await?;
                        let ssl = connector
                            .configure()
                            .and_then(|c| c.into_ssl(hil::pki::BROKER_HOST))
                            .map_err(std::io::Error::other)?;
                        let mut stream = tokio_openssl::SslStream::new(ssl, tcp)
                            .map_err(std::io::Error::other)?;
                        Pin::new(&mut stream)
                            .connect()
                            .await
                            .map_err(std::io::Error::other)?;
                        done += 1;
                    }
                    Ok::<usize, std::io::Error>(done)
                });
            }
            let mut total = 0;
            while let Some(joined) = clients.join_next().await {
                total += joined.into_diagnostic()?.into_diagnostic()?;
            }
            let elapsed = started.elapsed();
            // The front records each outcome a moment after the client finished.
            let is_completed = |e: &Event| {
                matches!(
                    &e.kind,
                    EventKind::TlsHandshake {
                        outcome: hil::timeline::HandshakeOutcome::Completed { .. },
                        ..
                    }
                )
            };
            let timeline = lab.timeline();
            let completed = loop {
                let from = timeline.cursor();
                let completed = timeline.snapshot().iter().filter(|e| is_completed(e)).count();
                let more = completed < total
                    && timeline
                        .wait_for(from, Duration::from_secs(2), is_completed)
                        .await
                        .is_some();
                if !more {
                    break completed;
                }
            };
            lab.shutdown().await;
            let _ = std::fs::remove_dir_all(&dir);
            println!("catalogue generation:   {generated:.2?}");
            println!("lab start to ready:     {ready:.2?}");
            println!(
                "handshakes (valid):     {total} in {elapsed:.2?} with {} clients = {:.0}/s ({} recorded as completed)",
                self.concurrency.max(1),
                total as f64 / elapsed.as_secs_f64(),
                completed
            );
            Ok(ExitCode::SUCCESS)
        })
    }
}

fn tempdir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("hil-lab-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).into_diagnostic()?;
    Ok(dir)
}
