//! Kafka export: every event the hub holds durably is produced to Kafka (Redpanda, or any broker
//! speaking the protocol). The only module that imports rdkafka.
//!
//! - Topic: the FusionCommerce topic name (`order.created`, …); key: the aggregate id (order
//!   id, sku, campaign id); value: the event's JSON payload; headers: the envelope (`event_id`,
//!   `schema_version`, `correlation_id`, `causation_id`, `origin`, `seq`, `occurred_at`,
//!   `content-type`).
//! - An idempotent producer; a batch of one origin's events is produced in order and the export
//!   position of that origin advances durably only after every delivery report in the batch
//!   came back. A crash or a broker outage loses nothing; a batch that was not confirmed is sent
//!   again (same `event_id`).
//! - Topics are created at start with the configured partitions and retention.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use fusion_contracts::http::hub::ExportReport;
use fusion_contracts::{Envelope, Event};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};

use crate::store::HubStore;

/// Events of one origin produced before their delivery reports are awaited.
const BATCH: usize = 512;
/// Pause after a failed batch (the broker is away); the batch is sent again.
const RETRY: Duration = Duration::from_millis(500);

/// Where and how to export.
#[derive(Clone, Debug)]
pub struct ExportConfig {
    /// `host:port[,host:port…]`.
    pub brokers: String,
    /// Partitions of each topic the hub creates.
    pub partitions: i32,
    /// `retention.ms` of each topic the hub creates; -1: forever.
    pub retention_ms: i64,
    /// A schema registry speaking the Confluent API (Redpanda's, at `http://HOST:8081`): each
    /// topic's JSON Schema is registered under `<topic>-value` at start.
    pub schema_registry: Option<String>,
}

/// What `/sync/status` reports about the export.
#[derive(Debug, Default)]
pub struct ExportStatus {
    inner: std::sync::Mutex<ExportReport>,
}

impl ExportStatus {
    pub fn report(&self) -> ExportReport {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn update(&self, f: impl FnOnce(&mut ExportReport)) {
        f(&mut self.inner.lock().unwrap_or_else(|p| p.into_inner()));
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("kafka: {0}")]
    Kafka(String),
}

fn kafka(e: impl std::fmt::Display) -> ExportError {
    ExportError::Kafka(e.to_string())
}

/// Registers every topic's payload schema in a Confluent-API schema registry (Redpanda's) as
/// subject `<topic>-value`, schema type JSON. Registering an unchanged schema again returns its
/// existing id, so this runs at every start. Returns how many were registered.
///
/// Redpanda enforces a registered schema on a topic only for records framed with a schema id
/// (the Confluent wire format), which FusionCommerce's consumers do not read: records stay plain
/// JSON, and the registry serves consumers and tooling. The hub's records always match: they
/// are rendered from the typed events the schemas are generated from (`contracts/schemas`).
pub async fn register_schemas(registry: &str) -> Result<usize, ExportError> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(kafka)?;
    let base = registry.trim_end_matches('/');
    let mut registered = 0;
    for (topic, schema) in Event::payload_schemas() {
        let body = serde_json::json!({ "schemaType": "JSON", "schema": schema.to_string() });
        let url = format!("{base}/subjects/{topic}-value/versions");
        let response = http
            .post(&url)
            .header("content-type", "application/vnd.schemaregistry.v1+json")
            .json(&body)
            .send()
            .await
            .map_err(|e| kafka(format!("schema registry {url}: {e}")))?;
        if !response.status().is_success() {
            let status = response.status();
            let text = response.text().await.unwrap_or_default();
            return Err(kafka(format!(
                "schema registry refused {topic}-value: {status} {text}"
            )));
        }
        registered += 1;
    }
    Ok(registered)
}

/// Every topic an event can go to.
pub fn topics() -> Vec<&'static str> {
    Event::payload_schemas()
        .into_iter()
        .map(|(t, _)| t)
        .collect()
}

/// Creates the topics (existing ones are left as they are).
pub async fn create_topics(config: &ExportConfig) -> Result<(), ExportError> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .create()
        .map_err(kafka)?;
    let retention = config.retention_ms.to_string();
    let names = topics();
    let new: Vec<NewTopic<'_>> = names
        .iter()
        .map(|t| {
            NewTopic::new(t, config.partitions, TopicReplication::Fixed(1))
                .set("retention.ms", &retention)
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new, &opts).await.map_err(kafka)? {
        match result {
            Ok(_) => {}
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(kafka(format!("creating {topic}: {code}"))),
        }
    }
    Ok(())
}

fn producer(config: &ExportConfig) -> Result<FutureProducer, ExportError> {
    ClientConfig::new()
        .set("bootstrap.servers", &config.brokers)
        .set("enable.idempotence", "true")
        .set("message.timeout.ms", "10000")
        .set("linger.ms", "2")
        .create()
        .map_err(kafka)
}

fn headers(e: &Envelope) -> OwnedHeaders {
    let mut pairs = vec![
        ("event_id", e.event_id.to_string()),
        ("schema_version", e.schema_version.to_string()),
        ("correlation_id", e.correlation_id.to_string()),
        ("origin", e.origin.to_string()),
        ("seq", e.seq.to_string()),
        ("occurred_at", e.occurred_at.to_string()),
        ("content-type", "application/json".to_string()),
    ];
    if let Some(c) = e.causation_id {
        pairs.push(("causation_id", c.to_string()));
    }
    pairs.iter().fold(OwnedHeaders::new(), |h, (key, value)| {
        h.insert(Header {
            key,
            value: Some(value.as_str()),
        })
    })
}

/// Produces one batch in order and waits for every delivery report. `Ok` only when all were
/// confirmed.
async fn produce(producer: &FutureProducer, batch: &[Envelope]) -> Result<(), ExportError> {
    let mut pending = Vec::with_capacity(batch.len());
    for e in batch {
        let payload = e.event.payload_json().map_err(kafka)?;
        let key = e.key();
        let record = FutureRecord::to(e.topic())
            .key(key.as_str())
            .payload(payload.get())
            .headers(headers(e));
        let delivery = producer
            .send_result(record)
            .map_err(|(error, _)| kafka(error))?;
        pending.push(delivery);
    }
    for delivery in pending {
        match delivery.await {
            Ok(Ok(_)) => {}
            Ok(Err((error, _))) => return Err(kafka(error)),
            Err(_) => return Err(kafka("the producer went away")),
        }
    }
    Ok(())
}

/// Exports for as long as the task runs: each origin from its export position to its durable
/// position, in batches, advancing the position after each confirmed batch.
pub async fn run(store: Arc<HubStore>, config: ExportConfig, status: Arc<ExportStatus>) {
    status.update(|r| r.brokers = Some(config.brokers.clone()));
    loop {
        match create_topics(&config).await {
            Ok(()) => break,
            Err(error) => {
                tracing::warn!(%error, "creating the export topics; retrying");
                status.update(|r| r.last_error = Some(error.to_string()));
                tokio::time::sleep(RETRY).await;
            }
        }
    }
    if let Some(registry) = &config.schema_registry {
        loop {
            match register_schemas(registry).await {
                Ok(n) => {
                    tracing::info!(registry = %registry, schemas = n, "topic schemas registered");
                    status.update(|r| r.schemas_registered = n);
                    break;
                }
                Err(error) => {
                    tracing::warn!(%error, "registering the topic schemas; retrying");
                    status.update(|r| r.last_error = Some(error.to_string()));
                    tokio::time::sleep(RETRY).await;
                }
            }
        }
    }
    let producer = match producer(&config) {
        Ok(p) => p,
        Err(error) => {
            tracing::error!(%error, "the Kafka producer could not be created; export is off");
            status.update(|r| r.last_error = Some(error.to_string()));
            return;
        }
    };
    let appended = store.appended();
    loop {
        let notified = appended.notified();
        match export_pending(&store, &producer, &status).await {
            Ok(0) => {
                // Nothing left: wait for new events (or look again in a while).
                let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
            }
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, "export batch failed; it is sent again");
                status.update(|r| r.last_error = Some(error.to_string()));
                tokio::time::sleep(RETRY).await;
            }
        }
    }
}

/// One pass over every origin; returns how many events were exported.
async fn export_pending(
    store: &HubStore,
    producer: &FutureProducer,
    status: &ExportStatus,
) -> Result<usize, ExportError> {
    let durable = store.durable_positions().map_err(kafka)?;
    let exported: BTreeMap<String, u64> = store.export_positions().map_err(kafka)?;
    let mut done = 0;
    for (origin, upto) in durable {
        let from = exported.get(&origin).copied().unwrap_or(0) + 1;
        if from > upto {
            continue;
        }
        let origin_id = fusion_contracts::NodeId::new(origin.clone()).map_err(kafka)?;
        let batch = store.events(&origin_id, from, BATCH).map_err(kafka)?;
        let Some(last) = batch.last().map(|e| e.seq) else {
            continue;
        };
        produce(producer, &batch).await?;
        store.set_export_position(&origin, last).map_err(kafka)?;
        done += batch.len();
        status.update(|r| {
            r.exported += batch.len() as u64;
            r.last_error = None;
        });
    }
    Ok(done)
}

/// Sends chosen events again (`fusion hub replay`): the same topic, key, payload and headers —
/// the same `event_id`, so consumers that deduplicate see nothing new.
pub struct Replayer {
    producer: FutureProducer,
}

impl Replayer {
    pub fn new(config: &ExportConfig) -> Result<Self, ExportError> {
        Ok(Self {
            producer: producer(config)?,
        })
    }

    /// Produces `batch` in order; returns once every delivery report came back.
    pub async fn send(&self, batch: &[Envelope]) -> Result<(), ExportError> {
        produce(&self.producer, batch).await
    }
}

/// The broker-side schema of every topic, as tansu's `--schema-registry file://DIR` reads them
/// (`DIR/<topic>.json`): a JSON Schema whose `properties.value` is the topic's payload schema
/// from `contracts`, whole (tansu compiles `value` on its own, so its `$defs` stay inside it).
/// Keys are plain ids, not JSON: no key schema. A record whose value does not match is refused
/// by the broker, so a malformed record never reaches a topic.
pub fn broker_schemas() -> Vec<(&'static str, serde_json::Value)> {
    Event::payload_schemas()
        .into_iter()
        .map(|(topic, payload)| {
            let schema = serde_json::json!({
                "title": topic,
                "type": "object",
                "properties": { "value": payload },
            });
            (topic, schema)
        })
        .collect()
}
