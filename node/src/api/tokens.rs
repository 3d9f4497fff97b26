//! `/tokens`: API tokens, admin only. The secret is shown once, in the answer that creates it.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fusion_contracts::TokenId;
use fusion_contracts::http::{CreateTokenRequest, ErrorBody, Role, TokenResponse};
use uuid::Uuid;

use super::error::ApiError;
use super::extract::{JsonBody, Principal, WriteContext};
use super::{AppState, json, submit};
use crate::store::{Command, Outcome, TokenInfo};

fn body(info: TokenInfo, token: Option<String>) -> TokenResponse {
    TokenResponse {
        id: info.id,
        role: info.role,
        label: info.label,
        created_at: info.created_at,
        token,
    }
}

/// Create a token with a role. The secret is not stored: a replayed request (same
/// `Idempotency-Key`) cannot show it again and answers 409.
#[utoipa::path(post, path = "/tokens", tag = "tokens", request_body = CreateTokenRequest,
    responses((status = 201, body = TokenResponse), (status = 403, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    who: Principal,
    ctx: WriteContext,
    body: JsonBody<CreateTokenRequest>,
) -> Result<Response, ApiError> {
    who.require(Role::Admin)?;
    let role = body.value.role;
    let label = body.value.label()?;
    let (secret, hash) = fusion_http::token::generate(fusion_http::token::NODE_TOKEN_PREFIX)
        .map_err(|e| {
            tracing::error!(error = %e, "no randomness for a token");
            ApiError::internal()
        })?;
    let command = Command::CreateToken {
        id: TokenId(Uuid::now_v7()),
        role,
        label,
        hash,
    };
    let written = submit(&state, &ctx, body.digest, command).await?;
    match written.decision? {
        Outcome::Token(_) if written.replayed => Err(ApiError::new(
            StatusCode::CONFLICT,
            "token_not_replayable",
            "this key already created a token; its secret is not stored, so revoke it and create another",
        )),
        Outcome::Token(info) => Ok(json(
            StatusCode::CREATED,
            false,
            &self::body(info, Some(secret)),
        )),
        other => Err(super::unexpected(other)),
    }
}

#[utoipa::path(get, path = "/tokens", tag = "tokens", responses((status = 200, body = Vec<TokenResponse>)))]
pub async fn list(State(state): State<AppState>, who: Principal) -> Result<Response, ApiError> {
    who.require(Role::Admin)?;
    let tokens: Vec<TokenResponse> = state
        .store
        .read()?
        .tokens()?
        .into_iter()
        .map(|t| body(t, None))
        .collect();
    Ok(json(StatusCode::OK, false, &tokens))
}

/// Revoke a token; requests with it fail from the moment this answers.
#[utoipa::path(delete, path = "/tokens/{id}", tag = "tokens", params(("id" = Uuid, Path)),
    responses((status = 204, description = "revoked"), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    who: Principal,
    Path(id): Path<String>,
    ctx: WriteContext,
) -> Result<Response, ApiError> {
    who.require(Role::Admin)?;
    let id =
        TokenId::parse(&id).ok_or_else(|| ApiError::not_found(format!("token {id} not found")))?;
    submit(&state, &ctx, None, Command::RevokeToken(id))
        .await?
        .decision?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
