//! Receipts printed (issue 18, part 4): the store's name and address and the cashier on the
//! receipt; JSON, 42-column text, HTML and ESC/POS by `format` or `Accept`; the ESC/POS bytes
//! decoded by an independent reading of the Epson command table (`tests/escpos/decode.py`);
//! the first print the original (the drawer kicks for cash), a reprint DUPLICATE and counted
//! in the Z report; a receipt found by its number; a return's slip.

use std::io::Write;
use std::process::{Command, Stdio};

use super::*;

/// The decoder's reading of ESC/POS `bytes`.
fn decode_escpos(bytes: &[u8]) -> Value {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/escpos/decode.py");
    let mut child = Command::new("python3")
        .arg(script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 runs the ESC/POS decoder");
    child.stdin.take().unwrap().write_all(bytes).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the decoder refused the bytes: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

async fn raw(
    node: &TestNode,
    method: Method,
    path: &str,
    token: &str,
    accept: Option<&str>,
) -> (StatusCode, String, Vec<u8>) {
    let mut request = reqwest::Client::new()
        .request(method, format!("http://{}{path}", node.addr))
        .bearer_auth(token);
    if let Some(accept) = accept {
        request = request.header("Accept", accept);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let kind = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, kind, response.bytes().await.unwrap().to_vec())
}

fn texts(decoded: &Value) -> Vec<String> {
    decoded["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn receipts_print_as_text_html_and_escpos_and_reprints_say_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let node = of_store(dir.path()).await;
    node.product("MUG", json!(4.50), 20).await;
    let set = node
        .send(
            Method::PATCH,
            "/settings",
            json!({ "name": "Corner Coffee", "address": "12 Mill Lane\nLeeds LS1 4AP" }),
        )
        .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_error(
        &node
            .send(
                Method::PATCH,
                "/settings",
                json!({ "address": "1\n2\n3\n4\n5" }),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("address"),
    );
    let till = node.token("cashier").await;
    let added = node
        .post(
            "/staff",
            json!({ "id": "ana", "name": "Ana Lima", "role": "cashier", "pin": "1234" }),
        )
        .await;
    assert_eq!(added.status, StatusCode::CREATED);
    let ana = node
        .call(
            Method::POST,
            "/staff/sign-in",
            Some(&till),
            Some(&json!({ "staff": "ana", "pin": "1234" })),
            &[],
        )
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_string();
    let opened = node
        .call(
            Method::POST,
            "/sessions",
            Some(&ana),
            Some(&json!({ "float": 50, "currency": "USD" })),
            &[],
        )
        .await;
    assert_eq!(opened.status, StatusCode::CREATED, "{}", opened.body);
    let placed = node
        .call(
            Method::POST,
            "/orders",
            Some(&ana),
            Some(&order(json!([{ "sku": "MUG", "quantity": 2 }]))),
            &[],
        )
        .await;
    let id = placed.body["id"].as_str().unwrap().to_string();
    let paid = node
        .call(Method::POST, "/payments", Some(&ana), Some(&json!({ "orderId": id, "amount": 9.00, "currency": "USD", "paymentMethodId": "cash", "tendered": 20 })), &[])
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);

    // JSON and text: the store, its address, who served, each line within 42 columns.
    let receipt = node.get(&format!("/orders/{id}/receipt")).await;
    assert_eq!(receipt.status, StatusCode::OK, "{}", receipt.body);
    assert_eq!(receipt.body["staff"], "Ana Lima");
    assert_eq!(receipt.body["address"], "12 Mill Lane\nLeeds LS1 4AP");
    let number = receipt.body["receipt"].as_str().unwrap().to_string();
    let (status, kind, text) = raw(
        &node,
        Method::GET,
        &format!("/orders/{id}/receipt"),
        &till,
        Some("text/plain"),
    )
    .await;
    assert_eq!(
        (status, kind.as_str()),
        (StatusCode::OK, "text/plain; charset=utf-8")
    );
    let text = String::from_utf8(text).unwrap();
    for needle in [
        "Corner Coffee",
        "12 Mill Lane",
        "Leeds LS1 4AP",
        "Served by Ana Lima",
        &number,
    ] {
        assert!(text.contains(needle), "{needle}\n{text}");
    }
    assert!(text.lines().all(|l| l.chars().count() <= 42), "{text}");
    assert!(
        !text.contains("DUPLICATE"),
        "viewing is not a reprint\n{text}"
    );

    // HTML: the same lines in a print page, escaped.
    let (status, kind, html) = raw(
        &node,
        Method::GET,
        &format!("/orders/{id}/receipt?format=html"),
        &till,
        None,
    )
    .await;
    assert_eq!(
        (status, kind.as_str()),
        (StatusCode::OK, "text/html; charset=utf-8")
    );
    let html = String::from_utf8(html).unwrap();
    assert!(
        html.starts_with("<!doctype html>") && html.contains("@page{size:80mm auto"),
        "{html}"
    );
    assert!(
        html.contains("Served by Ana Lima") && html.contains("<strong>TOTAL"),
        "{html}"
    );

    // ESC/POS by Accept: decoded, the same lines as the text, the total emphasized, then the
    // cut; viewing opens no drawer.
    let (status, kind, bytes) = raw(
        &node,
        Method::GET,
        &format!("/orders/{id}/receipt"),
        &till,
        Some("application/vnd.escpos"),
    )
    .await;
    assert_eq!(
        (status, kind.as_str()),
        (StatusCode::OK, "application/vnd.escpos")
    );
    let decoded = decode_escpos(&bytes);
    assert_eq!(decoded["init"], true);
    assert_eq!(decoded["codepage"], 0);
    assert_eq!(
        texts(&decoded),
        text.lines().map(str::to_string).collect::<Vec<_>>()
    );
    let total = decoded["lines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["text"].as_str().unwrap().starts_with("TOTAL"))
        .unwrap()
        .clone();
    assert_eq!(total["bold"], true);
    assert!(
        total["text"].as_str().unwrap().ends_with("USD 9.00"),
        "{total}"
    );
    assert_eq!(decoded["cut"], json!({ "partial": true, "feed": 0 }));
    assert_eq!(decoded["after_cut"], 0);
    assert_eq!(decoded["kick"], Value::Null);

    // The first print at the selling till is the original and kicks the drawer (cash taken);
    // the second is a DUPLICATE, opens nothing, and is counted.
    let prints = format!("/orders/{id}/receipt/prints?format=escpos");
    let (status, _, first) = raw(&node, Method::POST, &prints, &ana, None).await;
    assert_eq!(status, StatusCode::CREATED);
    let first = decode_escpos(&first);
    assert_eq!(
        first["kick"],
        json!({ "pin": 0, "on_ms": 50, "off_ms": 500 })
    );
    assert!(!texts(&first).iter().any(|l| l.contains("DUPLICATE")));
    let again = node
        .call(
            Method::POST,
            &format!("/orders/{id}/receipt/prints"),
            Some(&ana),
            None,
            &[],
        )
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(
        (again.body["copy"].clone(), again.body["duplicate"].clone()),
        (json!(2), json!(true))
    );
    assert!(
        again.body["text"]
            .as_str()
            .unwrap()
            .lines()
            .next()
            .unwrap()
            .contains("*** DUPLICATE ***")
    );
    let (_, _, third) = raw(&node, Method::POST, &prints, &ana, None).await;
    let third = decode_escpos(&third);
    assert_eq!(third["kick"], Value::Null);
    assert_eq!(third["lines"][0]["bold"], true);
    assert!(
        third["lines"][0]["text"]
            .as_str()
            .unwrap()
            .contains("DUPLICATE")
    );
    let printed: Vec<Value> = node
        .events()
        .await
        .into_iter()
        .filter(|e| e["topic"] == "receipt.printed")
        .map(|e| e["payload"].clone())
        .collect();
    assert_eq!(printed.len(), 3);
    assert_eq!(printed[2]["copy"], 3);
    assert_eq!(printed[2]["staff"], "ana");
    assert!(
        node.get("/metrics")
            .await
            .body
            .as_str()
            .unwrap()
            .contains("fusion_receipt_reprints_total 2"),
        "reprints are counted"
    );

    // By its number; an unknown number or format is refused.
    let found = node.get(&format!("/receipts/{number}")).await;
    assert_eq!(found.status, StatusCode::OK, "{}", found.body);
    assert_eq!(found.body["order"]["id"], id.as_str());
    assert_error(
        &node.get("/receipts/nope-1").await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    assert_error(
        &node.get(&format!("/orders/{id}/receipt?format=pdf")).await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("format"),
    );
    assert_error(
        &node
            .call(
                Method::POST,
                &format!("/orders/{}/receipt/prints", uuid::Uuid::now_v7()),
                Some(&ana),
                None,
                &[],
            )
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );

    // A return's slip: the units back, the refund and where it went, who took it.
    let back = node
        .call(
            Method::POST,
            &format!("/orders/{id}/returns"),
            Some(&ana),
            Some(&json!({ "lines": [{ "line": 0, "quantity": 1 }] })),
            &[],
        )
        .await;
    assert_eq!(back.status, StatusCode::CREATED, "{}", back.body);
    let return_id = back.body["returnId"].as_str().unwrap().to_string();
    let slip = node.get(&format!("/returns/{return_id}/receipt")).await;
    assert_eq!(slip.status, StatusCode::OK, "{}", slip.body);
    assert_eq!(slip.body["receipt"], number.as_str());
    let slip_text = slip.body["text"].as_str().unwrap();
    for needle in [
        "*** REFUND ***",
        "Return of receipt",
        number.as_str(),
        "Taken back by Ana Lima",
        "12 Mill Lane",
    ] {
        assert!(slip_text.contains(needle), "{needle}\n{slip_text}");
    }
    let slip_lines: Vec<&str> = slip_text.lines().collect();
    assert!(
        slip_lines.iter().all(|l| l.chars().count() <= 42),
        "{slip_text}"
    );
    assert!(
        slip_lines
            .iter()
            .any(|l| l.starts_with("REFUND") && l.ends_with("USD 4.50")),
        "{slip_text}"
    );
    assert!(
        slip_lines
            .iter()
            .any(|l| l.starts_with("Cash") && l.ends_with("4.50")),
        "{slip_text}"
    );
    let (status, _, slip_bytes) = raw(
        &node,
        Method::GET,
        &format!("/returns/{return_id}/receipt?format=escpos"),
        &till,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let decoded = decode_escpos(&slip_bytes);
    assert_eq!(
        texts(&decoded),
        slip_lines.iter().map(|l| l.to_string()).collect::<Vec<_>>()
    );
    assert_error(
        &node
            .get(&format!("/returns/{}/receipt", uuid::Uuid::now_v7()))
            .await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );

    // The Z report counts the reprints.
    let session = opened.body["id"].as_str().unwrap();
    let z = node
        .call(
            Method::POST,
            &format!("/sessions/{session}/close"),
            Some(&ana),
            Some(&json!({ "counted": 54.50 })),
            &[],
        )
        .await;
    assert_eq!(z.status, StatusCode::OK, "{}", z.body);
    assert_eq!(z.body["reprints"], 2);
    assert_eq!(z.body["variance"], json!(0.0));
    node.stop().await;
}

/// A receipt by email: the request is recorded (`receipt.emailed`, with the staff member and
/// the receipt's verification code at the selling till) before the 202; a bad address is a
/// 400 naming `to`, an unpaid order a 404; a retry with the same Idempotency-Key records once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receipt_email_is_recorded_for_the_hub_to_send() {
    let dir = tempfile::tempdir().unwrap();
    let node = of_store(dir.path()).await;
    node.product("MUG", json!(4.50), 20).await;
    let placed = node
        .post("/orders", order(json!([{ "sku": "MUG", "quantity": 1 }])))
        .await;
    let id = placed.body["id"].as_str().unwrap().to_string();
    let emails = format!("/orders/{id}/receipt/emails");
    let cashier = node.token("cashier").await;
    let ask = |to: Value, key: Option<&'static str>| {
        let headers: Vec<(&str, &str)> = key.map(|k| ("Idempotency-Key", k)).into_iter().collect();
        let node = &node;
        let cashier = cashier.clone();
        let path = emails.clone();
        async move {
            node.call(
                Method::POST,
                &path,
                Some(&cashier),
                Some(&json!({ "to": to })),
                &headers,
            )
            .await
        }
    };
    // Not paid yet: no receipt to send.
    assert_error(
        &ask(json!("ada@example.com"), None).await,
        StatusCode::NOT_FOUND,
        "not_found",
        None,
    );
    let paid = node
        .post(
            "/payments",
            json!({ "orderId": id, "amount": 4.50, "currency": "USD", "paymentMethodId": "cash" }),
        )
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);
    for bad in [
        json!("ada"),
        json!("ada@example.com\r\nBcc: all@example.com"),
        json!(""),
        json!(42),
    ] {
        let answer = ask(bad.clone(), None).await;
        assert_eq!(
            answer.status,
            StatusCode::BAD_REQUEST,
            "{bad}: {}",
            answer.body
        );
        if bad.is_string() {
            assert_eq!(answer.body["field"], "to", "{bad}: {}", answer.body);
        }
    }
    let receipt = node.get(&format!("/orders/{id}/receipt")).await;
    let first = ask(json!(" ada@example.com "), Some("email-1")).await;
    assert_eq!(first.status, StatusCode::ACCEPTED, "{}", first.body);
    assert_eq!(first.body["to"], "ada@example.com");
    assert_eq!(first.body["status"], "queued");
    assert_eq!(first.body["receipt"], receipt.body["receipt"]);
    let retry = ask(json!(" ada@example.com "), Some("email-1")).await;
    assert_eq!(retry.status, StatusCode::ACCEPTED, "{}", retry.body);
    assert_eq!(retry.body, first.body);
    let emailed: Vec<Value> = node
        .events()
        .await
        .into_iter()
        .filter(|e| e["topic"] == "receipt.emailed")
        .map(|e| e["payload"].clone())
        .collect();
    assert_eq!(emailed.len(), 1, "{emailed:?}");
    assert_eq!(emailed[0]["to"], "ada@example.com");
    assert_eq!(emailed[0]["orderId"], id.as_str());
    assert_eq!(
        emailed[0]["verificationCode"],
        receipt.body["verificationCode"]
    );
    assert!(emailed[0]["verificationCode"].is_string());
    assert!(
        node.get("/metrics")
            .await
            .body
            .as_str()
            .unwrap()
            .contains("fusion_receipt_emails_total 1"),
        "emails are counted"
    );
}

/// A network printer's raw port on loopback: every connection's bytes, read to its end.
async fn printer_port() -> (
    std::net::SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<Vec<u8>>,
    tokio::task::JoinHandle<()>,
) {
    use tokio::io::AsyncReadExt;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut bytes = Vec::new();
            socket.read_to_end(&mut bytes).await.unwrap();
            tx.send(bytes).unwrap();
        }
    });
    (addr, rx, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_to_printer_writes_the_receipts_escpos_to_the_tills_printer() {
    let (addr, mut printed, printer) = printer_port().await;
    let dir = tempfile::tempdir().unwrap();
    let node = Node::open(dir.path(), store_options())
        .await
        .unwrap()
        .with_printer(fusion_node::printer::Printer::Network(addr.to_string()));
    let node = serve_node(node).await;
    let shown = node.get("/printer").await;
    assert_eq!(
        shown.body,
        json!({ "configured": true, "printer": format!("tcp://{addr}") })
    );
    node.product("MUG", json!(4.50), 20).await;
    let placed = node
        .post("/orders", order(json!([{ "sku": "MUG", "quantity": 1 }])))
        .await;
    let id = placed.body["id"].as_str().unwrap().to_string();
    let paid = node
        .post(
            "/payments",
            json!({ "orderId": id, "amount": 4.50, "currency": "USD", "paymentMethodId": "cash", "tendered": 5 }),
        )
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);
    let send = format!("/orders/{id}/receipt/prints?send=printer");

    // The original: the printer gets exactly the bytes the receipt's ESC/POS is, drawer kick
    // included (cash); the answer says how many it took.
    let sent = node.post(&send, json!(null)).await;
    assert_eq!(sent.status, StatusCode::CREATED, "{}", sent.body);
    assert_eq!(
        (sent.body["copy"].clone(), sent.body["duplicate"].clone()),
        (json!(1), json!(false))
    );
    let bytes = printed.recv().await.unwrap();
    assert_eq!(sent.body["bytes"], json!(bytes.len()));
    let decoded = decode_escpos(&bytes);
    assert_eq!(
        decoded["kick"],
        json!({ "pin": 0, "on_ms": 50, "off_ms": 500 })
    );
    let (_, _, text) = raw(
        &node,
        Method::GET,
        &format!("/orders/{id}/receipt?format=text"),
        &node.admin,
        None,
    )
    .await;
    assert_eq!(
        texts(&decoded),
        String::from_utf8(text)
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    );
    // Again: a DUPLICATE, no kick.
    let again = node.post(&send, json!(null)).await;
    assert_eq!(again.body["duplicate"], json!(true), "{}", again.body);
    let duplicate = decode_escpos(&printed.recv().await.unwrap());
    assert!(texts(&duplicate)[0].contains("DUPLICATE"));
    assert_eq!(duplicate["kick"], Value::Null);

    // The printer unplugged: a 503 naming `send`, and nothing recorded — the next print is
    // copy 3, not 4.
    printer.abort();
    let _ = printer.await;
    assert_error(
        &node.post(&send, json!(null)).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "printer_unavailable",
        Some("send"),
    );
    let viewed = node
        .post(&format!("/orders/{id}/receipt/prints"), json!(null))
        .await;
    assert_eq!(viewed.body["copy"], json!(3), "{}", viewed.body);
    assert_error(
        &node
            .post(
                &format!("/orders/{id}/receipt/prints?send=fax"),
                json!(null),
            )
            .await,
        StatusCode::BAD_REQUEST,
        "validation_failed",
        Some("send"),
    );
    node.stop().await;

    // A till with no printer says so.
    let dir = tempfile::tempdir().unwrap();
    let bare = of_store(dir.path()).await;
    assert_eq!(
        bare.get("/printer").await.body,
        json!({ "configured": false })
    );
    bare.product("MUG", json!(4.50), 20).await;
    let placed = bare
        .post("/orders", order(json!([{ "sku": "MUG", "quantity": 1 }])))
        .await;
    let id = placed.body["id"].as_str().unwrap();
    bare.post(
        "/payments",
        json!({ "orderId": id, "amount": 4.50, "currency": "USD", "paymentMethodId": "cash" }),
    )
    .await;
    assert_error(
        &bare
            .post(
                &format!("/orders/{id}/receipt/prints?send=printer"),
                json!(null),
            )
            .await,
        StatusCode::CONFLICT,
        "no_printer",
        Some("send"),
    );
    bare.stop().await;
}
