//! `hil vfirmware bench`: the reference twin's boot and handshake times.

use std::net::{IpAddr, Ipv4Addr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use hil::lab::{Lab, LabConfig};
use hil::pki::{Catalogue, ProfileId};
use hil::provisioning::{self, ProvisionOptions};
use hil::vfirmware::DetachedTwin;
use hil_contract::descriptor::Variant;
use hil_twin::BoardEnv;
use miette::{IntoDiagnostic, Result};

use super::now;

/// Arguments of `hil vfirmware bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// How many boots to time.
    #[arg(long, default_value_t = 10)]
    iterations: u32,
}

fn median(samples: &mut [Duration]) -> Duration {
    samples.sort();
    samples.get(samples.len() / 2).copied().unwrap_or_default()
}

impl BenchArgs {
    /// Runs the benchmark.
    pub fn run(self) -> Result<ExitCode> {
        let runtime = tokio::runtime::Runtime::new().into_diagnostic()?;
        runtime.block_on(self.bench())
    }

    async fn bench(self) -> Result<ExitCode> {
        let run_dir =
            std::env::temp_dir().join(format!("hil-vfirmware-bench-{}", std::process::id()));
        let catalogue = Catalogue::generate(now())?;
        let valid = catalogue.profile(ProfileId::Valid)?;
        let lab = Lab::start(LabConfig::new(Arc::new(valid.clone()), &run_dir)).await?;
        let settings = provisioning::settings(
            &lab.addrs(),
            &catalogue,
            valid,
            &ProvisionOptions::default(),
        )?;
        let line = provisioning::line(&settings);
        let (mut to_publish, mut to_connect, mut handshakes) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..self.iterations.max(1) {
            let k = (i % 250) as u8 + 1;
            let env = BoardEnv {
                ip: Ipv4Addr::new(127, 0, 1, k),
                mac: [0x18, 0xfe, 0x34, 0, 0, k],
                access_point: None,
                dns: None,
                ntp: None,
                reset_reason: "External-System".into(),
                timings: hil_twin::Timings::instant(),
            };
            lab.policies().clear(IpAddr::V4(env.ip));
            let started = Instant::now();
            let mut twin =
                DetachedTwin::start(Variant::Reference.descriptor(), env, Some(line.clone()));
            let mut tls_started = None;
            loop {
                let Some((at, text)) = twin.next_line(Duration::from_secs(30)).await else {
                    miette::bail!("the twin stopped before publishing (iteration {i})");
                };
                if text.starts_with("[tls] connecting") {
                    tls_started = Some(at);
                }
                if text.starts_with("[tls] ok") {
                    handshakes.push(at.saturating_sub(tls_started.unwrap_or_default()));
                }
                if text.starts_with("[tls] error") {
                    miette::bail!("the reference twin was refused: {text}");
                }
                if text.starts_with("[mqtt] connected") {
                    to_connect.push(at);
                }
                if text.starts_with("[mqtt] published") {
                    to_publish.push(started.elapsed());
                    break;
                }
            }
        }
        println!(
            "reference twin on `valid`, {} boots (debug build unless built with --release):",
            to_publish.len()
        );
        println!(
            "  boot to first publish: median {:>8.1?} (includes one {} ms publish interval)",
            median(&mut to_publish),
            settings.publish_interval_ms
        );
        println!(
            "  boot to MQTT connected: median {:>8.1?}",
            median(&mut to_connect)
        );
        println!(
            "  TLS handshake:         median {:>8.1?}",
            median(&mut handshakes)
        );
        lab.shutdown().await;
        // The run directory holds only this benchmark's lab files.
        let _ = std::fs::remove_dir_all(&run_dir);
        Ok(ExitCode::SUCCESS)
    }
}
