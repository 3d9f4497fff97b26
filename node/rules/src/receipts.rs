//! Receipts (issue 18, part 4): the number a paid order gets at its till, the fold that keeps
//! every till's numbers gap-free, the prints of a receipt (a reprint is a DUPLICATE), and the
//! receipt laid out once in 42-column lines for an 80 mm printer, encoded as text, HTML (a
//! print-friendly page of those lines) and ESC/POS bytes (with the cut and the drawer kick).
//!
//! **Receipt numbers are gap-free per till**: the till numbers a receipt one past its last in
//! the transaction that records `order.paid`; every receiver folds a till's `receipt.issued`
//! by [`apply`], refusing a number that is not the next or a receipt of another till.

use fusion_contracts::events::payments::{PaymentStatus, Tender};
use fusion_contracts::events::{
    ReceiptEmailed, ReceiptIssued, ReceiptPrinted, SoldItem, receipt_number,
};
use fusion_contracts::{Currency, Decimal, Event, Money, NodeId, StaffId, Timestamp};

use crate::Refused;
use crate::orders::Order;
use crate::payments::Payment;

/// The receipt of a paid `order` at `till`, whose last receipt was number `last` (0: none).
pub fn issue(order: &Order, till: &NodeId, last: u64, now: Timestamp) -> Event {
    let number = last + 1;
    ReceiptIssued {
        receipt: receipt_number(till, number),
        number,
        order_id: order.id,
        till: till.clone(),
        total: order.total.to_decimal(),
        currency: order.total.currency,
        issued_at: now,
    }
    .into()
}

/// Folds `origin`'s `receipt.issued` into its last number: only the next number, and only
/// its own.
pub fn apply(last: u64, origin: &NodeId, e: &ReceiptIssued) -> Result<u64, Refused> {
    let refuse = |reason: String| {
        Err(Refused::Receipts {
            topic: "receipt.issued",
            reason,
        })
    };
    if &e.till != origin {
        return refuse(format!("{origin} issued a receipt of till {}", e.till));
    }
    if e.number != last + 1 {
        return refuse(format!(
            "receipt {} follows {last}: numbers are gap-free",
            e.number
        ));
    }
    Ok(e.number)
}

/// A print of `issued` at `till`, whose prints of it so far were `printed`: the till's next
/// copy; a DUPLICATE unless it is the selling till's first.
pub fn print(
    issued: &ReceiptIssued,
    till: &NodeId,
    printed: u64,
    staff: Option<StaffId>,
    now: Timestamp,
) -> ReceiptPrinted {
    let copy = printed + 1;
    ReceiptPrinted {
        receipt: issued.receipt.clone(),
        order_id: issued.order_id,
        till: till.clone(),
        copy,
        duplicate: copy > 1 || &issued.till != till,
        staff,
        printed_at: now,
    }
}

/// Folds `origin`'s `receipt.printed` into its count of prints of that receipt: only its own,
/// only its next copy.
pub fn apply_print(printed: u64, origin: &NodeId, e: &ReceiptPrinted) -> Result<u64, Refused> {
    let refuse = |reason: String| {
        Err(Refused::Receipts {
            topic: "receipt.printed",
            reason,
        })
    };
    if &e.till != origin {
        return refuse(format!("{origin} printed at till {}", e.till));
    }
    if e.copy != printed + 1 {
        return refuse(format!("copy {} follows {printed}", e.copy));
    }
    Ok(e.copy)
}

/// A request at `till` to send `issued`'s receipt to `to` (an address the caller checked with
/// `fusion_contracts::events::check_email`); `verification_code` is the selling till's.
pub fn email(
    issued: &ReceiptIssued,
    till: &NodeId,
    to: String,
    verification_code: Option<String>,
    staff: Option<StaffId>,
    now: Timestamp,
) -> ReceiptEmailed {
    ReceiptEmailed {
        receipt: issued.receipt.clone(),
        order_id: issued.order_id,
        till: till.clone(),
        to,
        verification_code,
        staff,
        requested_at: now,
    }
}

/// Folds `origin`'s `receipt.emailed`: only a request its own till took.
pub fn apply_email(origin: &NodeId, e: &ReceiptEmailed) -> Result<(), Refused> {
    if &e.till != origin {
        return Err(Refused::Receipts {
            topic: "receipt.emailed",
            reason: format!("{origin} emailed for till {}", e.till),
        });
    }
    Ok(())
}

/// The payments a receipt shows: what was taken — captured (refunded later or not), or
/// approved offline; never one pending, failed or voided.
pub fn taken(payments: Vec<Payment>) -> Vec<Payment> {
    payments
        .into_iter()
        .filter(|p| {
            matches!(
                p.status,
                PaymentStatus::Captured
                    | PaymentStatus::PartiallyRefunded
                    | PaymentStatus::Refunded
                    | PaymentStatus::OfflineApproved
            )
        })
        .collect()
}

/// A tender as a receipt prints it.
pub fn tender_label(tender: Tender) -> &'static str {
    match tender {
        Tender::Cash => "Cash",
        Tender::Card => "Card",
        Tender::StoreCredit => "Store credit",
    }
}

/// (label, amount, change given) of each payment [`taken`], as [`Receipt::tenders`] holds them.
pub fn tenders(taken: &[Payment]) -> Vec<(String, Money, Option<Money>)> {
    taken
        .iter()
        .map(|p| (tender_label(p.tender).to_string(), p.amount, p.change_due))
        .collect()
}

/// The drawer opens for an original print of a sale that took cash.
pub fn kicks_drawer(original_print: bool, taken: &[Payment]) -> bool {
    original_print && taken.iter().any(|p| p.tender == Tender::Cash)
}

/// How a receipt is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Json,
    Text,
    Html,
    EscPos,
}

/// The media type of ESC/POS printer bytes.
pub const ESCPOS: &str = "application/vnd.escpos";

/// An Accept quality (`0` to `1`, up to 3 decimals) in thousandths; unreadable is 0.
fn quality_milli(q: &str) -> u16 {
    let (whole, fraction) = q.trim().split_once('.').unwrap_or((q.trim(), ""));
    if fraction.len() > 3 || !fraction.chars().all(|c| c.is_ascii_digit()) {
        return 0;
    }
    let milli = format!("{fraction:0<3}").parse::<u16>().unwrap_or(0);
    match whole {
        "1" if milli == 0 => 1000,
        "0" => milli,
        _ => 0,
    }
}

impl Format {
    /// `?format=` (json, text, html, escpos) when given, else the `Accept` header — the media
    /// type of the highest quality it names that a receipt comes in (the first of equals;
    /// `*/*` is JSON, `text/*` text) — else JSON.
    pub fn choose(format: Option<&str>, accept: &str) -> Result<Format, &'static str> {
        match format {
            Some("json") => return Ok(Format::Json),
            Some("text") => return Ok(Format::Text),
            Some("html") => return Ok(Format::Html),
            Some("escpos") => return Ok(Format::EscPos),
            Some(_) => return Err("must be json, text, html or escpos"),
            None => {}
        }
        let mut best: Option<(u16, Format)> = None;
        for range in accept.split(',') {
            let mut params = range.split(';');
            let kind = params.next().unwrap_or("").trim().to_ascii_lowercase();
            let format = match kind.as_str() {
                "application/json" | "*/*" | "application/*" => Format::Json,
                "text/plain" | "text/*" => Format::Text,
                "text/html" => Format::Html,
                ESCPOS => Format::EscPos,
                _ => continue,
            };
            let quality = params
                .find_map(|p| p.trim().strip_prefix("q="))
                .map_or(1000, quality_milli);
            if quality > 0 && best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, format));
            }
        }
        Ok(best.map_or(Format::Json, |(_, f)| f))
    }

    /// The media type and bytes of `lines` in this format (`None` for JSON, which each
    /// answer builds itself); `kick` opens the drawer (ESC/POS only).
    pub fn encode(
        self,
        title: &str,
        lines: &[Line],
        kick: bool,
    ) -> Option<(&'static str, Vec<u8>)> {
        match self {
            Format::Json => None,
            Format::Text => Some(("text/plain; charset=utf-8", encode_text(lines).into_bytes())),
            Format::Html => Some((
                "text/html; charset=utf-8",
                encode_html(title, lines).into_bytes(),
            )),
            Format::EscPos => Some((ESCPOS, encode_escpos(lines, kick))),
        }
    }
}

/// A receipt's verification code: the seq of its `receipt.issued` in the till's journal and the
/// first 12 hex digits of that entry's hash — an auditor holding the signed journal export
/// finds the entry and compares (`docs/JOURNAL.md`).
pub fn verification_code(seq: u64, entry_hash: &[u8; 32]) -> String {
    let hex: String = entry_hash[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{seq}-{hex}")
}

/// The printer's width in characters (80 mm paper, font A).
pub const RECEIPT_COLUMNS: usize = 42;

/// A paid order as its receipt shows it.
#[derive(Clone, Debug)]
pub struct Receipt<'a> {
    pub store: &'a str,
    /// The store's address (settings), one line per line.
    pub address: Option<&'a str>,
    /// Who sold it.
    pub staff: Option<&'a str>,
    /// Its verification code ([`verification_code`]), at the till that sold it.
    pub verify: Option<&'a str>,
    pub issued: &'a ReceiptIssued,
    pub order: &'a Order,
    /// The product name of each line (its sku when the catalog has none).
    pub names: &'a [String],
    /// (tender label, amount, change given) of each payment taken.
    pub tenders: &'a [(String, Money, Option<Money>)],
    /// `DUPLICATE` above a reprint.
    pub duplicate: bool,
}

/// One printed line: at most [`RECEIPT_COLUMNS`] characters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    pub text: String,
    /// Printed emphasized (the total, DUPLICATE).
    pub bold: bool,
}

/// Lines as plain text.
pub fn encode_text(lines: &[Line]) -> String {
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    texts.join("\n") + "\n"
}

/// Lines as a print-friendly HTML page titled `title`: monospaced, 80 mm wide.
pub fn encode_html(title: &str, lines: &[Line]) -> String {
    let mut body = String::new();
    for line in lines {
        let text = escape_html(&line.text);
        if line.bold {
            body.push_str(&format!("<strong>{text}</strong>\n"));
        } else {
            body.push_str(&text);
            body.push('\n');
        }
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{}</title><style>\
         @page{{size:80mm auto;margin:0}}\
         body{{margin:0;font:12px/1.3 ui-monospace,Menlo,Consolas,monospace;color:#000}}\
         pre{{width:{RECEIPT_COLUMNS}ch;margin:0 auto;padding:4mm 0;white-space:pre;font:inherit}}\
         @media screen{{body{{background:#eee}}pre{{background:#fff;padding:4mm;margin:4mm auto}}}}\
         </style></head><body><pre>{body}</pre></body></html>\n",
        escape_html(title)
    )
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// ESC/POS: initialize, select code page PC437.
const ESC_INIT: &[u8] = &[0x1b, 0x40, 0x1b, 0x74, 0x00];
const ESC_BOLD_ON: &[u8] = &[0x1b, 0x45, 0x01];
const ESC_BOLD_OFF: &[u8] = &[0x1b, 0x45, 0x00];
/// Feed 4 lines, then a partial cut (GS V 66 0).
const ESC_FEED_CUT: &[u8] = &[0x1b, 0x64, 0x04, 0x1d, 0x56, 0x42, 0x00];
/// Pulse drawer pin 2: 50 ms on, 500 ms off (ESC p 0 25 250).
const ESC_DRAWER_KICK: &[u8] = &[0x1b, 0x70, 0x00, 0x19, 0xfa];

/// Lines as ESC/POS bytes for an 80 mm printer (font A, 42 columns, code page PC437; a
/// character it lacks prints as `?`), then the cut; `kick` opens the cash drawer first.
pub fn encode_escpos(lines: &[Line], kick: bool) -> Vec<u8> {
    let mut out = ESC_INIT.to_vec();
    for line in lines {
        if line.bold {
            out.extend_from_slice(ESC_BOLD_ON);
        }
        out.extend(line.text.chars().map(pc437));
        if line.bold {
            out.extend_from_slice(ESC_BOLD_OFF);
        }
        out.push(b'\n');
    }
    if kick {
        out.extend_from_slice(ESC_DRAWER_KICK);
    }
    out.extend_from_slice(ESC_FEED_CUT);
    out
}

/// A character in code page 437 (printable ASCII as is).
fn pc437(c: char) -> u8 {
    match c {
        ' '..='~' => c as u8,
        'ü' => 0x81,
        'é' => 0x82,
        'â' => 0x83,
        'ä' => 0x84,
        'à' => 0x85,
        'ç' => 0x87,
        'ê' => 0x88,
        'è' => 0x8a,
        'ï' => 0x8b,
        'î' => 0x8c,
        'Ä' => 0x8e,
        'É' => 0x90,
        'ô' => 0x93,
        'ö' => 0x94,
        'û' => 0x96,
        'ù' => 0x97,
        'Ö' => 0x99,
        'Ü' => 0x9a,
        '£' => 0x9c,
        '¥' => 0x9d,
        'á' => 0xa0,
        'í' => 0xa1,
        'ó' => 0xa2,
        'ú' => 0xa3,
        'ñ' => 0xa4,
        'Ñ' => 0xa5,
        'ß' => 0xe1,
        '…' => b'~',
        _ => b'?',
    }
}

/// The receipt's lines, each at most [`RECEIPT_COLUMNS`] characters.
pub fn layout(r: &Receipt) -> Vec<Line> {
    let currency = r.order.total.currency;
    let money = |d: Decimal| amount(d, currency);
    let mut out = Vec::new();
    if r.duplicate {
        out.push(center("*** DUPLICATE ***"));
    }
    header(&mut out, r.store, r.address);
    for line in labelled("Receipt", &r.issued.receipt) {
        out.push(center(&line));
    }
    out.push(center(&r.issued.issued_at.to_string()));
    if let Some(staff) = r.staff {
        out.push(center(&format!("Served by {staff}")));
    }
    out.push("-".repeat(RECEIPT_COLUMNS));
    for (i, item) in r.order.items.iter().enumerate() {
        let name = r.names.get(i).map_or(item.sku.as_str(), String::as_str);
        item_lines(&mut out, name, item, &money);
    }
    out.push("-".repeat(RECEIPT_COLUMNS));
    out.push(two("Subtotal", &r.order.subtotal.to_decimal().to_string()));
    if r.order.discount_total.minor > 0 {
        out.push(two(
            "Discounts",
            &format!("-{}", r.order.discount_total.to_decimal()),
        ));
    }
    for tax in &r.order.taxes {
        let label = format!(
            "Tax {} {}%{}",
            tax.class,
            tax.rate,
            if r.order.tax_included { " incl." } else { "" }
        );
        out.push(two(&label, &money(tax.tax)));
    }
    out.push(two(
        "TOTAL",
        &format!("{} {}", currency_code(currency), r.order.total.to_decimal()),
    ));
    for (label, amount, change) in r.tenders {
        out.push(two(label, &amount.to_decimal().to_string()));
        if let Some(change) = change.filter(|c| c.minor > 0) {
            out.push(two("Change", &change.to_decimal().to_string()));
        }
    }
    out.push("-".repeat(RECEIPT_COLUMNS));
    out.push(center(&format!("Order {}", r.order.id)));
    if let Some(code) = r.verify {
        out.push(center(&format!("Verify {code}")));
    }
    out.into_iter()
        .map(|text| Line {
            bold: text.starts_with("TOTAL") || text.contains("*** DUPLICATE ***"),
            text,
        })
        .collect()
}

/// A return as its slip shows it.
#[derive(Clone, Debug)]
pub struct ReturnReceipt<'a> {
    pub store: &'a str,
    pub address: Option<&'a str>,
    pub returned: &'a fusion_contracts::events::OrderReturned,
    /// The sale's receipt number, when it has one.
    pub receipt: Option<&'a str>,
    /// The product name of each returned line (its sku when the catalog has none).
    pub names: &'a [String],
    /// Who took it back.
    pub staff: Option<&'a str>,
}

/// A return's slip: what came back, what was refunded and where the money went.
pub fn layout_return(r: &ReturnReceipt) -> Vec<Line> {
    use fusion_contracts::events::{RefundPartTo, RefundTo};
    let currency = r.returned.currency;
    let money = |d: Decimal| amount(d, currency);
    let mut out = Vec::new();
    header(&mut out, r.store, r.address);
    out.push(center("*** REFUND ***"));
    if let Some(receipt) = r.receipt {
        for line in labelled("Return of receipt", receipt) {
            out.push(center(&line));
        }
    }
    out.push(center(&r.returned.returned_at.to_string()));
    if let Some(staff) = r.staff {
        out.push(center(&format!("Taken back by {staff}")));
    }
    out.push("-".repeat(RECEIPT_COLUMNS));
    for (i, line) in r.returned.lines.iter().enumerate() {
        let name = r.names.get(i).map_or(line.sku.as_str(), String::as_str);
        let refund = format!("-{}", money(line.refund));
        out.push(two(
            &clip(name, RECEIPT_COLUMNS - refund.chars().count() - 1),
            &refund,
        ));
        out.push(format!("  {} returned", line.quantity));
    }
    out.push("-".repeat(RECEIPT_COLUMNS));
    out.push(two(
        "REFUND",
        &format!("{} {}", currency_code(currency), money(r.returned.refund)),
    ));
    let label = |to: &RefundPartTo| match to {
        RefundPartTo::Cash => "Cash".to_string(),
        RefundPartTo::StoreCredit { account } => format!("Store credit {account}"),
        RefundPartTo::Payment { tender, .. } => match tender {
            fusion_contracts::events::payments::Tender::Cash => "Cash".to_string(),
            fusion_contracts::events::payments::Tender::Card => "Card".to_string(),
            fusion_contracts::events::payments::Tender::StoreCredit => "Store credit".to_string(),
        },
        RefundPartTo::Order { .. } => "Exchange".to_string(),
    };
    match &r.returned.refund_to {
        RefundTo::Cash => out.push(two("Cash", &money(r.returned.refund))),
        RefundTo::StoreCredit { account } => out.push(two(
            &format!("Store credit {account}"),
            &money(r.returned.refund),
        )),
        RefundTo::Split { parts } => {
            for part in parts {
                out.push(two(&label(&part.to), &money(part.amount)));
            }
        }
    }
    if let Some(by) = &r.returned.approved_by {
        out.push(format!("Approved by {}", clip(by, RECEIPT_COLUMNS - 12)));
    }
    out.push("-".repeat(RECEIPT_COLUMNS));
    out.push(center(&format!("Order {}", r.returned.order_id)));
    out.into_iter()
        .map(|text| Line {
            bold: text.starts_with("REFUND") || text.contains("*** REFUND ***"),
            text,
        })
        .collect()
}

/// Most address lines a receipt prints.
pub const ADDRESS_LINES_MAX: usize = 4;

fn currency_code(c: Currency) -> String {
    c.to_string()
}

/// A line: its name (wrapped, then clipped, to two lines), quantity × unit price and what it
/// paid, and each adjustment.
fn item_lines(
    out: &mut Vec<String>,
    name: &str,
    item: &SoldItem,
    money: &dyn Fn(Decimal) -> String,
) {
    let paid = money(item.paid);
    let detail = format!("{} x {}", item.quantity, money(item.price));
    let name_width = RECEIPT_COLUMNS - paid.chars().count() - 1;
    out.push(two(&clip(name, name_width), &paid));
    out.push(format!("  {}", clip(&detail, RECEIPT_COLUMNS - 2)));
    for a in &item.adjustments {
        let label = a
            .reason
            .clone()
            .unwrap_or_else(|| format!("{:?}", a.kind).to_lowercase());
        let amount = format!("-{}", money(a.amount));
        out.push(two(
            &format!(
                "  {}",
                clip(&label, RECEIPT_COLUMNS - amount.chars().count() - 3)
            ),
            &amount,
        ));
    }
}

/// The store's name and its address lines, centered.
fn header(out: &mut Vec<String>, store: &str, address: Option<&str>) {
    out.push(center(store));
    for line in address.unwrap_or_default().lines().take(ADDRESS_LINES_MAX) {
        if !line.trim().is_empty() {
            out.push(center(line.trim()));
        }
    }
}

/// `text` centered on the line (clipped to fit).
fn center(text: &str) -> String {
    let text = clip(text, RECEIPT_COLUMNS);
    let pad = (RECEIPT_COLUMNS - text.chars().count()) / 2;
    format!("{}{text}", " ".repeat(pad))
}

/// An amount with its currency's decimals (`9.00`, not `9`).
fn amount(d: Decimal, currency: Currency) -> String {
    Money::from_decimal(d, currency)
        .map(|m| m.to_decimal().to_string())
        .unwrap_or_else(|_| d.to_string())
}

/// `label value` on one line when it fits, else the label above the value (a receipt number
/// is never clipped: a till's id is 32 characters).
fn labelled(label: &str, value: &str) -> Vec<String> {
    if label.chars().count() + 1 + value.chars().count() <= RECEIPT_COLUMNS {
        vec![format!("{label} {value}")]
    } else {
        vec![label.to_string(), value.to_string()]
    }
}

/// `left` and `right` on one line, right aligned; `left` clipped to fit.
fn two(left: &str, right: &str) -> String {
    let right = clip(right, RECEIPT_COLUMNS);
    let room = RECEIPT_COLUMNS - right.chars().count();
    let left = clip(left, room.saturating_sub(1));
    let pad = RECEIPT_COLUMNS - left.chars().count() - right.chars().count();
    format!("{left}{}{right}", " ".repeat(pad))
}

/// At most `width` characters of `text`, an ellipsis marking a cut.
fn clip(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_string();
    }
    let mut s: String = text.chars().take(width.saturating_sub(1)).collect();
    s.push('…');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp::from_unix_ms(1_764_700_000_000);

    fn till(name: &str) -> NodeId {
        NodeId::new(name).unwrap()
    }

    fn issued(till_name: &str, number: u64) -> ReceiptIssued {
        ReceiptIssued {
            receipt: receipt_number(&till(till_name), number),
            number,
            order_id: fusion_contracts::OrderId::from_u128(1),
            till: till(till_name),
            total: Decimal::new(950, 2),
            currency: Currency::USD,
            issued_at: NOW,
        }
    }

    #[test]
    fn a_receipt_number_is_never_clipped() {
        for (number, lines) in [(7, 1), (12_345, 2)] {
            let got = labelled("Receipt", &format!("{}-{number}", "f".repeat(32)));
            assert_eq!(got.len(), lines, "{got:?}");
            assert!(
                got.iter()
                    .all(|l| l.chars().count() <= RECEIPT_COLUMNS && !l.contains('…'))
            );
            assert!(got.concat().ends_with(&format!("-{number}")));
        }
    }

    /// (name, selling till, printing till, printed so far) → (copy, duplicate)
    #[test]
    fn only_the_selling_tills_first_print_is_the_original() {
        let cases: &[(&str, &str, u64, (u64, bool))] = &[
            ("the first print where it was sold", "till-a", 0, (1, false)),
            ("a second copy", "till-a", 1, (2, true)),
            ("a print at another till", "till-b", 0, (1, true)),
        ];
        for (name, printer, printed, (copy, duplicate)) in cases {
            let e = print(&issued("till-a", 7), &till(printer), *printed, None, NOW);
            assert_eq!((e.copy, e.duplicate), (*copy, *duplicate), "{name}");
            assert!(Event::from(e.clone()).validate().is_ok(), "{name}");
            assert_eq!(
                apply_print(*printed, &till(printer), &e),
                Ok(*copy),
                "{name}"
            );
            assert!(
                apply_print(*printed + 1, &till(printer), &e).is_err(),
                "{name}: not the next"
            );
            assert!(
                apply_print(*printed, &till("till-c"), &e).is_err(),
                "{name}: another's"
            );
        }
    }

    /// (name, requesting till, origin folding it) → accepted
    #[test]
    fn a_till_records_only_its_own_email_requests() {
        let cases: &[(&str, &str, &str, bool)] = &[
            ("the selling till's", "till-a", "till-a", true),
            ("another till of the store's", "till-b", "till-b", true),
            ("said by another origin", "till-b", "till-c", false),
        ];
        for (name, at, origin, ok) in cases {
            let code = (*at == "till-a").then(|| "12-0123456789ab".to_string());
            let e = email(
                &issued("till-a", 7),
                &till(at),
                "ada@example.com".into(),
                code,
                None,
                NOW,
            );
            assert_eq!(e.receipt, issued("till-a", 7).receipt, "{name}");
            assert!(Event::from(e.clone()).validate().is_ok(), "{name}");
            assert_eq!(apply_email(&till(origin), &e).is_ok(), *ok, "{name}");
        }
        let mut bad = email(
            &issued("till-a", 7),
            &till("till-a"),
            "not an address".into(),
            None,
            None,
            NOW,
        );
        assert!(
            Event::from(bad.clone()).validate().is_err(),
            "a bad address"
        );
        bad.to = "ada@example.com".into();
        bad.verification_code = Some(String::new());
        assert!(Event::from(bad).validate().is_err(), "an empty code");
    }

    /// (?format=, Accept) → format or refusal
    #[test]
    fn the_format_is_the_query_then_the_accept_header() {
        let cases: &[(Option<&str>, &str, Option<Format>)] = &[
            (None, "", Some(Format::Json)),
            (None, "application/json", Some(Format::Json)),
            (None, "text/plain", Some(Format::Text)),
            (None, "text/html,application/xhtml+xml", Some(Format::Html)),
            (None, ESCPOS, Some(Format::EscPos)),
            // n8n's HTTP Request node, a browser, curl, a printer driver.
            (
                None,
                "application/json,text/html,application/xhtml+xml,application/xml,text/*;q=0.9, image/*;q=0.8, */*;q=0.7",
                Some(Format::Json),
            ),
            (
                None,
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                Some(Format::Html),
            ),
            (None, "*/*", Some(Format::Json)),
            (
                None,
                "application/vnd.escpos, */*;q=0.1",
                Some(Format::EscPos),
            ),
            (None, "text/html;q=0.5, text/plain", Some(Format::Text)),
            (None, "text/plain;q=0, text/html;q=0.2", Some(Format::Html)),
            (None, "TEXT/PLAIN", Some(Format::Text)),
            (None, "image/png", Some(Format::Json)),
            (
                None,
                "text/html;q=1.5, text/plain;q=0.4",
                Some(Format::Text),
            ),
            (Some("text"), ESCPOS, Some(Format::Text)),
            (Some("escpos"), "", Some(Format::EscPos)),
            (Some("html"), "", Some(Format::Html)),
            (Some("json"), "text/html", Some(Format::Json)),
            (Some("pdf"), "", None),
            (Some(""), "text/html", None),
        ];
        for (query, accept, expected) in cases {
            assert_eq!(
                Format::choose(*query, accept).ok(),
                *expected,
                "{query:?} {accept}"
            );
        }
        let lines = [Line {
            text: "TOTAL".into(),
            bold: true,
        }];
        assert_eq!(Format::Json.encode("t", &lines, false), None);
        let (kind, bytes) = Format::EscPos.encode("t", &lines, true).unwrap();
        assert_eq!(kind, ESCPOS);
        assert!(
            bytes
                .windows(ESC_DRAWER_KICK.len())
                .any(|w| w == ESC_DRAWER_KICK)
        );
        let (kind, bytes) = Format::Html.encode("R <1>", &lines, true).unwrap();
        assert!(kind.starts_with("text/html"));
        let page = String::from_utf8(bytes).unwrap();
        assert!(
            page.contains("<title>R &lt;1&gt;</title>") && page.contains("<strong>TOTAL</strong>")
        );
    }

    /// status → shown on the receipt
    #[test]
    fn a_receipt_shows_what_was_taken() {
        use fusion_contracts::{Money, PaymentId};
        let cases: &[(PaymentStatus, bool)] = &[
            (PaymentStatus::Captured, true),
            (PaymentStatus::PartiallyRefunded, true),
            (PaymentStatus::Refunded, true),
            (PaymentStatus::OfflineApproved, true),
            (PaymentStatus::Pending, false),
            (PaymentStatus::Authorized, false),
            (PaymentStatus::Failed, false),
            (PaymentStatus::Voided, false),
        ];
        for (status, shown) in cases {
            let usd = |minor| Money {
                minor,
                currency: Currency::USD,
            };
            let payment = Payment {
                id: PaymentId::from_u128(1),
                order_id: fusion_contracts::OrderId::from_u128(1),
                amount: usd(950),
                tender: Tender::Cash,
                payment_method_id: "cash".into(),
                tendered: Some(usd(1000)),
                capture: true,
                status: *status,
                captured_minor: 950,
                refunded_minor: 0,
                change_due: Some(usd(50)),
                provider_ref: None,
                failure_reason: None,
                created_at: NOW,
                updated_at: NOW,
            };
            let taken = taken(vec![payment]);
            assert_eq!(taken.len(), usize::from(*shown), "{status:?}");
            assert_eq!(kicks_drawer(true, &taken), *shown, "{status:?}");
            assert!(!kicks_drawer(false, &taken), "{status:?}: a duplicate");
            if *shown {
                assert_eq!(
                    tenders(&taken),
                    vec![("Cash".to_string(), usd(950), Some(usd(50)))]
                );
            }
        }
    }

    /// (name, last, origin, event, expected next or refusal)
    #[test]
    fn receipt_numbers_are_gap_free_per_till() {
        let cases: &[(&str, u64, &str, ReceiptIssued, Option<u64>)] = &[
            ("the first", 0, "till-a", issued("till-a", 1), Some(1)),
            ("the next", 41, "till-a", issued("till-a", 42), Some(42)),
            ("a gap", 41, "till-a", issued("till-a", 43), None),
            ("again", 42, "till-a", issued("till-a", 42), None),
            ("another till's", 0, "till-b", issued("till-a", 1), None),
        ];
        for (name, last, origin, event, expected) in cases {
            let got = apply(*last, &till(origin), event).ok();
            assert_eq!(got, *expected, "{name}");
            assert!(Event::from(event.clone()).validate().is_ok(), "{name}");
        }
    }

    #[test]
    fn the_text_receipt_fits_42_columns() {
        use fusion_contracts::events::{Adjustment, AdjustmentKind, OrderTax};
        let usd = |minor| Money {
            minor,
            currency: Currency::USD,
        };
        let item = |sku: &str, quantity, price: i64, paid: i64, adjustments| SoldItem {
            sku: fusion_contracts::Sku::new(sku).unwrap(),
            quantity,
            price: usd(price).to_decimal(),
            category: None,
            list_price: Some(usd(price).to_decimal()),
            price_override: None,
            tax_class: "standard".into(),
            adjustments,
            net: usd(paid).to_decimal(),
            tax: usd(0).to_decimal(),
            paid: usd(paid).to_decimal(),
        };
        let order = Order {
            id: fusion_contracts::OrderId::from_u128(1),
            customer_id: fusion_contracts::CustomerId::new("c").unwrap(),
            items: vec![
                item("MUG", 2, 450, 900, vec![]),
                item(
                    "GRN-HAND",
                    1,
                    4999,
                    3999,
                    vec![Adjustment {
                        kind: AdjustmentKind::Promotion,
                        amount: usd(1000).to_decimal(),
                        promotion_id: None,
                        reason: Some("Winter sale on every hand grinder in the shop".into()),
                        approved_by: None,
                    }],
                ),
            ],
            total: usd(4899),
            status: fusion_contracts::events::OrderStatus::Fulfilled,
            created_at: NOW,
            updated_at: NOW,
            flag: None,
            shipping_address: None,
            hold_until: None,
            subtotal: usd(5899),
            discount_total: usd(1000),
            promotions: vec![],
            discount: None,
            taxes: vec![OrderTax {
                class: "standard".into(),
                rate: Decimal::new(20, 0),
                base: usd(4083).to_decimal(),
                tax: usd(816).to_decimal(),
            }],
            tax_included: true,
        };
        let receipt = issued("till-a", 7);
        let names = [
            "Stoneware mug".to_string(),
            "Hand grinder, ceramic burr, with a very long catalog name".to_string(),
        ];
        let tenders = [("Cash".to_string(), usd(5000), Some(usd(101)))];
        let text = encode_text(&layout(&Receipt {
            store: "Corner Coffee",
            address: Some(
                "12 Mill Lane\n\nLeeds LS1 4AP, a very long line of the address that is clipped",
            ),
            staff: Some("Ana Lima"),
            verify: Some("1234-0a1b2c3d4e5f"),
            issued: &receipt,
            order: &order,
            names: &names,
            tenders: &tenders,
            duplicate: true,
        }));
        for line in text.lines() {
            assert!(line.chars().count() <= RECEIPT_COLUMNS, "{line:?}\n{text}");
        }
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("DUPLICATE"), "{text}");
        assert!(text.contains("Receipt till-a-7"), "{text}");
        for (label, amount) in [
            ("Stoneware mug", "9.00"),
            ("Subtotal", "58.99"),
            ("Discounts", "-10.00"),
            ("Tax standard 20% incl.", "8.16"),
            ("TOTAL", "USD 48.99"),
            ("Cash", "50.00"),
            ("Change", "1.01"),
        ] {
            assert!(
                lines
                    .iter()
                    .any(|l| l.starts_with(label) && l.ends_with(amount)),
                "{label} … {amount}\n{text}"
            );
        }
        assert!(text.contains("-10.00"), "the promotion's line\n{text}");
        assert!(text.contains('…'), "a long name is clipped\n{text}");
        assert!(text.contains("Served by Ana Lima"), "{text}");
        assert!(
            lines.last().unwrap().contains("Verify 1234-0a1b2c3d4e5f"),
            "{text}"
        );
        assert_eq!(verification_code(1234, &[0xab; 32]), "1234-abababababab");
        assert!(
            lines[2].contains("12 Mill Lane") && lines[3].contains("Leeds"),
            "{text}"
        );
    }
}
