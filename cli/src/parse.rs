//! Values operators type on the command line and in config files: money, peers, store ids.
//! Shared by the flags and the config loader, so both accept exactly the same text.

use std::net::SocketAddr;

use fusion_contracts::{Currency, Decimal, Money, StoreId};
use fusion_sync::net;

/// "50.00 USD" → 5000 minor units of USD, exactly.
pub fn parse_money(text: &str) -> Result<Money, String> {
    let (amount, code) = text
        .trim()
        .split_once(' ')
        .ok_or("expected an amount and a currency, e.g. \"50.00 USD\"")?;
    let currency = Currency::parse(code.trim()).map_err(|e| format!("currency {e}"))?;
    let amount = Decimal::parse(amount).map_err(|e| format!("amount {e}"))?;
    Money::from_decimal(amount, currency).map_err(|e| format!("amount {e}"))
}

pub fn parse_store_id(text: &str) -> Result<StoreId, String> {
    StoreId::new(text).map_err(|e| e.to_string())
}

/// "ENDPOINT_ID@IP:PORT[,IP:PORT…]" of a hub or of another till.
pub fn parse_peer(text: &str) -> Result<(net::EndpointId, Vec<SocketAddr>), String> {
    let (id, addrs) = text
        .split_once('@')
        .ok_or("expected ENDPOINT_ID@IP:PORT[,IP:PORT…]")?;
    let id = id.parse().map_err(|e| format!("endpoint id: {e}"))?;
    let addrs = addrs
        .split(',')
        .map(|a| a.trim().parse().map_err(|e| format!("address {a:?}: {e}")))
        .collect::<Result<Vec<SocketAddr>, String>>()?;
    Ok((id, addrs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_flags_parse_with_one_or_more_addresses() {
        let id = net::SecretKey::generate().public();
        let (parsed, addrs) = parse_peer(&format!("{id}@10.0.0.2:7070")).unwrap();
        assert_eq!((parsed, addrs.len()), (id, 1));
        let (_, addrs) = parse_peer(&format!("{id}@10.0.0.2:7070, [::1]:7071")).unwrap();
        assert_eq!(
            addrs,
            [
                "10.0.0.2:7070".parse().unwrap(),
                "[::1]:7071".parse().unwrap()
            ]
        );
        assert!(
            parse_peer("10.0.0.2:7070")
                .unwrap_err()
                .contains("ENDPOINT_ID@")
        );
        assert!(
            parse_peer("nope@10.0.0.2:7070")
                .unwrap_err()
                .starts_with("endpoint id")
        );
        let bad = parse_peer(&format!("{id}@10.0.0.2:7070,x")).unwrap_err();
        assert!(bad.contains("\"x\""), "{bad}");
    }
}
