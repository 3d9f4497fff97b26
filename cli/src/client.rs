//! The HTTP client of the operator commands: where the node is (`FUSION_URL`), which token to
//! use (`FUSION_TOKEN`, `--token-file`, or a data dir's admin.token — never argv), and how a
//! refusal becomes an exit code.

use std::path::PathBuf;

use anyhow::{Context, anyhow};
use clap::Args;
use fusion_contracts::http::ErrorBody;
use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Args, Clone, Debug)]
pub struct Target {
    /// Base URL of the node.
    #[arg(
        long,
        env = "FUSION_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// File holding the bearer token (else FUSION_TOKEN, else --data-dir's admin.token).
    #[arg(long, global = true)]
    pub token_file: Option<PathBuf>,
    /// Data dir of a local node whose admin.token to use.
    #[arg(long, global = true)]
    pub data_dir: Option<PathBuf>,
}

/// The server refused the request (4xx): exit code 3.
#[derive(Debug, thiserror::Error)]
#[error("{status}: {message}")]
pub struct Refused {
    pub status: StatusCode,
    pub message: String,
}

pub fn exit_code(error: &anyhow::Error) -> u8 {
    if error.downcast_ref::<Refused>().is_some() {
        3
    } else {
        1
    }
}

pub struct Client {
    http: reqwest::Client,
    base: String,
    token: String,
}

impl Client {
    pub fn new(target: &Target) -> anyhow::Result<Self> {
        let token = match (
            &target.token_file,
            std::env::var("FUSION_TOKEN").ok(),
            &target.data_dir,
        ) {
            (Some(file), _, _) => read_token(file)?,
            (None, Some(token), _) if !token.trim().is_empty() => token.trim().to_string(),
            (None, _, Some(dir)) => read_token(&dir.join(fusion_node::server::ADMIN_TOKEN_FILE))?,
            _ => {
                return Err(anyhow!(
                    "no token: set FUSION_TOKEN, or pass --token-file or --data-dir"
                ));
            }
        };
        Ok(Self {
            http: reqwest::Client::new(),
            base: target.url.trim_end_matches('/').to_string(),
            token,
        })
    }

    pub async fn send<B: Serialize, T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> anyhow::Result<Option<T>> {
        let text = self.text_with(method, path, body, None).await?;
        if text.is_empty() {
            return Ok(None);
        }
        Ok(Some(
            serde_json::from_str(&text).context("reading the answer")?,
        ))
    }
}

impl Client {
    /// Sends a request and returns the answer's body as text (empty for 204): for commands that
    /// print the server's JSON verbatim or read amounts exactly.
    pub async fn text<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
    ) -> anyhow::Result<String> {
        self.text_with(method, path, body, None).await
    }

    /// Like [`Client::text`], with an `Idempotency-Key`: a retry or a re-run gets the first
    /// answer, never a second effect.
    pub async fn send_idempotent<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: &B,
        key: &str,
    ) -> anyhow::Result<String> {
        self.text_with(method, path, Some(body), Some(key)).await
    }

    /// Sends a request without a body and returns the answer's bytes as they are (ESC/POS).
    pub async fn bytes(&self, method: Method, path: &str) -> anyhow::Result<Vec<u8>> {
        let response = self.respond::<()>(method, path, None, None).await?;
        Ok(response
            .bytes()
            .await
            .context("reading the answer")?
            .to_vec())
    }

    async fn text_with<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        key: Option<&str>,
    ) -> anyhow::Result<String> {
        let response = self.respond(method, path, body, key).await?;
        response.text().await.context("reading the answer")
    }

    /// Sends a request; a refusal is an error naming it.
    async fn respond<B: Serialize>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        key: Option<&str>,
    ) -> anyhow::Result<reqwest::Response> {
        let mut request = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(body);
        }
        if let Some(key) = key {
            request = request.header("Idempotency-Key", key);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("{method} {path} at {}", self.base))?;
        if !response.status().is_success() {
            return Err(failure(&method, path, response).await);
        }
        Ok(response)
    }

    /// GETs `path` into the file `dest` as it arrives; returns the bytes written and the
    /// answer's headers. `progress` is called with (bytes so far, total if known).
    pub async fn download(
        &self,
        path: &str,
        dest: &std::path::Path,
        mut progress: impl FnMut(u64, Option<u64>),
    ) -> anyhow::Result<(u64, reqwest::header::HeaderMap)> {
        use std::io::Write;
        let mut response = self
            .http
            .get(format!("{}{path}", self.base))
            .bearer_auth(&self.token)
            .send()
            .await
            .with_context(|| format!("GET {path} at {}", self.base))?;
        if !response.status().is_success() {
            return Err(failure(&Method::GET, path, response).await);
        }
        let headers = response.headers().clone();
        let total = response.content_length();
        let mut file =
            std::fs::File::create(dest).with_context(|| format!("creating {}", dest.display()))?;
        let mut written = 0u64;
        while let Some(chunk) = response.chunk().await.context("reading the download")? {
            file.write_all(&chunk)
                .with_context(|| format!("writing {}", dest.display()))?;
            written += chunk.len() as u64;
            progress(written, total);
        }
        file.sync_all()
            .with_context(|| format!("syncing {}", dest.display()))?;
        if total.is_some_and(|t| t != written) {
            return Err(anyhow!(
                "the download ended after {written} of {total:?} bytes"
            ));
        }
        Ok((written, headers))
    }
}

/// An unsuccessful answer as an error: a 4xx is `Refused` (exit code 3), with the server's
/// message.
async fn failure(method: &Method, path: &str, response: reqwest::Response) -> anyhow::Error {
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    let message = serde_json::from_str::<ErrorBody>(&text)
        .map(|e| e.message)
        .unwrap_or(text);
    if status.is_client_error() {
        return Refused { status, message }.into();
    }
    anyhow!("{method} {path}: {status}: {message}")
}

fn read_token(path: &std::path::Path) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading token file {}", path.display()))?;
    Ok(text.trim().to_string())
}
