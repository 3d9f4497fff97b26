//! Helpers shared by the hub's integration tests (each test crate uses some of them).
#![allow(dead_code)]

use std::time::{Duration, Instant};

use fusion_contracts::events::StockAdjusted;
use fusion_contracts::{CorrelationId, Envelope, Event, EventId, Sku, Timestamp};
use fusion_sync::proto::VecLog;
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;

use fusion_contracts::StoreId;
use fusion_hub::Hub;
use fusion_node::replication::{PeerLink, SyncLinks};
use fusion_node::server::{self, Node};
use fusion_node::store::{Store, StoreOptions};
use fusion_sync::net;

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

/// GETs `path` until it answers 200 with a body `done` accepts (30 s at most).
pub async fn eventually(
    api: &Api,
    path: &str,
    what: &str,
    mut done: impl FnMut(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, body) = api.get(path).await;
        if status == 200 && done(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: {path} → {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
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

/// A real node (HTTP, redb, writer) syncing over iroh with the given peers.
pub struct Till {
    pub api: Api,
    pub node_id: String,
    pub store: Store,
    shutdown: tokio::sync::oneshot::Sender<()>,
    served: tokio::task::JoinHandle<()>,
    sync: fusion_node::replication::SyncTasks,
}

impl Till {
    pub async fn start(dir: &Path, endpoint: net::Endpoint, peers: Vec<PeerLink>) -> Till {
        Self::start_with(dir, endpoint, peers, Default::default()).await
    }

    /// `start`, taking card payments offline under `policy` (its floor limit and budget share).
    pub async fn start_with(
        dir: &Path,
        endpoint: net::Endpoint,
        peers: Vec<PeerLink>,
        policy: fusion_node::card::PaymentPolicy,
    ) -> Till {
        let options = StoreOptions {
            store_id: Some(StoreId::new("store-1").unwrap()),
            ..StoreOptions::default()
        };
        // A previous till on this dir may still be letting go of its file.
        let deadline = Instant::now() + Duration::from_secs(20);
        let node = loop {
            match Node::open(dir, options.clone()).await {
                Ok(node) => break node,
                Err(e) => {
                    assert!(Instant::now() < deadline, "reopening the node: {e:#}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        };
        let store = node.store().clone();
        let admin = std::fs::read_to_string(&node.admin_token_path)
            .unwrap()
            .trim()
            .to_string();
        let links = Arc::new(SyncLinks {
            endpoint_id: endpoint.id(),
            peers,
            relay: None,
        });
        let sync = fusion_node::replication::start(&store, endpoint, &links);
        let node = node.with_sync_links(links).with_payment_policy(policy);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let served = tokio::spawn(async move {
            server::serve(listener, node.state.clone(), async {
                let _ = stop.await;
            })
            .await
            .unwrap();
        });
        Till {
            api: Api {
                http: reqwest::Client::new(),
                url,
                token: admin,
            },
            node_id: store.node_id().to_string(),
            store,
            shutdown,
            served,
            sync,
        }
    }

    pub async fn stop(self) {
        let _ = self.shutdown.send(());
        self.served.await.unwrap();
        self.sync.stop().await;
        let store = self.store;
        tokio::task::spawn_blocking(move || store.shutdown())
            .await
            .unwrap();
    }
}

/// A hub serving HTTP and sync until `stop`.
pub struct Served {
    pub hub: Arc<Hub>,
    pub api: Api,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
    pub id: net::EndpointId,
    pub addr: std::net::SocketAddr,
}

impl Served {
    /// Stops serving (the sync endpoint closes, cutting its connections) and lets go.
    pub async fn stop(self) {
        let _ = self.stop.send(());
        self.task.await.unwrap();
        drop(self.hub);
    }
}

pub async fn serve_hub(dir: &std::path::Path) -> Served {
    serve_hub_with(dir, |hub| hub).await
}

/// `serve_hub`, with `configure` applied to the opened hub (webhooks, export) before it serves.
pub async fn serve_hub_with(dir: &std::path::Path, configure: impl FnOnce(Hub) -> Hub) -> Served {
    // A previous hub on this dir may still be letting go of its file.
    let deadline = Instant::now() + Duration::from_secs(20);
    let hub = loop {
        match Hub::open(dir) {
            Ok(hub) => break Arc::new(configure(hub)),
            Err(e) => {
                assert!(Instant::now() < deadline, "opening the hub: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    let ep = net::offline_endpoint(
        net::load_or_create_identity(dir).unwrap(),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let (id, addr) = (ep.id(), ep.bound_sockets()[0]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = {
        let hub = hub.clone();
        tokio::spawn(async move {
            hub.serve(listener, ep, async {
                let _ = stopped.await;
            })
            .await
            .unwrap()
        })
    };
    let token = std::fs::read_to_string(dir.join("admin.token"))
        .unwrap()
        .trim()
        .to_string();
    let api = Api {
        http: reqwest::Client::new(),
        url,
        token,
    };
    Served {
        hub,
        api,
        stop,
        task,
        id,
        addr,
    }
}
