//! The scenario runner: features, the step vocabulary, execution and reports.

pub mod steps;
