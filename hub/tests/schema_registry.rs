//! Registering the topic schemas in a Confluent-API schema registry (Redpanda's).
//!
//! No such registry runs on this machine (Redpanda is not installable here and Karapace is not
//! on PyPI), so this drives `register_schemas` against a small registry written here that keeps
//! the API's documented behaviour for `POST /subjects/{subject}/versions`: the same schema
//! under a subject gets the same id again; an invalid one is refused with 422. Against a real
//! Redpanda the same requests are made.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use fusion_hub::export::{register_schemas, topics};
use serde_json::{Value, json};

#[derive(Default)]
struct Registry {
    /// subject → (schema text, id)
    subjects: Mutex<BTreeMap<String, (String, u64)>>,
    next_id: Mutex<u64>,
    refuse: Mutex<Option<String>>,
}

async fn register(
    State(registry): State<Arc<Registry>>,
    Path(subject): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> (StatusCode, axum::Json<Value>) {
    assert_eq!(
        headers.get("content-type").unwrap(),
        "application/vnd.schemaregistry.v1+json"
    );
    let body: Value = serde_json::from_slice(&body).unwrap();
    if registry.refuse.lock().unwrap().as_deref() == Some(subject.as_str()) {
        return (
            StatusCode::UNPROCESSABLE_ENTITY,
            axum::Json(json!({ "error_code": 42201, "message": "Invalid schema" })),
        );
    }
    assert_eq!(body["schemaType"], "JSON");
    let schema = body["schema"].as_str().unwrap().to_string();
    let mut subjects = registry.subjects.lock().unwrap();
    let id = match subjects.get(&subject) {
        Some((existing, id)) if *existing == schema => *id,
        _ => {
            let mut next = registry.next_id.lock().unwrap();
            *next += 1;
            subjects.insert(subject, (schema, *next));
            *next
        }
    };
    (StatusCode::OK, axum::Json(json!({ "id": id })))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_topic_schema_is_registered_once_per_version() {
    let registry = Arc::new(Registry::default());
    let app = axum::Router::new()
        .route(
            "/subjects/{subject}/versions",
            axum::routing::post(register),
        )
        .with_state(registry.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    assert_eq!(register_schemas(&url).await.unwrap(), topics().len());
    let first = registry.subjects.lock().unwrap().clone();
    assert_eq!(first.len(), topics().len());
    let schemas: BTreeMap<&str, Value> = fusion_contracts::Event::payload_schemas()
        .into_iter()
        .collect();
    for topic in topics() {
        let (text, _) = &first[&format!("{topic}-value")];
        let registered: Value = serde_json::from_str(text).unwrap();
        assert_eq!(registered, schemas[topic], "{topic}");
    }
    // At the next start: the same schemas, the same ids, nothing new.
    assert_eq!(register_schemas(&url).await.unwrap(), topics().len());
    assert_eq!(*registry.subjects.lock().unwrap(), first);

    // A refusal names the subject.
    *registry.refuse.lock().unwrap() = Some("order.created-value".into());
    let error = register_schemas(&url).await.unwrap_err().to_string();
    assert!(error.contains("order.created-value"), "{error}");
}
