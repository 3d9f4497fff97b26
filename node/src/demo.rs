//! Demo data: a small café catalog with stock, created through the normal command path (so it
//! is in the event log like any other change). Only seeds a store that has no products yet.

use fusion_contracts::commands::{CatalogCommand, CreateProduct};
use fusion_contracts::{CorrelationId, Currency, Money, ProductId, Sku};
use uuid::Uuid;

use crate::store::{Command, Store, StoreError, WriteRequest};

/// (sku, name, price in cents, stock, category)
const DEMO_PRODUCTS: &[(&str, &str, i64, u64, &str)] = &[
    ("COF-ESP-250", "Espresso beans 250 g", 1299, 40, "coffee"),
    ("COF-FIL-500", "Filter coffee 500 g", 1849, 25, "coffee"),
    ("TEA-GRN-100", "Green tea 100 g", 799, 30, "tea"),
    ("TEA-CHAI-100", "Masala chai 100 g", 899, 18, "tea"),
    ("MUG-STONE", "Stoneware mug", 1450, 12, "equipment"),
    ("CUP-KEEP-12", "Keep cup 12 oz", 2199, 10, "equipment"),
    ("GRN-HAND", "Hand grinder", 4999, 5, "equipment"),
    ("SYR-VAN", "Vanilla syrup", 650, 24, "syrups"),
];

/// Creates the demo products if the catalog is empty; returns how many it created.
pub async fn seed(store: &Store) -> Result<usize, StoreError> {
    if !store.read()?.products(1, 0)?.is_empty() {
        return Ok(0);
    }
    for (sku, name, cents, stock, category) in DEMO_PRODUCTS {
        let command = CreateProduct {
            product_id: ProductId(Uuid::now_v7()),
            sku: Sku::new(*sku).expect("demo skus are valid"),
            name: (*name).to_string(),
            description: None,
            price: Money {
                minor: *cents,
                currency: Currency::USD,
            },
            inventory: *stock,
            tax_class: None,
            category: Some((*category).to_string()),
        };
        let request = WriteRequest {
            command: Command::Catalog(CatalogCommand::CreateProduct(command)),
            correlation_id: CorrelationId::new("demo-seed").expect("valid correlation id"),
            command_id: Uuid::now_v7(),
            idempotency: None,
        };
        store
            .write(request)
            .await?
            .decision
            .map_err(|e| StoreError::Invariant(format!("demo seed refused: {e}")))?;
    }
    Ok(DEMO_PRODUCTS.len())
}

/// The demo's staff: (id, name, role, PIN). Printed at start; a real store adds its own.
pub const DEMO_STAFF: &[(&str, &str, fusion_contracts::http::Role, &str)] = &[
    ("ana", "Ana", fusion_contracts::http::Role::Cashier, "1234"),
    ("max", "Max", fusion_contracts::http::Role::Manager, "9999"),
];

/// Adds the demo staff to the store's settings if it has none (and a store id).
pub async fn seed_staff(store: &Store) -> Result<bool, StoreError> {
    if store.store_id().is_none() || !store.settings().staff.is_empty() {
        return Ok(false);
    }
    let mut change = fusion_contracts::http::SettingsChange::default();
    for (id, name, role, pin) in DEMO_STAFF {
        let pin = (*pin).to_string();
        let pin_hash = tokio::task::spawn_blocking(move || fusion_http::pin::hash(&pin))
            .await
            .map_err(|e| StoreError::Invariant(e.to_string()))?
            .map_err(|e| StoreError::Invariant(format!("hashing a demo PIN: {e}")))?;
        change.staff.insert(
            fusion_contracts::StaffId::new(*id).expect("demo staff ids are valid"),
            fusion_contracts::http::staff::StaffRecord {
                name: (*name).to_string(),
                role: *role,
                pin_hash,
                active: true,
            },
        );
    }
    Ok(store.update_settings(&change).await?.is_ok())
}
