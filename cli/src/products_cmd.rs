//! `fusion products …`: the catalog of a node. Products are named by id or by sku.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, anyhow};
use clap::Subcommand;
use fusion_contracts::Decimal;
use fusion_contracts::http::ProductResponse;
use reqwest::Method;
use serde::Serialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::client::{Client, Target};
use crate::output::{self, Column};
use crate::progress::Progress;

const COLUMNS: &[Column] = &[
    ("ID", "id"),
    ("SKU", "sku"),
    ("NAME", "name"),
    ("PRICE", "price"),
    ("CURRENCY", "currency"),
    ("STOCK", "inventory"),
    ("STATUS", "status"),
];
/// Products fetched per page when listing everything (the API's largest page).
const PAGE: usize = 200;
/// Rows imported concurrently.
const IMPORT_PARALLEL: usize = 16;
/// The CSV columns of export, in order, and those import knows (in any order; `inventory`,
/// `description`, `taxClass` and `category` may be left out or empty).
const CSV_HEADER: [&str; 8] = [
    "sku",
    "name",
    "price",
    "currency",
    "inventory",
    "description",
    "taxClass",
    "category",
];

#[derive(Subcommand)]
pub enum ProductsCommand {
    /// Create a product (manager).
    Add {
        #[arg(long)]
        sku: String,
        #[arg(long)]
        name: String,
        /// Price as a decimal in the currency, e.g. 4.50.
        #[arg(long)]
        price: String,
        #[arg(long, default_value = "USD")]
        currency: String,
        #[arg(long)]
        description: Option<String>,
        /// Initial stock at this node.
        #[arg(long, default_value_t = 0)]
        inventory: u64,
        /// The tax class its lines are taxed by (default `standard`).
        #[arg(long)]
        tax_class: Option<String>,
        /// What promotions of a category apply to.
        #[arg(long)]
        category: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Show a product by id or sku.
    Get {
        product: String,
        #[command(flatten)]
        target: Target,
    },
    /// List active products.
    List {
        #[command(flatten)]
        paging: output::Paging,
        #[command(flatten)]
        target: Target,
    },
    /// Change a product's name, description, price, tax class or category (manager).
    Update {
        product: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        description: Option<String>,
        #[arg(long)]
        price: Option<String>,
        #[arg(long)]
        currency: Option<String>,
        #[arg(long)]
        tax_class: Option<String>,
        #[arg(long)]
        category: Option<String>,
        #[command(flatten)]
        target: Target,
    },
    /// Archive a product: it leaves the list; its sku stays taken (manager).
    Archive {
        product: String,
        #[command(flatten)]
        target: Target,
    },
    /// Create products from a CSV file whose header names its columns, in any order: `sku`,
    /// `name`, `price`, `currency`, and optionally `inventory` (0) and `description`.
    /// Re-running an import is safe: each row is sent with an idempotency key of its content.
    Import {
        file: PathBuf,
        #[command(flatten)]
        target: Target,
    },
    /// Write every active product to a CSV file (`-`: stdout) in the import format.
    Export {
        file: PathBuf,
        #[command(flatten)]
        target: Target,
    },
}

/// An amount from its decimal text, exactly: it is sent as the same digits, never a float.
pub fn number(field: &str, text: &str) -> anyhow::Result<Decimal> {
    Decimal::parse(text.trim()).map_err(|e| anyhow!("{field}: {text:?}: {e}"))
}

#[derive(Serialize)]
struct NewProduct {
    sku: String,
    name: String,
    price: Decimal,
    currency: String,
    inventory: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(rename = "taxClass", skip_serializing_if = "Option::is_none")]
    tax_class: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<String>,
}

#[derive(Serialize)]
struct ProductChange {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    price: Option<Decimal>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<String>,
    #[serde(rename = "taxClass", skip_serializing_if = "Option::is_none")]
    tax_class: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    category: Option<String>,
}

/// The product path for an id or a sku.
async fn resolve(client: &Client, product: &str) -> anyhow::Result<String> {
    if uuid::Uuid::parse_str(product).is_ok() {
        return Ok(format!("/products/{product}"));
    }
    let found: Value = serde_json::from_str(
        &client
            .text::<()>(Method::GET, &format!("/products/by-sku/{product}"), None)
            .await?,
    )?;
    let id = found["id"]
        .as_str()
        .ok_or_else(|| anyhow!("no product {product}"))?;
    Ok(format!("/products/{id}"))
}

pub async fn run(command: ProductsCommand, json: bool) -> anyhow::Result<()> {
    match command {
        ProductsCommand::Add {
            sku,
            name,
            price,
            currency,
            description,
            inventory,
            tax_class,
            category,
            target,
        } => {
            let body = NewProduct {
                sku,
                name,
                price: number("price", &price)?,
                currency,
                inventory,
                description,
                tax_class,
                category,
            };
            let created = Client::new(&target)?
                .text(Method::POST, "/products", Some(&body))
                .await?;
            output::one(json, &created, COLUMNS)?;
        }
        ProductsCommand::Get { product, target } => {
            let client = Client::new(&target)?;
            let path = resolve(&client, &product).await?;
            let found = client.text::<()>(Method::GET, &path, None).await?;
            output::one(json, &found, COLUMNS)?;
        }
        ProductsCommand::List { paging, target } => {
            let path = format!("/products?{}", paging.query());
            let list = Client::new(&target)?
                .text::<()>(Method::GET, &path, None)
                .await?;
            output::list(json, &list, COLUMNS)?;
        }
        ProductsCommand::Update {
            product,
            name,
            description,
            price,
            currency,
            tax_class,
            category,
            target,
        } => {
            let body = ProductChange {
                name,
                description,
                price: price.map(|p| number("price", &p)).transpose()?,
                currency,
                tax_class,
                category,
            };
            let client = Client::new(&target)?;
            let path = resolve(&client, &product).await?;
            let updated = client.text(Method::PATCH, &path, Some(&body)).await?;
            output::one(json, &updated, COLUMNS)?;
        }
        ProductsCommand::Archive { product, target } => {
            let client = Client::new(&target)?;
            let path = resolve(&client, &product).await?;
            let archived = client.text::<()>(Method::DELETE, &path, None).await?;
            output::one(json, &archived, COLUMNS)?;
        }
        ProductsCommand::Import { file, target } => import(&file, &target, json).await?,
        ProductsCommand::Export { file, target } => export(&file, &target).await?,
    }
    Ok(())
}

/// Where each field of an import is, by the header's names, in any order.
#[derive(Debug, PartialEq)]
struct Columns {
    sku: usize,
    name: usize,
    price: usize,
    currency: usize,
    inventory: Option<usize>,
    description: Option<usize>,
    tax_class: Option<usize>,
    category: Option<usize>,
}

/// The import's columns from its header: `sku`, `name`, `price` and `currency` are required,
/// `inventory` (0 when absent), `description`, `taxClass` and `category` optional; an unknown or repeated column is
/// an error naming it.
fn columns(header: &[String]) -> anyhow::Result<Columns> {
    let mut at = std::collections::BTreeMap::new();
    for (i, name) in header.iter().enumerate() {
        if !CSV_HEADER.contains(&name.as_str()) {
            return Err(anyhow!(
                "unknown column {name:?} (the columns are {})",
                CSV_HEADER.join(", ")
            ));
        }
        if at.insert(name.as_str(), i).is_some() {
            return Err(anyhow!("column {name:?} appears twice"));
        }
    }
    let required = |name: &str| {
        at.get(name)
            .copied()
            .ok_or_else(|| anyhow!("the header has no {name:?} column"))
    };
    Ok(Columns {
        sku: required("sku")?,
        name: required("name")?,
        price: required("price")?,
        currency: required("currency")?,
        inventory: at.get("inventory").copied(),
        description: at.get("description").copied(),
        tax_class: at.get("taxClass").copied(),
        category: at.get("category").copied(),
    })
}

/// One CSV row as the body of `POST /products`, and its idempotency key.
fn row_body(
    line: u64,
    record: &csv::StringRecord,
    at: &Columns,
) -> anyhow::Result<(NewProduct, String)> {
    let field = |i: Option<usize>| i.and_then(|i| record.get(i)).unwrap_or("").trim();
    let inventory: u64 = match field(at.inventory) {
        "" => 0,
        text => text
            .parse()
            .map_err(|_| anyhow!("line {line}: inventory {text:?} is not a whole number"))?,
    };
    let optional = |i: Option<usize>| Some(field(i).to_string()).filter(|d| !d.is_empty());
    let description = optional(at.description);
    let price = number("price", field(Some(at.price))).map_err(|e| anyhow!("line {line}: {e}"))?;
    let body = NewProduct {
        sku: field(Some(at.sku)).into(),
        name: field(Some(at.name)).into(),
        price,
        currency: field(Some(at.currency)).into(),
        inventory,
        description,
        tax_class: optional(at.tax_class),
        category: optional(at.category),
    };
    let digest = Sha256::digest(serde_json::to_vec(&body)?);
    let key = format!("import-{}", hex::encode(&digest[..16]));
    Ok((body, key))
}

async fn import(file: &Path, target: &Target, json: bool) -> anyhow::Result<()> {
    let mut reader =
        csv::Reader::from_path(file).with_context(|| format!("opening {}", file.display()))?;
    let header: Vec<String> = reader
        .headers()
        .with_context(|| format!("reading the header of {}", file.display()))?
        .iter()
        .map(|h| h.trim().to_ascii_lowercase())
        .collect();
    let at = columns(&header).with_context(|| format!("{}: its header", file.display()))?;
    // Validate every row before sending any, so a bad line stops the import before it starts.
    let mut rows = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let line = i as u64 + 2;
        let record = record.with_context(|| format!("{}: line {line}", file.display()))?;
        rows.push((line, row_body(line, &record, &at)?));
    }
    let total = rows.len() as u64;
    let client = Arc::new(Client::new(target)?);
    let progress = Arc::new(Progress::new("import", total));
    let created = Arc::new(AtomicU64::new(0));
    let rows = Arc::new(std::sync::Mutex::new(rows.into_iter()));
    let mut workers = Vec::new();
    for _ in 0..IMPORT_PARALLEL {
        let (client, progress, created, rows) = (
            client.clone(),
            progress.clone(),
            created.clone(),
            rows.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let next = rows.lock().expect("rows lock").next();
                let Some((line, (body, key))) = next else {
                    return Ok::<(), anyhow::Error>(());
                };
                client
                    .send_idempotent(Method::POST, "/products", &body, &key)
                    .await
                    .with_context(|| format!("line {line} ({})", body.sku))?;
                created.fetch_add(1, Ordering::Relaxed);
                progress.advance(1);
            }
        }));
    }
    for worker in workers {
        worker.await.context("an import worker failed")??;
    }
    progress.finish();
    let created = created.load(Ordering::Relaxed);
    if json {
        println!("{}", json!({ "imported": created, "rows": total }));
    } else {
        println!("imported {created} of {total} rows from {}", file.display());
    }
    Ok(())
}

async fn export(file: &Path, target: &Target) -> anyhow::Result<()> {
    let client = Client::new(target)?;
    let sink: Box<dyn std::io::Write> = if file == Path::new("-") {
        Box::new(std::io::stdout())
    } else {
        Box::new(
            std::fs::File::create(file).with_context(|| format!("creating {}", file.display()))?,
        )
    };
    let mut writer = csv::Writer::from_writer(sink);
    writer.write_record(CSV_HEADER)?;
    let progress = Progress::new("export", 0);
    let mut offset = 0;
    loop {
        let path = format!("/products?limit={PAGE}&offset={offset}");
        let page: Vec<ProductResponse> =
            serde_json::from_str(&client.text::<()>(Method::GET, &path, None).await?)
                .context("reading a page of products")?;
        for p in &page {
            writer.write_record([
                p.sku.as_str().to_string(),
                p.name.clone(),
                p.price.to_string(),
                p.currency.code().to_string(),
                p.inventory.to_string(),
                p.description.clone().unwrap_or_default(),
                p.tax_class.clone(),
                p.category.clone().unwrap_or_default(),
            ])?;
        }
        progress.advance(page.len() as u64);
        if page.len() < PAGE {
            break;
        }
        offset += PAGE;
    }
    writer.flush()?;
    progress.finish();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(names: &str) -> Vec<String> {
        names.split(',').map(str::to_string).collect()
    }

    /// (header, columns or the error's words)
    #[test]
    fn an_import_takes_its_columns_in_any_order() {
        let cases: Vec<(&str, Result<Columns, &str>)> = vec![
            (
                "sku,name,price,currency,inventory,description",
                Ok(Columns {
                    sku: 0,
                    name: 1,
                    price: 2,
                    currency: 3,
                    inventory: Some(4),
                    description: Some(5),
                    tax_class: None,
                    category: None,
                }),
            ),
            (
                "price,currency,name,sku",
                Ok(Columns {
                    sku: 3,
                    name: 2,
                    price: 0,
                    currency: 1,
                    inventory: None,
                    description: None,
                    tax_class: None,
                    category: None,
                }),
            ),
            (
                "description,sku,inventory,name,currency,price,category,taxClass",
                Ok(Columns {
                    sku: 1,
                    name: 3,
                    price: 5,
                    currency: 4,
                    inventory: Some(2),
                    description: Some(0),
                    tax_class: Some(7),
                    category: Some(6),
                }),
            ),
            ("sku,name,price", Err("no \"currency\" column")),
            (
                "sku,name,price,currency,colour",
                Err("unknown column \"colour\""),
            ),
            ("sku,name,price,currency,sku", Err("\"sku\" appears twice")),
        ];
        for (names, expected) in cases {
            match (columns(&header(names)), expected) {
                (Ok(got), Ok(want)) => assert_eq!(got, want, "{names}"),
                (Err(got), Err(words)) => {
                    assert!(got.to_string().contains(words), "{names}: {got}")
                }
                (got, want) => panic!("{names}: got {got:?}, expected {want:?}"),
            }
        }
        // A row reads its fields where the header put them; absent optional ones are empty.
        let at = columns(&header("price,currency,name,sku")).unwrap();
        let record = csv::StringRecord::from(vec!["4.50", "USD", "Tea", "TEA"]);
        let (body, _) = row_body(2, &record, &at).unwrap();
        assert_eq!(
            (
                body.sku.as_str(),
                body.name.as_str(),
                body.currency.as_str()
            ),
            ("TEA", "Tea", "USD")
        );
        assert_eq!((body.inventory, body.description), (0, None));
        assert_eq!(body.price, Decimal::parse("4.5").unwrap());
    }
}
