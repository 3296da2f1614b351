//! Cucumber JSON (the format cucumber-js and the CI plugins read): features,
//! their scenarios as elements, each step with its status, its duration in
//! nanoseconds, and for the failed step the failure's message.

use serde_json::{json, Value};

use crate::artifact::Secrets;
use crate::runner::{RunReport, ScenarioResult, Status, StepOutcome};

fn id(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

fn element(result: &ScenarioResult, secrets: &Secrets) -> Value {
    let clean = |s: &str| secrets.redact(s).into_owned();
    let failed_at = result.steps.iter().position(|s| {
        matches!(
            s.outcome,
            StepOutcome::Failed | StepOutcome::Inconclusive | StepOutcome::Error
        )
    });
    let mut steps: Vec<Value> = result
        .steps
        .iter()
        .enumerate()
        .map(|(i, step)| {
            let status = match step.outcome {
                StepOutcome::Passed => "passed",
                StepOutcome::Failed | StepOutcome::Inconclusive | StepOutcome::Error => "failed",
                StepOutcome::Skipped => "skipped",
            };
            let mut outcome = json!({
                "status": status,
                "duration": step.duration.as_nanos() as u64,
            });
            if Some(i) == failed_at {
                let message = match (&result.failure, &result.error) {
                    (Some(f), _) => f.message(),
                    (None, Some(e)) => e.clone(),
                    (None, None) => String::new(),
                };
                outcome["error_message"] = Value::String(clean(&message));
            }
            json!({
                "keyword": format!("{} ", step.keyword),
                "name": clean(&step.text),
                "line": step.line,
                "result": outcome,
            })
        })
        .collect();
    // A failure after the last step (a crash in the grace window, a holding
    // expectation broken at the end) has no step of its own: it gets a hook.
    let mut after = Vec::new();
    if failed_at.is_none() && result.status != Status::Passed {
        let message = match (&result.failure, &result.error) {
            (Some(f), _) => f.message(),
            (None, Some(e)) => e.clone(),
            (None, None) => result.status.as_str().to_owned(),
        };
        let status = if result.status == Status::NotRun {
            "skipped"
        } else {
            "failed"
        };
        after.push(json!({
            "match": { "location": "hil: checks that hold until the scenario ends" },
            "result": { "status": status, "error_message": clean(&message), "duration": 0 },
        }));
        if result.status == Status::NotRun && steps.is_empty() {
            steps.push(json!({
                "keyword": "* ",
                "name": "not run",
                "line": result.info.line,
                "result": { "status": "skipped", "duration": 0 },
            }));
        }
    }
    json!({
        "keyword": "Scenario",
        "type": "scenario",
        "id": id(&clean(&format!("{};{}", result.info.feature, result.info.name))),
        "name": clean(&result.info.name),
        "line": result.info.line,
        "description": "",
        "tags": result.info.tags.iter().map(|t| json!({ "name": format!("@{t}") })).collect::<Vec<_>>(),
        "steps": steps,
        "after": after,
    })
}

/// The cucumber JSON of a run.
pub fn cucumber_json(report: &RunReport, secrets: &Secrets) -> String {
    let mut features: Vec<(String, String, Vec<Value>)> = Vec::new();
    let mut ordered: Vec<&ScenarioResult> = report.scenarios.iter().collect();
    ordered.sort_by(|a, b| (&a.info.path, a.info.line).cmp(&(&b.info.path, b.info.line)));
    for result in ordered {
        let uri = result.info.path.display().to_string();
        let element = element(result, secrets);
        match features.iter_mut().find(|(u, _, _)| *u == uri) {
            Some((_, _, elements)) => elements.push(element),
            None => features.push((uri, result.info.feature.clone(), vec![element])),
        }
    }
    let doc: Vec<Value> = features
        .into_iter()
        .map(|(uri, name, elements)| {
            json!({
                "uri": uri,
                "id": id(&secrets.redact(&name)),
                "keyword": "Feature",
                "name": secrets.redact(&name),
                "description": "",
                "line": 1,
                "elements": elements,
            })
        })
        .collect();
    let text = serde_json::to_string_pretty(&doc).unwrap_or_else(|_| "[]".into());
    // Field by field above; the whole text once more for any place not covered.
    secrets.redact(&text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_bytes_make_valid_json_without_secrets() {
        let secrets = Secrets::default();
        secrets.add("s3cret");
        let report = crate::report::junit::tests::hostile_report();
        let text = cucumber_json(&report, &secrets);
        assert!(!text.contains("s3cret"));
        let parsed: Value = serde_json::from_str(&text).expect("valid JSON");
        let elements: usize = parsed
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["elements"].as_array().unwrap().len())
            .sum();
        assert_eq!(elements, report.scenarios.len());
    }
}
