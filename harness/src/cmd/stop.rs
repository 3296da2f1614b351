//! Ctrl-C and SIGTERM for the long-running commands.

use miette::{IntoDiagnostic, Result};

/// SIGINT and SIGTERM, caught from the moment this is made. Tokio's `ctrl_c()`
/// registers only when first polled, so a signal that arrives between a
/// command saying it is ready and its first await would kill it outright (a CI
/// runner or a test that stops it right away sees "killed by signal 2").
#[derive(Debug)]
pub struct StopSignals {
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
}

impl StopSignals {
    /// Starts catching both; call inside the runtime, before anything that may
    /// be interrupted is started.
    pub fn catch() -> Result<StopSignals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Ok(StopSignals {
                interrupt: signal(SignalKind::interrupt()).into_diagnostic()?,
                terminate: signal(SignalKind::terminate()).into_diagnostic()?,
            })
        }
        #[cfg(not(unix))]
        Ok(StopSignals {})
    }

    /// Resolves at the next Ctrl-C or SIGTERM (one caught before this was
    /// called counts).
    pub async fn next(&mut self) {
        #[cfg(unix)]
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}
