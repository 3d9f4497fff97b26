//! What the hub's benches share: their knobs and order events as a till logs them.

use fusion_contracts::commands::{OrderLine, PlaceOrder};
use fusion_contracts::{
    CorrelationId, Currency, CustomerId, Envelope, EventId, Money, NodeId, OrderId, Sku, Timestamp,
};

/// Order events as a till logs them: order.created (3 lines) then inventory.reserved.
pub fn order_events(origin: &NodeId, n: u64) -> Vec<Envelope> {
    // At the catalog's prices.
    let line = |sku: &str, _cents: i64| OrderLine {
        sku: Sku::new(sku).unwrap(),
        quantity: 1,
        price: None,
        category: None,
        override_reason: None,
        discount: None,
    };
    let list = |sku: &Sku| {
        let minor = match sku.as_str() {
            "COF" => 1299,
            "MUG" => 1450,
            _ => 650,
        };
        Some(Money {
            minor,
            currency: Currency::USD,
        })
    };
    let mut out = Vec::with_capacity(n as usize);
    let mut seq = 0;
    while seq < n {
        let cmd = PlaceOrder {
            order_id: OrderId::from_u128(u128::from(seq) + 1),
            customer_id: CustomerId::new("walk-in").unwrap(),
            currency: Currency::USD,
            lines: vec![line("COF", 1299), line("MUG", 1450), line("SYR", 650)],
            shipping_address: None,
            price_approver: None,
            discount: None,
            staff: None,
        };
        let events = fusion_node::domain::orders::place(
            &cmd,
            list,
            |_| 1_000_000,
            Timestamp::from_unix_ms(1_795_000_000_000),
            Some(1_800_000),
        )
        .unwrap();
        for event in events {
            seq += 1;
            out.push(
                Envelope::new(
                    EventId::from_u128(u128::from(seq)),
                    origin.clone(),
                    seq,
                    Timestamp::from_unix_ms(1_795_000_000_000),
                    CorrelationId::new("bench").unwrap(),
                    None,
                    event,
                )
                .unwrap(),
            );
        }
    }
    out.truncate(n as usize);
    out
}

/// A knob from the environment, else its default.
pub fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
