//! What every scenario of a run shares: the lab, the catalogue, the boards, the
//! run's settings, and where results go.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;

use super::board::{Board, BoardPool, Lease};
use super::firmware::FirmwareSource;
use super::results::{RunEvent, ScenarioResult};
use crate::artifact::Secrets;
use crate::lab::Lab;
use crate::logprofile::LogProfile;
use crate::pki::{Catalogue, Profile};
use crate::timeline::Timeline;

/// What `Then the transcript matches the snapshot` does on a mismatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SnapshotMode {
    /// insta's workflow: a `.snap.new` to review (never written when CI=true).
    #[default]
    Review,
    /// Compare only, write nothing (a mutant's transcript is not a candidate).
    CompareOnly,
}

/// Receives progress as the run goes.
pub type Progress = Arc<dyn Fn(RunEvent) + Send + Sync>;

pub(crate) struct RunContext {
    pub(crate) lab: Arc<Lab>,
    pub(crate) timeline: Timeline,
    pub(crate) catalogue: Arc<Catalogue>,
    pub(crate) default_profile: Arc<Profile>,
    pub(crate) pool: BoardPool,
    pub(crate) pool_is_virtual: bool,
    pub(crate) firmware: Option<FirmwareSource>,
    /// The firmware's ELF, for decoding crashes.
    pub(crate) elf: Option<PathBuf>,
    pub(crate) log_profile: Arc<LogProfile>,
    pub(crate) log_profile_forced: bool,
    pub(crate) log_profiles_dir: PathBuf,
    pub(crate) settle: Duration,
    pub(crate) quiet: Duration,
    pub(crate) grace: Duration,
    pub(crate) restart_downtime: Duration,
    pub(crate) snapshots: SnapshotMode,
    pub(crate) snapshots_dir: PathBuf,
    pub(crate) run_dir: PathBuf,
    pub(crate) network: super::board::VirtualNetwork,
    /// Names the device reaches its broker by (the lab's, and the ones mapped to it).
    pub(crate) broker_names: Vec<String>,
    /// No scenario provisions its device (`RunOptions::unprovisioned`).
    pub(crate) unprovisioned: bool,
    pub(crate) secrets: Secrets,
    pub(crate) interrupt: super::Interrupt,
    pub(crate) adhoc: Arc<Semaphore>,
    pub(crate) adhoc_next: AtomicU32,
    pub(crate) results: Mutex<Vec<ScenarioResult>>,
    pub(crate) progress: Progress,
    pub(crate) numbering: AtomicUsize,
}

/// Virtual boards started for one scenario each take an index from here up.
const ADHOC_FIRST_INDEX: u32 = 201;

impl RunContext {
    /// A board for a scenario: one from the pool, or, when the scenario wants a
    /// virtual board and the pool holds real ones, a virtual board of its own.
    pub(crate) async fn lease(&self, wants_virtual: bool) -> Result<Lease, crate::Error> {
        if !wants_virtual || self.pool_is_virtual {
            return self
                .pool
                .lease()
                .await
                .ok_or_else(|| crate::Error::Runner(super::RunnerError::NoBoard));
        }
        let permit = self
            .adhoc
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| crate::Error::Runner(super::RunnerError::NoBoard))?;
        let n = self.adhoc_next.fetch_add(1, Ordering::Relaxed);
        let index = ADHOC_FIRST_INDEX + n % 50;
        let board = Board::start_virtual(
            index,
            &self.run_dir.join("boards"),
            &self.network,
            &self.timeline,
        )
        .await?;
        Ok(Lease::owned(board, permit))
    }

    pub(crate) fn next_number(&self) -> usize {
        self.numbering.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub(crate) fn secrets(&self) -> &Secrets {
        &self.secrets
    }

    /// Keeps a scenario's result and reports it.
    pub(crate) fn finished(&self, result: ScenarioResult) {
        if let Ok(mut results) = self.results.lock() {
            results.push(result.clone());
        }
        (self.progress)(RunEvent::Finished {
            result: Box::new(result),
        });
    }
}
