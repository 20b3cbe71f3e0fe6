//! Leases in a JetStream key-value bucket (see the crate documentation).

use std::time::{Duration, Instant};

use async_nats::jetstream::kv::{self, CreateErrorKind, Operation, UpdateErrorKind};
use bytes::Bytes;

/// Why a lease operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    /// The bucket could not be made or opened.
    #[error("lease bucket {bucket}: {reason}")]
    Bucket {
        /// Its name.
        bucket: String,
        /// Why.
        reason: String,
    },
    /// Someone else wrote the key since our last write: the lease is lost.
    #[error("lease {key} lost: another node holds it now")]
    Lost {
        /// The key.
        key: String,
    },
    /// NATS did not answer or refused for another reason (the lease may still be ours
    /// until [`Held::valid_until`]).
    #[error("lease {key}: {reason}")]
    Bus {
        /// The key.
        key: String,
        /// Why.
        reason: String,
    },
}

/// A lease this node holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Held {
    /// The key (the show).
    pub key: String,
    /// This node's name, the key's value.
    pub holder: String,
    /// The revision that took the lease: its leadership term.
    pub term: u64,
    /// The revision of our last write (the next renewal must replace exactly this one).
    pub revision: u64,
    /// When our last write was acknowledged.
    pub renewed: Instant,
}

impl Held {
    /// Until when this node may act on the lease without a renewal: the TTL after the last
    /// acknowledged write (no other node can take it before then).
    pub fn valid_until(&self, ttl: Duration) -> Instant {
        self.renewed + ttl
    }
}

/// The leases of one bucket, each expiring `ttl` after its last write.
#[derive(Clone)]
pub struct Leases {
    kv: kv::Store,
    ttl: Duration,
}

impl Leases {
    /// Opens (making it when absent) bucket `bucket`, whose entries expire `ttl` after
    /// their last write.
    pub async fn open(
        client: &async_nats::Client,
        bucket: &str,
        ttl: Duration,
    ) -> Result<Leases, LeaseError> {
        let js = async_nats::jetstream::new(client.clone());
        let kv = js
            .create_key_value(kv::Config {
                bucket: bucket.to_owned(),
                description: "Tutti: which node conducts each show".into(),
                history: 1,
                max_age: ttl,
                ..Default::default()
            })
            .await
            .map_err(|e| LeaseError::Bucket {
                bucket: bucket.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Leases { kv, ttl })
    }

    /// The TTL of a lease.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Takes lease `key` for `holder` when nobody holds it (`None` when someone does).
    pub async fn try_acquire(&self, key: &str, holder: &str) -> Result<Option<Held>, LeaseError> {
        let sent = Instant::now();
        match self.kv.create(key, Bytes::from(holder.to_owned())).await {
            Ok(revision) => Ok(Some(Held {
                key: key.to_owned(),
                holder: holder.to_owned(),
                term: revision,
                revision,
                // Counted from when the write was sent: never later than the server's.
                renewed: sent,
            })),
            Err(e) if e.kind() == CreateErrorKind::AlreadyExists => Ok(None),
            Err(e) => Err(LeaseError::Bus {
                key: key.to_owned(),
                reason: e.to_string(),
            }),
        }
    }

    /// Renews a lease we hold. [`LeaseError::Lost`] when another node took it (our last
    /// write expired and was replaced); `held` is then unchanged and must be dropped.
    pub async fn renew(&self, held: &mut Held) -> Result<(), LeaseError> {
        let sent = Instant::now();
        match self
            .kv
            .update(&held.key, Bytes::from(held.holder.clone()), held.revision)
            .await
        {
            Ok(revision) => {
                held.revision = revision;
                held.renewed = sent;
                Ok(())
            }
            Err(e) if e.kind() == UpdateErrorKind::WrongLastRevision => Err(LeaseError::Lost {
                key: held.key.clone(),
            }),
            Err(e) => Err(LeaseError::Bus {
                key: held.key.clone(),
                reason: e.to_string(),
            }),
        }
    }

    /// Gives a lease up now (a clean shutdown), so the next contender need not wait for
    /// it to expire. Refused (and harmless) when it is no longer ours.
    pub async fn release(&self, held: Held) -> Result<(), LeaseError> {
        self.kv
            .purge_expect_revision(&held.key, Some(held.revision))
            .await
            .map_err(|e| LeaseError::Bus {
                key: held.key.clone(),
                reason: e.to_string(),
            })
    }

    /// Who holds `key` now, with the revision of its last write (`None`: nobody).
    pub async fn holder(&self, key: &str) -> Result<Option<(String, u64)>, LeaseError> {
        match self.kv.entry(key).await {
            Ok(Some(e)) if e.operation == Operation::Put => Ok(Some((
                String::from_utf8_lossy(&e.value).into_owned(),
                e.revision,
            ))),
            Ok(_) => Ok(None),
            Err(e) => Err(LeaseError::Bus {
                key: key.to_owned(),
                reason: e.to_string(),
            }),
        }
    }
}
