//! `hil demo`: the main job. Until the scenario runner lands it runs what exists,
//! end to end: the certificate catalogue checked against an independent verifier,
//! then a virtual board flashed with the reference firmware through espflash,
//! booted against the lab once per certificate profile, its verdict compared
//! with the catalogue's.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use hil::flash::{self, FlashInput};
use hil::lab::{DevicePolicy, Lab, LabConfig};
use hil::pki::{Catalogue, Outcome, ProfileId};
use hil::provisioning::{self, ProvisionOptions};
use hil::serial::{boot_and_watch, BootPlan, PortSpec};
use hil::timeline::Timeline;
use hil::vboard::{BoardIndex, BoardOptions, VirtualBoard};
use hil::vfirmware::{TwinNetwork, TwinRunner};
use miette::{Context, IntoDiagnostic, Result};

use super::{now, rfc3339, EXIT_FAILED};

/// Arguments of `hil demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where runs are written; each run gets its own timestamped directory.
    #[arg(
        long,
        env = "HIL_RUNS_DIR",
        default_value = "hil-runs",
        value_name = "DIR"
    )]
    runs_dir: PathBuf,
    /// The firmware image to flash onto the virtual board.
    #[arg(
        long,
        default_value = "fixtures/images/reference.bin",
        value_name = "IMAGE"
    )]
    firmware: PathBuf,
}

impl DemoArgs {
    /// Runs the main job.
    pub fn run(self) -> Result<ExitCode> {
        let at = now();
        let stamp = at
            .format(&time::macros::format_description!(
                "[year][month][day]-[hour][minute][second]"
            ))
            .into_diagnostic()?;
        let run_dir = self.runs_dir.join(stamp);
        std::fs::create_dir_all(&run_dir)
            .into_diagnostic()
            .wrap_err_with(|| format!("creating {}", run_dir.display()))?;
        if !self.firmware.is_file() {
            miette::bail!(
                "firmware image {} not found (run from the repository root, or pass --firmware)",
                self.firmware.display()
            );
        }
        println!("hil demo: run directory {}", run_dir.display());

        println!("[1/3] certificate catalogue for lab clock {}", rfc3339(at));
        let started = Instant::now();
        let catalogue = Catalogue::generate(at).wrap_err("generating the catalogue")?;
        let pki_dir = run_dir.join("pki");
        for profile in catalogue.profiles() {
            profile.write_to(&pki_dir)?;
        }
        let mut failures = check_web_pki(&catalogue);
        println!(
            "      {} profiles in {:.1?}, each checked against rustls-webpki: {} disagreement(s)",
            catalogue.profiles().len(),
            started.elapsed(),
            failures.len()
        );

        let runtime = tokio::runtime::Runtime::new().into_diagnostic()?;
        failures.extend(runtime.block_on(device_run(&catalogue, &run_dir, &self.firmware))?);

        println!();
        if failures.is_empty() {
            println!("all checks passed; artifacts in {}", run_dir.display());
            Ok(ExitCode::SUCCESS)
        } else {
            println!("{} check(s) failed:", failures.len());
            for failure in &failures {
                println!("  - {failure}");
            }
            println!("artifacts in {}", run_dir.display());
            Ok(ExitCode::from(EXIT_FAILED))
        }
    }
}

fn check_web_pki(catalogue: &Catalogue) -> Vec<String> {
    catalogue
        .profiles()
        .iter()
        .filter_map(|profile| {
            let expected = profile.id().expectation().web_pki;
            let verdict = profile.web_pki_verdict();
            (verdict.outcome != expected).then(|| {
                format!(
                    "{}: rustls-webpki says {}, the catalogue {expected}",
                    profile.id(),
                    verdict.outcome
                )
            })
        })
        .collect()
}

/// The reference firmware on a virtual board, against every profile.
async fn device_run(catalogue: &Catalogue, run_dir: &Path, firmware: &Path) -> Result<Vec<String>> {
    let timeline = Timeline::with_jsonl(&run_dir.join("timeline.jsonl")).into_diagnostic()?;
    let valid = Arc::new(catalogue.profile(ProfileId::Valid)?.clone());
    let mut config = LabConfig::new(valid, run_dir.join("lab"));
    config.timeline = Some(timeline.clone());
    let lab = Lab::start(config).await?;
    let addrs = lab.addrs();
    println!(
        "[2/3] lab up: MQTT/TLS {}, NTP {}, DNS {}",
        addrs.mqtt_tls, addrs.ntp, addrs.dns
    );

    let index = BoardIndex::new(1)?;
    let options = BoardOptions::new(index, run_dir.join("board-1.flash"))
        .timeline(timeline.clone())
        .firmware(Arc::new(TwinRunner::new(TwinNetwork::default())));
    let board = VirtualBoard::start(options).await?;
    let spec: PortSpec = board.url().parse()?;
    let input = FlashInput::from_file(firmware, None)?;
    let flash_spec = spec.clone();
    let report =
        tokio::task::spawn_blocking(move || flash::flash(&flash_spec, &input, &mut |_| {}))
            .await
            .into_diagnostic()??;
    println!(
        "      virtual board {} flashed with {} through espflash ({:?})",
        board.url(),
        firmware.display(),
        report.outcome
    );

    println!("[3/3] the reference firmware against every certificate profile");
    println!(
        "      {:<22} {:<26} {:<26} OK",
        "PROFILE", "CATALOGUE", "DEVICE SAID"
    );
    let device = IpAddr::V4(index.device_ip());
    let mut failures = Vec::new();
    for profile in catalogue.profiles() {
        let id = profile.id();
        lab.policies().set(
            device,
            DevicePolicy {
                profile: Some(Arc::new(profile.clone())),
                ..DevicePolicy::default()
            },
        );
        let settings =
            provisioning::settings(&addrs, catalogue, profile, &ProvisionOptions::default())?;
        let plan = BootPlan {
            provisioning: Some(provisioning::line(&settings)),
            timeout: Duration::from_secs(30),
            timeline: Some(timeline.clone()),
            device: Some(device),
        };
        let boot_spec = spec.clone();
        let lines = tokio::task::spawn_blocking(move || {
            boot_and_watch(&boot_spec, &plan, &|l| {
                l.starts_with("[mqtt] connected") || l.starts_with("[tls] error")
            })
        })
        .await
        .into_diagnostic()??;
        let said = lines
            .iter()
            .rev()
            .find(|l| l.starts_with("[mqtt] connected") || l.starts_with("[tls] error"))
            .map(|l| verdict_of(l))
            .unwrap_or_else(|| "nothing".into());
        let e = id.expectation();
        let wanted = match e.outcome {
            Outcome::Connects => "connects".to_owned(),
            Outcome::Refuses => format!("refuses code={}", e.bearssl_code.get()),
        };
        let ok = said == wanted;
        println!(
            "      {:<22} {:<26} {:<26} {}",
            id.as_str(),
            wanted,
            said,
            if ok { "yes" } else { "NO" }
        );
        if !ok {
            failures.push(format!(
                "{id}: the device {said}, the catalogue says it {wanted}"
            ));
        }
    }
    drop(board);
    lab.shutdown().await;
    Ok(failures)
}

fn verdict_of(line: &str) -> String {
    match line.strip_prefix("[tls] error code=") {
        Some(rest) => format!("refuses code={}", rest.split(' ').next().unwrap_or("?")),
        None => "connects".into(),
    }
}
