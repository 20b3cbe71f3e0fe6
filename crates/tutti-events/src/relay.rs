//! The relay task: moves events from the outbox to webhook deliveries and to the bus.
//!
//! It wakes when the store reports a committed write that appended events (or when poked, or
//! every `poll_interval` as a safety net), runs relay steps until it is up to date (each step is
//! one atomic store write: read the batch after the cursor, create the deliveries, advance the
//! cursor), publishes each relayed event on the bus and wakes the dispatcher when deliveries
//! were created. Its position lives in `outbox_cursor`, so a restart resumes where it stopped.
//! It must never hold events in memory between steps, and never skip an event: a failed step is
//! retried from the same cursor.

use std::sync::Arc;

use tokio::sync::{watch, Notify};
use tutti_store::{Store, StoreError};

use crate::bus::EventBus;
use crate::config::RelayConfig;
use crate::event::EventRecord;

pub(crate) struct Relay {
    pub(crate) store: Store,
    pub(crate) bus: EventBus,
    pub(crate) cfg: RelayConfig,
    pub(crate) wake: Arc<Notify>,
    pub(crate) dispatcher_wake: Arc<Notify>,
    pub(crate) stop: watch::Receiver<bool>,
}

enum Drained {
    UpToDate,
    Failed,
    StoreClosed,
}

impl Relay {
    /// Runs steps until the relay is up to date. `cursor` is the last relayed id, when known.
    async fn drain(&self, cursor: &mut Option<i64>) -> Drained {
        loop {
            if let Some(c) = *cursor {
                // A cheap read first, so an idle poll never queues a write.
                match self.store.last_event_id().await {
                    Ok(last) if last <= c => return Drained::UpToDate,
                    Ok(_) => {}
                    Err(StoreError::Closed) => return Drained::StoreClosed,
                    Err(e) => {
                        tracing::warn!(error = %e, "relay: cannot read the outbox");
                        return Drained::Failed;
                    }
                }
            }
            match self
                .store
                .relay_step(&self.cfg.cursor_name, self.cfg.batch_size)
                .await
            {
                Ok(batch) => {
                    *cursor = Some(batch.cursor);
                    if batch.deliveries_created > 0 {
                        self.dispatcher_wake.notify_one();
                    }
                    let full = batch.events.len() >= self.cfg.batch_size as usize;
                    for row in batch.events {
                        self.bus.publish(Arc::new(EventRecord::from_row(row)));
                    }
                    if !full {
                        return Drained::UpToDate;
                    }
                }
                Err(StoreError::Closed) => return Drained::StoreClosed,
                Err(e) => {
                    tracing::warn!(error = %e, "relay: a relay step failed; retrying later");
                    return Drained::Failed;
                }
            }
        }
    }

    pub(crate) async fn run(mut self) {
        let mut written = self.store.events_watch();
        let mut watch_alive = true;
        let mut cursor = None;
        loop {
            if *self.stop.borrow() {
                return;
            }
            if let Drained::StoreClosed = self.drain(&mut cursor).await {
                tracing::info!("relay: the store is closed; stopping");
                return;
            }
            tokio::select! {
                // A dropped `Events` (sender gone) stops the relay too.
                stopped = self.stop.changed() => if stopped.is_err() { return },
                changed = written.changed(), if watch_alive => watch_alive = changed.is_ok(),
                () = self.wake.notified() => {}
                () = tokio::time::sleep(self.cfg.poll_interval) => {}
            }
        }
    }
}
