//! Every shipped feature file parses as Gherkin and uses only the step vocabulary
//! the harness understands (Scenario Outlines expanded with their examples), so
//! the features stay in step with the code.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::path::Path;

use gherkin::{Feature, GherkinEnv};
use hil::runner::steps;

fn expand(text: &str, header: &[String], row: &[String]) -> String {
    header
        .iter()
        .zip(row)
        .fold(text.to_owned(), |acc, (name, value)| {
            acc.replace(&format!("<{name}>"), value)
        })
}

#[test]
fn shipped_features_use_only_known_steps() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../features");
    let mut problems = Vec::new();
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("feature") {
            continue;
        }
        let feature = Feature::parse_path(&path, GherkinEnv::default())
            .unwrap_or_else(|e| panic!("{} does not parse: {e}", path.display()));
        let background = feature.background.iter().flat_map(|b| b.steps.iter());
        let scenarios: Vec<_> = feature.scenarios.iter().collect();
        for scenario in scenarios {
            let steps: Vec<_> = background.clone().chain(scenario.steps.iter()).collect();
            let rows: Vec<(Vec<String>, Vec<String>)> = scenario
                .examples
                .iter()
                .filter_map(|e| e.table.as_ref())
                .flat_map(|t| {
                    let header = t.rows[0].clone();
                    t.rows[1..]
                        .iter()
                        .map(move |r| (header.clone(), r.clone()))
                        .collect::<Vec<_>>()
                })
                .collect();
            let variants = if rows.is_empty() {
                vec![(Vec::new(), Vec::new())]
            } else {
                rows
            };
            for (header, row) in &variants {
                for step in &steps {
                    let text = expand(&step.value, header, row);
                    checked += 1;
                    if let Err(e) = steps::parse(&text) {
                        problems.push(format!("{}:{}: {e}", path.display(), step.position.line));
                    }
                }
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} steps found: are the features there?"
    );
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn the_committed_step_reference_is_current() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/steps.md");
    let committed = std::fs::read_to_string(&path).unwrap();
    assert_eq!(
        committed,
        steps::reference_markdown(),
        "docs/steps.md is stale: regenerate it with `hil steps > docs/steps.md`"
    );
}
