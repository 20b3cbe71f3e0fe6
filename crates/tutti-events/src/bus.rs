//! The in-process event bus: a bounded tokio broadcast channel of [`EventRecord`]s.
//!
//! The relay publishes every outbox event, in id order, once it has been relayed. Publishing
//! never waits: a subscriber that falls more than the bus capacity behind loses the oldest events
//! and is told how many ([`BusRecvError::Lagged`]); it can catch up from the outbox by id. The bus
//! must never block or slow down its writer, and never hold events for subscribers that are gone.

use std::sync::Arc;

use tokio::sync::broadcast;

use crate::event::EventRecord;

/// The bus. Cheap to clone; all clones share one channel.
#[derive(Debug, Clone)]
pub struct EventBus {
    tx: broadcast::Sender<Arc<EventRecord>>,
}

/// Why [`Subscription::recv`] returned no event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BusRecvError {
    /// The subscriber fell behind; this many events were skipped (read them from the outbox).
    #[error("the subscriber lagged and missed {missed} events")]
    Lagged {
        /// How many.
        missed: u64,
    },
    /// The bus is gone (the event system stopped).
    #[error("the event bus is closed")]
    Closed,
}

/// One subscriber's view of the bus: every event published after it subscribed.
#[derive(Debug)]
pub struct Subscription {
    rx: broadcast::Receiver<Arc<EventRecord>>,
}

impl EventBus {
    /// A bus on which a subscriber may fall up to `capacity` (>= 1) events behind.
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity.max(1));
        Self { tx }
    }

    /// Publishes an event to every current subscriber without waiting; returns how many there
    /// were.
    pub fn publish(&self, event: Arc<EventRecord>) -> usize {
        self.tx.send(event).unwrap_or(0)
    }

    /// A new subscription, starting with the next published event.
    pub fn subscribe(&self) -> Subscription {
        Subscription {
            rx: self.tx.subscribe(),
        }
    }

    /// Current subscribers.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }
}

impl Subscription {
    /// The next event. Cancel-safe.
    pub async fn recv(&mut self) -> Result<Arc<EventRecord>, BusRecvError> {
        match self.rx.recv().await {
            Ok(ev) => Ok(ev),
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                Err(BusRecvError::Lagged { missed })
            }
            Err(broadcast::error::RecvError::Closed) => Err(BusRecvError::Closed),
        }
    }

    /// The next event if one is waiting.
    pub fn try_recv(&mut self) -> Option<Result<Arc<EventRecord>, BusRecvError>> {
        match self.rx.try_recv() {
            Ok(ev) => Some(Ok(ev)),
            Err(broadcast::error::TryRecvError::Empty) => None,
            Err(broadcast::error::TryRecvError::Lagged(missed)) => {
                Some(Err(BusRecvError::Lagged { missed }))
            }
            Err(broadcast::error::TryRecvError::Closed) => Some(Err(BusRecvError::Closed)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: i64) -> Arc<EventRecord> {
        Arc::new(EventRecord {
            id,
            kind: "piece.created".into(),
            ensemble_id: Some(1),
            subject: format!("piece:{id}"),
            at_ms: 0,
            data: serde_json::json!({ "piece_id": id }),
        })
    }

    #[tokio::test]
    async fn a_slow_subscriber_lags_and_is_told_so_without_blocking_the_writer() {
        let bus = EventBus::new(4);
        let mut slow = bus.subscribe();
        for id in 1..=10 {
            assert_eq!(bus.publish(rec(id)), 1);
        }
        assert_eq!(slow.recv().await, Err(BusRecvError::Lagged { missed: 6 }));
        for id in 7..=10 {
            assert_eq!(slow.recv().await.map(|e| e.id), Ok(id));
        }
        assert!(slow.try_recv().is_none());
    }

    #[tokio::test]
    async fn publishing_without_subscribers_is_fine_and_closing_is_reported() {
        let bus = EventBus::new(2);
        assert_eq!(bus.publish(rec(1)), 0);
        let mut sub = bus.subscribe();
        drop(bus);
        assert_eq!(sub.recv().await, Err(BusRecvError::Closed));
    }
}
