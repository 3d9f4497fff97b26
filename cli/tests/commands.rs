//! The operator commands against a real node process: each command's happy path, `--json` that
//! parses, refusals with exit code 3, usage errors with 2, failures with 1; a 50,000-row CSV
//! import that reports its progress (and is safe to run twice); export; completions and the man
//! page.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

mod common;
use common::{spawn_node, spawn_node_with};

/// Runs `fusion ARGS` against the node at `url` with the admin token of `data_dir`.
fn run(url: &str, data_dir: &Path, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_fusion"))
        .args(args)
        .env("FUSION_URL", url)
        .env_remove("FUSION_TOKEN")
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}: {}{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn json(out: &Output) -> Value {
    serde_json::from_str(&ok(out)).expect("--json prints JSON")
}

fn code(out: &Output) -> i32 {
    out.status.code().unwrap_or(-1)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_domain_command_against_a_real_node() {
    let dir = tempfile::tempdir().unwrap();
    let node = spawn_node(dir.path()).await;
    let d = dir.path();
    let fusion = |args: &[&str]| tokio::task::block_in_place(|| run(&node.url, d, args));

    // Products.
    let added = fusion(&[
        "products",
        "add",
        "--sku",
        "TEA",
        "--name",
        "Green tea",
        "--price",
        "4.50",
        "--inventory",
        "20",
    ]);
    let table = ok(&added);
    assert!(
        table.contains("TEA") && table.contains("Green tea"),
        "{table}"
    );
    let tea = json(&fusion(&["products", "get", "TEA", "--json"]));
    assert_eq!(tea["price"], serde_json::json!(4.5));
    let id = tea["id"].as_str().unwrap().to_string();
    assert_eq!(
        json(&fusion(&["products", "get", &id, "--json"]))["sku"],
        "TEA"
    );
    let updated = json(&fusion(&[
        "products", "update", "TEA", "--price", "5.25", "--json",
    ]));
    assert_eq!(updated["price"], serde_json::json!(5.25));
    let list = ok(&fusion(&["products", "list"]));
    assert!(list.starts_with("ID") && list.contains("TEA"), "{list}");

    // Stock.
    assert_eq!(
        json(&fusion(&["stock", "set", "TEA", "40", "--json"]))["quantity"],
        40
    );
    let adjusted = json(&fusion(&[
        "stock", "adjust", "TEA", "-5", "--reason", "broken", "--json",
    ]));
    assert_eq!(adjusted["quantity"], 35);
    assert!(ok(&fusion(&["stock", "list"])).contains("TEA"));
    // Stock rights given to another till (not running: they stay in transit).
    let given = json(&fusion(&[
        "stock",
        "transfer",
        "TEA",
        "--to",
        "till-2",
        "--quantity",
        "5",
        "--json",
    ]));
    assert_eq!(given["quantity"], 30);
    let escrow = json(&fusion(&["stock", "escrow", "--json"]));
    assert_eq!(escrow["stock"][0]["held"], 30);
    assert_eq!(escrow["stock"][0]["inTransit"], 5);
    assert_eq!(escrow["inTransit"][0]["to"], "till-2");
    let table = ok(&fusion(&["stock", "escrow"]));
    assert!(
        table.contains("IN TRANSIT") && table.contains("to till-2"),
        "{table}"
    );
    assert_eq!(
        code(&fusion(&[
            "stock",
            "transfer",
            "TEA",
            "--to",
            "till-2",
            "--quantity",
            "31"
        ])),
        3,
        "more than held is refused"
    );
    assert_eq!(
        json(&fusion(&[
            "stock", "adjust", "TEA", "5", "--reason", "back", "--json"
        ]))["quantity"],
        35
    );

    // Orders.
    let order = json(&fusion(&[
        "orders",
        "place",
        "--customer",
        "c1",
        "--item",
        "TEA:2:5.25",
        "--json",
    ]));
    let order_id = order["id"].as_str().unwrap().to_string();
    assert_eq!(order["total"], serde_json::json!(10.5));
    assert_eq!(
        json(&fusion(&["orders", "get", &order_id, "--json"]))["status"],
        "created"
    );
    let orders = json(&fusion(&["orders", "list", "--json"]));
    assert_eq!(orders.as_array().unwrap().len(), 1);

    // Payments: cash with change, then a partial refund.
    let paid = json(&fusion(&[
        "payments",
        "take",
        "--order",
        &order_id,
        "--amount",
        "10.50",
        "--tendered",
        "20",
        "--json",
    ]));
    assert_eq!(paid["changeDue"], serde_json::json!(9.5));
    let payment_id = paid["id"].as_str().unwrap().to_string();
    let refunded = json(&fusion(&[
        "payments",
        "refund",
        &payment_id,
        "--amount",
        "1",
        "--json",
    ]));
    assert_eq!(refunded["status"], "partially_refunded");
    assert_eq!(
        json(&fusion(&[
            "shipments",
            "list",
            "--order",
            &order_id,
            "--json"
        ])),
        serde_json::json!([])
    );

    // A second order, cancelled.
    let second = json(&fusion(&[
        "orders",
        "place",
        "--customer",
        "c2",
        "--item",
        "TEA:1:5.25",
        "--json",
    ]));
    let second_id = second["id"].as_str().unwrap();
    let cancelled = json(&fusion(&[
        "orders",
        "cancel",
        second_id,
        "--reason",
        "changed mind",
        "--json",
    ]));
    assert_eq!(cancelled["status"], "cancelled");

    // Campaigns.
    let end =
        fusion_contracts::Timestamp::from_unix_ms(fusion_sync::clock::now().unix_ms() + 3_600_000)
            .to_string();
    let campaign = json(&fusion(&[
        "campaigns",
        "create",
        "--product",
        &id,
        "--min",
        "1",
        "--max",
        "3",
        "--price",
        "4",
        "--original-price",
        "5.25",
        "--end",
        &end,
        "--json",
    ]));
    let campaign_id = campaign["id"].as_str().unwrap().to_string();
    let joined = json(&fusion(&[
        "campaigns",
        "join",
        &campaign_id,
        "--user",
        "u1",
        "--json",
    ]));
    assert_eq!(joined["actualParticipants"], 1);
    assert!(ok(&fusion(&["campaigns", "list"])).contains(&campaign_id));
    assert_eq!(
        json(&fusion(&["campaigns", "cancel", &campaign_id, "--json"]))["status"],
        "cancelled"
    );

    // Archive last: the product leaves the list.
    assert_eq!(
        json(&fusion(&["products", "archive", "TEA", "--json"]))["status"],
        "archived"
    );

    // The other node commands speak --json too.
    assert!(
        !json(&fusion(&["token", "list", "--json"]))
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(json(&fusion(&["sync", "status", "--json"]))["nodeId"].is_string());

    // Exit codes: 3 refused (4xx), 2 usage, 1 failure.
    let missing = fusion(&["products", "get", "NOPE"]);
    assert_eq!(
        code(&missing),
        3,
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
    assert_eq!(
        code(&fusion(&[
            "orders",
            "get",
            &uuid::Uuid::now_v7().to_string()
        ])),
        3
    );
    let too_many = fusion(&[
        "orders",
        "place",
        "--customer",
        "c",
        "--item",
        "TEA:999:5.25",
    ]);
    assert_eq!(code(&too_many), 3);
    assert!(String::from_utf8_lossy(&too_many.stderr).contains("insufficient"));
    assert_eq!(code(&fusion(&["orders", "place", "--customer", "c"])), 2);
    assert_eq!(code(&fusion(&["stock", "set", "TEA"])), 2);
    let bad_price = fusion(&[
        "products", "add", "--sku", "X", "--name", "X", "--price", "abc",
    ]);
    assert_eq!(code(&bad_price), 1);
    assert!(String::from_utf8_lossy(&bad_price.stderr).contains("price"));
    let unreachable =
        tokio::task::block_in_place(|| run("http://127.0.0.1:9", d, &["products", "list"]));
    assert_eq!(code(&unreachable), 1);

    // Completions and the man page come from the same definitions.
    let bare = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_fusion"))
            .args(args)
            .output()
            .unwrap()
    };
    for shell in ["bash", "zsh", "fish"] {
        let script = ok(&bare(&["completions", shell]));
        assert!(
            script.contains("products") && script.contains("import"),
            "{shell}"
        );
    }
    assert!(ok(&bare(&["man"])).contains(".TH fusion"));
    node.sigkill().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_50000_row_csv_import_reports_progress_and_exports_back() {
    const ROWS: usize = 50_000;
    let dir = tempfile::tempdir().unwrap();
    let node = spawn_node(dir.path()).await;
    let d = dir.path();
    let csv_path = d.join("catalog.csv");
    let mut text = String::from("sku,name,price,currency,inventory,description\n");
    for i in 0..ROWS {
        text.push_str(&format!(
            "SKU-{i:05},Item {i},{}.{:02},USD,{},\"Row {i}, quoted\"\n",
            i % 90 + 1,
            i % 100,
            i % 7
        ));
    }
    std::fs::write(&csv_path, text).unwrap();
    let csv = csv_path.to_str().unwrap();
    let fusion = |args: &[&str]| tokio::task::block_in_place(|| run(&node.url, d, args));

    let started = std::time::Instant::now();
    let imported = fusion(&["products", "import", csv]);
    let stdout = ok(&imported);
    let stderr = String::from_utf8_lossy(&imported.stderr).to_string();
    assert!(
        stdout.contains(&format!("imported {ROWS} of {ROWS} rows")),
        "{stdout}"
    );
    for tenth in 1..=10 {
        let line = format!("import: {}/{ROWS} ({}%)", ROWS * tenth / 10, tenth * 10);
        assert!(
            stderr.contains(&line),
            "missing progress {line:?}: {stderr}"
        );
    }
    eprintln!("imported {ROWS} rows in {:?}", started.elapsed());
    let sample = json(&fusion(&["products", "get", "SKU-12345", "--json"]));
    assert_eq!(sample["price"], serde_json::json!(16.45));
    assert_eq!(sample["description"], "Row 12345, quoted");

    // Running the same import again changes nothing: every row is an idempotent replay.
    let again = json(&fusion(&["products", "import", csv, "--json"]));
    assert_eq!(again["imported"], ROWS);

    // Export writes the import format back, every row.
    let exported = d.join("export.csv");
    ok(&fusion(&["products", "export", exported.to_str().unwrap()]));
    let mut reader = csv::Reader::from_path(&exported).unwrap();
    assert_eq!(
        reader.headers().unwrap(),
        vec![
            "sku",
            "name",
            "price",
            "currency",
            "inventory",
            "description",
            "taxClass",
            "category"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), ROWS);
    let row = rows.iter().find(|r| &r[0] == "SKU-12345").unwrap();
    assert_eq!((&row[2], &row[5]), ("16.45", "Row 12345, quoted"));

    // A malformed file is refused before anything is sent, naming the line.
    std::fs::write(
        d.join("bad.csv"),
        "sku,name,price,currency,inventory,description\nA,a,1.00,USD,1,\nB,b,x,USD,1,\n",
    )
    .unwrap();
    let bad = fusion(&["products", "import", d.join("bad.csv").to_str().unwrap()]);
    assert_eq!(code(&bad), 1);
    assert!(String::from_utf8_lossy(&bad.stderr).contains("line 3"));
    assert_eq!(
        code(&fusion(&["products", "get", "A"])),
        3,
        "nothing of a bad file is imported"
    );
    node.sigkill().await;
}

/// `--config`: a node started with only a config file takes its data dir and address from it,
/// a flag overrides the file; `fusion config check` names each problem's line and column.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_config_file_drives_the_node_and_check_reports_lines() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("node.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\nlisten = \"127.0.0.1:{port}\"\nstore_id = \"store-7\"\n[orders]\nhold_secs = 60\n",
            dir.path().join("data")
        ),
    )
    .unwrap();
    let check = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_fusion"))
            .args(args)
            .output()
            .unwrap()
    };
    assert!(ok(&check(&["config", "check", config.to_str().unwrap()])).ends_with("ok\n"));
    let start = |extra: &[&str]| {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fusion"))
            .args(["node", "serve", "--config", config.to_str().unwrap()])
            .args(extra)
            .env_remove("FUSION_DATA_DIR")
            .env_remove("FUSION_LISTEN")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        async move {
            let mut lines = BufReader::new(stdout).lines();
            loop {
                let line = lines.next_line().await.unwrap().expect("the node exited");
                if let Some((_, url)) = line.split_once("listening on ") {
                    // Keep draining stdout: a closed pipe would fail the node's next print.
                    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                    return (child, url.trim().to_string());
                }
            }
        }
    };
    let (mut child, url) = start(&[]).await;
    assert_eq!(url, format!("http://127.0.0.1:{port}"));
    assert!(dir.path().join("data").join("fusion.redb").exists());
    let settings = tokio::task::block_in_place(|| {
        run(
            &url,
            &dir.path().join("data"),
            &["orders", "list", "--json"],
        )
    });
    assert_eq!(json(&settings), serde_json::json!([]));
    child.kill().await.unwrap();
    let (mut child, url) = start(&["--listen", "127.0.0.1:0"]).await;
    assert_ne!(
        url,
        format!("http://127.0.0.1:{port}"),
        "the flag wins over the file"
    );
    child.kill().await.unwrap();

    let bad = dir.path().join("bad.toml");
    std::fs::write(
        &bad,
        "listen = \"here\"\n[sync]\nhub = \"nope\"\ncolour = 1\n",
    )
    .unwrap();
    let out = check(&["config", "check", bad.to_str().unwrap()]);
    assert_eq!(code(&out), 1);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bad.toml:4:1: unknown field `colour`"),
        "{stderr}"
    );
    std::fs::write(&bad, "listen = \"here\"\n[sync]\nhub = \"nope\"\n").unwrap();
    let stderr =
        String::from_utf8_lossy(&check(&["config", "check", bad.to_str().unwrap()]).stderr)
            .to_string();
    assert!(
        stderr.contains("bad.toml:1:10: listen:") && stderr.contains("bad.toml:3:7: sync.hub:"),
        "{stderr}"
    );
}

/// `fusion settings taxes` sets the store's taxes; `fusion settings show` shows them; the next
/// order is taxed, and tables print its money with the currency's decimals.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_taxes_tax_the_next_order() {
    let dir = tempfile::tempdir().unwrap();
    let node = spawn_node_with(dir.path(), &["--store-id", "store-7"]).await;
    let d = dir.path();
    let fusion = |args: &[&str]| tokio::task::block_in_place(|| run(&node.url, d, args));
    ok(&fusion(&[
        "products",
        "add",
        "--sku",
        "TEA",
        "--name",
        "Tea",
        "--price",
        "10",
        "--inventory",
        "5",
    ]));
    let set = json(&fusion(&[
        "settings",
        "taxes",
        "--rate",
        "standard=20",
        "--rate",
        "reduced=5.5",
        "--prices-include-tax",
        "false",
        "--json",
    ]));
    assert_eq!(set["taxes"]["rates"]["standard"], serde_json::json!(20));
    assert_eq!(set["taxes"]["rates"]["reduced"], serde_json::json!(5.5));
    let shown = ok(&fusion(&["settings", "show"]));
    assert!(
        shown.contains("added to prices") && shown.contains("standard") && shown.contains("20 %"),
        "{shown}"
    );
    let order = json(&fusion(&[
        "orders",
        "place",
        "--customer",
        "c",
        "--item",
        "TEA:1",
        "--json",
    ]));
    assert_eq!(order["subtotal"].as_f64(), Some(10.0), "{order}");
    assert_eq!(order["total"].as_f64(), Some(12.0), "{order}");
    let id = order["id"].as_str().unwrap();
    let table = ok(&fusion(&["orders", "get", id]));
    assert!(table.contains("12.00"), "{table}");
    // Removed, a class is gone; a rate that is not a number is refused before any request.
    let set = json(&fusion(&[
        "settings", "taxes", "--remove", "reduced", "--json",
    ]));
    assert!(set["taxes"]["rates"].get("reduced").is_none(), "{set}");
    assert_ne!(
        code(&fusion(&["settings", "taxes", "--rate", "standard=lots"])),
        0
    );
}

/// `fusion promotions …` and `fusion orders place --discount` (issue 17, parts 3–4): a
/// multi-buy and a category's percentage price the next order, a discount comes off it, and an
/// ended promotion no longer does; `products add --tax-class` taxes its lines at that rate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn promotions_and_discounts_price_the_next_order() {
    let dir = tempfile::tempdir().unwrap();
    let node = spawn_node_with(dir.path(), &["--store-id", "store-8"]).await;
    let d = dir.path();
    let fusion = |args: &[&str]| tokio::task::block_in_place(|| run(&node.url, d, args));
    for args in [
        [
            "--sku",
            "MUG",
            "--name",
            "Mug",
            "--price",
            "3",
            "--category",
            "kitchen",
        ],
        [
            "--sku",
            "BUN",
            "--name",
            "Bun",
            "--price",
            "2",
            "--tax-class",
            "reduced",
        ],
    ] {
        ok(&fusion(
            &[&["products", "add", "--inventory", "20"][..], &args[..]].concat(),
        ));
    }
    ok(&fusion(&[
        "settings",
        "taxes",
        "--rate",
        "standard=20",
        "--rate",
        "reduced=10",
    ]));
    let multi = json(&fusion(&[
        "promotions",
        "multi-buy",
        "--name",
        "3 mugs for 7",
        "--sku",
        "MUG",
        "--quantity",
        "3",
        "--price",
        "7",
        "--json",
    ]));
    assert_eq!(multi["kind"], "multiBuy", "{multi}");
    let listed = ok(&fusion(&["promotions", "list"]));
    assert!(listed.contains("3 mugs for 7"), "{listed}");
    let order = json(&fusion(&[
        "orders",
        "place",
        "--customer",
        "c",
        "--item",
        "MUG:3",
        "--item",
        "BUN:1",
        "--discount",
        "5%",
        "--discount-reason",
        "staff",
        "--json",
    ]));
    // 9.00 → 7.00 by the promotion, 2.00 for the bun; 5 % of 9.00 = 0.45 shared 0.35 : 0.10.
    // Tax: 20 % of 6.65 = 1.33, 10 % of 1.90 = 0.19; total 8.55 + 1.52 = 10.07.
    assert_eq!(order["discountTotal"].as_f64(), Some(2.45), "{order}");
    assert_eq!(order["total"].as_f64(), Some(10.07), "{order}");
    assert_eq!(order["items"][1]["taxClass"], "reduced", "{order}");
    let id = multi["id"].as_str().unwrap();
    ok(&fusion(&["promotions", "end", id]));
    let order = json(&fusion(&[
        "orders",
        "place",
        "--customer",
        "c",
        "--item",
        "MUG:3",
        "--json",
    ]));
    assert_eq!(order["total"].as_f64(), Some(10.8), "{order}");
    // A discount that is neither a percentage nor an amount is refused before any request.
    assert_ne!(
        code(&fusion(&[
            "orders",
            "place",
            "--customer",
            "c",
            "--item",
            "MUG:1",
            "--discount",
            "lots",
        ])),
        0
    );
}

/// `fusion orders return` (issue 17, part 5): a unit of a paid order back to the shelf, its
/// refund printed with the currency's decimals; asking for more than was sold fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_return_takes_back_a_paid_unit() {
    let dir = tempfile::tempdir().unwrap();
    let node = spawn_node_with(dir.path(), &["--store-id", "store-9"]).await;
    let d = dir.path();
    let fusion = |args: &[&str]| tokio::task::block_in_place(|| run(&node.url, d, args));
    ok(&fusion(&[
        "products",
        "add",
        "--sku",
        "MUG",
        "--name",
        "Mug",
        "--price",
        "4.5",
        "--inventory",
        "3",
    ]));
    let order = json(&fusion(&[
        "orders",
        "place",
        "--customer",
        "c",
        "--item",
        "MUG:2",
        "--json",
    ]));
    let id = order["id"].as_str().unwrap();
    ok(&fusion(&[
        "payments", "take", "--order", id, "--amount", "9",
    ]));
    let table = ok(&fusion(&[
        "orders",
        "return",
        id,
        "--item",
        "MUG:1",
        "--restock",
    ]));
    assert!(table.contains("4.50"), "{table}");
    let mug = json(&fusion(&["products", "get", "MUG", "--json"]));
    assert_eq!(mug["inventory"], 2, "{mug}");
    assert_ne!(
        code(&fusion(&["orders", "return", id, "--item", "#0:2"])),
        0,
        "one unit is left to return"
    );
    // The last mug for two at 4.50 each: the returned 4.50 pays half, 4.50 is due.
    let exchanged = ok(&fusion(&[
        "orders",
        "exchange",
        id,
        "--item",
        "MUG:1",
        "--restock",
        "--for",
        "MUG:2",
    ]));
    assert!(
        exchanged
            .lines()
            .any(|l| l.starts_with("AMOUNT DUE") && l.ends_with("4.50")),
        "{exchanged}"
    );
    assert!(
        exchanged
            .lines()
            .any(|l| l.starts_with("TOTAL") && l.ends_with("9.00")),
        "{exchanged}"
    );
    // Back to the original tenders of an order paid in cash: its cash payment.
    let second = json(&fusion(&[
        "orders",
        "place",
        "--customer",
        "c",
        "--item",
        "MUG:1",
        "--json",
    ]));
    let second = second["id"].as_str().unwrap();
    ok(&fusion(&[
        "payments", "take", "--order", second, "--amount", "4.5",
    ]));
    let original = json(&fusion(&[
        "orders",
        "return",
        second,
        "--item",
        "MUG:1",
        "--original",
        "--json",
    ]));
    assert_eq!(
        original["refundTo"]["split"]["parts"][0]["to"]["payment"]["tender"], "cash",
        "{original}"
    );
}

/// `fusion staff …` (issue 18, part 1): a manager adds a cashier with a PIN read from standard
/// input, the list shows no PIN, the cashier signs in (PIN from `FUSION_PIN`) and sells with
/// the printed token; a removed member cannot sign in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn staff_are_added_and_sign_in_with_a_pin() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let node = spawn_node_with(dir.path(), &["--store-id", "store-7"]).await;
    let d = dir.path();
    let fusion = |args: &[&str], pin: Option<&str>| {
        tokio::task::block_in_place(|| {
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_fusion"))
                .args(args)
                .env("FUSION_URL", &node.url)
                .env_remove("FUSION_TOKEN")
                .env_remove("FUSION_PIN")
                .arg("--data-dir")
                .arg(d)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap();
            let mut stdin = child.stdin.take().unwrap();
            if let Some(pin) = pin {
                writeln!(stdin, "{pin}").unwrap();
            }
            drop(stdin);
            child.wait_with_output().unwrap()
        })
    };
    ok(&fusion(
        &[
            "products",
            "add",
            "--sku",
            "MUG",
            "--name",
            "Mug",
            "--price",
            "3",
            "--inventory",
            "5",
        ],
        None,
    ));
    let added = ok(&fusion(
        &["staff", "add", "--id", "ana", "--name", "Ana Lima"],
        Some("2468"),
    ));
    assert!(
        added.contains("Ana Lima") && added.contains("cashier"),
        "{added}"
    );
    // No PIN given: refused before any request.
    assert_ne!(
        code(&fusion(
            &["staff", "add", "--id", "bo", "--name", "Bo"],
            None
        )),
        0
    );
    let listed = ok(&fusion(&["staff", "list"], None));
    assert!(
        listed.contains("ana") && !listed.contains("2468"),
        "{listed}"
    );
    // A wrong PIN is refused, naming it.
    let wrong = fusion(&["staff", "sign-in", "ana"], Some("1111"));
    assert_ne!(code(&wrong), 0);
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("wrong staff member or PIN"),
        "{wrong:?}"
    );
    let token = ok(&fusion(&["staff", "sign-in", "ana"], Some("2468")));
    let token = token.trim();
    assert!(token.starts_with("fss_"), "{token}");
    let sold = tokio::task::block_in_place(|| {
        std::process::Command::new(env!("CARGO_BIN_EXE_fusion"))
            .args([
                "orders",
                "place",
                "--customer",
                "c",
                "--item",
                "MUG:1",
                "--json",
            ])
            .env("FUSION_URL", &node.url)
            .env("FUSION_TOKEN", token)
            .output()
            .unwrap()
    });
    assert_eq!(json(&sold)["total"].as_f64(), Some(3.0));
    ok(&fusion(&["staff", "remove", "ana"], None));
    assert_ne!(code(&fusion(&["staff", "sign-in", "ana"], Some("2468"))), 0);
}
