//! `hil vboard bench`: flashing figures against a virtual board.

use std::process::ExitCode;

use clap::Args;
use miette::Result;

/// Arguments of `hil vboard bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {}

impl BenchArgs {
    /// Runs the benchmark.
    pub fn run(self) -> Result<ExitCode> {
        Ok(ExitCode::SUCCESS)
    }
}
