//! The HTML report: every scenario's timeline, serial lines and lab events
//! interleaved, the window that decided a failure highlighted, a crash's decoded
//! backtrace shown.

use std::fmt::Write as _;
use std::path::Path;

use crate::artifact::{write_atomically, Secrets};
use crate::runner::{RunReport, ScenarioResult, Status};
use crate::timeline::{Event, EventKind, HarnessEvent, Source};

pub(crate) fn escape(text: &str) -> String {
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
details.failed,details.error{border-color:#b00020}details.not-run{border-style:dashed;color:#666}summary{cursor:pointer}\
.ev td{font-family:ui-monospace,monospace;white-space:pre-wrap}.ev tr.serial td.what{color:#0b4f8a}\
.ev tr.window{background:#fff3cd}.ev tr.failnote{background:#f8d7da}.why{background:#f8d7da;padding:.5em;white-space:pre-wrap;font-family:ui-monospace,monospace}\
.matrix td.k{background:#f8d7da;text-align:center}.matrix td.s{background:#d4edda;text-align:center}\
.matrix td.n{background:#eee;color:#666;text-align:center}.matrix td.e{background:#fff3cd;text-align:center}";

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

fn scenario_html(out: &mut String, result: &ScenarioResult, secrets: &Secrets) {
    let esc = |t: &str| escape(&secrets.redact(t));
    let status = result.status.as_str();
    let class = status.replace(' ', "-");
    let open = if matches!(result.status, Status::Passed | Status::NotRun) {
        ""
    } else {
        " open"
    };
    let _ = write!(
        out,
        "<details class=\"{class}\"{open}><summary><b>{status}</b> {} &mdash; {} <small>({}, {:.1} s, firmware {})</small></summary>",
        esc(&result.info.feature),
        esc(&result.info.name),
        esc(&result.info.location()),
        result.duration.as_secs_f64(),
        esc(&result.firmware),
    );
    if result.status == Status::NotRun {
        out.push_str("<p>Not run: the run ended before this scenario's turn.</p></details>\n");
        return;
    }
    let mut window: Vec<u64> = Vec::new();
    if let Some(failure) = &result.failure {
        window = failure.window.iter().map(|e| e.seq).collect();
        let _ = write!(out, "<div class=\"why\">{}</div>", esc(&failure.message()));
    }
    if let Some(error) = &result.error {
        let _ = write!(
            out,
            "<div class=\"why\">the harness could not run it: {}</div>",
            esc(error)
        );
    }
    let _ = write!(
        out,
        "<p>Artifacts: <code>{}</code></p><table class=\"ev\"><tr><th>t (s)</th><th>source</th><th>event</th></tr>",
        esc(&result.artifacts.display().to_string())
    );
    let origin = result.events.first().map_or(0, |e| e.t_us);
    for event in &result.events {
        let what = match &event.kind {
            EventKind::SerialLine { line } => line.clone(),
            EventKind::Diagnostic { text } => text.clone(),
            EventKind::Harness {
                what: HarnessEvent::StepStarted { step, .. },
            } => step.clone(),
            other => serde_json::to_string(other).unwrap_or_default(),
        };
        let _ = write!(
            out,
            "<tr class=\"{}\"><td>{:.3}</td><td>{}</td><td class=\"what\">{}</td></tr>",
            row_class(event, &window),
            event.t_us.saturating_sub(origin) as f64 / 1e6,
            format!("{:?}", event.source).to_lowercase(),
            esc(&what)
        );
    }
    out.push_str("</table></details>\n");
}

/// The HTML report of one or more runs (one section per firmware), each scenario
/// with its timeline: serial lines and lab events interleaved, the window that
/// decided a failure highlighted.
pub fn html(title: &str, runs: &[(String, &RunReport)], secrets: &Secrets) -> String {
    let mut out = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body><h1>{}</h1>\n",
        escape(title),
        escape(title)
    );
    for (firmware, report) in runs {
        let _ = writeln!(
            out,
            "<h2>firmware {}</h2><p>{} passed, {} failed, {} errors, {} not run in {:.1} s</p>",
            escape(firmware),
            report.count(Status::Passed),
            report.count(Status::Failed),
            report.count(Status::Error),
            report.count(Status::NotRun),
            report.duration.as_secs_f64()
        );
        let mut ordered: Vec<&ScenarioResult> = report.scenarios.iter().collect();
        ordered.sort_by(|a, b| (&a.info.path, a.info.line).cmp(&(&b.info.path, b.info.line)));
        for result in ordered {
            scenario_html(&mut out, result, secrets);
        }
    }
    out.push_str("</body></html>\n");
    out
}

/// Inserts `section` (HTML) before the first run's section of a report page.
pub(crate) fn with_section(page: &str, section: &str) -> String {
    page.replacen("<h2>", &format!("{section}<h2>"), 1)
}

/// Writes `index.html` into `dir`, whole or not at all.
pub fn write_html(
    dir: &Path,
    title: &str,
    runs: &[(String, &RunReport)],
    secrets: &Secrets,
) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    write_atomically(
        &dir.join("index.html"),
        html(title, runs, secrets).as_bytes(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_bytes_are_text_in_the_page() {
        let secrets = Secrets::default();
        secrets.add("s3cret");
        let report = crate::report::junit::tests::hostile_report();
        let page = html("t", &[("reference".into(), &report)], &secrets);
        assert!(!page.contains("s3cret"));
        assert!(!page.contains("<script>"));
        assert!(!page.contains("onmouseover=\"x"));
        assert!(!page
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\t')));
    }
}
