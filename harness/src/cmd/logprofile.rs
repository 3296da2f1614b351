//! `hil logprofile check`: what a log profile makes of a firmware's output, and
//! which steps it leaves without a verdict.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Subcommand};
use hil::logprofile::{check, CheckReport, LogProfile, Reads, SemanticEvent, StepUse};
use miette::{Context, IntoDiagnostic, Result};

/// Log profiles: how the harness reads a firmware's serial lines.
#[derive(Debug, Subcommand)]
pub enum LogprofileCommand {
    /// Read a transcript through a profile: the event each line maps to (or
    /// "unrecognised"), then the events the profile can never produce and the
    /// Then steps that therefore cannot judge this firmware. Exit 0 when the
    /// profile loads (unrecognised lines are no error), 2 when it does not or a
    /// file is missing.
    Check(CheckArgs),
}

impl LogprofileCommand {
    /// Runs the subcommand.
    pub fn run(self) -> Result<ExitCode> {
        match self {
            LogprofileCommand::Check(args) => args.run(),
        }
    }
}

/// Arguments of `hil logprofile check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// A profile name (looked up in --log-profiles) or a path to a .toml file.
    #[arg(value_name = "PROFILE")]
    profile: String,
    /// A run's transcript.txt, or raw serial output captured any way (any bytes).
    #[arg(value_name = "TRANSCRIPT")]
    transcript: PathBuf,
    /// Where profiles are looked up by name.
    #[arg(long, value_name = "DIR", default_value = "fixtures/log-profiles")]
    log_profiles: PathBuf,
    /// Print one JSON object instead of the table.
    #[arg(long)]
    json: bool,
}

/// Text safe for a terminal: control characters shown escaped.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\t' {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

fn keys(events: &[SemanticEvent]) -> String {
    events
        .iter()
        .map(|e| e.key())
        .collect::<Vec<_>>()
        .join(" or ")
}

fn phrase(step: &StepUse) -> String {
    match step.case {
        Some(case) => format!("{} ({case})", step.phrase),
        None => step.phrase.to_owned(),
    }
}

impl CheckArgs {
    fn run(self) -> Result<ExitCode> {
        let profile = LogProfile::load(&self.profile, &self.log_profiles)?;
        let bytes = std::fs::read(&self.transcript)
            .into_diagnostic()
            .wrap_err_with(|| {
                format!("cannot read the transcript {}", self.transcript.display())
            })?;
        let report = check(&profile, &bytes);
        let mut out = std::io::stdout().lock();
        if self.json {
            writeln!(out, "{}", json(&profile, &report)).into_diagnostic()?;
        } else {
            table(&mut out, &profile, &report).into_diagnostic()?;
        }
        out.flush().into_diagnostic()?;
        Ok(ExitCode::SUCCESS)
    }
}

fn table(out: &mut impl Write, profile: &LogProfile, report: &CheckReport) -> std::io::Result<()> {
    writeln!(
        out,
        "log profile `{}`{}",
        profile.name(),
        if profile.description().is_empty() {
            String::new()
        } else {
            format!(": {}", profile.description())
        }
    )?;
    writeln!(out, "{:>5}  {:<16} LINE", "#", "EVENT")?;
    for checked in &report.lines {
        let line = &checked.line;
        let (event, detail) = match (line.harness, checked.matches.split_first()) {
            (true, _) => ("(harness)".to_owned(), String::new()),
            (false, None) => ("unrecognised".to_owned(), String::new()),
            (false, Some((first, others))) => {
                let mut detail = String::new();
                if !first.fields.is_empty() {
                    let fields: Vec<String> = first
                        .fields
                        .iter()
                        .map(|(k, v)| format!("{k}={}", printable(v)))
                        .collect();
                    detail.push_str(&format!("   {{{}}}", fields.join(" ")));
                }
                if !others.is_empty() {
                    let also: Vec<&str> = others.iter().map(|r| r.event.key()).collect();
                    detail.push_str(&format!("   (also matches {})", also.join(", ")));
                }
                (first.event.key().to_owned(), detail)
            }
        };
        writeln!(
            out,
            "{:>5}  {:<16} {}{detail}",
            line.number,
            event,
            printable(&line.text)
        )?;
    }
    let firmware_lines = report.lines.iter().filter(|l| !l.line.harness).count();
    writeln!(
        out,
        "\n{} of {firmware_lines} lines recognised, {} unrecognised.",
        firmware_lines - report.unrecognised(),
        report.unrecognised()
    )?;
    if report.never_produced.is_empty() {
        writeln!(out, "The profile has a pattern for every event.")?;
    } else {
        writeln!(
            out,
            "Events this profile can never produce: {}.",
            report
                .never_produced
                .iter()
                .map(|e| e.key())
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    if !report.unseen.is_empty() {
        writeln!(
            out,
            "Events it can produce that this transcript never showed: {}.",
            report
                .unseen
                .iter()
                .map(|e| e.key())
                .collect::<Vec<_>>()
                .join(", ")
        )?;
    }
    let cannot: Vec<&StepUse> = report.cannot_judge().collect();
    if cannot.is_empty() {
        writeln!(out, "Every Then step can judge this firmware.")?;
    } else {
        writeln!(
            out,
            "\nThen steps that cannot judge this firmware (they read an event it never reports):"
        )?;
        for step in cannot {
            writeln!(out, "  {:<60} needs {}", phrase(step), keys(step.events()))?;
        }
    }
    let late: Vec<&StepUse> = report.judged_late().collect();
    if !late.is_empty() {
        writeln!(
            out,
            "\nThen steps judged from the network, but only at their deadline or the settle window\n\
             (no failure report from the firmware ends them early):"
        )?;
        for step in late {
            writeln!(
                out,
                "  {:<60} would end on {}",
                phrase(step),
                keys(step.events())
            )?;
        }
    }
    if !report.sees_boots() {
        writeln!(
            out,
            "\nWarning: no boot pattern: this profile cannot see the firmware boot. Reboots are still\n\
             seen from the ROM's banner (readable after a software restart, an exception or a\n\
             watchdog; garbled but recognised after a hard reset), but one whose banner the console\n\
             misses (a USB adapter re-enumerating) goes unseen. Add `boot = '...'` for the line\n\
             the firmware prints first."
        )?;
    }
    if !report.provisions() {
        writeln!(
            out,
            "\nNo prov_ready pattern: `When the board boots` never provisions this firmware; it runs\n\
             with its compiled-in settings (black-box)."
        )?;
    }
    Ok(())
}

fn json(profile: &LogProfile, report: &CheckReport) -> serde_json::Value {
    let lines: Vec<serde_json::Value> = report
        .lines
        .iter()
        .map(|checked| {
            let first = checked.matches.first();
            serde_json::json!({
                "number": checked.line.number,
                "at": checked.line.at,
                "text": checked.line.text,
                "harness": checked.line.harness,
                "event": first.map(|r| r.event.key()),
                "fields": first.map(|r| &r.fields),
                "also": checked.matches.iter().skip(1).map(|r| r.event.key()).collect::<Vec<_>>(),
            })
        })
        .collect();
    let steps = |steps: Vec<&StepUse>| -> Vec<serde_json::Value> {
        steps
            .into_iter()
            .map(|s| {
                serde_json::json!({
                    "phrase": s.phrase,
                    "case": s.case,
                    "reads": s.events().iter().map(|e| e.key()).collect::<Vec<_>>(),
                    "kind": match s.reads {
                        Reads::Events(_) => "verdict",
                        Reads::SoonerWith(_) => "early-end",
                        Reads::Nothing => "none",
                    },
                })
            })
            .collect()
    };
    let keys = |events: &[SemanticEvent]| events.iter().map(|e| e.key()).collect::<Vec<_>>();
    serde_json::json!({
        "profile": profile.name(),
        "lines": lines,
        "unrecognised": report.unrecognised(),
        "never_produced": keys(&report.never_produced),
        "unseen": keys(&report.unseen),
        "cannot_judge": steps(report.cannot_judge().collect()),
        "judged_late": steps(report.judged_late().collect()),
        "provisions": report.provisions(),
        "sees_boots": report.sees_boots(),
    })
}
