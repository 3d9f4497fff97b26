//! Card payments through a provider: the `CardProvider` trait and its one real implementation,
//! Stripe PaymentIntents (`StripeProvider`). The only module that talks to a payment provider.
//!
//! Every call carries an idempotency key derived from our payment id, so a call repeated after a
//! timeout or a crash is the same call at the provider, never a second charge.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use fusion_contracts::Money;
use fusion_contracts::commands::CardOutcome;
use serde::Deserialize;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a provider call did not produce an answer.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// No answer (network, timeout, 5xx): the call may or may not have happened; repeat it with
    /// the same idempotency key.
    #[error("card provider unreachable: {0}")]
    Unreachable(String),
    /// The provider refused the request itself (not a card decline).
    #[error("card provider refused the request: {0}")]
    Refused(String),
}

/// An authorization request.
pub struct Authorize<'a> {
    pub idempotency_key: &'a str,
    pub amount: Money,
    pub payment_method_id: &'a str,
    /// Take the money at once instead of only holding it.
    pub capture: bool,
}

pub trait CardProvider: Send + Sync {
    fn authorize<'a>(
        &'a self,
        request: Authorize<'a>,
    ) -> BoxFuture<'a, Result<CardOutcome, ProviderError>>;
    /// Captures `amount` of an authorization; the rest is released.
    fn capture<'a>(
        &'a self,
        provider_ref: &'a str,
        amount: Money,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<(), ProviderError>>;
    /// Releases an authorization that was never captured.
    fn void<'a>(
        &'a self,
        provider_ref: &'a str,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<(), ProviderError>>;
    /// Refunds `amount`; returns the provider's refund reference.
    fn refund<'a>(
        &'a self,
        provider_ref: &'a str,
        amount: Money,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<String, ProviderError>>;
}

/// Stripe's PaymentIntents API (also spoken by localstripe in tests).
pub struct StripeProvider {
    http: reqwest::Client,
    base_url: String,
    secret_key: String,
}

/// How long one provider call may take before it counts as unreachable.
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
struct Intent {
    id: String,
    status: String,
}

#[derive(Deserialize)]
struct StripeErrorBody {
    error: StripeError,
}

#[derive(Deserialize)]
struct StripeError {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    decline_code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

#[derive(Deserialize)]
struct Refund {
    id: String,
}

impl StripeProvider {
    pub fn new(
        base_url: impl Into<String>,
        secret_key: impl Into<String>,
    ) -> Result<Self, ProviderError> {
        let http = reqwest::Client::builder()
            .timeout(PROVIDER_TIMEOUT)
            .build()
            .map_err(|e| ProviderError::Refused(e.to_string()))?;
        Ok(Self {
            http,
            base_url: base_url.into().trim_end_matches('/').to_string(),
            secret_key: secret_key.into(),
        })
    }

    /// POSTs a form; Ok(body) on 2xx, Err(Ok(error)) on a Stripe error answer, Err(Err(_)) when
    /// there was no usable answer.
    async fn post(
        &self,
        path: &str,
        key: &str,
        form: &[(&str, String)],
    ) -> Result<String, Result<(reqwest::StatusCode, StripeError), ProviderError>> {
        let response = self
            .http
            .post(format!("{}{path}", self.base_url))
            .basic_auth(&self.secret_key, None::<&str>)
            .header("Idempotency-Key", key)
            .form(form)
            .send()
            .await
            .map_err(|e| Err(ProviderError::Unreachable(e.to_string())))?;
        let status = response.status();
        let body = response
            .text()
            .await
            .map_err(|e| Err(ProviderError::Unreachable(e.to_string())))?;
        if status.is_success() {
            return Ok(body);
        }
        if status.is_server_error() {
            return Err(Err(ProviderError::Unreachable(format!("{status}"))));
        }
        match serde_json::from_str::<StripeErrorBody>(&body) {
            Ok(e) => Err(Ok((status, e.error))),
            Err(_) => Err(Err(ProviderError::Refused(format!("{status}: {body}")))),
        }
    }
}

fn parse<'de, T: Deserialize<'de>>(body: &'de str) -> Result<T, ProviderError> {
    serde_json::from_str(body)
        .map_err(|e| ProviderError::Refused(format!("unreadable answer: {e}")))
}

fn refused((status, error): (reqwest::StatusCode, StripeError)) -> ProviderError {
    ProviderError::Refused(format!("{status}: {}", error.message.unwrap_or_default()))
}

impl CardProvider for StripeProvider {
    fn authorize<'a>(
        &'a self,
        request: Authorize<'a>,
    ) -> BoxFuture<'a, Result<CardOutcome, ProviderError>> {
        Box::pin(async move {
            let form = [
                ("amount", request.amount.minor.to_string()),
                (
                    "currency",
                    request.amount.currency.code().to_ascii_lowercase(),
                ),
                ("payment_method", request.payment_method_id.to_string()),
                ("confirm", "true".into()),
                (
                    "capture_method",
                    if request.capture {
                        "automatic"
                    } else {
                        "manual"
                    }
                    .into(),
                ),
            ];
            match self
                .post("/v1/payment_intents", request.idempotency_key, &form)
                .await
            {
                Ok(body) => {
                    let intent: Intent = parse(&body)?;
                    match intent.status.as_str() {
                        "succeeded" => Ok(CardOutcome::Captured {
                            provider_ref: intent.id,
                        }),
                        "requires_capture" => Ok(CardOutcome::Authorized {
                            provider_ref: intent.id,
                        }),
                        other => Ok(CardOutcome::Declined {
                            reason: format!("payment intent {other}"),
                        }),
                    }
                }
                // 402: the card was declined — an answer, not an error.
                Err(Ok((status, error))) if status == reqwest::StatusCode::PAYMENT_REQUIRED => {
                    let reason = error
                        .decline_code
                        .or(error.code)
                        .unwrap_or_else(|| "card_declined".into());
                    Ok(CardOutcome::Declined { reason })
                }
                Err(Ok(answer)) => Err(refused(answer)),
                Err(Err(e)) => Err(e),
            }
        })
    }

    fn capture<'a>(
        &'a self,
        provider_ref: &'a str,
        amount: Money,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            let form = [("amount_to_capture", amount.minor.to_string())];
            let path = format!("/v1/payment_intents/{provider_ref}/capture");
            match self.post(&path, idempotency_key, &form).await {
                Ok(_) => Ok(()),
                Err(Ok(answer)) => Err(refused(answer)),
                Err(Err(e)) => Err(e),
            }
        })
    }

    fn void<'a>(
        &'a self,
        provider_ref: &'a str,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<(), ProviderError>> {
        Box::pin(async move {
            let path = format!("/v1/payment_intents/{provider_ref}/cancel");
            match self.post(&path, idempotency_key, &[]).await {
                Ok(_) => Ok(()),
                Err(Ok(answer)) => Err(refused(answer)),
                Err(Err(e)) => Err(e),
            }
        })
    }

    fn refund<'a>(
        &'a self,
        provider_ref: &'a str,
        amount: Money,
        idempotency_key: &'a str,
    ) -> BoxFuture<'a, Result<String, ProviderError>> {
        Box::pin(async move {
            let form = [
                ("payment_intent", provider_ref.to_string()),
                ("amount", amount.minor.to_string()),
            ];
            match self.post("/v1/refunds", idempotency_key, &form).await {
                Ok(body) => Ok(parse::<Refund>(&body)?.id),
                Err(Ok(answer)) => Err(refused(answer)),
                Err(Err(e)) => Err(e),
            }
        })
    }
}

/// How the node treats card payments the provider has not settled.
#[derive(Clone, Copy, Debug)]
pub struct PaymentPolicy {
    /// BR-007: a card payment still pending this long after it was created fails.
    pub pending_timeout: Duration,
    /// Largest card payment a till may approve while the provider is unreachable; `None`: none.
    pub offline_floor_limit: Option<Money>,
    /// This till's share of the store's offline card budget (docs/ESCROW.md); `None`: none.
    pub offline_budget: Option<Money>,
}

impl Default for PaymentPolicy {
    fn default() -> Self {
        // 30 s is FusionCommerce's own BR-007; offline approval is opt-in per store.
        Self {
            pending_timeout: Duration::from_secs(30),
            offline_floor_limit: None,
            offline_budget: None,
        }
    }
}

/// Asks the provider to authorize a pending or offline-approved payment. A request the provider
/// refuses outright (an unknown payment method, say) is a decline of this payment.
pub async fn authorize_payment(
    provider: &dyn CardProvider,
    payment: &crate::domain::Payment,
    capture: bool,
) -> Result<CardOutcome, ProviderError> {
    let key = payment.id.to_string();
    let request = Authorize {
        idempotency_key: &key,
        amount: payment.amount,
        payment_method_id: &payment.payment_method_id,
        capture,
    };
    match provider.authorize(request).await {
        Err(ProviderError::Refused(reason)) => Ok(CardOutcome::Declined { reason }),
        other => other,
    }
}
