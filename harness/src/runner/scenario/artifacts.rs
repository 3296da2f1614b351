//! A scenario's artifacts: its transcript, its device's timeline, and the lab
//! manifest it ran with, each written whole or not at all.

use std::path::Path;

use super::ScenarioWorld;
use crate::artifact::write_atomically;
use crate::runner::context::RunContext;
use crate::timeline::{Event, EventKind, HarnessEvent};

impl ScenarioWorld {
    pub(super) fn write_artifacts(
        &self,
        ctx: &RunContext,
        dir: &Path,
        events: &[Event],
    ) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let secrets = ctx.secrets();
        let mut transcript = String::new();
        let mut jsonl = String::new();
        for event in events {
            let t = event.t_us as f64 / 1e6;
            match &event.kind {
                EventKind::SerialLine { line } => {
                    transcript.push_str(&format!("[{t:>10.3}] {line}\n"));
                }
                EventKind::Harness { what } => {
                    let text = match what {
                        HarnessEvent::ProvisioningSent { line } => format!("sent {line}"),
                        HarnessEvent::StepStarted { step, .. } => format!("step: {step}"),
                        HarnessEvent::StepFailed {
                            expectation,
                            inconclusive,
                        } => format!(
                            "step {}: expected {expectation}",
                            if *inconclusive {
                                "inconclusive"
                            } else {
                                "failed"
                            }
                        ),
                    };
                    transcript.push_str(&format!("[{t:>10.3}] >> {text}\n"));
                }
                _ => {}
            }
            jsonl.push_str(&serde_json::to_string(event).unwrap_or_default());
            jsonl.push('\n');
        }
        write_atomically(
            &dir.join("transcript.txt"),
            secrets.redact(&transcript).as_bytes(),
        )?;
        write_atomically(
            &dir.join("timeline.jsonl"),
            secrets.redact(&jsonl).as_bytes(),
        )?;
        let manifest = serde_json::json!({
            "scenario": self.info.as_ref().map(|i| i.name.clone()),
            "location": self.info.as_ref().map(|i| i.location()),
            "device": self.device(),
            "firmware": self.firmware,
            "presented_profile": self.presented.map(|p| p.as_str()),
            "log_profile": self.log().name(),
            "provisioned": self.provision,
            "policy": self.policy.to_json(),
        });
        let text = serde_json::to_string_pretty(&manifest).unwrap_or_default();
        write_atomically(&dir.join("lab.json"), secrets.redact(&text).as_bytes())
    }
}
