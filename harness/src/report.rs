//! Reports written from a run's results: the HTML timeline report, and the kill
//! matrix of the main job. (JUnit XML and cucumber JSON come from cucumber's own
//! writers, in each run's directory.)

use std::fmt::Write as _;
use std::path::Path;

use crate::runner::{describe, RunReport, ScenarioResult, Status};
use crate::timeline::{Event, EventKind, HarnessEvent, Source};

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c if c.is_control() && c != '\n' && c != '\t' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;font-size:13px}td,th{padding:2px 8px;text-align:left;vertical-align:top}\
tr.passed td.status{color:#176f2c}tr.failed td.status,tr.error td.status{color:#b00020;font-weight:bold}\
details{margin:.4em 0;border:1px solid #ddd;border-radius:4px;padding:.3em .6em}\
details.failed,details.error{border-color:#b00020}summary{cursor:pointer}\
.ev td{font-family:ui-monospace,monospace;white-space:pre-wrap}.ev tr.serial td.what{color:#0b4f8a}\
.ev tr.window{background:#fff3cd}.ev tr.failnote{background:#f8d7da}.why{background:#f8d7da;padding:.5em;white-space:pre-wrap;font-family:ui-monospace,monospace}\
.matrix td.k{background:#f8d7da;text-align:center}.matrix td.s{background:#d4edda;text-align:center}";

fn row_class(event: &Event, window: &[u64]) -> String {
    let mut class = match event.source {
        Source::Serial => "serial".to_owned(),
        Source::Harness => "harness".into(),
        _ => "lab".into(),
    };
    if window.contains(&event.seq) {
        class.push_str(" window");
    }
    if matches!(
        &event.kind,
        EventKind::Harness {
            what: HarnessEvent::StepFailed { .. }
        }
    ) {
        class.push_str(" failnote");
    }
    class
}

fn scenario_html(out: &mut String, result: &ScenarioResult) {
    let status = result.status.as_str();
    let open = if result.status == Status::Passed {
        ""
    } else {
        " open"
    };
    let _ = write!(
        out,
        "<details class=\"{status}\"{open}><summary><b>{status}</b> {} &mdash; {} <small>({}, {:.1} s, firmware {})</small></summary>",
        escape(&result.info.feature),
        escape(&result.info.name),
        escape(&result.info.location()),
        result.duration.as_secs_f64(),
        escape(&result.firmware),
    );
    let mut window: Vec<u64> = Vec::new();
    if let Some(failure) = &result.failure {
        window = failure.window.iter().map(|e| e.seq).collect();
        let _ = write!(
            out,
            "<div class=\"why\">{} (line {})\nexpected {}\nbut {}</div>",
            escape(&failure.step),
            failure.line,
            escape(&failure.expectation),
            escape(&failure.found)
        );
    }
    let _ = write!(
        out,
        "<p>Artifacts: <code>{}</code></p><table class=\"ev\"><tr><th>t (s)</th><th>source</th><th>event</th></tr>",
        escape(&result.artifacts.display().to_string())
    );
    let origin = result.events.first().map_or(0, |e| e.t_us);
    for event in &result.events {
        let what = match &event.kind {
            EventKind::SerialLine { line } => line.clone(),
            EventKind::Diagnostic { text } => text.clone(),
            other => serde_json::to_string(other).unwrap_or_default(),
        };
        let _ = write!(
            out,
            "<tr class=\"{}\"><td>{:.3}</td><td>{}</td><td class=\"what\">{}</td></tr>",
            row_class(event, &window),
            event.t_us.saturating_sub(origin) as f64 / 1e6,
            format!("{:?}", event.source).to_lowercase(),
            escape(&what)
        );
    }
    out.push_str("</table></details>\n");
}

/// The HTML report of one or more runs (one section per firmware), each scenario
/// with its timeline: serial lines and lab events interleaved, the window that
/// decided a failure highlighted.
pub fn html(title: &str, runs: &[(String, &RunReport)]) -> String {
    let mut out = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body><h1>{}</h1>\n",
        escape(title),
        escape(title)
    );
    for (firmware, report) in runs {
        let _ = writeln!(
            out,
            "<h2>firmware {}</h2><p>{} passed, {} failed, {} errors, {} skipped in {:.1} s</p>",
            escape(firmware),
            report.count(Status::Passed),
            report.count(Status::Failed),
            report.count(Status::Error),
            report.count(Status::Skipped),
            report.duration.as_secs_f64()
        );
        let mut ordered: Vec<&ScenarioResult> = report.scenarios.iter().collect();
        ordered.sort_by(|a, b| (&a.info.path, a.info.line).cmp(&(&b.info.path, b.info.line)));
        for result in ordered {
            scenario_html(&mut out, result);
        }
    }
    out.push_str("</body></html>\n");
    out
}

/// Writes `index.html` into `dir`.
pub fn write_html(dir: &Path, title: &str, runs: &[(String, &RunReport)]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("index.html"), html(title, runs))
}

/// Which variants fail which scenarios.
#[derive(Debug, Clone, Default)]
pub struct KillMatrix {
    /// Scenario names (`feature: scenario`), in suite order.
    pub scenarios: Vec<String>,
    /// Per firmware: its name and, per scenario, whether it failed (killed).
    pub rows: Vec<(String, Vec<bool>)>,
}

impl KillMatrix {
    /// Adds a firmware's run.
    pub fn add(&mut self, firmware: &str, report: &RunReport) {
        let mut killed = vec![false; self.scenarios.len()];
        for result in &report.scenarios {
            let key = format!("{}: {}", result.info.feature, result.info.name);
            let index = match self.scenarios.iter().position(|s| *s == key) {
                Some(i) => i,
                None => {
                    self.scenarios.push(key);
                    killed.push(false);
                    for (_, row) in &mut self.rows {
                        row.push(false);
                    }
                    self.scenarios.len() - 1
                }
            };
            killed[index] = result.status != Status::Passed;
        }
        self.rows.push((firmware.to_owned(), killed));
    }

    /// Firmware that fails no scenario.
    pub fn escapes(&self) -> Vec<&str> {
        self.rows
            .iter()
            .filter(|(_, row)| !row.iter().any(|k| *k))
            .map(|(name, _)| name.as_str())
            .collect()
    }

    /// The matrix as text: one line per firmware with the scenarios it fails.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for (name, row) in &self.rows {
            let failed: Vec<&str> = row
                .iter()
                .zip(&self.scenarios)
                .filter(|(k, _)| **k)
                .map(|(_, s)| s.as_str())
                .collect();
            let _ = writeln!(
                out,
                "{name:<22} fails {:>3} of {}",
                failed.len(),
                self.scenarios.len()
            );
            for scenario in failed {
                let _ = writeln!(out, "{:<22}   - {scenario}", "");
            }
        }
        out
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
                if row.get(i).copied().unwrap_or(false) {
                    out.push_str("<td class=\"k\">fails</td>");
                } else {
                    out.push_str("<td class=\"s\">passes</td>");
                }
            }
            out.push_str("</tr>");
        }
        out.push_str("</table>");
        out
    }
}

/// A one-line description of an event (re-exported for report writers).
pub fn event_line(event: &Event) -> String {
    describe(event)
}
