//! Loading feature files into a suite: parse every file, expand outlines, check
//! every step against the vocabulary, then select scenarios by tags and shard.
//!
//! Everything is checked before anything runs, and every problem is reported with
//! its file and line at once, the way a compiler does: a typo on line 40 must not
//! surface after half an hour of scenarios.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use cucumber::feature::Ext as _;
use cucumber::gherkin::{self, tagexpr::TagOperation, GherkinEnv};
use cucumber::tag::Ext as _;
use regex::Regex;

use super::steps::{self, Step};
use crate::logprofile::LogProfile;

/// One problem in one feature file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub path: PathBuf,
    /// 1-based line (0 when the problem concerns the whole file).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.message)
        } else {
            write!(f, "{}:{}: {}", self.path.display(), self.line, self.message)
        }
    }
}

/// Why a suite could not be loaded.
#[derive(Debug, thiserror::Error, miette::Diagnostic)]
#[non_exhaustive]
pub enum SuiteError {
    /// A path given does not exist or holds no `.feature` file.
    #[error("no feature files at {}", path.display())]
    #[diagnostic(
        code(hil::runner::no_features),
        help(
            "pass .feature files or directories holding them (the shipped ones are in features/)"
        )
    )]
    NoFeatures {
        /// The path given.
        path: PathBuf,
    },
    /// Feature files with problems (syntax, unknown steps, bad arguments).
    #[error("{} problem(s) in the feature files:\n{}", problems.len(), list(problems))]
    #[diagnostic(
        code(hil::runner::bad_feature),
        help("`hil steps` lists every step the harness understands")
    )]
    Invalid {
        /// Every problem found, in file order.
        problems: Vec<Problem>,
    },
    /// Steps that need provisioning, in a run that provisions no device.
    #[error("{} step(s) need provisioning, and this run provisions no device:\n{}", problems.len(), list(problems))]
    #[diagnostic(
        code(hil::runner::needs_provisioning),
        help("leave those scenarios out of an unprovisioned run (select with tags or feature files), or run them against firmware that reads the PROV line")
    )]
    NeedsProvisioning {
        /// Every such step of the selected scenarios, in file order.
        problems: Vec<Problem>,
    },
    /// A tag expression that does not parse.
    #[error("bad tag expression `{given}`: {problem}")]
    #[diagnostic(
        code(hil::runner::bad_tags),
        help(
            "tag expressions look like `@tls and not @slow` or `(@mqtt or @clock) and not @slow`"
        )
    )]
    BadTags {
        /// What was given (shortened when long).
        given: String,
        /// Why it is bad.
        problem: String,
    },
    /// A shard that is not `K/N` with 1 <= K <= N.
    #[error("bad shard `{given}`: {problem}")]
    #[diagnostic(
        code(hil::runner::bad_shard),
        help("a shard is K/N: this runner's 1-based index K out of N runners, e.g. 2/4")
    )]
    BadShard {
        /// What was given.
        given: String,
        /// What is wrong.
        problem: String,
    },
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// A tag expression (`@tls and not @slow`).
#[derive(Debug, Clone)]
pub struct TagFilter {
    text: String,
    op: TagOperation,
}

impl TagFilter {
    /// Whether a scenario with these tags (feature, rule and scenario tags merged,
    /// without `@`) is selected.
    pub fn matches(&self, tags: &[String]) -> bool {
        self.op.eval(tags.iter())
    }
}

impl fmt::Display for TagFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// How deep parentheses and `not`s may nest: far beyond any real selection,
/// well within what the recursive parser's stack can take.
const MAX_TAG_DEPTH: usize = 32;

/// Why a tag expression is bad before parsing it: nesting too deep (the parser
/// recurses), parentheses that do not balance, a tag without `@`.
fn tag_problem(text: &str) -> Option<String> {
    let mut depth = 0usize;
    let mut deepest = 0usize;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' if depth == 0 => return Some("a `)` closes nothing".into()),
            ')' => depth -= 1,
            _ => {}
        }
        deepest = deepest.max(depth);
    }
    if depth > 0 {
        return Some(format!("{depth} `(` never closed"));
    }
    // A run of `not`s nests as deep as parentheses do.
    let mut nots = 0usize;
    for word in text.split(|c: char| c.is_whitespace() || c == '(' || c == ')') {
        match word {
            "not" => {
                nots += 1;
                deepest = deepest.max(nots);
            }
            "" => {}
            _ => nots = 0,
        }
    }
    if deepest > MAX_TAG_DEPTH {
        return Some(format!(
            "it nests {deepest} levels deep (parentheses or `not`s); at most {MAX_TAG_DEPTH}"
        ));
    }
    text.split(|c: char| c.is_whitespace() || c == '(' || c == ')')
        .find(|w| !w.is_empty() && !matches!(*w, "and" | "or" | "not") && !w.starts_with('@'))
        .map(|w| format!("`{w}` is neither a tag (they start with @) nor and/or/not"))
}

impl FromStr for TagFilter {
    type Err = SuiteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |problem: String| SuiteError::BadTags {
            given: if s.len() > 80 {
                format!("{}...", s.chars().take(60).collect::<String>())
            } else {
                s.to_owned()
            },
            problem,
        };
        if s.trim().is_empty() {
            return Err(bad("it is empty".into()));
        }
        if let Some(problem) = tag_problem(s) {
            return Err(bad(problem));
        }
        let op = s
            .parse::<TagOperation>()
            .map_err(|_| bad("`and`/`or` needs a tag on both sides, `not` one after it".into()))?;
        Ok(TagFilter {
            text: s.to_owned(),
            op,
        })
    }
}

/// This runner's part of a suite split over several runners: scenario `i` (in
/// suite order, after the tag filter) belongs to shard `i % count + 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

impl Shard {
    /// Shard `index` (1-based) of `count`.
    pub fn new(index: u32, count: u32) -> Option<Shard> {
        (count >= 1 && (1..=count).contains(&index)).then_some(Shard { index, count })
    }

    /// Whether the scenario at `position` (0-based, in suite order) is this shard's.
    pub fn owns(self, position: usize) -> bool {
        position % self.count as usize == (self.index - 1) as usize
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = SuiteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |problem: &str| SuiteError::BadShard {
            given: s.to_owned(),
            problem: problem.to_owned(),
        };
        let (k, n) = s.split_once('/').ok_or_else(|| bad("expected K/N"))?;
        let k: u32 = k.trim().parse().map_err(|_| bad("K is not a number"))?;
        let n: u32 = n.trim().parse().map_err(|_| bad("N is not a number"))?;
        Shard::new(k, n).ok_or_else(|| bad("K must be between 1 and N, and N at least 1"))
    }
}

/// Which scenarios of the loaded files run.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// Only scenarios whose tags match.
    pub tags: Option<TagFilter>,
    /// Only this runner's shard.
    pub shard: Option<Shard>,
}

/// One selected scenario, for progress and reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioInfo {
    /// The feature's name.
    pub feature: String,
    /// The feature file.
    pub path: PathBuf,
    /// The scenario's name (outline placeholders filled in).
    pub name: String,
    /// Its line (for an outline's example, the example row's line).
    pub line: usize,
    /// Feature, rule and scenario tags, without `@`.
    pub tags: Vec<String>,
}

impl ScenarioInfo {
    /// `path:line`, the way editors and CI logs link to it.
    pub fn location(&self) -> String {
        format!("{}:{}", self.path.display(), self.line)
    }
}

/// Feature files, parsed, checked and selected.
#[derive(Debug, Clone)]
pub struct Suite {
    features: Vec<gherkin::Feature>,
    scenarios: Vec<ScenarioInfo>,
    total: usize,
}

/// Where arguments of steps are looked up while checking a suite.
#[derive(Debug, Clone)]
pub struct CheckContext {
    /// Directory of log profiles.
    pub log_profiles: PathBuf,
}

impl Suite {
    /// Loads `paths` (files, or directories searched for `*.feature`), checks every
    /// step, and keeps the scenarios `selection` picks.
    pub fn load(
        paths: &[PathBuf],
        selection: &Selection,
        check: &CheckContext,
    ) -> Result<Suite, SuiteError> {
        let mut files = Vec::new();
        for path in paths {
            let found = feature_files(path);
            if found.is_empty() {
                return Err(SuiteError::NoFeatures { path: path.clone() });
            }
            files.extend(found);
        }
        files.dedup();

        let mut problems = Vec::new();
        let mut features = Vec::new();
        for file in &files {
            match parse_file(file) {
                Ok(feature) => {
                    problems.extend(check_feature(&feature, check));
                    features.push(feature);
                }
                Err(problem) => problems.push(problem),
            }
        }
        if !problems.is_empty() {
            return Err(SuiteError::Invalid { problems });
        }

        let total = features.iter().map(|f| f.count_scenarios()).sum();
        let mut position = 0usize;
        let mut scenarios = Vec::new();
        for feature in &mut features {
            let path = feature.path.clone().unwrap_or_default();
            let feature_tags = feature.tags.clone();
            let name = feature.name.clone();
            let mut keep = |scenario: &gherkin::Scenario, rule_tags: &[String]| {
                let tags: Vec<String> = feature_tags
                    .iter()
                    .chain(rule_tags)
                    .chain(&scenario.tags)
                    .cloned()
                    .collect();
                if selection.tags.as_ref().is_some_and(|t| !t.matches(&tags)) {
                    return false;
                }
                let mine = selection.shard.is_none_or(|s| s.owns(position));
                position += 1;
                if mine {
                    scenarios.push(ScenarioInfo {
                        feature: name.clone(),
                        path: path.clone(),
                        name: scenario.name.clone(),
                        line: scenario.position.line,
                        tags,
                    });
                }
                mine
            };
            feature.scenarios.retain(|s| keep(s, &[]));
            for rule in &mut feature.rules {
                let rule_tags = rule.tags.clone();
                rule.scenarios.retain(|s| keep(s, &rule_tags));
            }
            feature.rules.retain(|r| !r.scenarios.is_empty());
        }
        features.retain(|f| f.count_scenarios() > 0);
        Ok(Suite {
            features,
            scenarios,
            total,
        })
    }

    /// The selected scenarios, in run order.
    pub fn scenarios(&self) -> &[ScenarioInfo] {
        &self.scenarios
    }

    /// How many scenarios the files hold before selection.
    pub fn total(&self) -> usize {
        self.total
    }

    /// The features, expanded and reduced to the selection.
    pub(crate) fn features(&self) -> &[gherkin::Feature] {
        &self.features
    }

    /// Refuses the selected scenarios' steps that need provisioning
    /// ([`Step::needs_provisioning`]), each with its file, line and reason: an
    /// unprovisioned run cannot give them a meaning.
    pub fn check_unprovisioned(&self) -> Result<(), SuiteError> {
        let mut problems: Vec<Problem> = Vec::new();
        for feature in &self.features {
            let path = feature.path.clone().unwrap_or_default();
            let steps = feature.background.iter().flat_map(|b| &b.steps).chain(
                feature
                    .scenarios
                    .iter()
                    .chain(feature.rules.iter().flat_map(|r| &r.scenarios))
                    .flat_map(|s| &s.steps),
            );
            for step in steps {
                let Some(reason) = steps::parse(&step.value)
                    .ok()
                    .and_then(|s| s.needs_provisioning())
                else {
                    continue;
                };
                let problem = Problem {
                    path: path.clone(),
                    line: step.position.line,
                    message: format!("`{}` needs provisioning: {reason}", step_text(step)),
                };
                // Outlines repeat their steps once per example row.
                if !problems.contains(&problem) {
                    problems.push(problem);
                }
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(SuiteError::NeedsProvisioning { problems })
        }
    }
}

/// A step as written, its secrets (quoted passwords) left out.
fn step_text(step: &gherkin::Step) -> String {
    let text = match steps::parse(&step.value) {
        Ok(parsed) => super::scenario::redacted_step(&step.value, &parsed),
        Err(_) => step.value.clone(),
    };
    format!("{} {text}", step.keyword.trim())
}

/// `path` itself if it is a file, else every `*.feature` below it, sorted so every
/// runner of a sharded suite sees the same order.
fn feature_files(path: &Path) -> Vec<PathBuf> {
    if path.is_file() {
        return vec![path.to_path_buf()];
    }
    let mut found = Vec::new();
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let p = entry.path();
            if p.is_dir() {
                pending.push(p);
            } else if p.extension().is_some_and(|e| e == "feature") {
                found.push(p);
            }
        }
    }
    found.sort();
    found
}

fn parse_file(path: &Path) -> Result<gherkin::Feature, Problem> {
    let problem = |line, message| Problem {
        path: path.to_path_buf(),
        line,
        message,
    };
    // gherkin reports an empty file at a line after its end.
    let lines = std::fs::read_to_string(path).map_or(0, |t| {
        if t.lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#'))
        {
            usize::MAX
        } else {
            t.lines().count()
        }
    });
    if lines == usize::MAX {
        return Err(problem(
            0,
            "the file has no feature (it starts with `Feature: <name>`)".into(),
        ));
    }
    let feature =
        gherkin::Feature::parse_path(path, GherkinEnv::default()).map_err(|e| match e {
            gherkin::ParseFileError::Reading { source, .. } => {
                problem(0, format!("cannot read the file: {source}"))
            }
            gherkin::ParseFileError::Parsing { source, .. } => {
                // gherkin keeps the position private; its message starts with it.
                let text = source.to_string();
                let line = Regex::new(r"at (\d+):(\d+)")
                    .ok()
                    .and_then(|r| r.captures(&text))
                    .and_then(|c| c.get(1))
                    .and_then(|m| m.as_str().parse::<usize>().ok())
                    .map_or(0, |l| l.min(lines.max(1)));
                problem(
                    line,
                    "not valid Gherkin here (expected a keyword such as Feature:, Scenario:, \
                 Given, When, Then, Examples: or a table row)"
                        .into(),
                )
            }
        })?;
    feature.expand_examples().map_err(|e| {
        problem(
            e.pos.line,
            format!(
                "the outline uses <{}>, which no Examples column defines",
                e.name
            ),
        )
    })
}

fn check_feature(feature: &gherkin::Feature, check: &CheckContext) -> Vec<Problem> {
    let path = feature.path.clone().unwrap_or_default();
    let background = feature.background.iter().flat_map(|b| &b.steps);
    let scenario_steps = feature
        .scenarios
        .iter()
        .chain(feature.rules.iter().flat_map(|r| &r.scenarios))
        .flat_map(|s| &s.steps);
    let mut problems: Vec<Problem> = Vec::new();
    for step in background.chain(scenario_steps) {
        let at = |message: String| Problem {
            path: path.clone(),
            line: step.position.line,
            message,
        };
        let problem = match steps::parse(&step.value) {
            Err(e) => Some(at(e.to_string())),
            Ok(parsed) => check_argument(&parsed, check).err().map(at),
        };
        // An outline's steps repeat once per example row: report each line once.
        if let Some(p) = problem {
            if !problems.contains(&p) {
                problems.push(p);
            }
        }
    }
    // A scenario that asserts nothing passes whatever the firmware does.
    let judges = |step: &gherkin::Step| {
        steps::phrase_of(&step.value).is_some_and(|p| p.kind == steps::Kind::Then)
    };
    let background_judges = feature.background.iter().flat_map(|b| &b.steps).any(judges);
    for scenario in feature
        .scenarios
        .iter()
        .chain(feature.rules.iter().flat_map(|r| &r.scenarios))
    {
        if !background_judges && !scenario.steps.iter().any(judges) {
            let p = Problem {
                path: path.clone(),
                line: scenario.position.line,
                message: format!(
                    "scenario `{}` has no Then step: it would pass whatever the firmware does",
                    scenario.name
                ),
            };
            if !problems.contains(&p) {
                problems.push(p);
            }
        }
    }
    problems
}

/// Arguments that name things outside the step text: they must exist now, not
/// halfway through a run.
fn check_argument(step: &Step, check: &CheckContext) -> Result<(), String> {
    match step {
        Step::VirtualBoardRunning(firmware) => super::firmware::FirmwareSource::parse(firmware)
            .map_err(|e| e.to_string())
            .and_then(|f| f.check().map_err(|e| e.to_string())),
        // A scenario may flash anything on purpose (a corrupt image, erased
        // flash) to see what the ROM does; only what cannot be flashed at all
        // is refused.
        Step::FlashedWith(image) => {
            if !Path::new(image).is_file() {
                Err(format!(
                    "image `{image}` not found (paths are relative to the working directory)"
                ))
            } else if let Some(problem) = super::firmware::raw_problem(Path::new(image)) {
                Err(format!("image `{image}` cannot be flashed: {problem}"))
            } else {
                Ok(())
            }
        }
        Step::UsesLogProfile(name) => LogProfile::load(name, &check.log_profiles)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn context() -> CheckContext {
        CheckContext {
            log_profiles: Path::new(env!("CARGO_MANIFEST_DIR")).join("../fixtures/log-profiles"),
        }
    }

    const GOOD: &str = "@tls\nFeature: f\n\n  Scenario: a\n    Given the board under test\n    When the board boots\n    Then the board does not reboot\n\n  @slow\n  Scenario Outline: b <p>\n    Given the broker presents the \"<p>\" certificate\n    Then the TLS handshake does not complete\n\n    Examples:\n      | p |\n      | valid |\n      | expired |\n";

    #[test]
    fn outlines_expand_and_tags_and_shards_select() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "a.feature", GOOD);
        let all = Suite::load(
            std::slice::from_ref(&path),
            &Selection::default(),
            &context(),
        )
        .unwrap();
        let names: Vec<_> = all.scenarios().iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["a", "b valid", "b expired"]);
        assert_eq!(all.total(), 3);

        let fast = Selection {
            tags: Some("@tls and not @slow".parse().unwrap()),
            shard: None,
        };
        let suite = Suite::load(std::slice::from_ref(&path), &fast, &context()).unwrap();
        assert_eq!(suite.scenarios().len(), 1);

        let shards: Vec<Vec<String>> = (1..=2)
            .map(|k| {
                let selection = Selection {
                    tags: None,
                    shard: Some(Shard::new(k, 2).unwrap()),
                };
                Suite::load(std::slice::from_ref(&path), &selection, &context())
                    .unwrap()
                    .scenarios()
                    .iter()
                    .map(|s| s.name.clone())
                    .collect()
            })
            .collect();
        assert_eq!(shards, [vec!["a", "b expired"], vec!["b valid"]]);
    }

    #[test]
    fn a_scenario_without_a_then_step_is_refused_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let text = "Feature: f\n  Scenario: asserts nothing\n    Given the board under test\n    When the board boots\n\n  Scenario: asserts\n    Given the board under test\n    Then the board does not reboot\n";
        let path = write(dir.path(), "none.feature", text);
        let err = Suite::load(&[path], &Selection::default(), &context()).unwrap_err();
        let SuiteError::Invalid { problems } = err else {
            panic!("{err:?}");
        };
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert_eq!(problems[0].line, 2);
        assert!(
            problems[0].message.contains("has no Then step"),
            "{problems:?}"
        );
    }

    #[test]
    fn every_problem_is_reported_with_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let text = "Feature: f\n  Scenario: a\n    Given the board under tset\n    Given the broker presents the \"bogus\" certificate\n    Then the device uses log profile \"nope\"\n    Then the board does not reboot\n";
        let path = write(dir.path(), "bad.feature", text);
        let err = Suite::load(&[path], &Selection::default(), &context()).unwrap_err();
        let SuiteError::Invalid { problems } = err else {
            panic!("expected problems, got {err}");
        };
        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [3, 4, 5], "{problems:?}");
        assert!(
            problems[0].message.contains("did you mean"),
            "{}",
            problems[0]
        );
        assert!(problems[1].message.contains("bogus"), "{}", problems[1]);
    }

    #[test]
    fn a_syntax_error_names_its_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "syntax.feature", "Feature: f\n  Scenario: a\n    Given the board under test\n  this line is not gherkin |\n  Scenario\n");
        let err = Suite::load(&[path], &Selection::default(), &context()).unwrap_err();
        let SuiteError::Invalid { problems } = err else {
            panic!("expected problems, got {err}");
        };
        assert_eq!(problems.len(), 1);
        assert!(problems[0].line >= 4, "{}", problems[0]);
    }

    #[test]
    fn tag_expressions_say_why_they_are_bad_and_deep_ones_do_not_overflow() {
        let deep = format!("{}@a{}", "(".repeat(20_000), ")".repeat(20_000));
        let err = deep.parse::<TagFilter>().unwrap_err().to_string();
        assert!(err.contains("20000 levels"), "{err}");
        let nots = format!("{}@a", "not ".repeat(30_000));
        let err = nots.parse::<TagFilter>().unwrap_err().to_string();
        assert!(err.contains("30000 levels"), "{err}");
        for (expr, why) in [
            ("(@a", "never closed"),
            ("@a)", "closes nothing"),
            ("tls", "neither a tag"),
            ("@a and and @b", "both sides"),
            ("", "empty"),
        ] {
            let err = expr.parse::<TagFilter>().unwrap_err().to_string();
            assert!(err.contains(why), "{expr}: {err}");
        }
        let ok: TagFilter = "(@tls or @mqtt) and not @slow".parse().unwrap();
        assert!(ok.matches(&["tls".into()]));
        assert!(!ok.matches(&["tls".into(), "slow".into()]));
        let nested: TagFilter = format!("{}@a{}", "(".repeat(30), ")".repeat(30))
            .parse()
            .unwrap();
        assert!(nested.matches(&["a".into()]));
    }

    #[test]
    fn an_unprovisioned_run_refuses_the_selected_steps_that_need_provisioning() {
        let dir = tempfile::tempdir().unwrap();
        let text = "Feature: f\n  Background:\n    Given the board under test\n    Then the board does not reboot\n\n  @creds\n  Scenario: a\n    Given the device is provisioned with username \"u\" and password \"hunter2\"\n    When the board boots\n\n  @mtls\n  Scenario Outline: b <n>\n    Given the broker requires a client certificate\n    When the board boots\n\n    Examples:\n      | n |\n      | 1 |\n      | 2 |\n\n  @plain\n  Scenario: c\n    Given the board is not provisioned\n    And the broker requires username \"u\" and password \"p\"\n    When the board boots\n";
        let path = write(dir.path(), "p.feature", text);
        let all = Suite::load(
            std::slice::from_ref(&path),
            &Selection::default(),
            &context(),
        )
        .unwrap();
        let Err(SuiteError::NeedsProvisioning { problems }) = all.check_unprovisioned() else {
            panic!("an unprovisioned run must refuse provisioning steps");
        };
        let lines: Vec<usize> = problems.iter().map(|p| p.line).collect();
        assert_eq!(lines, [8, 13], "{problems:?}");
        assert!(problems[0].message.contains("PROV line"), "{}", problems[0]);
        assert!(!problems[0].message.contains("hunter2"), "{}", problems[0]);
        let shown = SuiteError::NeedsProvisioning { problems }.to_string();
        assert!(shown.contains("p.feature:13:"), "{shown}");

        // Only the selected scenarios count.
        let plain = Selection {
            tags: Some("@plain".parse().unwrap()),
            shard: None,
        };
        let suite = Suite::load(std::slice::from_ref(&path), &plain, &context()).unwrap();
        assert!(suite.check_unprovisioned().is_ok());
    }

    #[test]
    fn shards_are_checked() {
        assert!("0/2".parse::<Shard>().is_err());
        assert!("3/2".parse::<Shard>().is_err());
        assert!("x".parse::<Shard>().is_err());
        assert_eq!("2/3".parse::<Shard>().unwrap().to_string(), "2/3");
    }
}
