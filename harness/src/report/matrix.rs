//! The kill matrix of the main job: which scenario fails which firmware variant.
//! Only a genuine failure (a failed or inconclusive verdict) is a kill; a
//! scenario the harness could not run is an error, one that never ran is "not
//! run", and neither counts.

use std::fmt::Write as _;

use super::html::escape;
use crate::runner::{RunReport, ScenarioResult, Status};

/// One cell of the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    /// The scenario failed this firmware.
    Killed,
    /// The firmware passed it.
    Survived,
    /// The harness could not run it.
    Error,
    /// It was not run against this firmware.
    NotRun,
}

/// Which variants fail which scenarios.
#[derive(Debug, Clone, Default)]
pub struct KillMatrix {
    /// Scenario names (`feature: scenario`), in suite order.
    pub scenarios: Vec<String>,
    /// Per firmware: its name and one cell per scenario.
    pub rows: Vec<(String, Vec<Cell>)>,
}

/// How the matrix differs from the stored one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MatrixChange {
    /// A scenario now kills this firmware.
    NewKill {
        /// The firmware.
        firmware: String,
        /// The scenario.
        scenario: String,
    },
    /// A scenario no longer kills this firmware.
    LostKill {
        /// The firmware.
        firmware: String,
        /// The scenario.
        scenario: String,
    },
}

impl std::fmt::Display for MatrixChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MatrixChange::NewKill { firmware, scenario } => {
                write!(f, "+ {firmware} is now also killed by {scenario}")
            }
            MatrixChange::LostKill { firmware, scenario } => {
                write!(f, "- {firmware} is no longer killed by {scenario}")
            }
        }
    }
}

fn key(result: &ScenarioResult) -> String {
    format!("{}: {}", result.info.feature, result.info.name)
}

impl KillMatrix {
    /// Adds a firmware's run.
    pub fn add(&mut self, firmware: &str, report: &RunReport) {
        let mut ordered: Vec<&ScenarioResult> = report.scenarios.iter().collect();
        ordered.sort_by(|a, b| (&a.info.path, a.info.line).cmp(&(&b.info.path, b.info.line)));
        let mut cells = vec![Cell::NotRun; self.scenarios.len()];
        for result in ordered {
            let name = key(result);
            let index = match self.scenarios.iter().position(|s| *s == name) {
                Some(i) => i,
                None => {
                    self.scenarios.push(name);
                    cells.push(Cell::NotRun);
                    for (_, row) in &mut self.rows {
                        row.push(Cell::NotRun);
                    }
                    self.scenarios.len() - 1
                }
            };
            cells[index] = match result.status {
                Status::Failed => Cell::Killed,
                Status::Passed => Cell::Survived,
                Status::Error => Cell::Error,
                Status::NotRun => Cell::NotRun,
            };
        }
        self.rows.push((firmware.to_owned(), cells));
    }

    fn killers(&self, row: &[Cell]) -> Vec<&str> {
        row.iter()
            .zip(&self.scenarios)
            .filter(|(c, _)| **c == Cell::Killed)
            .map(|(_, s)| s.as_str())
            .collect()
    }

    /// Firmware no scenario kills.
    pub fn escapes(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|(_, row)| !row.contains(&Cell::Killed))
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// Every (firmware, scenario) the harness could not run.
    pub fn errors(&self) -> Vec<(&str, &str)> {
        self.rows
            .iter()
            .flat_map(|(name, row)| {
                row.iter()
                    .zip(&self.scenarios)
                    .filter(|(c, _)| **c == Cell::Error)
                    .map(move |(_, s)| (name.as_str(), s.as_str()))
            })
            .collect()
    }

    /// The matrix as text: one line per firmware with the scenarios that kill it.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (name, row) in &self.rows {
            let killers = self.killers(row);
            let ran = row.iter().filter(|c| **c != Cell::NotRun).count();
            let errors = row.iter().filter(|c| **c == Cell::Error).count();
            let _ = write!(out, "{name:<22} fails {:>3} of {ran}", killers.len());
            if errors > 0 {
                let _ = write!(out, " ({errors} could not run)");
            }
            out.push('\n');
            for scenario in killers {
                let _ = writeln!(out, "{:<22}   - {scenario}", "");
            }
        }
        out
    }

    /// What the stored snapshot holds: per firmware, the scenarios that kill it
    /// (no timings, so it only changes when the verdicts do).
    pub fn snapshot(&self) -> String {
        let mut out = String::new();
        for (name, row) in &self.rows {
            let _ = writeln!(out, "{name}:");
            for scenario in self.killers(row) {
                let _ = writeln!(out, "  - {scenario}");
            }
        }
        out
    }

    /// How this matrix differs from a stored [`KillMatrix::snapshot`].
    pub fn changes_from(&self, stored: &str) -> Vec<MatrixChange> {
        let mut before: Vec<(String, String)> = Vec::new();
        let mut firmware = String::new();
        for line in stored.lines() {
            if let Some(scenario) = line.strip_prefix("  - ") {
                before.push((firmware.clone(), scenario.to_owned()));
            } else if let Some(name) = line.strip_suffix(':') {
                firmware = name.to_owned();
            }
        }
        let now: Vec<(String, String)> = self
            .rows
            .iter()
            .flat_map(|(name, row)| {
                self.killers(row)
                    .into_iter()
                    .map(move |s| (name.clone(), s.to_owned()))
            })
            .collect();
        let mut changes: Vec<MatrixChange> = now
            .iter()
            .filter(|k| !before.contains(k))
            .map(|(firmware, scenario)| MatrixChange::NewKill {
                firmware: firmware.clone(),
                scenario: scenario.clone(),
            })
            .collect();
        changes.extend(
            before
                .iter()
                .filter(|k| !now.contains(k))
                .map(|(firmware, scenario)| MatrixChange::LostKill {
                    firmware: firmware.clone(),
                    scenario: scenario.clone(),
                }),
        );
        changes
    }

    /// The matrix as an HTML table, scenarios down, firmware across.
    pub fn html(&self) -> String {
        let mut out = String::from("<table class=\"matrix\"><tr><th>scenario</th>");
        for (name, _) in &self.rows {
            let _ = write!(out, "<th>{}</th>", escape(name));
        }
        out.push_str("</tr>");
        for (i, scenario) in self.scenarios.iter().enumerate() {
            let _ = write!(out, "<tr><td>{}</td>", escape(scenario));
            for (_, row) in &self.rows {
                out.push_str(match row.get(i).copied().unwrap_or(Cell::NotRun) {
                    Cell::Killed => "<td class=\"k\">fails</td>",
                    Cell::Survived => "<td class=\"s\">passes</td>",
                    Cell::Error => "<td class=\"e\">error</td>",
                    Cell::NotRun => "<td class=\"n\">not run</td>",
                });
            }
            out.push_str("</tr>");
        }
        out.push_str("</table>");
        out
    }

    /// A report page with the matrix above the runs.
    pub fn page(
        &self,
        title: &str,
        runs: &[(String, &RunReport)],
        secrets: &crate::artifact::Secrets,
    ) -> String {
        super::html::with_section(
            &super::html(title, runs, secrets),
            &format!("<h2>Kill matrix</h2>{}", self.html()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runner::ScenarioInfo;

    fn result(name: &str, line: usize, status: Status) -> ScenarioResult {
        let mut r = ScenarioResult::not_run(
            ScenarioInfo {
                feature: "f".into(),
                path: "features/f.feature".into(),
                name: name.into(),
                line,
                tags: Vec::new(),
            },
            "x",
        );
        r.status = status;
        r
    }

    fn report(statuses: &[Status]) -> RunReport {
        RunReport {
            scenarios: statuses
                .iter()
                .enumerate()
                .map(|(i, s)| result(&format!("s{i}"), i + 1, *s))
                .collect(),
            ..RunReport::default()
        }
    }

    #[test]
    fn only_genuine_failures_are_kills() {
        let mut m = KillMatrix::default();
        m.add(
            "reference",
            &report(&[Status::Passed, Status::Passed, Status::NotRun]),
        );
        m.add(
            "errors-only",
            &report(&[Status::Error, Status::Passed, Status::NotRun]),
        );
        m.add(
            "caught",
            &report(&[Status::Passed, Status::Failed, Status::NotRun]),
        );
        assert_eq!(m.escapes(), ["reference", "errors-only"]);
        assert_eq!(m.errors(), [("errors-only", "f: s0")]);
        assert!(m.html().contains("not run"));
        assert!(m
            .text()
            .contains("errors-only            fails   0 of 2 (1 could not run)"));
    }

    #[test]
    fn changes_are_read_against_the_stored_matrix() {
        let mut before = KillMatrix::default();
        before.add("v", &report(&[Status::Failed, Status::Passed]));
        let stored = before.snapshot();
        let mut after = KillMatrix::default();
        after.add("v", &report(&[Status::Passed, Status::Failed]));
        assert_eq!(
            after.changes_from(&stored),
            [
                MatrixChange::NewKill {
                    firmware: "v".into(),
                    scenario: "f: s1".into()
                },
                MatrixChange::LostKill {
                    firmware: "v".into(),
                    scenario: "f: s0".into()
                },
            ]
        );
        assert!(before.changes_from(&stored).is_empty());
    }
}
