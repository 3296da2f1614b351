//! `hil pki`: the certificate catalogue.

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use hil::pki::{
    arduino_header, bearssl_trust_anchors, check_symbol, Authorities, BrokerName, Catalogue,
    CatalogueOptions, ProfileId, RootCa, UnknownProfile, ROOT_CERT_FILE, ROOT_KEY_FILE,
};
use miette::{Context, IntoDiagnostic, Result};
use serde::Serialize;
use time::OffsetDateTime;

use super::{now, parse_rfc3339, rfc3339};

/// The certificate catalogue.
#[derive(Debug, Subcommand)]
pub enum PkiCommand {
    /// Print every profile id with what it presents, the reference firmware's
    /// expected outcome and BearSSL code.
    List(ListArgs),
    /// Write profiles to a directory: device anchors, the broker's chain and key,
    /// client certificate material and a manifest for each.
    Generate(GenerateArgs),
    /// Write the lab's root for a test build of your firmware: PEM, an Arduino
    /// header (a PROGMEM PEM string for `BearSSL::X509List`) and BearSSL
    /// trust-anchor C code (as `brssl ta` prints). Keeps the root (and its key,
    /// mode 0600) in the directory so later labs and runs can use it with
    /// `--ca-cert DIR/lab-root.pem --ca-key DIR/lab-root-key.pem`.
    Export(ExportArgs),
    /// Time generating the whole catalogue, cold (keys and authorities) and warm
    /// (profiles from existing authorities).
    Bench(BenchArgs),
}

impl PkiCommand {
    /// Runs the subcommand.
    pub fn run(self) -> Result<ExitCode> {
        match self {
            PkiCommand::List(args) => args.run(),
            PkiCommand::Generate(args) => args.run(),
            PkiCommand::Export(args) => args.run(),
            PkiCommand::Bench(args) => args.run(),
        }
    }
}

/// Arguments of `hil pki list`.
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON (an array of objects) instead of a table.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct ListEntry {
    id: ProfileId,
    description: &'static str,
    outcome: hil::pki::Outcome,
    bearssl_code: u32,
    bearssl_name: Option<&'static str>,
    web_pki: hil::pki::Outcome,
    catches: &'static str,
}

impl ListArgs {
    fn run(self) -> Result<ExitCode> {
        let entries: Vec<ListEntry> = ProfileId::ALL
            .iter()
            .map(|&id| {
                let e = id.expectation();
                ListEntry {
                    id,
                    description: id.description(),
                    outcome: e.outcome,
                    bearssl_code: e.bearssl_code.get(),
                    bearssl_name: e.bearssl_code.name(),
                    web_pki: e.web_pki,
                    catches: id.catches(),
                }
            })
            .collect();
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(&entries).into_diagnostic()?
            );
            return Ok(ExitCode::SUCCESS);
        }
        println!("{:<22} {:<9} {:<5} DESCRIPTION", "ID", "OUTCOME", "CODE");
        for e in &entries {
            let code = e.bearssl_code.to_string();
            println!(
                "{:<22} {:<9} {:<5} {}",
                e.id.as_str(),
                e.outcome.to_string(),
                code,
                e.description
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Which profiles to generate: one id or `all`.
#[derive(Debug, Clone)]
pub enum Selection {
    /// Every profile.
    All,
    /// One profile.
    One(ProfileId),
}

impl FromStr for Selection {
    type Err = UnknownProfile;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "all" {
            Ok(Selection::All)
        } else {
            s.parse().map(Selection::One)
        }
    }
}

fn parse_selection(s: &str) -> Result<Selection, String> {
    s.parse().map_err(|e: UnknownProfile| {
        let ids: Vec<&str> = ProfileId::ALL.iter().map(|id| id.as_str()).collect();
        format!("{e}\n  valid: all, {}", ids.join(", "))
    })
}

/// Whose root the catalogue chains to: the lab's own "HIL Root", or a team's
/// test CA (shared by every command that generates the catalogue).
#[derive(Debug, Args, Clone, Default)]
pub struct CaArgs {
    /// Your test CA's certificate (PEM), used instead of a lab root: your
    /// firmware's test build trusts it and every good chain of the catalogue
    /// ends in it. "Evil Root" and the client CAs stay the lab's own.
    #[arg(
        long,
        value_name = "PEM",
        requires = "ca_key",
        env = "HIL_CA_CERT",
        help_heading = "Your firmware"
    )]
    pub ca_cert: Option<PathBuf>,
    /// The test CA's private key (unencrypted PEM; RSA of 2048 bits or more,
    /// P-256 or P-384). Read, never copied or printed.
    #[arg(
        long,
        value_name = "PEM",
        requires = "ca_cert",
        env = "HIL_CA_KEY",
        help_heading = "Your firmware"
    )]
    pub ca_key: Option<PathBuf>,
}

impl CaArgs {
    /// The root the options name, checked; `None` for the lab's own.
    pub fn root(&self) -> Result<Option<Arc<RootCa>>> {
        match (&self.ca_cert, &self.ca_key) {
            (Some(cert), Some(key)) => Ok(Some(Arc::new(RootCa::load(cert, key)?))),
            _ => Ok(None),
        }
    }
}

/// The name the firmware dials (shared by every command that generates the
/// catalogue).
#[derive(Debug, Args, Clone, Default)]
pub struct BrokerNameArgs {
    /// The broker name your firmware dials (default broker.hil.test). Every
    /// profile is issued for it (wrong-san stays wrong; wildcard-mismatch
    /// presents a wildcard two labels above it) and the lab's DNS resolves it.
    #[arg(
        long,
        value_name = "HOST",
        env = "HIL_BROKER_NAME",
        help_heading = "Your firmware"
    )]
    pub broker_name: Option<String>,
}

impl BrokerNameArgs {
    /// The name, checked.
    pub fn name(&self) -> Result<Option<BrokerName>> {
        Ok(self
            .broker_name
            .as_deref()
            .map(BrokerName::new)
            .transpose()?)
    }
}

/// The catalogue options `ca` and `name` ask for, checked.
pub fn catalogue_options(ca: &CaArgs, name: &BrokerNameArgs) -> Result<CatalogueOptions> {
    let mut options = CatalogueOptions::default();
    if let Some(root) = ca.root()? {
        options = options.with_root(root);
    }
    if let Some(name) = name.name()? {
        options = options.with_broker_name(name);
    }
    Ok(options)
}

/// Arguments of `hil pki generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// A profile id (see `hil pki list`) or `all`.
    #[arg(value_parser = parse_selection, value_name = "ID|all")]
    profile: Selection,
    /// Directory to write into; each profile gets `DIR/<id>/`.
    #[arg(long, short, value_name = "DIR")]
    out: PathBuf,
    /// The lab clock the certificates are relative to (default: now).
    #[arg(long, value_name = "RFC3339", value_parser = parse_rfc3339)]
    at: Option<OffsetDateTime>,
    #[command(flatten)]
    ca: CaArgs,
    #[command(flatten)]
    name: BrokerNameArgs,
}

impl GenerateArgs {
    fn run(self) -> Result<ExitCode> {
        let at = self.at.unwrap_or_else(now);
        let options = catalogue_options(&self.ca, &self.name)?;
        eprintln!(
            "generating the certificate authorities for lab clock {} ...",
            rfc3339(at)
        );
        let started = Instant::now();
        let catalogue = Catalogue::generate_with(at, &options)?;
        if options.root.is_some() || options.broker_name.is_some() {
            let root = catalogue.authorities().root().info()?;
            eprintln!(
                "root: {}; broker name: {}",
                root.subject,
                catalogue.authorities().broker_name()
            );
        }
        let ids: Vec<ProfileId> = match self.profile {
            Selection::All => ProfileId::ALL.to_vec(),
            Selection::One(id) => vec![id],
        };
        for id in ids {
            let profile = catalogue.profile(id)?;
            let dir = profile
                .write_to(&self.out)
                .wrap_err_with(|| format!("writing profile `{id}`"))?;
            let e = id.expectation();
            println!(
                "{:<22} {:<9} code {:<3} {}",
                id.as_str(),
                e.outcome.to_string(),
                e.bearssl_code.get(),
                dir.display()
            );
        }
        eprintln!("done in {:.2?}", started.elapsed());
        Ok(ExitCode::SUCCESS)
    }
}

/// Arguments of `hil pki export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Directory to write into: lab-root.pem, lab-root-key.pem (mode 0600, only
    /// for a root made here), hil_lab_root.h and hil_lab_root_ta.h. A root
    /// already kept there is reused, so re-exporting never changes what a built
    /// firmware trusts.
    #[arg(long, short, value_name = "DIR")]
    out: PathBuf,
    /// Name of the PEM string in the Arduino header.
    #[arg(long, value_name = "IDENT", default_value = "HIL_LAB_ROOT_PEM")]
    symbol: String,
    /// The clock a new root is made for: valid from five years before to twenty
    /// after (default: now).
    #[arg(long, value_name = "RFC3339", value_parser = parse_rfc3339)]
    at: Option<OffsetDateTime>,
    #[command(flatten)]
    ca: CaArgs,
}

/// The Arduino header `hil pki export` writes.
pub const ARDUINO_HEADER_FILE: &str = "hil_lab_root.h";
/// The BearSSL trust-anchor code `hil pki export` writes.
pub const BEARSSL_TA_FILE: &str = "hil_lab_root_ta.h";

impl ExportArgs {
    fn run(self) -> Result<ExitCode> {
        check_symbol(&self.symbol)?;
        let kept_cert = self.out.join(ROOT_CERT_FILE);
        let kept_key = self.out.join(ROOT_KEY_FILE);
        let mut written = Vec::new();
        let (root, origin) = match self.ca.root()? {
            Some(root) => (root, "your CA"),
            // A root kept here earlier: the firmware built with it keeps working.
            None if kept_cert.exists() => (
                Arc::new(RootCa::load(&kept_cert, &kept_key)?),
                "the root kept here",
            ),
            None => {
                let root = Arc::new(RootCa::generate(self.at.unwrap_or_else(now))?);
                let (cert, key) = root.write_to(&self.out)?;
                written.extend([cert, key]);
                (root, "a new lab root")
            }
        };
        let cert = root.certificate();
        std::fs::create_dir_all(&self.out)
            .into_diagnostic()
            .wrap_err_with(|| format!("creating {}", self.out.display()))?;
        let mut files = vec![
            (ARDUINO_HEADER_FILE, arduino_header(cert, &self.symbol)?),
            (
                BEARSSL_TA_FILE,
                bearssl_trust_anchors(std::slice::from_ref(cert))?,
            ),
        ];
        if self.ca.ca_cert.is_some() {
            // Your CA's certificate only: its key stays where it is.
            files.insert(0, (ROOT_CERT_FILE, cert.pem()));
        }
        for (name, text) in files {
            let path = self.out.join(name);
            std::fs::write(&path, text)
                .into_diagnostic()
                .wrap_err_with(|| format!("writing {}", path.display()))?;
            written.push(path);
        }
        for path in &written {
            println!("{}", path.display());
        }
        let info = cert.info()?;
        eprintln!(
            "exported {origin}: {} (sha1 {}), valid {} to {}",
            info.subject,
            info.sha1,
            rfc3339(info.not_before),
            rfc3339(info.not_after)
        );
        if self.ca.ca_cert.is_none() {
            eprintln!(
                "labs and runs use it with --ca-cert {} --ca-key {}",
                kept_cert.display(),
                kept_key.display()
            );
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// Arguments of `hil pki bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// How many times to run each measurement.
    #[arg(long, default_value_t = 5)]
    iterations: u32,
}

fn summary(samples: &mut [Duration]) -> String {
    samples.sort();
    let median = samples[samples.len() / 2];
    let (min, max) = (samples[0], samples[samples.len() - 1]);
    format!("median {median:>9.2?}   min {min:>9.2?}   max {max:>9.2?}")
}

impl BenchArgs {
    fn run(self) -> Result<ExitCode> {
        let n = self.iterations.max(1) as usize;
        let at = now();
        let mut cold = Vec::with_capacity(n);
        let mut warm = Vec::with_capacity(n);
        let mut authorities: Option<Arc<Authorities>> = None;
        for _ in 0..n {
            let started = Instant::now();
            let catalogue = Catalogue::generate(at)?;
            cold.push(started.elapsed());
            authorities = Some(catalogue.authorities().clone());
        }
        if let Some(authorities) = authorities {
            for _ in 0..n {
                let started = Instant::now();
                Catalogue::from_authorities(authorities.clone())?;
                warm.push(started.elapsed());
            }
        }
        println!(
            "catalogue of {} profiles, {n} iterations, {} threads available",
            ProfileId::ALL.len(),
            std::thread::available_parallelism()
                .map(|p| p.get())
                .unwrap_or(1)
        );
        println!(
            "cold (keys + authorities + profiles): {}",
            summary(&mut cold)
        );
        println!(
            "warm (profiles from authorities):     {}",
            summary(&mut warm)
        );
        Ok(ExitCode::SUCCESS)
    }
}
