//! The fleet's log and what is read from it: `GET /events` (pages over every origin),
//! `GET /fleet/sales`, `/fleet/stores`, `/fleet/stock`, `/fleet/orders/{id}`.

use std::collections::HashMap;

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fusion_contracts::Timestamp;
use fusion_contracts::http::hub::{FleetEventsPage, FleetOrder};
use fusion_http::{ApiError, blocking};
use fusion_sync::net::EndpointId;
use serde::{Deserialize, Serialize};

use super::{HubState, Viewer, ok};
use crate::store::FleetFilter;

pub(super) const EVENTS_LIMIT_MAX: usize = 1000;

pub(super) const EVENTS_LIMIT_DEFAULT: usize = 100;

/// Events one page may look at while filtering (a rare topic ends a page early, with `next`).
pub(super) const EVENTS_SCAN_MAX: usize = 20_000;

pub(super) async fn events(
    State(state): State<HubState>,
    _caller: Viewer,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let limit = match query.get("limit").map(|l| l.parse::<usize>()) {
        None => EVENTS_LIMIT_DEFAULT,
        Some(Ok(n)) if (1..=EVENTS_LIMIT_MAX).contains(&n) => n,
        Some(_) => {
            return Err(ApiError::validation(
                "limit",
                "must be an integer from 1 to 1000",
            ));
        }
    };
    let after = match query.get("after") {
        None => None,
        Some(cursor) => match cursor
            .rsplit_once(':')
            .and_then(|(origin, seq)| Some((origin.to_string(), seq.parse::<u64>().ok()?)))
        {
            Some(after) => Some(after),
            None => {
                return Err(ApiError::validation(
                    "after",
                    "must be the `next` cursor of a previous page",
                ));
            }
        },
    };
    let filter = FleetFilter {
        store: query.get("store").cloned(),
        origin: query.get("origin").cloned(),
        topic: query.get("topic").cloned(),
    };
    let store = state.store.clone();
    let page = blocking(move || store.fleet_events(&filter, after, limit, EVENTS_SCAN_MAX)).await?;
    let events = page
        .events
        .iter()
        .map(|e| e.to_record())
        .collect::<Result<_, _>>()
        .map_err(ApiError::internal_from)?;
    let body = FleetEventsPage {
        events,
        next: page.next.map(|(origin, seq)| format!("{origin}:{seq}")),
        complete: page.complete,
    };
    Ok(ok(&body))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SalesBody {
    pub(super) store_id: String,
    pub(super) day: String,
    pub(super) orders: i64,
    pub(super) total: fusion_contracts::Decimal,
    pub(super) currency: fusion_contracts::Currency,
}

pub(super) async fn sales(
    State(state): State<HubState>,
    _caller: Viewer,
) -> Result<Response, ApiError> {
    let store = state.store.clone();
    let rows = blocking(move || store.sales()).await?;
    let body: Vec<SalesBody> = rows
        .into_iter()
        .map(|r| SalesBody {
            store_id: r.store_id,
            day: r.day,
            orders: r.orders,
            total: r.total.to_decimal(),
            currency: r.total.currency,
        })
        .collect();
    Ok(ok(&body))
}

/// `GET /fleet/sessions?store=&day=`: every till's Z reports, by store and day (UTC) of the
/// close.
pub(super) async fn sessions(
    State(state): State<HubState>,
    _caller: Viewer,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let store_id = query.get("store").cloned();
    let day = query.get("day").cloned();
    if let Some(d) = &day {
        let valid = d.len() == 10
            && d.bytes().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        if !valid {
            return Err(ApiError::validation("day", "must be YYYY-MM-DD"));
        }
    }
    let store = state.store.clone();
    let rows = blocking(move || store.sessions(store_id.as_deref(), day.as_deref())).await?;
    Ok(ok(&rows))
}

/// One store of `GET /fleet/stores`.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct FleetStore {
    pub(super) store_id: String,
    pub(super) tills: u64,
    pub(super) connected: u64,
    /// The latest contact of any of its tills since this hub process started.
    pub(super) last_contact: Option<Timestamp>,
    /// Events the hub holds from the store's tills.
    pub(super) events: u64,
    /// Each till's journal as the hub holds it: how far it is proven the till's own.
    pub(super) journals: Vec<TillJournal>,
}

/// A till's journal at the hub (`GET /fleet/stores`).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TillJournal {
    /// The till's origin (its node id).
    pub(super) node_id: String,
    /// The sync endpoint that delivered it (the till's enrollment id; absent for the hub's
    /// holder of the store).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) endpoint_id: Option<String>,
    /// Events held, 1 to this seq, each chained to the one before.
    pub(super) events: u64,
    /// The till's signature vouches for every event up to this seq (the latest checkpoint
    /// the hub verified).
    pub(super) verified_up_to: u64,
    /// When the newest event the hub holds was recorded at the till: how current the hub's
    /// copy is (a till offline since then may hold more).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) latest_at: Option<Timestamp>,
}

impl FleetStore {
    pub(super) fn new(store_id: String) -> Self {
        Self {
            store_id,
            tills: 0,
            connected: 0,
            last_contact: None,
            events: 0,
            journals: Vec::new(),
        }
    }
}

pub(super) fn fleet_store_rows(state: &HubState) -> Result<Vec<FleetStore>, String> {
    use fusion_sync::net::EventSink;
    let connected = state.gate.connected();
    let mut rows: std::collections::BTreeMap<String, FleetStore> = Default::default();
    for (node_id, store_id) in state.store.enrollments().map_err(|e| e.to_string())? {
        let entry = rows
            .entry(store_id.clone())
            .or_insert_with(|| FleetStore::new(store_id));
        entry.tills += 1;
        if let Ok(id) = node_id.parse::<EndpointId>() {
            if connected.contains(&id) {
                entry.connected += 1;
            }
            if let Some(ms) = state.gate.last_contact_ms(id) {
                let at = Timestamp::from_unix_ms(ms);
                if entry.last_contact.is_none_or(|c| c < at) {
                    entry.last_contact = Some(at);
                }
            }
        }
    }
    for (origin, position) in state.store.positions() {
        if let Some(store_id) = state
            .store
            .origin_store(origin.as_str())
            .map_err(|e| e.to_string())?
        {
            let verified_up_to = match fusion_rules::authority::kind_of(&origin) {
                fusion_rules::authority::OriginKind::Till => state
                    .store
                    .verified_checkpoint(&origin)
                    .map_err(|e| e.to_string())?
                    .map_or(0, |c| c.seq),
                // The hub's holder of the store: its own journal, signed by the hub.
                _ => position,
            };
            let row = rows
                .entry(store_id.clone())
                .or_insert_with(|| FleetStore::new(store_id));
            row.events += position;
            row.journals.push(TillJournal {
                node_id: origin.to_string(),
                endpoint_id: state
                    .store
                    .origin_peer(origin.as_str())
                    .map_err(|e| e.to_string())?,
                events: position,
                verified_up_to,
                latest_at: state
                    .store
                    .event_time(origin.as_str(), position)
                    .map_err(|e| e.to_string())?,
            });
        }
    }
    Ok(rows.into_values().collect())
}

pub(super) async fn fleet_stores(
    State(state): State<HubState>,
    _caller: Viewer,
) -> Result<Response, ApiError> {
    let rows = blocking(move || fleet_store_rows(&state)).await?;
    Ok(ok(&rows))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StockQuery {
    pub(super) sku: Option<String>,
    pub(super) store: Option<String>,
}

/// The `sku` and `store` filters; anything else is a 400.
pub(super) fn stock_query(
    query: Result<Query<StockQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<StockQuery, ApiError> {
    query.map(|Query(q)| q).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            format!("{}; the parameters are sku and store", e.body_text()),
        )
    })
}

pub(super) async fn fleet_stock(
    State(state): State<HubState>,
    _caller: Viewer,
    query: Result<Query<StockQuery>, axum::extract::rejection::QueryRejection>,
) -> Result<Response, ApiError> {
    let query = stock_query(query)?;
    let store = state.store.clone();
    let rows =
        blocking(move || store.fleet_stock(query.sku.as_deref(), query.store.as_deref())).await?;
    Ok(ok(&rows))
}

pub(super) async fn fleet_order(
    State(state): State<HubState>,
    _caller: Viewer,
    UrlPath(id): UrlPath<String>,
) -> Result<Response, ApiError> {
    use fusion_contracts::Event;
    let not_found =
        || ApiError::not_found(format!("order {id} not found in the fleet")).with_field("id");
    let order_id = fusion_contracts::OrderId::parse(&id).ok_or_else(not_found)?;
    let store = state.store.clone();
    let events = blocking(move || store.order_events(order_id)).await?;
    let first = events.first().ok_or_else(not_found)?;
    let origin = first.origin.to_string();
    // The order as the till folds it (the rulebook's `orders::apply`), over every event of it.
    let mut folded: Option<fusion_rules::Order> = None;
    let mut refused_stock = false;
    let mut records = Vec::with_capacity(events.len());
    for e in &events {
        if let Err(refused) = fusion_rules::orders::apply(&mut folded, &e.event) {
            tracing::warn!(%refused, order = %order_id, "an order event refused");
        }
        refused_stock |= matches!(e.event, Event::InventoryInsufficient(_));
        records.push(e.to_record().map_err(ApiError::internal_from)?);
    }
    let status = match &folded {
        Some(o) => serde_json::to_value(o.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default(),
        None if refused_stock => "refused".into(),
        None => "created".into(),
    };
    let order = FleetOrder {
        order_id,
        store_id: state
            .store
            .origin_store(&origin)
            .map_err(ApiError::internal_from)?,
        origin,
        status,
        flagged: folded.as_ref().is_some_and(|o| o.flag.is_some()),
        customer_id: folded.as_ref().map(|o| o.customer_id.to_string()),
        total: folded.as_ref().map(|o| o.total.to_decimal()),
        currency: folded.as_ref().map(|o| o.total.currency),
        created_at: folded.as_ref().map(|o| o.created_at),
        events: records,
    };
    Ok(ok(&order))
}

/// `GET /journal/{origin}?from=&to=`: an auditor's export of a till's journal as the hub
/// holds it (up to the till's last verified signature), or of one of the hub's own (signed
/// now), as JSON lines (`docs/JOURNAL.md`); `fusion journal verify --hub-url` checks it.
pub(super) async fn journal(
    State(state): State<HubState>,
    _caller: Viewer,
    UrlPath(origin): UrlPath<String>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let from = fusion_http::query_number(&query, "from", 1, 1, usize::MAX)? as u64;
    let to = fusion_http::query_number(&query, "to", usize::MAX, 1, usize::MAX)? as u64;
    let not_found = || {
        ApiError::not_found(format!(
            "the hub holds no verified journal of {origin} from seq {from}"
        ))
        .with_field("origin")
    };
    let node = fusion_contracts::NodeId::new(origin.clone()).map_err(|_| not_found())?;
    let store = state.store.clone();
    let body = blocking(move || store.export_journal(&node, from, to)).await?;
    let body = body.ok_or_else(not_found)?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/x-ndjson")],
        body,
    )
        .into_response())
}
