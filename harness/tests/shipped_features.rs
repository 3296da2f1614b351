//! The shipped features against virtual boards running the reference firmware:
//! every scenario must pass. A plain `main` (harness = false): cucumber runs the
//! scenarios, this prints its progress and the summary and fails the test run
//! when any scenario does not pass.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use hil::runner::{
    BoardChoice, CheckContext, Environment, EnvironmentOptions, RunEvent, RunOptions, Selection,
    Status, Suite,
};

fn main() -> ExitCode {
    // The repository root: features, fixtures and snapshots are relative to it.
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::env::set_current_dir(&root).expect("enter the repository root");
    let check = CheckContext {
        log_profiles: PathBuf::from("fixtures/log-profiles"),
    };
    let suite = Suite::load(&[PathBuf::from("features")], &Selection::default(), &check)
        .expect("the shipped features load");
    let run_dir = tempfile::tempdir().expect("a run directory");
    let jobs = 4;
    let runtime = tokio::runtime::Runtime::new().expect("a runtime");
    let report = runtime
        .block_on(async {
            let env = Environment::start(EnvironmentOptions::new(
                BoardChoice::Virtual { count: jobs as u8 },
                run_dir.path(),
            ))
            .await?;
            let options = RunOptions {
                jobs,
                ..RunOptions::default()
            };
            let progress = Arc::new(|event: RunEvent| {
                if let RunEvent::Finished { result } = event {
                    println!(
                        "{:<7} {} › {} ({:.1} s)",
                        result.status.as_str(),
                        result.info.location(),
                        result.info.name,
                        result.duration.as_secs_f64()
                    );
                    if let Some(f) = &result.failure {
                        println!(
                            "        {}\n        expected {}\n        but {}",
                            f.step, f.expectation, f.found
                        );
                        for e in &f.window {
                            println!("          {}", hil::runner::describe(e));
                        }
                    }
                }
            });
            env.run(&suite, &options, progress).await
        })
        .expect("the run starts");
    let passed = report.count(Status::Passed);
    println!(
        "\nshipped features: {passed} of {} scenarios passed in {:.1} s",
        report.scenarios.len(),
        report.duration.as_secs_f64()
    );
    if passed == suite.scenarios().len() && report.scenarios.len() == passed {
        ExitCode::SUCCESS
    } else {
        // Keep the artifacts of a failed run for the CI log's reader.
        let kept = run_dir.keep();
        println!("artifacts kept in {}", kept.display());
        ExitCode::FAILURE
    }
}
