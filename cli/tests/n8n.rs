//! n8n for real: n8n 1.70.0 from npm (installed here on first use, cached in
//! `~/.cache/fusion-n8n/1.70.0`), the shipped templates imported and activated, a real hub
//! process with the shipped subscriptions (`hub/n8n/hub-webhooks.toml`) and a real node
//! syncing to it. The hub's deliveries start n8n executions that succeed (read from n8n's own
//! database) and do their work; a delivery signed with the wrong secret is refused by the
//! workflow (401) and ends in the dead-letter list; the daily summary reads the hub's sales;
//! a receipt a till was asked to email reaches a real SMTP server (Python's aiosmtpd) as the
//! hub lays it out — the till's own receipt, line for line — once, however often it is
//! delivered.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::process::Command;

mod common;
use common::{free_port, fusion, spawn_hub, spawn_node_with, start_localstripe, wait_until};

const N8N_VERSION: &str = "1.70.0";
const SECRET: &str = "n8n-test-secret-4f1c9a";
const WRONG_SECRET: &str = "not-the-secret";
/// The templates' workflow ids.
const CAMPAIGN: &str = "fusionCampaignOk";
const LOW_STOCK: &str = "fusionLowStock01";
const PAYMENT_FAILED: &str = "fusionPayFailed1";
const DAILY_SALES: &str = "fusionDailySales";
const RECEIPT_EMAIL: &str = "fusionReceiptEml";

/// An SMTP server on loopback (aiosmtpd, from PyPI) storing what it receives in a Maildir.
struct SmtpCatcher {
    child: std::process::Child,
    port: u16,
    maildir: PathBuf,
}

impl Drop for SmtpCatcher {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpCatcher {
    async fn start(dir: &Path) -> SmtpCatcher {
        let port = free_port();
        let maildir = dir.join("maildir");
        let child = std::process::Command::new("python3")
            .args(["-m", "aiosmtpd", "-n", "-l"])
            .arg(format!("127.0.0.1:{port}"))
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd is installed (./test.sh installs it)");
        wait_until("aiosmtpd to listen", 30, || async move {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .map(drop)
                .map_err(|e| e.to_string())
        })
        .await;
        SmtpCatcher {
            child,
            port,
            maildir,
        }
    }

    /// Every message received, decoded by Python's email package (`tests/smtp`).
    async fn messages(&self) -> Vec<Value> {
        if !self.maildir.join("new").exists() {
            return Vec::new();
        }
        let out = Command::new("python3")
            .arg(repo().join("cli/tests/smtp/read_maildir.py"))
            .arg(&self.maildir)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// n8n's directory: installed with npm on first use. The lockstep quirk: n8n-nodes-base pulls
/// `xlsx` from a CDN this machine cannot reach, so the registry's 0.18.5 is forced.
fn ensure_n8n() -> PathBuf {
    let home = std::env::var_os("FUSION_N8N_HOME").map_or_else(
        || {
            PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
                .join(".cache/fusion-n8n")
                .join(N8N_VERSION)
        },
        PathBuf::from,
    );
    let done = home.join(".installed");
    if !done.exists() {
        std::fs::create_dir_all(&home).unwrap();
        let manifest = json!({
            "name": "fusion-n8n",
            "private": true,
            "dependencies": { "n8n": N8N_VERSION },
            "overrides": { "xlsx": "0.18.5" },
        });
        std::fs::write(home.join("package.json"), manifest.to_string()).unwrap();
        let status = std::process::Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&home)
            .env("SCARF_ANALYTICS", "false")
            .status()
            .expect("npm (Node 20) is needed to install n8n");
        assert!(status.success(), "npm install n8n@{N8N_VERSION} failed");
        std::fs::write(&done, N8N_VERSION).unwrap();
    }
    home
}

/// The environment every n8n command of this test runs with.
struct N8nEnv {
    home: PathBuf,
    user_dir: PathBuf,
    port: u16,
    hub_url: String,
    hub_token: String,
}

impl N8nEnv {
    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new("node");
        c.arg(self.home.join("node_modules/n8n/bin/n8n"))
            .args(args)
            .env("N8N_USER_FOLDER", &self.user_dir)
            .env("N8N_LISTEN_ADDRESS", "127.0.0.1")
            .env("N8N_PORT", self.port.to_string())
            .env("WEBHOOK_URL", format!("http://127.0.0.1:{}/", self.port))
            .env("N8N_ENCRYPTION_KEY", "fusion-n8n-test-encryption-key")
            .env("N8N_DIAGNOSTICS_ENABLED", "false")
            .env("N8N_VERSION_NOTIFICATIONS_ENABLED", "false")
            .env("N8N_TEMPLATES_ENABLED", "false")
            .env("N8N_PERSONALIZATION_ENABLED", "false")
            .env("N8N_HIRING_BANNER_ENABLED", "false")
            .env("N8N_DEFAULT_BINARY_DATA_MODE", "default")
            .env("N8N_LOG_LEVEL", "warn")
            .env("NODE_FUNCTION_ALLOW_BUILTIN", "crypto")
            .env("FUSION_WEBHOOK_SECRET", SECRET)
            .env("FUSION_HUB_URL", &self.hub_url)
            .env("FUSION_HUB_TOKEN", &self.hub_token)
            .env("FUSION_LOW_STOCK_THRESHOLD", "5")
            .env("FUSION_SUMMARY_DAY", "today")
            .env("FUSION_RECEIPT_FROM", "receipts@corner.example")
            .kill_on_drop(true);
        c
    }

    async fn run(&self, args: &[&str]) -> String {
        let out = self.command(args).output().await.unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "n8n {args:?}: {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// A query on n8n's own SQLite database, through the sqlite3 module n8n ships with.
    async fn query(&self, sql: &str) -> Vec<Value> {
        let script = r#"
const sqlite3 = require(process.argv[1]);
const db = new sqlite3.Database(process.argv[2], sqlite3.OPEN_READONLY);
db.all(process.argv[3], (err, rows) => {
  if (err) { console.error(err.message); process.exit(1); }
  process.stdout.write(JSON.stringify(rows));
});
"#;
        let out = Command::new("node")
            .arg("-e")
            .arg(script)
            .arg(self.home.join("node_modules/sqlite3"))
            .arg(self.user_dir.join(".n8n/database.sqlite"))
            .arg(sql)
            .output()
            .await
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hub_deliveries_run_the_shipped_n8n_workflows() {
    let home = tokio::task::spawn_blocking(ensure_n8n).await.unwrap();
    let dirs = tempfile::tempdir().unwrap();
    let hub_dir = dirs.path().join("hub");
    let node_dir = dirs.path().join("node");
    std::fs::create_dir_all(&hub_dir).unwrap();
    let n8n_port = free_port();
    // The hub with the shipped subscriptions (pointed at this n8n and its secret file), plus
    // one signed with the wrong secret.
    let secret_file = dirs.path().join("n8n.secret");
    std::fs::write(&secret_file, format!("{SECRET}\n")).unwrap();
    let wrong_file = dirs.path().join("wrong.secret");
    std::fs::write(&wrong_file, WRONG_SECRET).unwrap();
    let shipped = std::fs::read_to_string(repo().join("hub/n8n/hub-webhooks.toml")).unwrap();
    let config = shipped
        .replace("127.0.0.1:5678", &format!("127.0.0.1:{n8n_port}"))
        .replace(
            "/run/credentials/fusion-hub.service/fusion_n8n.secret",
            secret_file.to_str().unwrap(),
        )
        + &format!(
            "\n[[webhook]]\nname = \"impostor\"\nurl = \"http://127.0.0.1:{n8n_port}/webhook/fusion-payment-failed\"\ntopics = [\"payment.failed\"]\nsecret_file = \"{}\"\nmax_attempts = 2\nbackoff_initial_ms = 100\n",
            wrong_file.display()
        );
    let config_file = dirs.path().join("hub.toml");
    std::fs::write(&config_file, config).unwrap();
    let (code, checked) = fusion(&[
        "config",
        "check",
        "--kind",
        "hub",
        config_file.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{checked}");
    let config_arg = config_file.to_str().unwrap();
    let hub = spawn_hub(
        &hub_dir,
        &[
            "--config",
            config_arg,
            "--listen",
            "127.0.0.1:0",
            "--sync-bind",
            "127.0.0.1:0",
        ],
    )
    .await;
    let hub_flag = hub.endpoint.clone();
    let hub_url = hub.url.clone();
    let hub_target = [
        "--url",
        hub_url.as_str(),
        "--data-dir",
        hub_dir.to_str().unwrap(),
    ];

    // n8n reads the hub with a viewer token: it can read the fleet, never change it.
    let (code, viewer) = fusion(
        &[
            &[
                "hub", "token", "create", "--role", "viewer", "--label", "n8n",
            ][..],
            &hub_target[..],
        ]
        .concat(),
    );
    assert_eq!(code, 0);
    let viewer = viewer.trim().to_string();
    let forbidden = reqwest::Client::new()
        .post(format!("{hub_url}/webhooks/dlq/retry"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(forbidden.status(), 403);
    let n8n = N8nEnv {
        home,
        user_dir: dirs.path().join("n8n"),
        port: n8n_port,
        hub_url: hub_url.clone(),
        hub_token: viewer,
    };

    // The store's SMTP server, as the shipped credential example describes it.
    let smtp = SmtpCatcher::start(dirs.path()).await;
    let mut credentials: Value = serde_json::from_str(
        &std::fs::read_to_string(repo().join("hub/n8n/smtp-credential.example.json")).unwrap(),
    )
    .unwrap();
    credentials[0]["data"] = json!({
        "host": "127.0.0.1", "port": smtp.port, "secure": false, "disableStartTls": true,
        "user": "", "password": "",
    });
    let credentials_file = dirs.path().join("credentials.json");
    std::fs::write(&credentials_file, credentials.to_string()).unwrap();
    n8n.run(&[
        "import:credentials",
        &format!("--input={}", credentials_file.display()),
    ])
    .await;

    // Import the five templates and activate them, then start n8n.
    let mut all = Vec::new();
    for file in [
        "campaign-successful.json",
        "low-stock.json",
        "payment-failed.json",
        "daily-sales-summary.json",
        "receipt-email.json",
    ] {
        let text = std::fs::read_to_string(repo().join("hub/n8n").join(file)).unwrap();
        let workflows: Vec<Value> = serde_json::from_str(&text).unwrap();
        all.extend(workflows);
    }
    let import = dirs.path().join("workflows.json");
    std::fs::write(&import, Value::Array(all).to_string()).unwrap();
    n8n.run(&["import:workflow", &format!("--input={}", import.display())])
        .await;
    n8n.run(&["update:workflow", "--all", "--active=true"])
        .await;
    let mut server = n8n
        .command(&["start"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    wait_until("n8n to serve its webhooks", 180, || {
        let request = http
            .post(format!(
                "http://127.0.0.1:{n8n_port}/webhook/fusion-low-stock"
            ))
            .body("{}");
        async move {
            // Registered webhooks answer (an unsigned request is refused by the workflow).
            match request.send().await {
                Ok(r) if r.status() == 401 => Ok(()),
                Ok(r) => Err(format!("HTTP {}", r.status())),
                Err(e) => Err(e.to_string()),
            }
        }
    })
    .await;

    // A node enrolled at the hub, with a card provider.
    let stripe = start_localstripe().await;
    let key_file = dirs.path().join("stripe.key");
    std::fs::write(&key_file, "sk_test_fusion").unwrap();
    let (code, node_id) = fusion(&["node", "id", "--data-dir", node_dir.to_str().unwrap()]);
    assert_eq!(code, 0);
    let enroll = [
        &["hub", "enroll", node_id.trim(), "--store", "shop-n8n"][..],
        &hub_target[..],
    ]
    .concat();
    assert_eq!(fusion(&enroll).0, 0);
    let node = spawn_node_with(
        &node_dir,
        &[
            "--hub",
            hub_flag.as_str(),
            "--store-id",
            "shop-n8n",
            "--sync-bind",
            "127.0.0.1:0",
            "--stripe-url",
            stripe.url.as_str(),
            "--stripe-key-file",
            key_file.to_str().unwrap(),
        ],
    )
    .await;
    let call = |method: reqwest::Method, path: &str, body: Value| {
        http.request(method, format!("{}{path}", node.url))
            .bearer_auth(&node.admin)
            .json(&body)
            .send()
    };
    let post = |path: &str, body: Value| call(reqwest::Method::POST, path, body);

    // Low stock: a count brings LOW to 3 (≤ 5), then an order for 10 is refused.
    let low =
        json!({ "sku": "LOW", "name": "Low", "price": 4, "currency": "USD", "inventory": 20 });
    assert_eq!(post("/products", low).await.unwrap().status(), 201);
    let counted = call(
        reqwest::Method::PUT,
        "/inventory",
        json!({ "sku": "LOW", "quantity": 3 }),
    )
    .await
    .unwrap();
    assert!(counted.status().is_success(), "{}", counted.status());
    let refused = post(
        "/orders",
        json!({ "customerId": "c-low", "items": [{ "sku": "LOW", "quantity": 10, "price": 4 }] }),
    )
    .await
    .unwrap();
    assert!(refused.status().is_client_error());

    // A campaign reaching its minimum of two.
    let camp =
        json!({ "sku": "CAMP", "name": "Camp", "price": 50, "currency": "USD", "inventory": 10 });
    let product: Value = post("/products", camp).await.unwrap().json().await.unwrap();
    let campaign: Value = post(
        "/campaigns",
        json!({
            "productId": product["id"], "minParticipants": 2, "maxParticipants": 5,
            "price": 40, "originalPrice": 50,
            "startTime": "2020-01-01T00:00:00Z", "endTime": "2099-01-01T00:00:00Z",
        }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let campaign_id = campaign["id"].as_str().unwrap().to_string();
    for user in ["ada", "grace"] {
        let joined = post(
            &format!("/campaigns/{campaign_id}/join"),
            json!({ "userId": user }),
        )
        .await
        .unwrap();
        assert_eq!(joined.status(), 200);
    }

    // A declined card.
    let pay =
        json!({ "sku": "PAY", "name": "Pay", "price": 12.34, "currency": "USD", "inventory": 10 });
    assert_eq!(post("/products", pay).await.unwrap().status(), 201);
    let order: Value = post(
        "/orders",
        json!({ "customerId": "c-pay", "items": [{ "sku": "PAY", "quantity": 1, "price": 12.34 }] }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let order_id = order["id"].as_str().unwrap().to_string();
    let method: Value = http
        .post(format!("{}/v1/payment_methods", stripe.url))
        .basic_auth("sk_test_fusion", None::<&str>)
        .form(&[
            ("type", "card"),
            ("card[number]", "4000000000000341"),
            ("card[exp_month]", "12"),
            ("card[exp_year]", "2030"),
            ("card[cvc]", "123"),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let declined = post(
        "/payments",
        json!({ "orderId": order_id, "amount": 12.34, "currency": "USD", "paymentMethodId": method["id"] }),
    )
    .await
    .unwrap();
    assert_eq!(declined.status(), 402);

    // A sale paid in cash, its receipt asked for by email (the store named and addressed).
    let named = call(
        reqwest::Method::PATCH,
        "/settings",
        json!({ "name": "Corner Shop", "address": "12 Mill Lane\nLeeds LS1 4AP" }),
    )
    .await
    .unwrap();
    assert_eq!(named.status(), 200);
    let mug = json!({ "sku": "MUG", "name": "Blue mug", "price": 4.5, "currency": "USD", "inventory": 10 });
    assert_eq!(post("/products", mug).await.unwrap().status(), 201);
    let sale: Value = post(
        "/orders",
        json!({ "customerId": "c-mail", "items": [{ "sku": "MUG", "quantity": 2, "price": 4.5 }] }),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let sale_id = sale["id"].as_str().unwrap().to_string();
    let cash = post(
        "/payments",
        json!({ "orderId": sale_id, "amount": 9, "currency": "USD", "paymentMethodId": "cash", "tendered": 10 }),
    )
    .await
    .unwrap();
    assert_eq!(cash.status(), 201);
    let asked = post(
        &format!("/orders/{sale_id}/receipt/emails"),
        json!({ "to": "ada@example.com" }),
    )
    .await
    .unwrap();
    assert_eq!(asked.status(), 202);
    let till_text = http
        .get(format!("{}/orders/{sale_id}/receipt?format=text", node.url))
        .bearer_auth(&node.admin)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(till_text.contains("Verify "), "{till_text}");

    // Every subscription catches up; the impostor's delivery is refused by the workflow.
    let lag_of = || async {
        let (code, lag) = fusion(&[&["hub", "lag", "--json"][..], &hub_target[..]].concat());
        assert_eq!(code, 0);
        serde_json::from_str::<Value>(&lag).unwrap()
    };
    wait_until("the webhooks to catch up", 120, || async {
        let lag = lag_of().await;
        let hooks = lag["webhooks"].as_array().unwrap();
        let done = hooks.len() == 5
            && hooks.iter().all(|w| w["behind"] == 0)
            && hooks
                .iter()
                .find(|w| w["name"] == "impostor")
                .is_some_and(|w| w["deadLetters"] == 1);
        if done { Ok(()) } else { Err(lag.to_string()) }
    })
    .await;
    let lag = lag_of().await;
    eprintln!("lag: {lag}");
    let delivered = |name: &str| -> u64 {
        let w = lag["webhooks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|w| w["name"] == name)
            .unwrap();
        assert_eq!(
            w["deadLetters"],
            if name == "impostor" { 1 } else { 0 },
            "{w}"
        );
        w["delivered"].as_u64().unwrap()
    };
    assert_eq!(delivered("n8n-campaign-successful"), 1);
    assert_eq!(delivered("n8n-payment-failed"), 1);
    assert_eq!(delivered("impostor"), 0);
    assert_eq!(delivered("n8n-receipt-email"), 1);
    let low_stock_deliveries = delivered("n8n-low-stock");
    assert!(low_stock_deliveries >= 3, "{lag}"); // created 20, counted 3, refused

    // The fleet from the CLI: the store, its stock, the order with its story.
    let hub_json = |args: &[&str]| {
        let (code, out) = fusion(&[args, &["--json"][..], &hub_target[..]].concat());
        assert_eq!(code, 0, "{args:?}: {out}");
        serde_json::from_str::<Value>(&out).unwrap()
    };
    let stores = hub_json(&["hub", "stores"]);
    assert_eq!(stores[0]["storeId"], "shop-n8n");
    assert_eq!(
        (stores[0]["tills"].as_u64(), stores[0]["connected"].as_u64()),
        (Some(1), Some(1))
    );
    let stock = hub_json(&["hub", "stock", "--sku", "LOW"]);
    assert_eq!(
        stock,
        json!([{ "storeId": "shop-n8n", "sku": "LOW", "available": 3, "reserved": 0, "tills": 1 }])
    );
    let story = hub_json(&["hub", "order", &order_id]);
    assert_eq!(
        (story["storeId"].as_str(), story["status"].as_str()),
        (Some("shop-n8n"), Some("created"))
    );
    assert!(
        story["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["topic"] == "payment.failed"),
        "{story}"
    );
    let (code, table) = fusion(&[&["hub", "order", &order_id][..], &hub_target[..]].concat());
    assert_eq!(code, 0);
    assert!(
        table.contains("payment.failed") && table.contains("shop-n8n"),
        "{table}"
    );
    let (code, _) = fusion(&[&["hub", "order", "no-such-order"][..], &hub_target[..]].concat());
    assert_eq!(code, 3, "a refused request exits 3");

    let (code, letters) = fusion(
        &[
            &["hub", "dlq", "list", "--subscription", "impostor", "--json"][..],
            &hub_target[..],
        ]
        .concat(),
    );
    assert_eq!(code, 0);
    let letters: Value = serde_json::from_str(&letters).unwrap();
    assert_eq!(letters[0]["topic"], "payment.failed");
    assert_eq!(letters[0]["key"], order_id.as_str());
    assert_eq!(letters[0]["attempts"], 2);
    assert_eq!(letters[0]["lastError"], "HTTP 401 Unauthorized");
    // Retrying cannot help a wrong secret: still refused, exit 1, the letter stays.
    let (code, _) = fusion(
        &[
            &["hub", "dlq", "retry", "--subscription", "impostor"][..],
            &hub_target[..],
        ]
        .concat(),
    );
    assert_eq!(code, 1);

    // n8n's own database: one execution per delivery (the impostor's included: the workflow
    // ran and answered 401), all of them successful, and the work done.
    let expected = [
        (CAMPAIGN, 1),
        // The hub's deliveries and the unsigned probe that found n8n ready.
        (LOW_STOCK, low_stock_deliveries + 1),
        (PAYMENT_FAILED, 1 + 3), // the real one; the impostor's 2 attempts and 1 retry
        (RECEIPT_EMAIL, 1),
    ];
    wait_until("n8n to record the executions", 60, || async {
        let rows = n8n
            .query("SELECT workflowId AS w, status AS s, COUNT(*) AS n FROM execution_entity WHERE finished = 1 OR status != 'running' GROUP BY workflowId, status")
            .await;
        for (workflow, n) in expected {
            let found = rows
                .iter()
                .find(|r| r["w"] == workflow && r["s"] == "success")
                .and_then(|r| r["n"].as_u64())
                .unwrap_or(0);
            if found != n {
                return Err(format!("{workflow}: {found} of {n}; {rows:?}"));
            }
        }
        eprintln!("executions: {rows:?}");
        match rows.iter().find(|r| r["s"] != "success") {
            Some(r) => panic!("an execution did not succeed: {r}"),
            None => Ok(()),
        }
    })
    .await;
    let data_of = |workflow: &'static str| {
        let n8n = &n8n;
        async move {
            n8n.query(&format!("SELECT d.data AS data FROM execution_data d JOIN execution_entity e ON e.id = d.executionId WHERE e.workflowId = '{workflow}'"))
                .await
                .iter()
                .map(|r| r["data"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
                .join("\n")
        }
    };
    let campaign_runs = data_of(CAMPAIGN).await;
    for needle in [
        campaign_id.as_str(),
        "ada",
        "grace",
        "Your group deal for CAMP is on",
    ] {
        assert!(
            campaign_runs.contains(needle),
            "campaign run lacks {needle}"
        );
    }
    let low_runs = data_of(LOW_STOCK).await;
    for needle in [
        "stock at or below the reorder point",
        "an order was refused for lack of stock",
        "shop-n8n",
    ] {
        assert!(low_runs.contains(needle), "low-stock run lacks {needle}");
    }
    let payment_runs = data_of(PAYMENT_FAILED).await;
    for needle in [order_id.as_str(), "review the order"] {
        assert!(payment_runs.contains(needle), "payment run lacks {needle}");
    }

    // The receipt as the hub lays it out is the till's, line for line (names, store, address,
    // verification code: all from the fleet log and documents).
    let hub_text = http
        .get(format!(
            "{hub_url}/fleet/orders/{sale_id}/receipt?format=text"
        ))
        .bearer_auth(&n8n.hub_token)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(hub_text, till_text);
    for (path, status) in [
        (format!("/fleet/orders/{sale_id}/receipt?format=pdf"), 400),
        // The declined card's order was never paid: no receipt.
        (format!("/fleet/orders/{order_id}/receipt"), 404),
        ("/fleet/orders/not-an-id/receipt".to_string(), 404),
    ] {
        let answer = http
            .get(format!("{hub_url}{path}"))
            .bearer_auth(&n8n.hub_token)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status().as_u16(), status, "{path}");
        let body: Value = answer.json().await.unwrap();
        assert!(body["error"].is_string(), "{path}: {body}");
    }
    // The email: to the customer, from the store's sender, the receipt as text and HTML.
    wait_until("the receipt email", 60, || async {
        let n = smtp.messages().await.len();
        if n == 1 {
            Ok(())
        } else {
            Err(format!("{n} messages"))
        }
    })
    .await;
    let mail = smtp.messages().await.remove(0);
    let number = till_text
        .lines()
        .find_map(|l| l.strip_prefix("Receipt "))
        .map(str::trim)
        .expect("the receipt number line")
        .to_string();
    assert_eq!(mail["to"], "ada@example.com");
    assert_eq!(mail["from"], "receipts@corner.example");
    assert_eq!(
        mail["subject"].as_str().unwrap(),
        format!("Your receipt {number} from Corner Shop")
    );
    let mailed: Vec<&str> = mail["text"].as_str().unwrap().lines().collect();
    assert_eq!(mailed, till_text.lines().collect::<Vec<_>>());
    let html = mail["html"].as_str().unwrap();
    assert!(
        html.contains("<pre>") && html.contains("Blue mug") && html.contains("Leeds LS1 4AP"),
        "{html}"
    );
    // A redelivery of the same event (deliveries are at least once) sends nothing more.
    let page: Value = http
        .get(format!("{hub_url}/events?topic=receipt.emailed"))
        .bearer_auth(&n8n.hub_token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let record = &page["events"][0];
    let event_id = record["eventId"].as_str().unwrap();
    let body = serde_json::to_vec(&record["payload"]).unwrap();
    let again = http
        .post(format!(
            "http://127.0.0.1:{n8n_port}/webhook/fusion-receipt-email"
        ))
        .header("x-fusion-event-id", event_id)
        .header("x-fusion-topic", "receipt.emailed")
        .header(
            "x-fusion-signature",
            fusion_hub::webhook::signature(SECRET.as_bytes(), event_id, "receipt.emailed", &body),
        )
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(
        again.json::<Value>().await.unwrap()["duplicate"],
        true,
        "answered as already sent"
    );
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(smtp.messages().await.len(), 1, "sent once");

    // The daily summary, run now: it reads the hub's sales (two orders today: the declined
    // card's 12.34 and the mugs' 9.00).
    server.kill().await.unwrap();
    let out = n8n
        .run(&["execute", &format!("--id={DAILY_SALES}"), "--rawOutput"])
        .await;
    let start = out.find("{\n").expect("the execution's JSON");
    let run: Value = serde_json::from_str(&out[start..]).unwrap();
    let summary =
        &run["data"]["resultData"]["runData"]["Summarize the day"][0]["data"]["main"][0][0]["json"];
    eprintln!("summary: {summary}");
    assert_eq!(
        summary["totals"],
        json!([{ "currency": "USD", "orders": 2, "total": "21.34" }]),
        "{summary}"
    );
    assert_eq!(summary["stores"][0]["storeId"], "shop-n8n");
    drop(node);
}
