//! Stopping a run early (Ctrl-C, SIGTERM): no scenario starts after it, the
//! running ones end where they are, and every one of them is reported as not
//! run, so the reports cover the whole suite.

use std::sync::Arc;

use tokio::sync::watch;

/// A request to stop a run. Cloning gives another handle to the same request.
///
/// ```
/// use hil::runner::Interrupt;
///
/// let interrupt = Interrupt::new();
/// assert!(!interrupt.is_triggered());
/// interrupt.clone().trigger();
/// assert!(interrupt.is_triggered());
/// ```
#[derive(Debug, Clone)]
pub struct Interrupt {
    state: Arc<watch::Sender<bool>>,
}

impl Default for Interrupt {
    fn default() -> Self {
        Interrupt::new()
    }
}

impl Interrupt {
    /// A request not made yet.
    pub fn new() -> Interrupt {
        let (state, _) = watch::channel(false);
        Interrupt {
            state: Arc::new(state),
        }
    }

    /// Makes the request.
    pub fn trigger(&self) {
        self.state.send_replace(true);
    }

    /// Whether the request was made.
    pub fn is_triggered(&self) -> bool {
        *self.state.borrow()
    }

    /// Resolves once the request is made.
    pub async fn triggered(&self) {
        let mut changes = self.state.subscribe();
        // The sender lives as long as `self`, so this only ends when triggered.
        let _ = changes.wait_for(|stop| *stop).await;
    }
}
