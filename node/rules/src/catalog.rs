//! Catalog: products, their prices and skus. Pure decide / apply.

use fusion_contracts::commands::{ArchiveProduct, CreateProduct, UpdateProduct};
use fusion_contracts::events::{ProductArchived, ProductCreated, ProductStatus, ProductUpdated};
use fusion_contracts::http::price;
use fusion_contracts::{Event, Money, ProductId, Sku, Timestamp};
use serde::{Deserialize, Serialize};

use super::inventory::{self, StockLevel};

pub use fusion_contracts::events::Product;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum CatalogRejected {
    #[error("product {0} not found")]
    NotFound(ProductId),
    #[error("sku {sku} is already used by product {product_id}")]
    SkuTaken { sku: Sku, product_id: ProductId },
    #[error("product {0} is archived")]
    Archived(ProductId),
    /// A field that is valid on its own but not for this product (a price with more decimals
    /// than the product's currency, a different sku).
    #[error("{field} {message}")]
    InvalidField { field: String, message: String },
}

/// Creating a product also seeds its sku's stock (`inventory.adjusted`, reason `product.created`).
pub fn create(
    cmd: &CreateProduct,
    sku_owner: Option<ProductId>,
    stock: &StockLevel,
    now: Timestamp,
) -> Result<Vec<Event>, CatalogRejected> {
    if let Some(product_id) = sku_owner {
        return Err(CatalogRejected::SkuTaken {
            sku: cmd.sku.clone(),
            product_id,
        });
    }
    assert!(
        cmd.price.minor >= 0,
        "create product: price validated non-negative at the edge"
    );
    let created = ProductCreated {
        id: cmd.product_id,
        sku: cmd.sku.clone(),
        name: cmd.name.clone(),
        description: cmd.description.clone(),
        price: cmd.price.to_decimal(),
        currency: cmd.price.currency,
        inventory: cmd.inventory,
        created_at: now,
        tax_class: cmd.tax_class.clone(),
        category: cmd.category.clone(),
    };
    let seed = inventory::seed(&cmd.sku, stock, cmd.inventory);
    Ok(vec![created.into(), seed])
}

/// Changes what differs; a request that changes nothing records nothing.
pub fn update(
    product: Option<&Product>,
    cmd: &UpdateProduct,
    now: Timestamp,
) -> Result<Vec<Event>, CatalogRejected> {
    let product = product.ok_or(CatalogRejected::NotFound(cmd.product_id))?;
    if product.status == ProductStatus::Archived {
        return Err(CatalogRejected::Archived(product.id));
    }
    if cmd.sku.as_ref().is_some_and(|sku| *sku != product.sku) {
        return Err(CatalogRejected::InvalidField {
            field: "sku".into(),
            message: "cannot be changed; archive the product and create a new one".into(),
        });
    }
    let currency = cmd.currency.unwrap_or(product.price.currency);
    let amount = cmd.price.unwrap_or(product.price.to_decimal());
    let new_price =
        price("price", amount, currency).map_err(|e| CatalogRejected::InvalidField {
            field: e.field,
            message: e.message,
        })?;
    let name = cmd.name.clone().unwrap_or_else(|| product.name.clone());
    let description = cmd
        .description
        .clone()
        .unwrap_or_else(|| product.description.clone());
    let tax_class = cmd
        .tax_class
        .clone()
        .unwrap_or_else(|| product.tax_class.clone());
    let category = cmd
        .category
        .clone()
        .unwrap_or_else(|| product.category.clone());
    let mut changed = Vec::new();
    if name != product.name {
        changed.push("name".to_string());
    }
    if description != product.description {
        changed.push("description".to_string());
    }
    if new_price.minor != product.price.minor {
        changed.push("price".to_string());
    }
    if new_price.currency != product.price.currency {
        changed.push("currency".to_string());
    }
    // `standard` named or left out is the same class.
    if tax_class.as_deref().unwrap_or(crate::tax::STANDARD) != product.tax_class() {
        changed.push("taxClass".to_string());
    }
    if category != product.category {
        changed.push("category".to_string());
    }
    if changed.is_empty() {
        return Ok(Vec::new());
    }
    Ok(vec![
        ProductUpdated {
            id: product.id,
            sku: product.sku.clone(),
            name,
            description,
            price: new_price.to_decimal(),
            currency: new_price.currency,
            changed,
            updated_at: now,
            tax_class,
            category,
        }
        .into(),
    ])
}

/// Archiving twice is not an error: the second time records nothing.
pub fn archive(
    product: Option<&Product>,
    cmd: &ArchiveProduct,
    now: Timestamp,
) -> Result<Vec<Event>, CatalogRejected> {
    let product = product.ok_or(CatalogRejected::NotFound(cmd.product_id))?;
    if product.status == ProductStatus::Archived {
        return Ok(Vec::new());
    }
    Ok(vec![
        ProductArchived {
            id: product.id,
            sku: product.sku.clone(),
            archived_at: now,
        }
        .into(),
    ])
}

/// Folds a catalog event into the product it names; other events leave it alone.
pub fn apply(product: &mut Option<Product>, event: &Event) {
    match event {
        Event::ProductCreated(e) => {
            *product = Some(Product {
                id: e.id,
                sku: e.sku.clone(),
                name: e.name.clone(),
                description: e.description.clone(),
                price: Money::from_decimal(e.price, e.currency).expect("validated event"),
                status: ProductStatus::Active,
                created_at: e.created_at,
                updated_at: e.created_at,
                tax_class: e.tax_class.clone(),
                category: e.category.clone(),
            });
        }
        Event::ProductUpdated(e) => {
            if let Some(p) = product {
                p.name = e.name.clone();
                p.description = e.description.clone();
                p.price = Money::from_decimal(e.price, e.currency).expect("validated event");
                p.updated_at = e.updated_at;
                p.tax_class = e.tax_class.clone();
                p.category = e.category.clone();
            }
        }
        Event::ProductArchived(e) => {
            if let Some(p) = product {
                p.status = ProductStatus::Archived;
                p.updated_at = e.archived_at;
            }
        }
        _ => {}
    }
}

/// Whether a product answers a till's search for `query` (already trimmed, not empty): its
/// sku starts with it, or its name contains it, ignoring case; every word of the query must
/// match so ("oil olive" finds "Olive oil 500 ml").
pub fn matches(sku: &str, name: &str, query: &str) -> bool {
    let query = query.to_lowercase();
    if sku.to_lowercase().starts_with(&query) {
        return true;
    }
    let name = name.to_lowercase();
    query.split_whitespace().all(|word| name.contains(word))
}

#[cfg(test)]
mod tests {
    use super::*;
    use fusion_contracts::{Currency, Decimal};

    /// (sku, name, query) → found
    #[test]
    fn a_search_finds_by_sku_prefix_or_every_word_of_the_name() {
        let cases: &[(&str, &str, &str, bool)] = &[
            ("4006381333931", "Olive oil 500 ml", "4006381", true),
            ("4006381333931", "Olive oil 500 ml", "333931", false),
            ("OIL-500", "Olive oil 500 ml", "oil-", true),
            ("OIL-500", "Olive oil 500 ml", "olive", true),
            ("OIL-500", "Olive oil 500 ml", "OIL OLIVE", true),
            ("OIL-500", "Olive oil 500 ml", "olive butter", false),
            ("CAFE", "Café au lait", "CAFÉ", true),
            ("CAFE", "Café au lait", "tea", false),
        ];
        for (sku, name, query, found) in cases {
            assert_eq!(matches(sku, name, query), *found, "{sku} {name} / {query}");
        }
    }

    const NOW: Timestamp = Timestamp::from_unix_ms(1_000);

    fn create_cmd() -> CreateProduct {
        CreateProduct {
            product_id: ProductId::from_u128(1),
            sku: Sku::new("TEA").unwrap(),
            name: "Tea".into(),
            description: None,
            price: Money {
                minor: 450,
                currency: Currency::USD,
            },
            inventory: 12,
            tax_class: None,
            category: None,
        }
    }

    fn created() -> Product {
        let mut product = None;
        for e in create(&create_cmd(), None, &StockLevel::default(), NOW).unwrap() {
            apply(&mut product, &e);
        }
        product.unwrap()
    }

    fn update_cmd() -> UpdateProduct {
        UpdateProduct {
            product_id: ProductId::from_u128(1),
            name: None,
            description: None,
            price: None,
            currency: None,
            sku: None,
            tax_class: None,
            category: None,
        }
    }

    #[test]
    fn create_records_the_product_and_seeds_stock() {
        let events = create(&create_cmd(), None, &StockLevel::default(), NOW).unwrap();
        assert_eq!(
            events.iter().map(Event::topic).collect::<Vec<_>>(),
            ["product.created", "inventory.adjusted"]
        );
        let Event::StockAdjusted(seed) = &events[1] else {
            panic!()
        };
        assert_eq!(
            (seed.previous_quantity, seed.quantity, seed.delta),
            (0, 12, 12)
        );
        assert_eq!(created().price.minor, 450);
    }

    #[test]
    fn duplicate_sku_is_refused() {
        let taken = Some(ProductId::from_u128(9));
        let err = create(&create_cmd(), taken, &StockLevel::default(), NOW).unwrap_err();
        assert!(matches!(err, CatalogRejected::SkuTaken { .. }));
    }

    #[test]
    fn update_table() {
        let product = created();
        type Case = (
            &'static str,
            UpdateProduct,
            Result<Vec<&'static str>, &'static str>,
        );
        let cases: Vec<Case> = vec![
            ("nothing changes", update_cmd(), Ok(vec![])),
            (
                "same name",
                UpdateProduct {
                    name: Some("Tea".into()),
                    ..update_cmd()
                },
                Ok(vec![]),
            ),
            (
                "new price",
                UpdateProduct {
                    price: Some(Decimal::new(499, 2)),
                    ..update_cmd()
                },
                Ok(vec!["price"]),
            ),
            (
                "currency without decimals",
                UpdateProduct {
                    currency: Some(Currency::JPY),
                    ..update_cmd()
                },
                Err("price has more decimals than JPY allows (0)"),
            ),
            (
                "currency with a fitting price",
                UpdateProduct {
                    currency: Some(Currency::JPY),
                    price: Some(Decimal::new(700, 0)),
                    ..update_cmd()
                },
                Ok(vec!["price", "currency"]),
            ),
            (
                "clear description",
                UpdateProduct {
                    description: Some(None),
                    ..update_cmd()
                },
                Ok(vec![]),
            ),
            (
                "other sku",
                UpdateProduct {
                    sku: Some(Sku::new("X").unwrap()),
                    ..update_cmd()
                },
                Err("sku cannot be changed; archive the product and create a new one"),
            ),
        ];
        for (name, cmd, expected) in cases {
            let got = update(Some(&product), &cmd, NOW).map_err(|e| e.to_string());
            let got = got.map(|events| match events.first() {
                Some(Event::ProductUpdated(u)) => u.changed.clone(),
                _ => vec![],
            });
            let expected = expected
                .map(|v| v.into_iter().map(String::from).collect::<Vec<_>>())
                .map_err(String::from);
            assert_eq!(got, expected, "{name}");
        }
    }

    #[test]
    fn archived_products_cannot_change_and_archive_is_idempotent() {
        let mut product = Some(created());
        let cmd = ArchiveProduct {
            product_id: ProductId::from_u128(1),
        };
        for e in archive(product.as_ref(), &cmd, NOW).unwrap() {
            apply(&mut product, &e);
        }
        assert_eq!(product.as_ref().unwrap().status, ProductStatus::Archived);
        assert_eq!(archive(product.as_ref(), &cmd, NOW).unwrap(), vec![]);
        let err = update(
            product.as_ref(),
            &UpdateProduct {
                name: Some("x".into()),
                ..update_cmd()
            },
            NOW,
        );
        assert!(matches!(err, Err(CatalogRejected::Archived(_))));
        assert!(matches!(
            archive(None, &cmd, NOW),
            Err(CatalogRejected::NotFound(_))
        ));
    }
}
