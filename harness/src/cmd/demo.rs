//! `hil demo`: the main job. The shipped scenarios run against virtual boards
//! with the reference firmware (which must pass every one) and against every
//! firmware variant (each must be killed by at least one genuine failure), all
//! side by side on one pool of boards; the kill matrix says which scenario
//! catches which mistake and what changed since the stored one, and the HTML
//! report shows every timeline.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use hil::artifact::Secrets;
use hil::pki::Catalogue;
use hil::report::KillMatrix;
use hil::runner::{
    BoardChoice, Environment, EnvironmentOptions, FirmwareSource, Interrupt, RunEvent, RunReport,
    Selection, Snapshot, SnapshotMode, Status, TagFilter,
};
use hil_contract::descriptor::Variant;
use miette::{IntoDiagnostic, Result};

use super::run::{
    console_progress, load_suite, new_run_dir, print_summary, stop_on_signals, CommonRunArgs,
    Outputs, Partial,
};
use super::{now, EXIT_FAILED, EXIT_USAGE};

/// The stored kill matrix, beside the transcript snapshots.
const MATRIX_SNAPSHOT: &str = "demo__kill_matrix";
/// The one at a real board's pace: a scenario that ends before a late crash
/// (a handshake takes seconds there) kills less, for the right reason.
const MATRIX_SNAPSHOT_HARDWARE: &str = "demo__kill_matrix_hardware_pace";

/// Virtual boards at most (board k's address is 127.0.1.k).
const MAX_BOARDS: usize = 200;

/// Arguments of `hil demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Feature files or directories holding them.
    #[arg(value_name = "FEATURES", default_value = "features")]
    features: Vec<PathBuf>,
    #[command(flatten)]
    common: CommonRunArgs,
    /// Run only these variants besides the reference (default: every variant).
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
        let firmwares = variants.len() + 1;
        // Boards per firmware: the runs mostly wait on protocol timeouts, so many
        // boards side by side share two cores well.
        let per_run = self
            .common
            .jobs
            .unwrap_or(3)
            .clamp(1, (MAX_BOARDS / firmwares).max(1));
        let boards = (per_run * firmwares).min(MAX_BOARDS);
        // The CA and the name are checked before anything starts.
        let catalogue_options =
            super::pki::catalogue_options(&self.common.ca, &self.common.broker_name)?;
        let run_dir = new_run_dir(&self.common.runs_dir)?;
        println!("hil demo: run directory {}", run_dir.display());

        let pki_started = Instant::now();
        let catalogue = Catalogue::generate_with(now(), &catalogue_options)?;
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

        let secrets = Secrets::default();
        let interrupt = Interrupt::new();
        let partial = Partial::new(
            &suite,
            &run_dir.join("reference"),
            "reference",
            secrets.clone(),
            Outputs {
                junit: None,
                json: None,
                html: None,
            },
        );
        let runtime = tokio::runtime::Runtime::new().into_diagnostic()?;
        let began = Instant::now();
        let (reference, runs) = runtime.block_on(async {
            stop_on_signals(interrupt.clone(), partial.clone(), None);
            let mut env_options = EnvironmentOptions::new(
                BoardChoice::Virtual {
                    count: boards as u8,
                },
                &run_dir,
            );
            env_options.catalogue = catalogue_options;
            env_options.pace = self.common.pace.into();
            let env = Environment::start(env_options).await?;
            println!(
                "[2/3] lab and {} virtual boards up in {:.1?}: the reference against {} scenarios and {} variants against {} (tags: {}), {per_run} boards each, side by side",
                env.boards(),
                env.startup,
                suite.scenarios().len(),
                variants.len(),
                variant_suite.scenarios().len(),
                self.variant_tags
            );
            let mut options = self.common.options(Some(FirmwareSource::reference()), per_run);
            options.name = Some("reference".into());
            options.secrets = secrets.clone();
            options.interrupt = interrupt.clone();
            let progress = partial.recording(console_progress(suite.scenarios().len()));
            let reference = env.run(&suite, &options, progress);
            let variant_runs = variants.iter().map(|firmware| {
                let mut options = self.common.options(Some(firmware.clone()), per_run);
                options.snapshots = SnapshotMode::CompareOnly;
                options.name = Some(format!("variant-{firmware}"));
                options.secrets = secrets.clone();
                options.interrupt = interrupt.clone();
                let env = &env;
                let variant_suite = &variant_suite;
                async move {
                    let quiet: hil::runner::Progress = Arc::new(|_: RunEvent| {});
                    let report = env.run(variant_suite, &options, quiet).await?;
                    println!(
                        "      {:<22} fails {:>3} of {} scenarios ({:.1} s){}",
                        firmware.to_string(),
                        report.count(Status::Failed),
                        report.scenarios.len(),
                        report.duration.as_secs_f64(),
                        match report.count(Status::Error) + report.count(Status::NotRun) {
                            0 => String::new(),
                            n => format!(", {n} could not run"),
                        }
                    );
                    Ok::<_, hil::Error>((firmware.to_string(), report))
                }
            });
            let (reference, variants) =
                futures::join!(reference, futures::future::join_all(variant_runs));
            let runs = variants.into_iter().collect::<Result<Vec<_>, _>>()?;
            Ok::<_, hil::Error>((reference?, runs))
        })?;
        print_summary(&reference);
        println!(
            "[3/3] {} firmwares, {} scenario runs in {:.1} s",
            firmwares,
            reference.scenarios.len() + runs.iter().map(|(_, r)| r.scenarios.len()).sum::<usize>(),
            began.elapsed().as_secs_f64()
        );

        let mut matrix = KillMatrix::default();
        matrix.add("reference", &reference);
        for (name, report) in &runs {
            matrix.add(name, report);
        }
        println!();
        println!("Kill matrix (variant: the scenarios that kill it)");
        print!("{}", matrix.text());
        self.compare_matrix(&matrix);

        let mut all: Vec<(String, &RunReport)> = vec![("reference".into(), &reference)];
        all.extend(runs.iter().map(|(n, r)| (n.clone(), r)));
        for (_, report) in &all {
            hil::report::write_all(report, "hil demo", &secrets).into_diagnostic()?;
        }
        let report_dir = run_dir.join("report");
        std::fs::create_dir_all(&report_dir).into_diagnostic()?;
        let page = matrix.page("hil demo: the kill matrix", &all, &secrets);
        hil::artifact::write_atomically(&report_dir.join("index.html"), page.as_bytes())
            .into_diagnostic()?;
        println!();
        println!("report: {}", report_dir.join("index.html").display());

        if interrupt.is_triggered() {
            println!("interrupted: the scenarios that did not finish are reported as not run");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
        let mut errors: Vec<String> = all
            .iter()
            .flat_map(|(name, report)| {
                report
                    .scenarios
                    .iter()
                    .filter(|s| matches!(s.status, Status::Error | Status::NotRun))
                    .map(move |s| {
                        format!(
                            "{name}: {} ({}): {}",
                            s.info.name,
                            s.info.location(),
                            s.error.as_deref().unwrap_or(s.status.as_str())
                        )
                    })
            })
            .collect();
        errors.sort();
        if !errors.is_empty() {
            println!("the harness could not run {} scenario(s):", errors.len());
            for e in &errors {
                println!("  {e}");
            }
            return Ok(ExitCode::from(EXIT_USAGE));
        }
        let mut ok = disagreements.is_empty();
        let reference_failures = reference.count(Status::Failed);
        if reference_failures > 0 {
            println!("the reference firmware fails {reference_failures} scenario(s)");
            ok = false;
        }
        for name in matrix.escapes().into_iter().filter(|n| *n != "reference") {
            println!("variant {name} escapes: no scenario fails it");
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

    /// Says what changed since the stored matrix, and offers the new one for
    /// review (`cargo insta review`; nothing is written when CI=true).
    fn compare_matrix(&self, matrix: &KillMatrix) {
        let name = match hil_contract::pace::Pace::from(self.common.pace) {
            hil_contract::pace::Pace::Hardware => MATRIX_SNAPSHOT_HARDWARE,
            _ => MATRIX_SNAPSHOT,
        };
        let snapshot = Snapshot::named(&self.common.snapshots, name);
        let text = matrix.snapshot();
        match snapshot.stored() {
            Some(_) if snapshot.matches(&text) => {
                println!(
                    "the kill matrix is the stored one ({})",
                    snapshot.path().display()
                );
            }
            Some(stored) => {
                println!(
                    "the kill matrix changed since the stored one ({}):",
                    snapshot.path().display()
                );
                for change in matrix.changes_from(&stored) {
                    println!("  {change}");
                }
                offer(&snapshot, &text);
            }
            None => {
                println!("no stored kill matrix yet at {}", snapshot.path().display());
                offer(&snapshot, &text);
            }
        }
    }
}

/// Leaves the new matrix for review, and says where.
fn offer(snapshot: &Snapshot, text: &str) {
    match snapshot.write_pending(text) {
        Ok(Some(path)) => println!(
            "  the new matrix is in {} (review with `cargo insta review`)",
            path.display()
        ),
        Ok(None) => {}
        Err(e) => println!("  could not write the new matrix for review: {e}"),
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
