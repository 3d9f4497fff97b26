//! `ApiError`: the one way a request fails, on the node and the hub. Every error is JSON
//! `{error, message, field?}`; client mistakes are 4xx naming the field, failures are 500/503
//! with no detail. A refusal of the rulebook maps to its status here, once.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fusion_contracts::Sku;
use fusion_contracts::http::{ErrorBody, FieldError, Role};

use fusion_rules::{
    CampaignRejected, CatalogRejected, InventoryRejected, OrderRejected, PaymentRejected, Rejected,
    ShipmentRejected, inventory::TransferRejected,
};

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    /// Boxed: errors travel through many `Result`s and should stay one pointer wide.
    pub body: Box<ErrorBody>,
    /// `Retry-After`, in seconds (a 429 or 503).
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, error: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            body: Box::new(ErrorBody {
                error: error.to_string(),
                message: message.into(),
                field: None,
                sku: None,
                requested: None,
                available: None,
            }),
            retry_after: None,
        }
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs);
        self
    }

    pub fn with_field(mut self, field: impl Into<String>) -> Self {
        self.body.field = Some(field.into());
        self
    }

    pub fn validation(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        Self::new(
            StatusCode::BAD_REQUEST,
            "validation_failed",
            format!("{field} {message}"),
        )
        .with_field(field)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid bearer token is required",
        )
    }

    pub fn forbidden(required: Role) -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            format!("this needs the {} role", required.as_str()),
        )
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error",
        )
    }

    /// A 500 for a failure the caller must not see the detail of (it is logged).
    pub fn internal_from(e: impl std::fmt::Display) -> Self {
        tracing::error!(error = %e, "request failed");
        Self::internal()
    }
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        ApiError::validation(e.field, e.message)
    }
}

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        let message = rejected.to_string();
        match rejected {
            Rejected::Campaign(rejected) => campaign_error(rejected, message),
            Rejected::Payment(rejected) => payment_error(rejected, message),
            Rejected::Shipment(rejected) => shipment_error(rejected, message),
            Rejected::Return(rejected) => return_error(rejected, message),
            Rejected::Drawer(rejected) => drawer_error(rejected, message),
            Rejected::Catalog(CatalogRejected::NotFound(_))
            | Rejected::Order(OrderRejected::NotFound(_))
            | Rejected::TokenNotFound(_) => ApiError::not_found(message),
            Rejected::Catalog(CatalogRejected::SkuTaken { .. }) => {
                ApiError::new(StatusCode::CONFLICT, "sku_taken", message).with_field("sku")
            }
            Rejected::Catalog(CatalogRejected::Archived(_)) => {
                ApiError::new(StatusCode::CONFLICT, "product_archived", message)
            }
            Rejected::Catalog(CatalogRejected::InvalidField { field, message }) => {
                ApiError::validation(field, message)
            }
            Rejected::Inventory(InventoryRejected::WouldGoNegative { sku, available, .. }) => {
                stock_error(
                    "insufficient_stock",
                    message,
                    "delta".into(),
                    sku,
                    available,
                )
            }
            Rejected::Inventory(InventoryRejected::WouldExceedMaximum {
                sku, available, ..
            }) => stock_error(
                "stock_above_maximum",
                message,
                "delta".into(),
                sku,
                available,
            ),
            Rejected::Transfer(TransferRejected::Insufficient {
                sku,
                requested,
                available,
            }) => {
                let mut e = stock_error(
                    "insufficient_stock",
                    message,
                    "quantity".into(),
                    sku,
                    available,
                );
                e.body.requested = Some(requested);
                e
            }
            Rejected::Transfer(TransferRejected::ToSelf) => ApiError::validation("to", message),
            Rejected::Transfer(TransferRejected::WouldExceedMaximum { sku }) => {
                stock_error("stock_above_maximum", message, "quantity".into(), sku, 0)
            }
            Rejected::Order(OrderRejected::InsufficientStock {
                sku,
                requested,
                available,
                line,
            }) => {
                let field = format!("items[{line}].quantity");
                let mut e = stock_error("insufficient_stock", message, field, sku, available);
                e.body.requested = Some(requested);
                e
            }
            Rejected::Order(OrderRejected::AlreadyShipped(_)) => {
                ApiError::new(StatusCode::CONFLICT, "order_shipped", message)
            }
            Rejected::Order(OrderRejected::TotalOverflow) => {
                ApiError::validation("items", "total overflows")
            }
            Rejected::Order(OrderRejected::NotCancellable { .. }) => {
                ApiError::new(StatusCode::CONFLICT, "order_not_cancellable", message)
            }
            Rejected::Order(OrderRejected::NoListPrice { line, .. }) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "no_list_price", message)
                    .with_field(format!("items[{line}].price"))
            }
            Rejected::Order(OrderRejected::NoTaxRate { line, .. }) => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "no_tax_rate", message)
                    .with_field(format!("items[{line}].sku"))
            }
            Rejected::Order(OrderRejected::OverrideNeedsApproval { line, .. }) => ApiError::new(
                StatusCode::FORBIDDEN,
                "price_override_requires_approval",
                message,
            )
            .with_field(format!("items[{line}].price")),
            Rejected::Order(OrderRejected::DiscountNeedsApproval { line, .. }) => {
                ApiError::new(StatusCode::FORBIDDEN, "discount_requires_approval", message)
                    .with_field(discount_field(line))
            }
            Rejected::Order(OrderRejected::DiscountTooLarge { line, .. }) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "discount_too_large",
                message,
            )
            .with_field(discount_field(line)),
        }
    }
}

/// Return refusals; the message names the order's line.
fn drawer_error(rejected: fusion_rules::drawer::DrawerRejected, message: String) -> ApiError {
    use fusion_rules::drawer::DrawerRejected as D;
    match rejected {
        D::AlreadyOpen(_) => ApiError::new(StatusCode::CONFLICT, "session_open", message),
        D::NotOpen(_) => ApiError::new(StatusCode::CONFLICT, "session_not_open", message),
        D::CurrencyMismatch { .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "currency_mismatch",
            message,
        )
        .with_field("currency"),
        D::NoSaleNeedsApproval => {
            ApiError::new(StatusCode::FORBIDDEN, "no_sale_requires_approval", message)
                .with_field("approval")
        }
        D::SessionRequired => ApiError::new(StatusCode::CONFLICT, "session_required", message),
    }
}

fn return_error(rejected: fusion_rules::returns::ReturnRejected, message: String) -> ApiError {
    use fusion_rules::returns::ReturnRejected as R;
    match rejected {
        R::NotFound(_) => ApiError::not_found(message),
        R::NotPaid { .. } => ApiError::new(StatusCode::CONFLICT, "order_not_returnable", message),
        R::RightsElsewhere { .. } => {
            ApiError::new(StatusCode::CONFLICT, "return_rights_elsewhere", message)
        }
        R::NoSuchLine { .. } | R::LineTwice { .. } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "no_such_line", message)
                .with_field("lines")
        }
        R::MoreThanSold { .. } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "more_than_sold", message)
                .with_field("lines")
        }
        R::NeedsApproval { .. } => {
            ApiError::new(StatusCode::FORBIDDEN, "return_requires_approval", message)
        }
        R::CreditCurrency { .. } => {
            ApiError::new(StatusCode::CONFLICT, "currency_mismatch", message)
                .with_field("refundTo.account")
        }
        R::RestockOverflow { sku } => {
            ApiError::new(StatusCode::CONFLICT, "stock_above_maximum", message)
                .with_field(format!("restock ({sku})"))
        }
        R::TendersElsewhere { .. } => {
            ApiError::new(StatusCode::CONFLICT, "tenders_at_another_till", message)
                .with_field("refundTo")
        }
        R::TendersShort { .. } => {
            ApiError::new(StatusCode::CONFLICT, "tenders_not_refundable", message)
                .with_field("refundTo")
        }
    }
}

/// The request field of a discount: a line's, or the order's.
fn discount_field(line: Option<usize>) -> String {
    match line {
        Some(line) => format!("items[{line}].discount"),
        None => "discount".to_string(),
    }
}

/// Payment refusals. An unknown payment keeps FusionCommerce's `{"message":"Payment not found"}`.
fn payment_error(rejected: PaymentRejected, message: String) -> ApiError {
    let conflict = |error: &str| ApiError::new(StatusCode::CONFLICT, error, message.clone());
    let unprocessable = |error: &str, field: &str| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, error, message.clone()).with_field(field)
    };
    match rejected {
        PaymentRejected::NotFound(_) => ApiError::not_found("Payment not found"),
        PaymentRejected::OrderNotFound(_) => unprocessable("order_not_found", "orderId"),
        PaymentRejected::OrderNotPayable { .. } => conflict("order_not_payable"),
        PaymentRejected::CurrencyMismatch { .. } => {
            ApiError::validation("currency", message.clone())
        }
        PaymentRejected::Overpayment { .. } => unprocessable("overpayment", "amount"),
        PaymentRejected::TenderedTooLittle => {
            ApiError::validation("tendered", "must cover the amount")
        }
        PaymentRejected::NotCapturable { .. } => conflict("payment_not_capturable"),
        PaymentRejected::CaptureTooLarge { .. } => unprocessable("capture_too_large", "amount"),
        PaymentRejected::NotRefundable { .. } => conflict("payment_not_refundable"),
        PaymentRejected::RefundTooLarge { .. } => unprocessable("refund_too_large", "amount"),
        PaymentRejected::CreditAccountNotFound(_) => {
            unprocessable("store_credit_not_found", "paymentMethodId")
        }
        PaymentRejected::InsufficientCredit { .. } => {
            unprocessable("insufficient_store_credit", "amount")
        }
        PaymentRejected::AboveFloorLimit { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "provider_unavailable",
            message,
        ),
        PaymentRejected::OfflineBudgetExhausted { .. } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "offline_budget_exhausted",
            message,
        ),
        PaymentRejected::OfflineBudgetShort { .. } => {
            unprocessable("insufficient_budget", "amount")
        }
        PaymentRejected::BudgetToSelf => ApiError::validation("to", message),
    }
}

fn shipment_error(rejected: ShipmentRejected, message: String) -> ApiError {
    match rejected {
        ShipmentRejected::NotFound(_) => ApiError::not_found(message),
        ShipmentRejected::OrderNotFound(_) => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "order_not_found", message)
                .with_field("orderId")
        }
        ShipmentRejected::OrderNotShippable { .. } => {
            ApiError::new(StatusCode::CONFLICT, "order_not_shippable", message)
        }
        ShipmentRejected::AlreadyShipped { .. } => {
            ApiError::new(StatusCode::CONFLICT, "already_shipped", message)
        }
        ShipmentRejected::InvalidField { field, message } => ApiError::validation(field, message),
        ShipmentRejected::NoRate { .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "no_shipping_rate",
            message,
        )
        .with_field("address.country"),
        ShipmentRejected::IllegalTransition { .. } => {
            ApiError::new(StatusCode::CONFLICT, "illegal_transition", message).with_field("status")
        }
    }
}

/// Campaign refusals: FusionCommerce answered 500 for all of these.
fn campaign_error(rejected: CampaignRejected, message: String) -> ApiError {
    let conflict = |error: &str| ApiError::new(StatusCode::CONFLICT, error, message.clone());
    match rejected {
        CampaignRejected::NotFound(_) => ApiError::not_found(message),
        CampaignRejected::InvalidField { field, message } => ApiError::validation(field, message),
        CampaignRejected::NotOpenYet { .. } => conflict("campaign_not_open"),
        CampaignRejected::Ended { .. } => conflict("campaign_closed"),
        CampaignRejected::NotOpen { .. } => conflict("campaign_closed"),
        CampaignRejected::Full { .. } => conflict("campaign_full"),
        CampaignRejected::AlreadyJoined { .. } => conflict("already_joined"),
        CampaignRejected::NotJoined { .. } => conflict("not_joined"),
        CampaignRejected::Shared { .. } => conflict("campaign_shared"),
        CampaignRejected::NotEnoughSeats { free, .. } => {
            let mut e = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "insufficient_seats",
                message,
            )
            .with_field("seats");
            e.body.available = Some(u64::from(free));
            e
        }
    }
}

/// A 422 about one sku's stock, naming the request field, the sku and what is available.
fn stock_error(error: &str, message: String, field: String, sku: Sku, available: u64) -> ApiError {
    let mut e = ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, error, message).with_field(field);
    e.body.sku = Some(sku);
    e.body.available = Some(available);
    e
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unauthorized = self.status == StatusCode::UNAUTHORIZED;
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if unauthorized {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}
