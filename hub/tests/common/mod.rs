//! Helpers shared by the hub's integration tests (each test crate uses some of them).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use fusion_contracts::events::StockAdjusted;
use fusion_contracts::{CorrelationId, Envelope, Event, EventId, Sku, Timestamp};
use fusion_sync::proto::VecLog;
use serde_json::Value;

/// Appends `n` stock adjustments to `log`, numbered on from its last seq.
pub fn append(log: &VecLog, n: u64) {
    let first = log.next_seq();
    log.extend((first..first + n).map(|seq| {
        let event = Event::StockAdjusted(StockAdjusted {
            sku: Sku::new("SKU").unwrap(),
            previous_quantity: seq - 1,
            quantity: seq,
            delta: 1,
            reason: "hub test".into(),
        });
        Envelope::new(
            EventId::from_u128(seq.into()),
            log.origin().clone(),
            seq,
            Timestamp::from_unix_ms(seq as i64),
            CorrelationId::new("hub-test").unwrap(),
            None,
            event,
        )
        .unwrap()
        .encode()
    }));
}

pub async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An HTTP client of a node or hub API with a bearer token.
pub struct Api {
    pub http: reqwest::Client,
    pub url: String,
    pub token: String,
}

impl Api {
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }
}
