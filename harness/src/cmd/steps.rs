//! `hil steps`: the Gherkin step vocabulary, as Markdown.

use std::process::ExitCode;

use clap::Args;
use miette::Result;

/// Arguments of `hil steps`.
#[derive(Debug, Args)]
pub struct StepsArgs {}

impl StepsArgs {
    /// Prints the step reference (what docs/steps.md holds).
    pub fn run(self) -> Result<ExitCode> {
        print!("{}", hil::runner::steps::reference_markdown());
        Ok(ExitCode::SUCCESS)
    }
}
