//! JUnit XML: one `<testsuite>` per feature, one `<testcase>` per scenario, the
//! failure's expectation, finding, crash and timeline window in `<failure>`, the
//! serial transcript in `<system-out>`. Written as escaped text, never CDATA, so
//! no byte from the device can end an element early.

use std::fmt::Write as _;

use super::xml_text;
use crate::artifact::Secrets;
use crate::runner::{describe, RunReport, ScenarioResult, Status};
use crate::timeline::EventKind;

fn secs(d: std::time::Duration) -> String {
    format!("{:.3}", d.as_secs_f64())
}

fn case(out: &mut String, result: &ScenarioResult, secrets: &Secrets) {
    let clean = |s: &str| xml_text(&secrets.redact(s));
    let _ = writeln!(
        out,
        "    <testcase classname=\"{}\" name=\"{}\" file=\"{}\" line=\"{}\" time=\"{}\">",
        clean(&result.info.feature),
        clean(&format!("Scenario: {}", result.info.name)),
        clean(&result.info.path.display().to_string()),
        result.info.line,
        secs(result.duration),
    );
    match result.status {
        Status::Passed => {}
        Status::Failed => {
            let (message, body) = match &result.failure {
                Some(f) => {
                    let mut body = f.message();
                    if !f.window.is_empty() {
                        body.push_str("\ntimeline (the window that decided it):");
                        for event in &f.window {
                            body.push_str(&format!("\n  {}", describe(event)));
                        }
                    }
                    (format!("expected {}", f.expectation), body)
                }
                None => ("failed".to_owned(), String::new()),
            };
            let kind = match &result.failure {
                Some(f) if f.inconclusive => "inconclusive",
                _ => "failed",
            };
            let _ = writeln!(
                out,
                "      <failure type=\"{kind}\" message=\"{}\">{}</failure>",
                clean(&message),
                clean(&body)
            );
        }
        Status::Error => {
            let message = result
                .error
                .clone()
                .unwrap_or_else(|| "harness error".into());
            let _ = writeln!(
                out,
                "      <error type=\"harness\" message=\"{}\">{}</error>",
                clean(&message),
                clean(&message)
            );
        }
        Status::NotRun => {
            let why = match &result.error {
                Some(reason) => format!("not run: {reason}"),
                None => "not run".to_owned(),
            };
            let _ = writeln!(out, "      <skipped message=\"{}\"/>", clean(&why));
        }
    }
    let transcript: String = result
        .events
        .iter()
        .filter_map(|e| match &e.kind {
            EventKind::SerialLine { line } => {
                Some(format!("[{:>10.3}] {line}\n", e.t_us as f64 / 1e6))
            }
            _ => None,
        })
        .collect();
    if !transcript.is_empty() {
        let _ = writeln!(out, "      <system-out>{}</system-out>", clean(&transcript));
    }
    out.push_str("    </testcase>\n");
}

/// The JUnit XML of a run.
pub fn junit_xml(report: &RunReport, secrets: &Secrets) -> String {
    let mut features: Vec<&str> = Vec::new();
    for r in &report.scenarios {
        if !features.contains(&r.info.feature.as_str()) {
            features.push(&r.info.feature);
        }
    }
    let count = |rs: &[&ScenarioResult], s: Status| rs.iter().filter(|r| r.status == s).count();
    let all: Vec<&ScenarioResult> = report.scenarios.iter().collect();
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let _ = writeln!(
        out,
        "<testsuites name=\"hil\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\">",
        all.len(),
        count(&all, Status::Failed),
        count(&all, Status::Error),
        count(&all, Status::NotRun),
        secs(report.duration),
    );
    for feature in features {
        let mut results: Vec<&ScenarioResult> = report
            .scenarios
            .iter()
            .filter(|r| r.info.feature == feature)
            .collect();
        results.sort_by_key(|r| r.info.line);
        let time: std::time::Duration = results.iter().map(|r| r.duration).sum();
        let _ = writeln!(
            out,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\">",
            xml_text(&secrets.redact(feature)),
            results.len(),
            count(&results, Status::Failed),
            count(&results, Status::Error),
            count(&results, Status::NotRun),
            secs(time),
        );
        for result in results {
            case(&mut out, result, secrets);
        }
        out.push_str("  </testsuite>\n");
    }
    out.push_str("</testsuites>\n");
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::report::hostile::CORPUS;
    use crate::runner::{Failure, ScenarioInfo};
    use crate::timeline::{Event, Source};

    pub(crate) fn hostile_report() -> RunReport {
        let events: Vec<Event> = CORPUS
            .iter()
            .enumerate()
            .map(|(i, line)| Event {
                seq: i as u64,
                t_us: i as u64 * 1000,
                wall: time::OffsetDateTime::UNIX_EPOCH,
                source: Source::Serial,
                device: None,
                kind: EventKind::SerialLine {
                    line: (*line).into(),
                },
            })
            .collect();
        let scenarios = CORPUS
            .iter()
            .enumerate()
            .map(|(i, text)| {
                let mut r = ScenarioResult::not_run(
                    ScenarioInfo {
                        feature: format!("feature {text}"),
                        path: format!("features/{i}.feature").into(),
                        name: format!("scenario {text} password s3cret"),
                        line: i + 1,
                        tags: Vec::new(),
                    },
                    "reference",
                );
                r.status = Status::Failed;
                r.events = events.clone();
                r.failure = Some(Failure {
                    step: format!("Then {text}"),
                    line: 3,
                    expectation: (*text).into(),
                    found: format!("{text} s3cret"),
                    inconclusive: false,
                    window: events.clone(),
                    crash: None,
                });
                r
            })
            .collect();
        RunReport {
            scenarios,
            duration: std::time::Duration::from_millis(10),
            run_dir: "hil-runs/x".into(),
            firmware: "reference".into(),
        }
    }

    #[test]
    fn hostile_bytes_stay_text_and_secrets_stay_out() {
        let secrets = Secrets::default();
        secrets.add("s3cret");
        let xml = junit_xml(&hostile_report(), &secrets);
        assert!(!xml.contains("s3cret"));
        assert!(!xml.contains("<![CDATA["));
        assert!(!xml.contains("<testcase name=\"fake\""));
        assert!(!xml
            .chars()
            .any(|c| (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r')));
        assert_eq!(xml.matches("<testcase ").count(), CORPUS.len());
    }
}
