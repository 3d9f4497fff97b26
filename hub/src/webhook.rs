//! The n8n bridge: webhook subscriptions. Every event the hub holds durably whose topic a
//! subscription wants is POSTed to the subscription's URL.
//!
//! - Body: the event's JSON payload, byte for byte the Kafka record value.
//! - Headers: the envelope (`X-Fusion-Event-Id`, `-Topic`, `-Key`, `-Schema-Version`,
//!   `-Correlation-Id`, `-Causation-Id`, `-Origin`, `-Seq`, `-Occurred-At`, `-Attempt`, and
//!   `-Store` when the origin's store is known) and
//!   `X-Fusion-Signature: sha256=HEX`, the HMAC-SHA256 with the subscription's secret of
//!   `EVENT_ID.TOPIC.BODY` (the raw body bytes): the id and topic are signed with the payload,
//!   so neither can be swapped.
//! - Only a 2xx counts as delivered. A failed POST is tried again after an exponential backoff
//!   with jitter; after `max_attempts` the event becomes a dead letter and its key is parked:
//!   the key's later events go to the dead-letter list behind it (never around it), so the
//!   receiver sees each key's events in order. Other keys go on. `fusion hub dlq retry` sends
//!   dead letters again, in order per key.
//! - Per subscription and origin, a window of events is delivered (`concurrency` keys at a
//!   time, each
//!   key's events one after another), then the position and the window's dead letters are
//!   committed in one durable transaction. A crash inside a window sends it again: delivery is
//!   at least once, and receivers deduplicate by `X-Fusion-Event-Id`.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

pub use fusion_contracts::http::hub::{RetryReport, WebhookReport};
use fusion_contracts::{Envelope, NodeId};
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::store::{DeadLetter, HubStore, HubStoreError};

/// Events of one origin delivered before the position advances.
const WINDOW: usize = 256;

/// One webhook subscription, as configured (`[[webhook]]` in the hub config).
#[derive(Clone)]
pub struct Subscription {
    /// Unique; names its position and dead letters, so keep it when the URL changes.
    pub name: String,
    pub url: String,
    /// Topics sent: exact names, `prefix.*`, or `*` for all.
    pub topics: Vec<String>,
    pub secret: Vec<u8>,
    /// Attempts before an event becomes a dead letter (≥ 1).
    pub max_attempts: u32,
    /// Backoff before the second attempt; it doubles per attempt up to `backoff_max`.
    pub backoff_initial: Duration,
    pub backoff_max: Duration,
    /// Per POST.
    pub timeout: Duration,
    /// Keys delivered at the same time (each key's events stay one after another): with a
    /// receiver that answers in L seconds, at most `concurrency / L` events/s.
    pub concurrency: usize,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("topics", &self.topics)
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive() // never the secret
    }
}

impl Subscription {
    /// A subscription with the default policy: 8 attempts, 500 ms doubling to 30 s, 10 s per
    /// POST, 8 keys at a time.
    pub fn new(name: &str, url: &str, topics: Vec<String>, secret: Vec<u8>) -> Self {
        Self {
            name: name.to_string(),
            url: url.to_string(),
            topics,
            secret,
            max_attempts: 8,
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            timeout: Duration::from_secs(10),
            concurrency: 8,
        }
    }

    pub fn matches(&self, topic: &str) -> bool {
        self.topics.iter().any(|t| {
            t == "*"
                || t == topic
                || t.strip_suffix('*')
                    .is_some_and(|prefix| topic.starts_with(prefix))
        })
    }

    /// The wait before attempt `attempt + 1` (attempt ≥ 1): half the doubled backoff plus a
    /// random part of the other half ("equal jitter"), so retries of many events spread out.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doubled = self
            .backoff_initial
            .saturating_mul(1u32 << (attempt - 1).min(20))
            .min(self.backoff_max);
        let half = doubled / 2;
        let jitter = getrandom::u64().unwrap_or(0) % (half.as_millis() as u64 + 1);
        half + Duration::from_millis(jitter)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("webhook {name}: {message}")]
    Config { name: String, message: String },
    #[error(transparent)]
    Store(#[from] HubStoreError),
    #[error("no webhook subscription named {0:?}")]
    Unknown(String),
}

/// The signature header's value for an event: `sha256=` and the hex HMAC-SHA256 of
/// `EVENT_ID.TOPIC.BODY`.
pub fn signature(secret: &[u8], event_id: &str, topic: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(event_id.as_bytes());
    mac.update(b".");
    mac.update(topic.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// What a subscription did since the hub started.
#[derive(Default)]
struct Counters {
    delivered: AtomicU64,
    failed_attempts: AtomicU64,
    dead_lettered: AtomicU64,
    last_error: Mutex<Option<String>>,
}

struct Sub {
    config: Subscription,
    counters: Counters,
    /// Key → its dead letters not yet delivered; a key with any is parked. Loaded from the
    /// store when delivery starts; the live task adds, `retry` subtracts (it may dip below
    /// zero for a moment when a retry beats the live task's own bookkeeping: still unparked).
    parked: Mutex<HashMap<String, i64>>,
}

impl Sub {
    fn parked(&self) -> std::sync::MutexGuard<'_, HashMap<String, i64>> {
        self.parked.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_parked(&self, key: &str) -> bool {
        self.parked().get(key).is_some_and(|n| *n > 0)
    }

    fn note_error(&self, error: &str) {
        *self
            .counters
            .last_error
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some(error.to_string());
    }
}

/// Every configured subscription and the HTTP client they share.
pub struct Webhooks {
    subs: Vec<Arc<Sub>>,
    client: reqwest::Client,
    /// One retry at a time, so no dead letter is sent twice at once.
    retrying: tokio::sync::Mutex<()>,
}

impl Default for Webhooks {
    fn default() -> Self {
        Self::new(Vec::new()).expect("no subscriptions is valid")
    }
}

impl Webhooks {
    /// Checks the subscriptions: unique non-empty names, http(s) URLs, some topics, at least
    /// one attempt.
    pub fn new(subscriptions: Vec<Subscription>) -> Result<Self, WebhookError> {
        let mut names = std::collections::BTreeSet::new();
        for s in &subscriptions {
            let problem = |message: &str| WebhookError::Config {
                name: s.name.clone(),
                message: message.to_string(),
            };
            if s.name.trim().is_empty() {
                return Err(problem("name must not be empty"));
            }
            if !names.insert(s.name.clone()) {
                return Err(problem("name is used twice"));
            }
            match reqwest::Url::parse(&s.url) {
                Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                _ => return Err(problem("url must be an http:// or https:// URL")),
            }
            if s.topics.is_empty() {
                return Err(problem("topics must name at least one topic (or \"*\")"));
            }
            if s.max_attempts == 0 {
                return Err(problem("max_attempts must be at least 1"));
            }
            if s.concurrency == 0 {
                return Err(problem("concurrency must be at least 1"));
            }
            if s.secret.is_empty() {
                return Err(problem("the secret must not be empty"));
            }
        }
        Ok(Self {
            subs: subscriptions
                .into_iter()
                .map(|config| {
                    Arc::new(Sub {
                        config,
                        counters: Counters::default(),
                        parked: Mutex::default(),
                    })
                })
                .collect(),
            // A redirect is not a delivery: it counts as a failure like any non-2xx.
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .map_err(|e| WebhookError::Config {
                    name: "*".into(),
                    message: format!("HTTP client: {e}"),
                })?,
            retrying: tokio::sync::Mutex::new(()),
        })
    }

    pub fn is_empty(&self) -> bool {
        self.subs.is_empty()
    }

    pub fn names(&self) -> Vec<String> {
        self.subs.iter().map(|s| s.config.name.clone()).collect()
    }

    /// Starts delivering for every subscription; runs until the tasks are aborted.
    pub fn spawn(self: &Arc<Self>, store: Arc<HubStore>) -> Vec<tokio::task::JoinHandle<()>> {
        self.subs
            .iter()
            .map(|sub| {
                let this = self.clone();
                let sub = sub.clone();
                let store = store.clone();
                tokio::spawn(async move { this.run(sub, store).await })
            })
            .collect()
    }

    async fn run(&self, sub: Arc<Sub>, store: Arc<HubStore>) {
        let name = sub.config.name.clone();
        tracing::info!(webhook = %name, url = %sub.config.url, "delivering webhooks");
        loop {
            match store.dead_letters(Some(&name)) {
                Ok(letters) => {
                    let mut parked = sub.parked();
                    for letter in letters {
                        *parked.entry(letter.key).or_default() += 1;
                    }
                    break;
                }
                Err(error) => {
                    tracing::error!(webhook = %name, %error, "reading dead letters; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
        let appended = store.appended();
        loop {
            let notified = appended.notified();
            match self.pass(&sub, &store).await {
                Ok(0) => {
                    let _ = tokio::time::timeout(Duration::from_secs(1), notified).await;
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::error!(webhook = %name, %error, "webhook delivery");
                    sub.note_error(&error.to_string());
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// One window per origin that has events this subscription has not dealt with; returns
    /// how many events it dealt with.
    async fn pass(&self, sub: &Sub, store: &HubStore) -> Result<usize, WebhookError> {
        let name = &sub.config.name;
        let durable = store.durable_positions()?;
        let done = store.webhook_positions(name)?;
        let mut dealt = 0;
        for (origin, upto) in durable {
            let from = done.get(&origin).copied().unwrap_or(0) + 1;
            if from > upto {
                continue;
            }
            let origin_id = NodeId::new(origin.clone()).map_err(|e| WebhookError::Config {
                name: name.clone(),
                message: e.to_string(),
            })?;
            let window = store.events(&origin_id, from, WINDOW)?;
            let Some(last) = window.last().map(|e| e.seq) else {
                continue;
            };
            dealt += window.len();
            let store_id = store.origin_store(&origin)?;
            let dead = self.deliver_window(sub, window, store_id.as_deref()).await;
            store.advance_webhook(name, &origin, last, &dead)?;
            let mut parked = sub.parked();
            for letter in &dead {
                *parked.entry(letter.key.clone()).or_default() += 1;
            }
        }
        Ok(dealt)
    }

    /// Delivers a window's matching events, keys concurrently and each key in order; returns
    /// the dead letters, in (origin, seq) order.
    async fn deliver_window(
        &self,
        sub: &Sub,
        window: Vec<Envelope>,
        store_id: Option<&str>,
    ) -> Vec<DeadLetter> {
        let mut keys: Vec<(String, Vec<Envelope>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for e in window {
            if !sub.config.matches(e.topic()) {
                continue;
            }
            let key = e.key();
            let i = *index.entry(key.clone()).or_insert_with(|| {
                keys.push((key, Vec::new()));
                keys.len() - 1
            });
            keys[i].1.push(e);
        }
        let mut dead: Vec<DeadLetter> = futures_util::stream::iter(keys)
            .map(|(key, events)| self.deliver_key(sub, key, events, store_id))
            .buffer_unordered(sub.config.concurrency)
            .collect::<Vec<Vec<DeadLetter>>>()
            .await
            .into_iter()
            .flatten()
            .collect();
        dead.sort_by_key(|d| d.seq);
        dead
    }

    async fn deliver_key(
        &self,
        sub: &Sub,
        key: String,
        events: Vec<Envelope>,
        store_id: Option<&str>,
    ) -> Vec<DeadLetter> {
        let mut dead = Vec::new();
        let mut parked = sub.is_parked(&key);
        for e in events {
            let (attempts, error) = if parked {
                (
                    0,
                    format!("parked behind an earlier dead letter of key {key}"),
                )
            } else {
                match self.deliver(sub, &e, store_id).await {
                    Ok(()) => continue,
                    Err(failure) => failure,
                }
            };
            parked = true;
            sub.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(webhook = %sub.config.name, event_id = %e.event_id, %key, %error, "dead letter");
            dead.push(DeadLetter {
                subscription: sub.config.name.clone(),
                origin: e.origin.to_string(),
                seq: e.seq,
                event_id: e.event_id,
                topic: e.topic().to_string(),
                key: key.clone(),
                attempts,
                last_error: error,
                failed_at: fusion_sync::clock::now(),
            });
        }
        dead
    }

    /// Up to `max_attempts` POSTs with backoff; on failure the attempts made and the last error.
    async fn deliver(
        &self,
        sub: &Sub,
        e: &Envelope,
        store_id: Option<&str>,
    ) -> Result<(), (u32, String)> {
        let mut attempt = 1;
        loop {
            match self.post(&sub.config, e, attempt, store_id).await {
                Ok(()) => {
                    sub.counters.delivered.fetch_add(1, Ordering::Relaxed);
                    return Ok(());
                }
                Err(error) => {
                    sub.counters.failed_attempts.fetch_add(1, Ordering::Relaxed);
                    sub.note_error(&error);
                    if attempt >= sub.config.max_attempts {
                        return Err((attempt, error));
                    }
                    tokio::time::sleep(sub.config.backoff(attempt)).await;
                    attempt += 1;
                }
            }
        }
    }

    /// One POST; `Ok` only for a 2xx answer.
    async fn post(
        &self,
        sub: &Subscription,
        e: &Envelope,
        attempt: u32,
        store_id: Option<&str>,
    ) -> Result<(), String> {
        let body = e
            .event
            .payload_json()
            .map_err(|error| error.to_string())?
            .get()
            .as_bytes()
            .to_vec();
        let event_id = e.event_id.to_string();
        let topic = e.topic();
        let mut request = self
            .client
            .post(&sub.url)
            .timeout(sub.timeout)
            .header("content-type", "application/json")
            .header(
                "x-fusion-signature",
                signature(&sub.secret, &event_id, topic, &body),
            )
            .header("x-fusion-event-id", &event_id)
            .header("x-fusion-topic", topic)
            .header("x-fusion-key", e.key())
            .header("x-fusion-schema-version", e.schema_version.to_string())
            .header("x-fusion-correlation-id", e.correlation_id.to_string())
            .header("x-fusion-origin", e.origin.to_string())
            .header("x-fusion-seq", e.seq.to_string())
            .header("x-fusion-occurred-at", e.occurred_at.to_string())
            .header("x-fusion-attempt", attempt.to_string());
        if let Some(c) = e.causation_id {
            request = request.header("x-fusion-causation-id", c.to_string());
        }
        if let Some(store_id) = store_id {
            request = request.header("x-fusion-store", store_id);
        }
        match request.body(body).send().await {
            Ok(response) if response.status().is_success() => Ok(()),
            Ok(response) => Err(format!("HTTP {}", response.status())),
            Err(error) => Err(format!("POST {}: {error}", sub.url)),
        }
    }

    /// Sends dead letters again (subscription `name`, or all), one attempt each, in order per
    /// key: a key stops at its first failure, so its later letters stay behind it. A delivered
    /// letter leaves the list; a failed one counts the attempt.
    pub async fn retry(
        &self,
        store: &HubStore,
        name: Option<&str>,
    ) -> Result<RetryReport, WebhookError> {
        if let Some(n) = name
            && !self.subs.iter().any(|s| s.config.name == n)
        {
            return Err(WebhookError::Unknown(n.to_string()));
        }
        let _one_at_a_time = self.retrying.lock().await;
        let mut report = RetryReport::default();
        for sub in &self.subs {
            if name.is_some_and(|n| n != sub.config.name) {
                continue;
            }
            let letters = store.dead_letters(Some(&sub.config.name))?;
            let mut stopped = std::collections::HashSet::new();
            for letter in letters {
                if stopped.contains(&letter.key) {
                    report.remaining += 1;
                    continue;
                }
                report.attempted += 1;
                let origin =
                    NodeId::new(letter.origin.clone()).map_err(|e| WebhookError::Config {
                        name: sub.config.name.clone(),
                        message: e.to_string(),
                    })?;
                let event = store.events(&origin, letter.seq, 1)?.into_iter().next();
                let store_id = store.origin_store(&letter.origin)?;
                let sent = match &event {
                    Some(e) if e.seq == letter.seq => {
                        self.post(&sub.config, e, letter.attempts + 1, store_id.as_deref())
                            .await
                    }
                    _ => Err("the event is no longer in the hub's log".to_string()),
                };
                match sent {
                    Ok(()) => {
                        store.settle_dead_letter(&letter, None)?;
                        *sub.parked().entry(letter.key.clone()).or_default() -= 1;
                        sub.counters.delivered.fetch_add(1, Ordering::Relaxed);
                        report.delivered += 1;
                    }
                    Err(error) => {
                        store.settle_dead_letter(&letter, Some(&error))?;
                        sub.counters.failed_attempts.fetch_add(1, Ordering::Relaxed);
                        sub.note_error(&error);
                        stopped.insert(letter.key);
                        report.remaining += 1;
                    }
                }
            }
        }
        Ok(report)
    }

    /// Every subscription's state, with how far behind the durable log it is.
    pub fn reports(&self, store: &HubStore) -> Result<Vec<WebhookReport>, WebhookError> {
        let durable = store.durable_positions()?;
        let counts = store.dead_letter_counts()?;
        let mut out = Vec::new();
        for sub in &self.subs {
            let done = store.webhook_positions(&sub.config.name)?;
            let behind = durable
                .iter()
                .map(|(origin, upto)| upto.saturating_sub(done.get(origin).copied().unwrap_or(0)))
                .sum();
            let c = &sub.counters;
            out.push(WebhookReport {
                name: sub.config.name.clone(),
                url: sub.config.url.clone(),
                topics: sub.config.topics.clone(),
                behind,
                dead_letters: counts.get(&sub.config.name).copied().unwrap_or(0),
                delivered: c.delivered.load(Ordering::Relaxed),
                failed_attempts: c.failed_attempts.load(Ordering::Relaxed),
                dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
                last_error: c
                    .last_error
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .clone(),
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_filters() {
        let s = Subscription::new(
            "s",
            "http://x",
            vec!["payment.*".into(), "order.created".into()],
            b"k".to_vec(),
        );
        assert!(s.matches("payment.failed"));
        assert!(s.matches("order.created"));
        assert!(!s.matches("order.cancelled"));
        let all = Subscription::new("a", "http://x", vec!["*".into()], b"k".to_vec());
        assert!(all.matches("group-commerce.campaign.successful"));
    }

    #[test]
    fn backoff_doubles_within_jitter_and_caps() {
        let s = Subscription::new("s", "http://x", vec!["*".into()], b"k".to_vec());
        for attempt in 1..=12u32 {
            let full = (Duration::from_millis(500) * 2u32.pow(attempt - 1)).min(s.backoff_max);
            let wait = s.backoff(attempt);
            assert!(
                wait >= full / 2 && wait <= full,
                "attempt {attempt}: {wait:?}"
            );
        }
    }

    #[test]
    fn signature_is_the_hmac_of_id_topic_and_body() {
        // Computed independently: printf 'id.t.{}' | openssl dgst -sha256 -hmac secret
        let sig = signature(b"secret", "id", "t", b"{}");
        assert_eq!(
            sig,
            "sha256=04110e532cee7cd673e9b521585319fa421748e0fc0ffca77034adfadc4ca54e"
        );
    }
}
