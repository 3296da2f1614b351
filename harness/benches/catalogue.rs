//! The shipped catalogue on virtual boards with the reference firmware, run with
//! 1 and with 4 boards: wall time, median scenario time, and the harness's own
//! overhead per scenario (lab context, flashing, reset and teardown; and reset to
//! provisioned). Prints figures; asserts nothing about speed.
//!
//! `cargo bench -p hil --bench catalogue` (from the repository root or anywhere).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use hil::runner::{
    BoardChoice, CheckContext, Environment, EnvironmentOptions, RunOptions, Selection, Status,
    Suite,
};

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values.get(values.len() / 2).copied().unwrap_or_default()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    std::env::set_current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))?;
    let check = CheckContext {
        log_profiles: PathBuf::from("fixtures/log-profiles"),
    };
    let suite = Suite::load(&[PathBuf::from("features")], &Selection::default(), &check)?;
    let runtime = tokio::runtime::Runtime::new()?;
    println!(
        "{:<6} {:>10} {:>10} {:>14} {:>14} {:>16} {:>8}",
        "jobs", "env up", "wall", "median/scen", "overhead/scen", "reset->prov", "passed"
    );
    for jobs in [1usize, 4] {
        let dir = tempfile::tempdir()?;
        let (startup, report) = runtime.block_on(async {
            let env = Environment::start(EnvironmentOptions::new(
                BoardChoice::Virtual { count: jobs as u8 },
                dir.path(),
            ))
            .await?;
            let options = RunOptions {
                jobs,
                ..RunOptions::default()
            };
            let report = env.run(&suite, &options, Arc::new(|_| {})).await?;
            Ok::<_, hil::Error>((env.startup, report))
        })?;
        let durations = report.scenarios.iter().map(|s| s.duration).collect();
        let overheads = report.scenarios.iter().map(|s| s.overhead).collect();
        let provisioning = report
            .scenarios
            .iter()
            .filter_map(|s| s.provisioning)
            .collect();
        println!(
            "{jobs:<6} {:>10.2?} {:>10.2?} {:>14.2?} {:>14.2?} {:>16.2?} {:>5}/{}",
            startup,
            report.duration,
            median(durations),
            median(overheads),
            median(provisioning),
            report.count(Status::Passed),
            report.scenarios.len()
        );
    }
    Ok(())
}
