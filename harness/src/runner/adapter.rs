//! The cucumber glue: cucumber runs the scenarios (concurrency, hooks, skipping
//! the steps after a failure); every step goes through the scenario's own
//! vocabulary, and every report is written from the harness's own run events,
//! so cucumber's writer has nothing to do.

use std::sync::Arc;
use std::time::Duration;

use cucumber::gherkin;
use futures::future::LocalBoxFuture;

use super::context::RunContext;
use super::plan::ScenarioPlan;
use super::scenario::ScenarioWorld;
use super::steps::Step;
use super::suite::Suite;

/// Runs the suite's scenarios, `jobs` at a time.
pub(crate) async fn run(ctx: Arc<RunContext>, suite: &Suite, jobs: usize) {
    let before_ctx = ctx.clone();
    let after_ctx = ctx;
    let any_step = match regex::Regex::new("^(.*)$") {
        Ok(re) => re,
        Err(_) => return,
    };
    cucumber::Cucumber::<ScenarioWorld, _, _, _, _, cucumber::cli::Empty>::custom(
        SuiteParser,
        cucumber::runner::Basic::default(),
        Silent,
    )
    .with_cli(cucumber::cli::Opts::<_, _, _, cucumber::cli::Empty>::default())
    .max_concurrent_scenarios(jobs.max(1))
    .given(any_step.clone(), run_step)
    .when(any_step.clone(), run_step)
    .then(any_step, run_step)
    .before(move |feature, _rule, scenario, world| {
        let ctx = before_ctx.clone();
        Box::pin(async move { world.begin(ctx, feature, scenario) })
    })
    .after(move |feature, _rule, scenario, finished, world| {
        let ctx = after_ctx.clone();
        Box::pin(async move {
            if let Some(world) = world {
                world.end(&ctx, feature, scenario, finished).await;
            }
        })
    })
    .run(longest_first(suite.features()))
    .await;
}

/// A scenario's expected length, from what its steps wait on: the protocol
/// timeouts of the ESP8266 core (15 s for a CONNACK or a stalled handshake), the
/// windows and pauses it asks for, flashing, the provisioning window of an
/// unprovisioned board, the retry a negative step must see. Only the order of
/// the scenarios depends on it.
fn expected_length(steps: &[Step]) -> Duration {
    let mut total = Duration::ZERO;
    let mut negative = false;
    for step in steps {
        total += match step {
            Step::BrokerNoConnack | Step::BrokerStallsAfterHello => Duration::from_secs(15),
            Step::BrokerRestarts => Duration::from_secs(3),
            Step::Pass(d) => *d,
            Step::PublishesAtMost { per, .. } | Step::OpensAtMost { per, .. } => *per,
            Step::FlashedWith(_) => Duration::from_secs(2),
            Step::NotProvisioned => Duration::from_millis(1500),
            Step::NtpSilent => Duration::from_secs(4),
            _ => Duration::ZERO,
        };
        negative |= matches!(
            step,
            Step::HandshakeDoesNotComplete | Step::NeverConnects | Step::TlsFailureCode(_)
        );
    }
    if negative {
        total += Duration::from_secs(1);
    }
    total
}

/// The features with one scenario each, the longest expected first: with N
/// boards, the long scenarios overlap instead of ending the run alone.
fn longest_first(features: &[gherkin::Feature]) -> Vec<gherkin::Feature> {
    let mut single: Vec<(Duration, gherkin::Feature)> = Vec::new();
    for feature in features {
        let mut push = |scenario: &gherkin::Scenario, rule: Option<&gherkin::Rule>| {
            let own: Vec<Step> = ScenarioPlan::of(feature, scenario)
                .parsed()
                .cloned()
                .collect();
            let mut one = feature.clone();
            one.scenarios.clear();
            one.rules.clear();
            match rule {
                Some(rule) => {
                    let mut rule = rule.clone();
                    rule.scenarios = vec![scenario.clone()];
                    one.rules.push(rule);
                }
                None => one.scenarios.push(scenario.clone()),
            }
            single.push((expected_length(&own), one));
        };
        for scenario in &feature.scenarios {
            push(scenario, None);
        }
        for rule in &feature.rules {
            for scenario in &rule.scenarios {
                push(scenario, Some(rule));
            }
        }
    }
    // Stable: equal lengths keep the suite's order.
    single.sort_by_key(|(length, _)| std::cmp::Reverse(*length));
    single.into_iter().map(|(_, f)| f).collect()
}

/// A step that did not go through; the scenario already recorded why.
#[derive(Debug)]
struct StepDidNotHold;

/// Every step goes through here: the vocabulary decides, not cucumber's regexes.
fn run_step(world: &mut ScenarioWorld, step: cucumber::step::Context) -> LocalBoxFuture<'_, ()> {
    Box::pin(async move {
        if world.execute(&step.step).await.is_err() {
            // Cucumber skips the scenario's remaining steps after an unwinding
            // one; nothing is printed (resume_unwind runs no panic hook).
            std::panic::resume_unwind(Box::new(StepDidNotHold));
        }
    })
}

/// Hands cucumber the suite's features, already parsed, checked and selected.
struct SuiteParser;

impl cucumber::Parser<Vec<gherkin::Feature>> for SuiteParser {
    type Cli = cucumber::cli::Empty;
    type Output =
        futures::stream::Iter<std::vec::IntoIter<cucumber::parser::Result<gherkin::Feature>>>;

    fn parse(self, input: Vec<gherkin::Feature>, _cli: Self::Cli) -> Self::Output {
        futures::stream::iter(input.into_iter().map(Ok).collect::<Vec<_>>())
    }
}

/// Cucumber's events go nowhere: the harness reports from its own.
struct Silent;

impl cucumber::Writer<ScenarioWorld> for Silent {
    type Cli = cucumber::cli::Empty;

    async fn handle_event(
        &mut self,
        _event: cucumber::parser::Result<cucumber::Event<cucumber::event::Cucumber<ScenarioWorld>>>,
        _cli: &Self::Cli,
    ) {
    }
}

impl cucumber::writer::Normalized for Silent {}
