//! `hil demo`: the main job. The shipped scenarios run against virtual boards
//! with the reference firmware (which must pass every one), then against every
//! firmware variant (each must fail at least one); the kill matrix says which
//! scenario catches which mistake, and the HTML report shows every timeline.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use hil::pki::Catalogue;
use hil::report::KillMatrix;
use hil::runner::{
    BoardChoice, Environment, EnvironmentOptions, FirmwareSource, RunEvent, RunReport, Selection,
    SnapshotMode, Status, TagFilter,
};
use hil_twin::descriptor::Variant;
use miette::{IntoDiagnostic, Result};

use super::run::{console_progress, load_suite, new_run_dir, print_summary, CommonRunArgs};
use super::{now, EXIT_FAILED};

/// Arguments of `hil demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Feature files or directories holding them.
    #[arg(value_name = "FEATURES", default_value = "features")]
    features: Vec<PathBuf>,
    #[command(flatten)]
    common: CommonRunArgs,
    /// Run only these variants after the reference (default: every variant).
    #[arg(long = "variant", value_name = "NAME")]
    variants: Vec<String>,
    /// Scenarios the variants are not run against: a transcript snapshot differs
    /// for any rebuilt firmware, so it would "catch" every mutant and hide which
    /// behavioural scenario does.
    #[arg(long, default_value = "not @snapshot", value_name = "EXPR")]
    variant_tags: TagFilter,
}

impl DemoArgs {
    /// Runs the main job.
    pub fn run(self) -> Result<ExitCode> {
        let suite = load_suite(
            &self.features,
            &Selection::default(),
            &self.common.log_profiles,
        )?;
        let variant_suite = load_suite(
            &self.features,
            &Selection {
                tags: Some(self.variant_tags.clone()),
                shard: None,
            },
            &self.common.log_profiles,
        )?;
        let variants: Vec<FirmwareSource> = if self.variants.is_empty() {
            Variant::ALL
                .iter()
                .filter(|v| **v != Variant::Reference)
                .map(|v| FirmwareSource::parse(v.as_str()))
                .collect::<Result<_, _>>()?
        } else {
            self.variants
                .iter()
                .map(|v| FirmwareSource::parse(v))
                .collect::<Result<_, _>>()?
        };
        let jobs = self.common.jobs.unwrap_or(4).clamp(1, 200);
        let run_dir = new_run_dir(&self.common.runs_dir)?;
        println!("hil demo: run directory {}", run_dir.display());

        let pki_started = Instant::now();
        let catalogue = Catalogue::generate(now())?;
        let disagreements = check_web_pki(&catalogue);
        println!(
            "[1/3] certificate catalogue: {} profiles checked against rustls-webpki in {:.1?}, {} disagreement(s)",
            catalogue.profiles().len(),
            pki_started.elapsed(),
            disagreements.len()
        );
        for d in &disagreements {
            println!("      {d}");
        }

        let runtime = tokio::runtime::Runtime::new().into_diagnostic()?;
        let outcome = runtime.block_on(async {
            let env = Environment::start(EnvironmentOptions::new(
                BoardChoice::Virtual { count: jobs as u8 },
                &run_dir,
            ))
            .await?;
            println!(
                "[2/3] lab and {} virtual boards up in {:.1?}; the reference firmware against {} scenarios",
                env.boards(),
                env.startup,
                suite.scenarios().len()
            );
            let mut options = self.common.options(Some(FirmwareSource::reference()), jobs);
            options.name = Some("reference".into());
            let reference = env
                .run(&suite, &options, console_progress(suite.scenarios().len()))
                .await?;
            print_summary(&reference);

            println!(
                "[3/3] every variant against {} scenarios (tags: {})",
                variant_suite.scenarios().len(),
                self.variant_tags
            );
            let mut runs = Vec::new();
            for firmware in &variants {
                let mut options = self.common.options(Some(firmware.clone()), jobs);
                options.snapshots = SnapshotMode::CompareOnly;
                options.name = Some(format!("variant-{firmware}"));
                let quiet: hil::runner::Progress = Arc::new(|_: RunEvent| {});
                let report = env.run(&variant_suite, &options, quiet).await?;
                println!(
                    "      {:<22} fails {:>3} of {} scenarios ({:.1} s){}",
                    firmware.to_string(),
                    report.count(Status::Failed) + report.count(Status::Error),
                    report.scenarios.len(),
                    report.duration.as_secs_f64(),
                    if report.count(Status::Error) > 0 {
                        format!(", {} could not run", report.count(Status::Error))
                    } else {
                        String::new()
                    }
                );
                runs.push((firmware.to_string(), report));
            }
            Ok::<_, hil::Error>((reference, runs))
        })?;
        let (reference, runs) = outcome;

        let mut matrix = KillMatrix::default();
        matrix.add("reference", &reference);
        for (name, report) in &runs {
            matrix.add(name, report);
        }
        println!();
        println!("Kill matrix (variant: the scenarios it fails)");
        print!("{}", matrix.text());

        let mut all: Vec<(String, &RunReport)> = vec![("reference".into(), &reference)];
        all.extend(runs.iter().map(|(n, r)| (n.clone(), r)));
        let report_dir = run_dir.join("report");
        let page = hil::report::html("hil demo: the kill matrix", &all).replacen(
            "<h2>",
            &format!("<h2>Kill matrix</h2>{}<h2>", matrix.html()),
            1,
        );
        std::fs::create_dir_all(&report_dir).into_diagnostic()?;
        std::fs::write(report_dir.join("index.html"), page).into_diagnostic()?;

        let reference_failures = reference.count(Status::Failed) + reference.count(Status::Error);
        let escapes: Vec<&str> = matrix
            .escapes()
            .into_iter()
            .filter(|n| *n != "reference")
            .collect();
        println!();
        println!("report: {}", report_dir.join("index.html").display());
        if reference.count(Status::Error) > 0 {
            println!(
                "the harness could not run {} reference scenario(s)",
                reference.count(Status::Error)
            );
            return Ok(ExitCode::from(2));
        }
        let mut ok = disagreements.is_empty();
        if reference_failures > 0 {
            println!("the reference firmware fails {reference_failures} scenario(s)");
            ok = false;
        }
        for name in &escapes {
            println!("variant {name} escapes: it passes every scenario");
            ok = false;
        }
        if ok {
            println!(
                "all checks passed: the reference passes all {} scenarios, every one of {} variants fails at least one",
                reference.scenarios.len(),
                runs.len()
            );
            Ok(ExitCode::SUCCESS)
        } else {
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
