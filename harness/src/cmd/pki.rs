//! `hil pki`: the certificate catalogue.

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use hil::pki::{Authorities, Catalogue, ProfileId, UnknownProfile};
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
}

impl GenerateArgs {
    fn run(self) -> Result<ExitCode> {
        let at = self.at.unwrap_or_else(now);
        eprintln!(
            "generating the certificate authorities for lab clock {} ...",
            rfc3339(at)
        );
        let started = Instant::now();
        let catalogue = Catalogue::generate(at).wrap_err("generating the catalogue")?;
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
