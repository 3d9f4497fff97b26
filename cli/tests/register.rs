//! The register in a real browser (issue 19): headless Chromium (Debian's `/usr/bin/chromium`)
//! driven by Playwright (`playwright-core` from npm, installed here on first use into
//! `~/.cache/fusion-playwright`) runs `tests/register/e2e.mjs` against two real tills and a hub
//! (real processes): a cashier signs in by PIN, scans three items, a manager approves a
//! discount by PIN, cash with change, the receipt shown; the sale returned at the other till by
//! its receipt number; the hub stopped — the next sale completes, the status bar says the hub is
//! offline with events waiting, and they drain when it is back; the drawer closed 1.00 short
//! and its Z report. Then the hub's console (`GET /console`) with a viewer token: both tills
//! online, the day's sales, the Z report, a webhook dead letter it may not retry; with an admin
//! token the retry delivers it. Every request the pages make stays on their node (or hub).
//! Screenshots of each step go to `$TMPDIR/fusion-register-shots` (not committed).

use std::path::{Path, PathBuf};
use std::process::Stdio;

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

mod common;
use common::{HubProcess, NodeProcess, free_port, fusion, spawn_hub, spawn_node_with, wait_until};

const PLAYWRIGHT_VERSION: &str = "1.65.2";
const CHROMIUM: &str = "/usr/bin/chromium";

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// playwright-core's directory: installed with npm on first use (no browser download: the
/// browser is Debian's).
fn ensure_playwright() -> PathBuf {
    let home = PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
        .join(".cache/fusion-playwright")
        .join(PLAYWRIGHT_VERSION);
    if !home.join("node_modules/playwright-core/index.mjs").exists() {
        std::fs::create_dir_all(&home).unwrap();
        let manifest = json!({
            "name": "fusion-playwright",
            "private": true,
            "dependencies": { "playwright-core": PLAYWRIGHT_VERSION },
        });
        std::fs::write(home.join("package.json"), manifest.to_string()).unwrap();
        let status = std::process::Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
            .current_dir(&home)
            .env("PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD", "1")
            .status()
            .expect("npm (Node 20) is needed for playwright-core");
        assert!(status.success(), "npm install playwright-core failed");
    }
    home
}

async fn call(node: &NodeProcess, method: reqwest::Method, path: &str, body: Value) -> Value {
    let response = reqwest::Client::new()
        .request(method, format!("{}{path}", node.url))
        .bearer_auth(&node.admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(status.is_success(), "{path}: {status} {body}");
    body
}

/// The hub on fixed addresses (its URL and endpoint stay the same across the restart), with
/// `config`: a webhook subscription of `session.closed` to a port where nothing answers yet,
/// one attempt — the Z report becomes a dead letter for the console to retry.
async fn start_hub(dir: &Path, config: &Path, listen: &str, sync: &str) -> HubProcess {
    let config = config.to_str().unwrap();
    spawn_hub(
        dir,
        &["--config", config, "--listen", listen, "--sync-bind", sync],
    )
    .await
}

/// A webhook receiver on `port` answering 204 to every request; counts them.
async fn webhook_sink(port: u16) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
    use std::sync::atomic::Ordering;
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let received = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let counter = received.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                // One request per connection: the headers, then Content-Length bytes of body.
                let mut request = Vec::new();
                let mut buffer = [0u8; 4096];
                loop {
                    let Ok(n) = socket.read(&mut buffer).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buffer[..n]);
                    let text = String::from_utf8_lossy(&request);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (name, value) = l.split_once(':')?;
                                name.eq_ignore_ascii_case("content-length")
                                    .then(|| value.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                counter.fetch_add(1, Ordering::SeqCst);
                let _ = socket
                    .write_all(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")
                    .await;
            });
        }
    });
    received
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cashiers_day_on_the_register_in_a_browser() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is needed (./test.sh installs Debian's chromium)"
    );
    let playwright = tokio::task::spawn_blocking(ensure_playwright)
        .await
        .unwrap();

    let hub_dir = tempfile::tempdir().unwrap();
    let sync = format!("127.0.0.1:{}", free_port());
    let listen = format!("127.0.0.1:{}", free_port());
    let sink_port = free_port();
    let secret = hub_dir.path().join("webhook.secret");
    std::fs::write(&secret, "console-test-secret\n").unwrap();
    let config = hub_dir.path().join("hub.toml");
    std::fs::write(
        &config,
        format!(
            "[[webhook]]\nname = \"z-reports\"\nurl = \"http://127.0.0.1:{sink_port}/z\"\n\
             topics = [\"session.closed\"]\nsecret_file = \"{}\"\nmax_attempts = 1\n\
             timeout_ms = 2000\n",
            secret.display()
        ),
    )
    .unwrap();
    let mut hub = Some(start_hub(hub_dir.path(), &config, &listen, &sync).await);
    let endpoint = hub.as_ref().unwrap().endpoint.clone();
    let hub_target = [
        "--url".to_string(),
        hub.as_ref().unwrap().url.clone(),
        "--data-dir".to_string(),
        hub_dir.path().to_str().unwrap().to_string(),
    ];
    // Two tills of store s1, enrolled at the hub and each the other's direct peer (the store
    // mesh: returns and stock between tills also with the hub down).
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let mut ids = Vec::new();
    for dir in &dirs {
        let (_, id) = fusion(&["node", "id", "--data-dir", dir.path().to_str().unwrap()]);
        let id = id.trim().to_string();
        let mut enroll = vec!["hub", "enroll", id.as_str(), "--store", "s1"];
        enroll.extend(hub_target.iter().map(String::as_str));
        assert_eq!(fusion(&enroll).0, 0);
        ids.push(id);
    }
    let binds = [
        format!("127.0.0.1:{}", free_port()),
        format!("127.0.0.1:{}", free_port()),
    ];
    let till_args = |me: usize| {
        let other = 1 - me;
        vec![
            "--hub".to_string(),
            endpoint.clone(),
            "--sync-bind".to_string(),
            binds[me].clone(),
            "--peer".to_string(),
            format!("{}@{}", ids[other], binds[other]),
            "--store-id".to_string(),
            "s1".to_string(),
        ]
    };
    let (mut args_a, args_b) = (till_args(0), till_args(1));
    // Till A has a network receipt printer: a raw port that keeps every job's bytes.
    let printer = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    args_a.extend([
        "--printer".to_string(),
        printer.local_addr().unwrap().to_string(),
    ]);
    let jobs = std::sync::Arc::new(std::sync::Mutex::new(Vec::<Vec<u8>>::new()));
    let printed = jobs.clone();
    tokio::spawn(async move {
        use tokio::io::AsyncReadExt;
        while let Ok((mut socket, _)) = printer.accept().await {
            let mut job = Vec::new();
            if socket.read_to_end(&mut job).await.is_ok() {
                printed.lock().unwrap().push(job);
            }
        }
    });
    let a = spawn_node_with(
        dirs[0].path(),
        &args_a.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    let b = spawn_node_with(
        dirs[1].path(),
        &args_b.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .await;
    use reqwest::Method;
    call(
        &a,
        Method::PATCH,
        "/settings",
        json!({ "name": "Corner Shop", "address": "12 Mill Lane" }),
    )
    .await;
    for (sku, name, price) in [
        ("4006381333931", "Blue mug", 4.5),
        ("5000112637922", "Breakfast tea", 3.0),
    ] {
        call(
            &a,
            Method::POST,
            "/products",
            json!({ "sku": sku, "name": name, "price": price, "currency": "USD", "inventory": 50 }),
        )
        .await;
    }
    for (id, name, role, pin) in [
        ("ana", "Ana Lima", "cashier", "1234"),
        ("bo", "Bo Park", "cashier", "2468"),
        ("max", "Max Stone", "manager", "9999"),
    ] {
        call(
            &a,
            Method::POST,
            "/staff",
            json!({ "id": id, "name": name, "role": role, "pin": pin }),
        )
        .await;
    }
    // Till B knows the staff and the catalog through the hub before its screen opens.
    let http = reqwest::Client::new();
    wait_until("the staff and catalog at till B", 60, || async {
        let (_, staff) = b.get(&http, "/staff").await;
        let (_, products) = b.get(&http, "/products").await;
        let (s, p) = (
            staff.as_array().map_or(0, Vec::len),
            products.as_array().map_or(0, Vec::len),
        );
        if s == 3 && p == 2 {
            Ok(())
        } else {
            Err(format!("{s} members, {p} products"))
        }
    })
    .await;
    let (token_a, token_b) = (
        mint_token(&a.url, &a.admin, "cashier", "register").await,
        mint_token(&b.url, &b.admin, "cashier", "register").await,
    );
    let hub_url = hub.as_ref().unwrap().url.clone();
    let hub_admin = std::fs::read_to_string(hub_dir.path().join("admin.token"))
        .unwrap()
        .trim()
        .to_string();
    let hub_viewer = mint_token(&hub_url, &hub_admin, "viewer", "console").await;
    let mut sink = None;

    let shots = std::env::temp_dir().join("fusion-register-shots");
    let _ = std::fs::remove_dir_all(&shots);
    let mut browser = Command::new("node")
        .arg(repo().join("cli/tests/register/e2e.mjs"))
        .env("PLAYWRIGHT", &playwright)
        .env("TILL_A", &a.url)
        .env("TILL_B", &b.url)
        .env("TOKEN_A", &token_a)
        .env("TOKEN_B", &token_b)
        .env("HUB", &hub_url)
        .env("HUB_VIEWER", &hub_viewer)
        .env("HUB_ADMIN", &hub_admin)
        .env("SHOTS", &shots)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true)
        .spawn()
        .expect("node (Node 20) runs the browser test");
    let mut to_browser = browser.stdin.take().unwrap();
    let mut lines = BufReader::new(browser.stdout.take().unwrap()).lines();
    let mut result = None;
    while let Some(line) =
        tokio::time::timeout(std::time::Duration::from_secs(240), lines.next_line())
            .await
            .expect("the browser test answers within 4 minutes")
            .unwrap()
    {
        match line.as_str() {
            "@hub stop" => {
                let mut stopped = hub.take().expect("the hub is running");
                stopped.child.start_kill().unwrap();
                stopped.child.wait().await.unwrap();
                to_browser.write_all(b"ok\n").await.unwrap();
            }
            "@hub start" => {
                hub = Some(start_hub(hub_dir.path(), &config, &listen, &sync).await);
                to_browser.write_all(b"ok\n").await.unwrap();
            }
            "@sink start" => {
                sink = Some(webhook_sink(sink_port).await);
                to_browser.write_all(b"ok\n").await.unwrap();
            }
            other => match other.strip_prefix("@result ") {
                Some(json) => result = Some(serde_json::from_str::<Value>(json).unwrap()),
                None => eprintln!("browser: {other}"),
            },
        }
    }
    let status = browser.wait().await.unwrap();
    let result = result.expect("the browser test reports its result");
    eprintln!(
        "register: {}",
        serde_json::to_string_pretty(&result).unwrap()
    );
    eprintln!("screenshots: {}", shots.display());
    assert!(
        status.success(),
        "the browser test failed: {}",
        result["error"]
    );
    assert_eq!(
        result["foreign"],
        json!([]),
        "a page reached outside its node"
    );
    assert_eq!(result["steps"].as_array().unwrap().len(), 13, "{result}");
    // The one receipt sent to till A's printer: ESC/POS (it starts with ESC @, the printer's
    // reset) carrying the receipt's number.
    let jobs = jobs.lock().unwrap().clone();
    assert_eq!(jobs.len(), 1, "one job at the printer");
    assert!(jobs[0].starts_with(b"\x1b@"), "ESC/POS");
    let receipt = result["receipt"].as_str().unwrap();
    assert!(
        String::from_utf8_lossy(&jobs[0]).contains(receipt),
        "the job prints receipt {receipt}"
    );
    assert!(
        result["zReport"]
            .as_str()
            .unwrap()
            .contains("Variance               USD -1.00"),
        "{}",
        result["zReport"]
    );

    // What the screens said is what the tills hold: till A's Z report 1, 1.00 short, and the
    // second sale (made with the hub down) reached the hub.
    let (_, sessions) = a.get(&http, "/sessions").await;
    let closed = &sessions[0];
    assert_eq!(
        (closed["z"].clone(), closed["status"].clone()),
        (json!(1), json!("closed"))
    );
    let (_, report) = a
        .get(
            &http,
            &format!("/sessions/{}/report", closed["id"].as_str().unwrap()),
        )
        .await;
    assert_eq!(report["variance"].as_f64(), Some(-1.0), "{report}");
    assert_eq!(report["totals"]["sales"], json!(2), "{report}");
    // The console's retry reached the receiver: the Z report's one dead letter, delivered.
    let delivered = sink.expect("the browser test started the webhook receiver");
    assert_eq!(delivered.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert!(
        result["console"]["retried"]
            .as_str()
            .unwrap()
            .contains("delivered 1, remaining 0"),
        "{result}"
    );
    wait_until("the three sales at the hub", 60, || async {
        let sales: Value = http
            .get(format!("{hub_url}/fleet/sales"))
            .bearer_auth(hub_admin.trim())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let orders: u64 = sales
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["orders"].as_u64().unwrap_or(0))
            .sum();
        if orders == 3 {
            Ok(())
        } else {
            Err(sales.to_string())
        }
    })
    .await;
}

/// A token of `role` made with `admin` at the node or hub at `url` (`POST /tokens`).
async fn mint_token(url: &str, admin: &str, role: &str, label: &str) -> String {
    let made: Value = reqwest::Client::new()
        .post(format!("{url}/tokens"))
        .bearer_auth(admin)
        .json(&json!({ "role": role, "label": label }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    made["token"].as_str().unwrap().to_string()
}
