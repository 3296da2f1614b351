//! The front's live connections by device, and the devices whose broker is down:
//! what lets the lab drop one device's connections or restart the broker for one
//! device while the other devices on the same listener carry on.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Mutex, MutexGuard, PoisonError};

use tokio::sync::oneshot;
use tokio::time::Instant;

/// One registered connection: the signal that ends it, and the receiver that
/// resolves once its task has let go of both sockets.
struct Entry {
    cancel: oneshot::Sender<()>,
    gone: oneshot::Receiver<()>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    live: HashMap<IpAddr, HashMap<u64, Entry>>,
    down_until: HashMap<IpAddr, Instant>,
}

/// Shared by the accept loop, every connection task and the lab's actions.
#[derive(Default)]
pub(crate) struct LiveConnections {
    state: Mutex<State>,
}

/// Held by a connection task for its whole life: dropping it unregisters the
/// connection and tells a waiting [`LiveConnections::drop_device`] it is gone.
pub(crate) struct Registration<'a> {
    owner: &'a LiveConnections,
    device: IpAddr,
    id: u64,
    _gone: oneshot::Sender<()>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut state = self.owner.lock();
        if let Some(by_id) = state.live.get_mut(&self.device) {
            by_id.remove(&self.id);
            if by_id.is_empty() {
                state.live.remove(&self.device);
            }
        }
    }
}

impl LiveConnections {
    // A panic while holding the lock leaves the maps consistent (every change is
    // a single insert or remove), so a poisoned lock is still usable.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers a new connection from `device`. The receiver fires when the lab
    /// drops the device's connections.
    pub(crate) fn register(&self, device: IpAddr) -> (Registration<'_>, oneshot::Receiver<()>) {
        let (cancel, cancelled) = oneshot::channel();
        let (gone_tx, gone) = oneshot::channel();
        let mut state = self.lock();
        let id = state.next_id;
        state.next_id += 1;
        state
            .live
            .entry(device)
            .or_default()
            .insert(id, Entry { cancel, gone });
        let registration = Registration {
            owner: self,
            device,
            id,
            _gone: gone_tx,
        };
        (registration, cancelled)
    }

    /// Ends every live connection from `device` and waits until their tasks have
    /// closed both sockets. Returns how many there were.
    pub(crate) async fn drop_device(&self, device: IpAddr) -> usize {
        let entries: Vec<Entry> = self
            .lock()
            .live
            .remove(&device)
            .map(|by_id| by_id.into_values().collect())
            .unwrap_or_default();
        let mut waits = Vec::with_capacity(entries.len());
        for entry in entries {
            // A task that already finished has dropped its receiver: nothing to end.
            if entry.cancel.send(()).is_ok() {
                waits.push(entry.gone);
            }
        }
        let count = waits.len();
        for gone in waits {
            // Resolves (with an error) when the task drops its registration.
            let _ = gone.await;
        }
        count
    }

    /// Marks the broker down for `device` until `until`.
    pub(crate) fn set_down(&self, device: IpAddr, until: Instant) {
        self.lock().down_until.insert(device, until);
    }

    /// Whether the broker is down for `device` now.
    pub(crate) fn is_down(&self, device: IpAddr) -> bool {
        self.lock()
            .down_until
            .get(&device)
            .is_some_and(|until| Instant::now() < *until)
    }

    /// Brings the broker up for `device` at once, whatever restart marked it
    /// down; that restart's own deadline then finds nothing to clear.
    pub(crate) fn clear_down(&self, device: IpAddr) {
        self.lock().down_until.remove(&device);
    }

    /// Clears the down mark if it is still the one set for `until` (a later
    /// restart keeps its own). Returns whether this call brought the broker up.
    pub(crate) fn come_up(&self, device: IpAddr, until: Instant) -> bool {
        let mut state = self.lock();
        if state.down_until.get(&device) == Some(&until) {
            state.down_until.remove(&device);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn dropping_one_device_ends_only_its_connections() {
        let live = LiveConnections::default();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let b: IpAddr = "127.0.1.9".parse().unwrap();
        let (reg_a1, cancel_a1) = live.register(a);
        let (reg_a2, cancel_a2) = live.register(a);
        let (_reg_b, mut cancel_b) = live.register(b);
        let tasks = async {
            cancel_a1.await.unwrap();
            drop(reg_a1);
            cancel_a2.await.unwrap();
            drop(reg_a2);
        };
        let (count, ()) = tokio::join!(live.drop_device(a), tasks);
        assert_eq!(count, 2);
        assert!(
            cancel_b.try_recv().is_err(),
            "the other device was cancelled"
        );
        assert_eq!(live.drop_device(a).await, 0);
    }

    #[tokio::test]
    async fn a_connection_that_ended_is_not_counted() {
        let live = LiveConnections::default();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let (reg, cancelled) = live.register(a);
        drop(cancelled);
        drop(reg);
        assert_eq!(live.drop_device(a).await, 0);
    }

    #[tokio::test(start_paused = true)]
    async fn down_until_the_deadline_and_only_the_latest_restart_brings_it_up() {
        let live = LiveConnections::default();
        let a: IpAddr = "127.0.0.1".parse().unwrap();
        let first = Instant::now() + std::time::Duration::from_secs(1);
        let second = Instant::now() + std::time::Duration::from_secs(3);
        live.set_down(a, first);
        live.set_down(a, second);
        assert!(live.is_down(a));
        assert!(!live.is_down("127.0.1.9".parse().unwrap()));
        tokio::time::sleep_until(first).await;
        assert!(!live.come_up(a, first));
        assert!(live.is_down(a));
        tokio::time::sleep_until(second).await;
        assert!(!live.is_down(a));
        assert!(live.come_up(a, second));
    }

    #[tokio::test]
    async fn a_cleared_device_is_up_and_its_restart_deadline_does_not_announce_it() {
        let live = LiveConnections::default();
        let a: IpAddr = "127.0.1.3".parse().unwrap();
        let until = Instant::now() + std::time::Duration::from_secs(60);
        live.set_down(a, until);
        live.clear_down(a);
        assert!(!live.is_down(a));
        assert!(!live.come_up(a, until));
    }
}
