//! A scenario's steps, each parsed once into its typed [`Step`]: the plan the
//! scenario world runs, the scheduler weighs and the suite checks. Before it,
//! every part parsed the step texts again (up to five times a step).

use cucumber::gherkin;

use super::steps::{self, Step, StepError};

/// One step of a scenario as written, and what it means.
#[derive(Debug, Clone)]
pub(crate) struct PlannedStep {
    /// `Given`, `When`, `Then`, `And`...
    pub keyword: String,
    /// Its line in the feature file.
    pub line: usize,
    /// The text with its secrets (quoted passwords) replaced, for logs and reports.
    pub shown: String,
    /// The typed step, or why the text is not one.
    pub parsed: Result<Step, StepError>,
}

/// Every step of one scenario in run order: the background's, then its own.
#[derive(Debug, Clone, Default)]
pub(crate) struct ScenarioPlan {
    steps: Vec<PlannedStep>,
}

impl ScenarioPlan {
    /// The plan of `scenario` in `feature`.
    pub(crate) fn of(feature: &gherkin::Feature, scenario: &gherkin::Scenario) -> ScenarioPlan {
        let steps = feature
            .background
            .iter()
            .flat_map(|b| &b.steps)
            .chain(&scenario.steps)
            .map(PlannedStep::of)
            .collect();
        ScenarioPlan { steps }
    }

    /// The steps in run order.
    pub(crate) fn steps(&self) -> &[PlannedStep] {
        &self.steps
    }

    /// The typed steps (those that parse), in run order.
    pub(crate) fn parsed(&self) -> impl Iterator<Item = &Step> {
        self.steps.iter().filter_map(|s| s.parsed.as_ref().ok())
    }

    /// When the scenario says `the board reboots within`: the index of the
    /// step whose act that window counts from (`Some(None)`: the scenario's
    /// start, no step acts before it).
    pub(crate) fn reboot_window_step(&self) -> Option<Option<usize>> {
        let acts = |s: &PlannedStep| s.parsed.as_ref().is_ok_and(Step::acts);
        let reboot = self
            .steps
            .iter()
            .position(|s| matches!(s.parsed, Ok(Step::RebootsWithin(_))))?;
        Some(self.steps[..reboot].iter().rposition(acts))
    }
}

impl PlannedStep {
    /// Parses one Gherkin step.
    pub(crate) fn of(step: &gherkin::Step) -> PlannedStep {
        let parsed = steps::parse(&step.value);
        let shown = match &parsed {
            Ok(p) => redacted_step(&step.value, p),
            Err(_) => step.value.clone(),
        };
        PlannedStep {
            keyword: step.keyword.trim().to_owned(),
            line: step.position.line,
            shown,
            parsed,
        }
    }
}

/// The step text with secrets replaced, for logs and reports.
pub(crate) fn redacted_step(text: &str, step: &Step) -> String {
    match step {
        Step::ProvisionedCredentials { password, .. }
        | Step::BrokerRequiresCredentials { password, .. }
            if !password.is_empty() =>
        {
            text.replace(&format!("\"{password}\""), "\"<redacted>\"")
        }
        _ => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(text: &str) -> ScenarioPlan {
        let feature = gherkin::Feature::parse(text, gherkin::GherkinEnv::default()).unwrap();
        ScenarioPlan::of(&feature, &feature.scenarios[0])
    }

    #[test]
    fn steps_are_parsed_once_in_run_order_with_secrets_hidden() {
        let p = plan("Feature: f\n  Background:\n    Given the board under test\n  Scenario: s\n    Given the device is provisioned with username \"u\" and password \"hunter2\"\n    When the board boots\n    When 1 s pass\n    Then the board reboots within 5 s\n");
        let lines: Vec<usize> = p.steps().iter().map(|s| s.line).collect();
        assert_eq!(lines, [3, 5, 6, 7, 8]);
        assert!(
            !p.steps()[1].shown.contains("hunter2"),
            "{}",
            p.steps()[1].shown
        );
        assert_eq!(p.parsed().count(), 5);
        // The window counts from `When 1 s pass`, the last act before it.
        assert_eq!(p.reboot_window_step(), Some(Some(3)));
        let none = plan("Feature: f\n  Scenario: s\n    Given the board under test\n    Then the board reboots within 5 s\n");
        assert_eq!(none.reboot_window_step(), Some(None));
        let no_reboot = plan("Feature: f\n  Scenario: s\n    Given the board under test\n    Then the board does not reboot\n");
        assert_eq!(no_reboot.reboot_window_step(), None);
    }
}
