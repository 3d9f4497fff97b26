//! Shipping: labels for orders, priced from the node's rate table, and their status. Pure decide /
//! apply, plus the label document (ZPL, for thermal printers) rendered from a shipment.

use fusion_contracts::commands::{ChangeShipmentStatus, CreateShipment};
use fusion_contracts::events::shipping::{Address, PARCEL_GRAMS_MAX, ShipmentStatus, luhn_digit};
use fusion_contracts::events::{
    OrderFulfilled, OrderStatus, ShippingLabelCreated, ShippingStatusChanged,
};
use fusion_contracts::{Currency, Event, Money, OrderId, ShipmentId, Timestamp};
use serde::{Deserialize, Serialize};

use super::Order;

/// The node's carrier rates: zones of destination countries × weight bands. Loaded from a JSON
/// file (`--shipping-rates`), else [`RateTable::standard`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RateTable {
    pub carrier: String,
    pub currency: Currency,
    /// Looked up in order; a zone with no countries takes every country.
    pub zones: Vec<Zone>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Zone {
    pub name: String,
    /// ISO 3166 alpha-2 codes; empty: all countries.
    pub countries: Vec<String>,
    /// Sorted by `max_grams`; the first band the parcel fits prices it.
    pub bands: Vec<Band>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Band {
    pub max_grams: u32,
    pub service: String,
    /// Price in the table's currency, minor units.
    pub price_minor: i64,
}

impl RateTable {
    /// A small built-in table (a US store): domestic and rest of the world, three weight bands.
    pub fn standard() -> Self {
        let band = |max_grams, service: &str, price_minor| Band {
            max_grams,
            service: service.into(),
            price_minor,
        };
        Self {
            carrier: "FusionPost".into(),
            currency: Currency::USD,
            zones: vec![
                Zone {
                    name: "domestic".into(),
                    countries: vec!["US".into()],
                    bands: vec![
                        band(1_000, "ground", 599),
                        band(5_000, "ground", 999),
                        band(PARCEL_GRAMS_MAX, "freight", 2499),
                    ],
                },
                Zone {
                    name: "world".into(),
                    countries: vec![],
                    bands: vec![
                        band(1_000, "international", 1999),
                        band(5_000, "international", 3999),
                        band(PARCEL_GRAMS_MAX, "international freight", 8999),
                    ],
                },
            ],
        }
    }

    /// The service and price for a parcel of `grams` to `country`, if the table covers it.
    pub fn quote(&self, country: &str, grams: u32) -> Option<(&str, Money)> {
        let zone = self
            .zones
            .iter()
            .find(|z| z.countries.is_empty() || z.countries.iter().any(|c| c == country))?;
        let band = zone.bands.iter().find(|b| grams <= b.max_grams)?;
        Some((
            &band.service,
            Money {
                minor: band.price_minor,
                currency: self.currency,
            },
        ))
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Shipment {
    pub id: ShipmentId,
    pub order_id: OrderId,
    pub tracking_number: String,
    pub carrier: String,
    pub service: String,
    pub label_url: String,
    pub address: Address,
    pub weight_grams: u32,
    pub price: Money,
    pub status: ShipmentStatus,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ShipmentRejected {
    #[error("shipment {0} not found")]
    NotFound(ShipmentId),
    #[error("order {0} not found")]
    OrderNotFound(OrderId),
    #[error("order {order_id} is {status:?} and cannot be shipped")]
    OrderNotShippable {
        order_id: OrderId,
        status: OrderStatus,
    },
    #[error("order {order_id} already has shipment {shipment_id}")]
    AlreadyShipped {
        order_id: OrderId,
        shipment_id: ShipmentId,
    },
    #[error("{field} {message}")]
    InvalidField { field: String, message: String },
    #[error("the rate table has no service to {country} for {grams} g")]
    NoRate { country: String, grams: u32 },
    #[error("a shipment cannot go from {from:?} to {to:?}")]
    IllegalTransition {
        from: ShipmentStatus,
        to: ShipmentStatus,
    },
}

/// A till's tracking number prefix: six digits of its node id's hash, so the tracking numbers
/// of different tills differ.
pub fn tracking_prefix(node: &fusion_contracts::NodeId) -> u32 {
    (crate::fnv1a64(node.as_str().as_bytes()) % 1_000_000) as u32
}

/// A tracking number: `FC`, a 6-digit node prefix, a 10-digit counter, a Luhn check digit.
pub fn tracking_number(node_prefix: u32, counter: u64) -> String {
    let body = format!(
        "{:06}{:010}",
        node_prefix % 1_000_000,
        counter % 10_000_000_000
    );
    format!("FC{body}{}", luhn_digit(&body))
}

/// A label for an order that is not cancelled and has no live shipment (a returned one may be
/// shipped again).
pub fn create(
    cmd: &CreateShipment,
    order: Option<&Order>,
    live: Option<&Shipment>,
    rates: &RateTable,
    tracking_number: String,
    now: Timestamp,
) -> Result<Vec<Event>, ShipmentRejected> {
    cmd.address
        .validate()
        .map_err(|(field, message)| ShipmentRejected::InvalidField { field, message })?;
    if cmd.weight_grams == 0 || cmd.weight_grams > PARCEL_GRAMS_MAX {
        return Err(ShipmentRejected::InvalidField {
            field: "weightGrams".into(),
            message: format!("must be from 1 to {PARCEL_GRAMS_MAX}"),
        });
    }
    let order = order.ok_or(ShipmentRejected::OrderNotFound(cmd.order_id))?;
    if order.status == OrderStatus::Cancelled {
        return Err(ShipmentRejected::OrderNotShippable {
            order_id: order.id,
            status: order.status,
        });
    }
    if let Some(live) = live {
        return Err(ShipmentRejected::AlreadyShipped {
            order_id: order.id,
            shipment_id: live.id,
        });
    }
    let (service, price) = rates
        .quote(&cmd.address.country, cmd.weight_grams)
        .ok_or_else(|| ShipmentRejected::NoRate {
            country: cmd.address.country.clone(),
            grams: cmd.weight_grams,
        })?;
    Ok(vec![
        ShippingLabelCreated {
            shipment_id: cmd.shipment_id,
            order_id: order.id,
            tracking_number,
            carrier: rates.carrier.clone(),
            service: service.to_string(),
            label_url: format!("/shipping/labels/{}/label.zpl", cmd.shipment_id),
            address: cmd.address.clone(),
            weight_grams: cmd.weight_grams,
            price: price.to_decimal(),
            currency: price.currency,
            created_at: now,
        }
        .into(),
    ])
}

/// Moves a shipment along; delivery fulfils its order.
pub fn change_status(
    shipment: Option<&Shipment>,
    cmd: &ChangeShipmentStatus,
    now: Timestamp,
) -> Result<Vec<Event>, ShipmentRejected> {
    let shipment = shipment.ok_or(ShipmentRejected::NotFound(cmd.shipment_id))?;
    if !shipment.status.next().contains(&cmd.status) {
        return Err(ShipmentRejected::IllegalTransition {
            from: shipment.status,
            to: cmd.status,
        });
    }
    let mut events: Vec<Event> = vec![
        ShippingStatusChanged {
            shipment_id: shipment.id,
            order_id: shipment.order_id,
            tracking_number: shipment.tracking_number.clone(),
            from: shipment.status,
            to: cmd.status,
            changed_at: now,
        }
        .into(),
    ];
    if cmd.status == ShipmentStatus::Delivered {
        events.push(
            OrderFulfilled {
                order_id: shipment.order_id,
                shipment_id: Some(shipment.id),
                fulfilled_at: now,
            }
            .into(),
        );
    }
    Ok(events)
}

/// Whether a parcel of the order has left the store (a printed label alone has not).
pub fn has_left(shipments: &[Shipment]) -> bool {
    shipments.iter().any(|s| {
        matches!(
            s.status,
            ShipmentStatus::InTransit | ShipmentStatus::Delivered | ShipmentStatus::Exception
        )
    })
}

/// The policy when an order is cancelled before its parcel left: its labels are voided.
pub fn on_cancelled(shipments: &[Shipment], now: Timestamp) -> Vec<Event> {
    shipments
        .iter()
        .filter(|s| s.status == ShipmentStatus::LabelCreated)
        .map(|s| {
            ShippingStatusChanged {
                shipment_id: s.id,
                order_id: s.order_id,
                tracking_number: s.tracking_number.clone(),
                from: s.status,
                to: ShipmentStatus::Voided,
                changed_at: now,
            }
            .into()
        })
        .collect()
}

pub fn apply(shipment: &mut Option<Shipment>, event: &Event) {
    match event {
        Event::ShippingLabelCreated(e) => {
            *shipment = Some(Shipment {
                id: e.shipment_id,
                order_id: e.order_id,
                tracking_number: e.tracking_number.clone(),
                carrier: e.carrier.clone(),
                service: e.service.clone(),
                label_url: e.label_url.clone(),
                address: e.address.clone(),
                weight_grams: e.weight_grams,
                price: Money::from_decimal(e.price, e.currency).expect("validated event"),
                status: ShipmentStatus::LabelCreated,
                created_at: e.created_at,
                updated_at: e.created_at,
            });
        }
        Event::ShippingStatusChanged(e) => {
            if let Some(s) = shipment {
                s.status = e.to;
                s.updated_at = e.changed_at;
            }
        }
        _ => {}
    }
}

/// The label as ZPL II for a 4×6 in thermal printer: carrier, service, address, and the
/// tracking number as text and as a Code 128 barcode. Field text is stripped of `^` and `~`,
/// which ZPL reads as commands.
pub fn zpl(shipment: &Shipment) -> String {
    let clean = |s: &str| {
        s.chars()
            .filter(|c| !matches!(c, '^' | '~') && !c.is_control())
            .collect::<String>()
    };
    let a = &shipment.address;
    format!(
        "^XA\n^CF0,40\n^FO50,40^FD{carrier}^FS\n^CF0,30\n^FO50,90^FD{service}^FS\n\
         ^FO50,160^FD{street}^FS\n^FO50,200^FD{zip} {city}^FS\n^FO50,240^FD{country}^FS\n\
         ^FO50,300^FDOrder {order}^FS\n^FO50,360^BY3^BCN,120,Y,N,N^FD{tracking}^FS\n^XZ\n",
        carrier = clean(&shipment.carrier),
        service = clean(&shipment.service),
        street = clean(&a.street),
        zip = clean(&a.zip),
        city = clean(&a.city),
        country = clean(&a.country),
        order = shipment.order_id,
        tracking = shipment.tracking_number,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use fusion_contracts::CustomerId;
    use fusion_contracts::events::shipping::tracking_number_is_valid;

    const NOW: Timestamp = Timestamp::from_unix_ms(1);

    fn address(country: &str) -> Address {
        Address {
            street: "1 Main St".into(),
            city: "Springfield".into(),
            country: country.into(),
            zip: "12345".into(),
        }
    }

    fn order(status: OrderStatus) -> Order {
        Order {
            id: OrderId::from_u128(1),
            customer_id: CustomerId::new("c").unwrap(),
            items: vec![],
            total: Money {
                minor: 100,
                currency: Currency::USD,
            },
            status,
            created_at: NOW,
            updated_at: NOW,
            flag: None,
            shipping_address: None,
            hold_until: None,
            subtotal: Money::zero(Currency::USD),
            discount_total: Money::zero(Currency::USD),
            promotions: vec![],
            discount: None,
            taxes: vec![],
            tax_included: false,
        }
    }

    fn cmd(country: &str, grams: u32) -> CreateShipment {
        CreateShipment {
            shipment_id: ShipmentId::from_u128(2),
            order_id: OrderId::from_u128(1),
            address: address(country),
            weight_grams: grams,
        }
    }

    fn shipment() -> Shipment {
        let mut s = None;
        let events = create(
            &cmd("US", 500),
            Some(&order(OrderStatus::Paid)),
            None,
            &RateTable::standard(),
            tracking_number(1, 1),
            NOW,
        )
        .unwrap();
        for e in &events {
            apply(&mut s, e);
        }
        s.unwrap()
    }

    #[test]
    fn rates_by_zone_and_weight() {
        let rates = RateTable::standard();
        let cases = [
            ("US", 500, Some(("ground", 599))),
            ("US", 1001, Some(("ground", 999))),
            ("DE", 1000, Some(("international", 1999))),
            ("US", 70_001, None),
        ];
        for (country, grams, expected) in cases {
            let got = rates
                .quote(country, grams)
                .map(|(s, p)| (s.to_string(), p.minor));
            assert_eq!(
                got,
                expected.map(|(s, p)| (s.to_string(), p)),
                "{country} {grams}"
            );
        }
    }

    #[test]
    fn create_table() {
        let rates = RateTable::standard();
        let paid = order(OrderStatus::Paid);
        let tn = || tracking_number(7, 42);
        assert!(create(&cmd("US", 500), Some(&paid), None, &rates, tn(), NOW).is_ok());
        let cases = [
            (
                create(&cmd("ZZ", 500), Some(&paid), None, &rates, tn(), NOW),
                "address.country must be an ISO 3166 alpha-2 country code (US, DE, …)",
            ),
            (
                create(&cmd("US", 0), Some(&paid), None, &rates, tn(), NOW),
                "weightGrams must be from 1 to 70000",
            ),
            (
                create(&cmd("US", 500), None, None, &rates, tn(), NOW),
                "order 00000000-0000-0000-0000-000000000001 not found",
            ),
            (
                create(
                    &cmd("US", 500),
                    Some(&order(OrderStatus::Cancelled)),
                    None,
                    &rates,
                    tn(),
                    NOW,
                ),
                "order 00000000-0000-0000-0000-000000000001 is Cancelled and cannot be shipped",
            ),
            (
                create(
                    &cmd("US", 500),
                    Some(&paid),
                    Some(&shipment()),
                    &rates,
                    tn(),
                    NOW,
                ),
                "order 00000000-0000-0000-0000-000000000001 already has shipment 00000000-0000-0000-0000-000000000002",
            ),
        ];
        for (got, expected) in cases {
            assert_eq!(got.unwrap_err().to_string(), expected);
        }
        assert!(tracking_number_is_valid(&tn()));
    }

    #[test]
    fn only_legal_transitions_and_delivery_fulfils() {
        let s = shipment();
        let change = |s: &Shipment, to| {
            change_status(
                Some(s),
                &ChangeShipmentStatus {
                    shipment_id: s.id,
                    status: to,
                },
                NOW,
            )
        };
        assert!(matches!(
            change(&s, ShipmentStatus::Delivered),
            Err(ShipmentRejected::IllegalTransition { .. })
        ));
        let mut moving = Some(s.clone());
        for e in change(&s, ShipmentStatus::InTransit).unwrap() {
            apply(&mut moving, &e);
        }
        let events = change(moving.as_ref().unwrap(), ShipmentStatus::Delivered).unwrap();
        assert_eq!(
            events.iter().map(Event::topic).collect::<Vec<_>>(),
            ["shipping.status.changed", "order.fulfilled"]
        );
    }

    #[test]
    fn zpl_carries_the_tracking_number_and_escapes_commands() {
        let mut s = shipment();
        s.address.street = "1 ^XZ Main".into();
        let label = zpl(&s);
        assert!(label.starts_with("^XA") && label.trim_end().ends_with("^XZ"));
        assert!(label.contains(&s.tracking_number));
        assert!(
            label.contains("1 XZ Main"),
            "a ^ in data would end the label early"
        );
    }

    #[test]
    fn the_example_rate_file_parses_and_prices() {
        let text = include_str!("../../../docs/shipping-rates.example.json");
        let table: RateTable = serde_json::from_str(text).unwrap();
        assert_eq!(
            table
                .quote("DE", 1500)
                .map(|(s, p)| (s.to_string(), p.minor)),
            Some(("paket".into(), 499))
        );
        assert_eq!(
            table.quote("US", 1500).map(|(s, _)| s.to_string()),
            Some("world".into())
        );
        assert_eq!(table.quote("FR", 40_000), None, "heavier than every band");
    }
}
