//! `hil demo`: the main job. Today it runs what exists end to end: the whole
//! certificate catalogue is generated into a run directory and every profile is
//! checked against an independent verifier; later parts (lab, boards, scenarios)
//! join here as they land.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Args;
use hil::pki::{Catalogue, Outcome, ProfileId};
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
        let pki_dir = run_dir.join("pki");
        std::fs::create_dir_all(&pki_dir)
            .into_diagnostic()
            .wrap_err_with(|| format!("creating {}", pki_dir.display()))?;

        println!("hil demo: run directory {}", run_dir.display());
        println!(
            "[1/2] generating the certificate catalogue for lab clock {}",
            rfc3339(at)
        );
        let started = Instant::now();
        let catalogue = Catalogue::generate(at).wrap_err("generating the catalogue")?;
        for profile in catalogue.profiles() {
            profile.write_to(&pki_dir)?;
        }
        println!(
            "      {} profiles in {:.2?}",
            catalogue.profiles().len(),
            started.elapsed()
        );

        println!("[2/2] checking every profile against web PKI rules (rustls-webpki)");
        println!(
            "      {:<22} {:<9} {:<9} {:<6} NOTE",
            "PROFILE", "DECLARED", "WEB-PKI", "AGREE"
        );
        let mut disagreements = Vec::new();
        for profile in catalogue.profiles() {
            let id: ProfileId = profile.id();
            let expected = id.expectation();
            let verdict = profile.web_pki_verdict();
            let agrees = verdict.outcome == expected.web_pki;
            let note = match (id.divergence(), &verdict.reason) {
                (Some(_), _) => format!("BearSSL {} (documented divergence)", expected.outcome),
                (None, Some(reason)) => reason.clone(),
                (None, None) => String::new(),
            };
            println!(
                "      {:<22} {:<9} {:<9} {:<6} {}",
                id.as_str(),
                expected.outcome.to_string(),
                verdict.outcome.to_string(),
                if agrees { "yes" } else { "NO" },
                note
            );
            if !agrees {
                disagreements.push(id);
            }
        }
        let refused = catalogue
            .profiles()
            .iter()
            .filter(|p| p.id().expectation().outcome == Outcome::Refuses)
            .count();
        println!(
            "\n{} profiles, {} refused by the reference firmware, {} disagreement(s); files in {}",
            catalogue.profiles().len(),
            refused,
            disagreements.len(),
            pki_dir.display()
        );
        if disagreements.is_empty() {
            Ok(ExitCode::SUCCESS)
        } else {
            eprintln!("profiles that do not verify as declared: {disagreements:?}");
            Ok(ExitCode::from(EXIT_FAILED))
        }
    }
}
