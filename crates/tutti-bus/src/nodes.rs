//! The node registry: every node's latest heartbeat, one key per node in a JetStream
//! key-value bucket whose entries expire a TTL after their last write (see the crate
//! documentation), and a read of who holds each show's lease, for `tutti cluster status`.

use std::collections::BTreeMap;
use std::time::Duration;

use async_nats::jetstream::kv::{self, Operation};
use async_nats::jetstream::{self, context::GetStreamErrorKind, ErrorCode};
use bytes::Bytes;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

/// The registry's bucket unless a node is told otherwise.
pub const NODES_BUCKET: &str = "tutti_nodes";

/// The leases' bucket unless a node is told otherwise.
pub const LEASES_BUCKET: &str = "tutti_leases";

/// The largest record read back, bytes (a node's record is well under a KiB per show).
pub const MAX_RECORD: usize = 64 * 1024;

/// What a node does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Holds phones; publishes partials, takes states.
    Edge,
    /// Contends for shows' leases; the holder merges, ticks and publishes.
    Conductor,
}

impl Role {
    /// Its name in records and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Edge => "edge",
            Role::Conductor => "conductor",
        }
    }
}

/// One show a node serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServedShow {
    /// The show's code.
    pub code: String,
    /// Whether this node conducts it now (holds its unexpired lease).
    pub leading: bool,
    /// The term of the lease it holds (conductor) or of the states it takes (edge); 0
    /// before any.
    pub term: u64,
    /// A few of the node's counters for the show (`tutti-node`'s `NodeMetrics`, by name).
    pub counters: BTreeMap<String, u64>,
}

/// A node's heartbeat: what it is and does, as of `at_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    /// Its name (the key).
    pub id: String,
    /// What it does.
    pub role: Role,
    /// The shows it serves.
    pub shows: Vec<ServedShow>,
    /// The NATS server it is connected to (`host:port`, as the server announced itself).
    pub bus: String,
    /// Whether its connection was up when it wrote this.
    pub connected: bool,
    /// Unix milliseconds of the write (the node's clock).
    pub at_ms: i64,
}

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The bucket could not be made or opened.
    #[error("bucket {bucket}: {reason}")]
    Bucket {
        /// Its name.
        bucket: String,
        /// Why.
        reason: String,
    },
    /// NATS did not answer or refused.
    #[error("bucket {bucket}: {reason}")]
    Bus {
        /// Its name.
        bucket: String,
        /// Why.
        reason: String,
    },
}

/// The registry's records, those that could be read and the keys of those that could not
/// (not JSON of a record, too large, or a key that is not the record's id): never shown as
/// nodes, only counted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeList {
    /// By id.
    pub nodes: Vec<NodeRecord>,
    /// Keys whose value is not a record.
    pub unreadable: Vec<String>,
}

/// A show's lease as the bucket holds it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseEntry {
    /// The show's code (the key).
    pub show: String,
    /// The node that holds it.
    pub holder: String,
    /// The revision of the holder's last write (its term is the revision that took it,
    /// which the holder's own record gives).
    pub revision: u64,
}

/// The node registry in one bucket, each entry expiring `ttl` after its last write.
#[derive(Clone)]
pub struct Nodes {
    kv: kv::Store,
    bucket: String,
    ttl: Duration,
}

fn bucket_err(bucket: &str) -> impl Fn(String) -> RegistryError + '_ {
    move |reason| RegistryError::Bucket {
        bucket: bucket.to_owned(),
        reason,
    }
}

fn bus_err(bucket: &str) -> impl Fn(String) -> RegistryError + '_ {
    move |reason| RegistryError::Bus {
        bucket: bucket.to_owned(),
        reason,
    }
}

/// Bucket `bucket` when it exists (`None` when it does not), without making it.
async fn existing(
    client: &async_nats::Client,
    bucket: &str,
) -> Result<Option<kv::Store>, RegistryError> {
    let js = jetstream::new(client.clone());
    match js.get_stream(format!("KV_{bucket}")).await {
        Ok(_) => {}
        Err(e) => {
            return match e.kind() {
                GetStreamErrorKind::JetStream(j)
                    if j.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    Ok(None)
                }
                _ => Err(bus_err(bucket)(e.to_string())),
            }
        }
    }
    js.get_key_value(bucket)
        .await
        .map(Some)
        .map_err(|e| bucket_err(bucket)(e.to_string()))
}

/// Every live key of `kv` with its latest entry (deleted and purged keys left out).
async fn entries(kv: &kv::Store, bucket: &str) -> Result<Vec<kv::Entry>, RegistryError> {
    let mut keys = kv
        .keys()
        .await
        .map_err(|e| bus_err(bucket)(e.to_string()))?;
    let mut out = vec![];
    while let Some(key) = keys.next().await {
        let key = key.map_err(|e| bus_err(bucket)(e.to_string()))?;
        match kv.entry(key).await {
            Ok(Some(e)) if e.operation == Operation::Put => out.push(e),
            Ok(_) => {}
            Err(e) => return Err(bus_err(bucket)(e.to_string())),
        }
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(out)
}

impl Nodes {
    /// Opens (making it when absent) registry bucket `bucket`, whose entries expire `ttl`
    /// after their last write. A node writes its record more often than that (a third of
    /// it), so a node that dies disappears within `ttl` of its last write.
    pub async fn open(
        client: &async_nats::Client,
        bucket: &str,
        ttl: Duration,
    ) -> Result<Nodes, RegistryError> {
        let js = jetstream::new(client.clone());
        let kv = js
            .create_key_value(kv::Config {
                bucket: bucket.to_owned(),
                description: "Tutti: every node's latest heartbeat".into(),
                history: 1,
                max_age: ttl,
                max_value_size: MAX_RECORD as i32,
                ..Default::default()
            })
            .await
            .map_err(|e| bucket_err(bucket)(e.to_string()))?;
        Ok(Nodes {
            kv,
            bucket: bucket.to_owned(),
            ttl,
        })
    }

    /// The registry in bucket `bucket` when it exists, for a reader that must not make it
    /// (`None`: no node ever registered there).
    pub async fn existing(
        client: &async_nats::Client,
        bucket: &str,
    ) -> Result<Option<Nodes>, RegistryError> {
        let Some(kv) = existing(client, bucket).await? else {
            return Ok(None);
        };
        let ttl = kv.stream.cached_info().config.max_age;
        Ok(Some(Nodes {
            kv,
            bucket: bucket.to_owned(),
            ttl,
        }))
    }

    /// How long after its last write a record expires.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Writes `record` under its id (replacing the node's last one). Its revision.
    pub async fn put(&self, record: &NodeRecord) -> Result<u64, RegistryError> {
        let json = serde_json::to_vec(record).map_err(|e| bus_err(&self.bucket)(e.to_string()))?;
        self.kv
            .put(&record.id, Bytes::from(json))
            .await
            .map_err(|e| bus_err(&self.bucket)(e.to_string()))
    }

    /// Removes node `id`'s record now (a clean stop), instead of letting it expire.
    pub async fn remove(&self, id: &str) -> Result<(), RegistryError> {
        self.kv
            .purge(id)
            .await
            .map_err(|e| bus_err(&self.bucket)(e.to_string()))
    }

    /// Every node's latest record, by id; values that are not a record are counted by key
    /// in [`NodeList::unreadable`], never returned as nodes.
    pub async fn list(&self) -> Result<NodeList, RegistryError> {
        let mut out = NodeList::default();
        for e in entries(&self.kv, &self.bucket).await? {
            let record = (e.value.len() <= MAX_RECORD)
                .then(|| serde_json::from_slice::<NodeRecord>(&e.value).ok())
                .flatten()
                .filter(|r| r.id == e.key);
            match record {
                Some(r) => out.nodes.push(r),
                None => out.unreadable.push(e.key),
            }
        }
        Ok(out)
    }
}

/// Who holds each show's lease in lease bucket `bucket` (`tutti_bus::Leases`), by show;
/// empty when the bucket does not exist. Reads only: never makes the bucket.
pub async fn lease_holders(
    client: &async_nats::Client,
    bucket: &str,
) -> Result<Vec<LeaseEntry>, RegistryError> {
    let Some(kv) = existing(client, bucket).await? else {
        return Ok(vec![]);
    };
    Ok(entries(&kv, bucket)
        .await?
        .into_iter()
        .map(|e| LeaseEntry {
            show: e.key,
            holder: String::from_utf8_lossy(&e.value).into_owned(),
            revision: e.revision,
        })
        .collect())
}
