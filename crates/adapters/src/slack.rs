//! [`Slack`] over Slack's Web API (`users.info`, `chat.postMessage`) and an
//! interaction's `response_url`.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use break_glass_core::domain::SlackUserId;
use break_glass_core::ports::{PortError, PortErrorKind, Slack};
use serde::Deserialize;
use serde_json::json;

const SERVICE: &str = "slack";
pub const DEFAULT_API_URL: &str = "https://slack.com/api";

/// A bot token (`xoxb-…`); `Debug` never shows it.
#[derive(Clone)]
pub struct BotToken(String);

impl BotToken {
    pub fn new(token: impl Into<String>) -> Self {
        Self(token.into())
    }
}

impl fmt::Debug for BotToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BotToken(<redacted>)")
    }
}

#[derive(Debug, Clone)]
pub struct SlackWebApi {
    http: reqwest::Client,
    api_url: String,
    token: Option<BotToken>,
}

#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    user: Option<User>,
}

#[derive(Deserialize)]
struct User {
    #[serde(default)]
    profile: Option<Profile>,
}

#[derive(Deserialize)]
struct Profile {
    #[serde(default)]
    email: Option<String>,
}

impl SlackWebApi {
    /// `api_url` is `https://slack.com/api` in production, a local stand-in
    /// in tests. Without a token only `respond_ephemeral` works.
    pub fn new(api_url: impl Into<String>, token: Option<BotToken>) -> Self {
        let http = reqwest::Client::builder()
            // Slack answers in well under a second; a slow Slack must not eat
            // the Lambda's time budget (or access-requested's 3 s deadline).
            .timeout(Duration::from_secs(4))
            .connect_timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_default();
        Self {
            http,
            api_url: api_url.into().trim_end_matches('/').to_string(),
            token,
        }
    }

    fn token(&self, operation: &'static str) -> Result<&str, PortError> {
        self.token.as_ref().map(|t| t.0.as_str()).ok_or_else(|| {
            PortError::new(
                PortErrorKind::Invalid,
                SERVICE,
                operation,
                "no bot token configured",
            )
        })
    }

    async fn envelope(
        &self,
        operation: &'static str,
        response: reqwest::Response,
    ) -> Result<Envelope, PortError> {
        let status = response.status();
        if status.as_u16() == 429 {
            return Err(PortError::new(
                PortErrorKind::Throttled,
                SERVICE,
                operation,
                "rate limited (HTTP 429)",
            ));
        }
        if status.is_server_error() {
            return Err(PortError::new(
                PortErrorKind::Transient,
                SERVICE,
                operation,
                format!("HTTP {status}"),
            ));
        }
        let envelope: Envelope = response.json().await.map_err(|e| {
            PortError::new(
                PortErrorKind::Other,
                SERVICE,
                operation,
                format!("unreadable answer: {e}"),
            )
        })?;
        if envelope.ok {
            return Ok(envelope);
        }
        let error = envelope.error.unwrap_or_else(|| "unknown_error".into());
        let kind = match error.as_str() {
            "ratelimited" => PortErrorKind::Throttled,
            "user_not_found" | "channel_not_found" | "thread_not_found" => PortErrorKind::NotFound,
            "not_authed" | "invalid_auth" | "account_inactive" | "token_revoked" | "missing_scope"
            | "not_in_channel" => PortErrorKind::AccessDenied,
            "internal_error" | "fatal_error" | "service_unavailable" => PortErrorKind::Transient,
            _ => PortErrorKind::Other,
        };
        Err(PortError::new(kind, SERVICE, operation, error))
    }
}

fn transport(operation: &'static str, err: reqwest::Error) -> PortError {
    // reqwest's message can include the URL; a response_url is a credential.
    PortError::new(
        PortErrorKind::Transient,
        SERVICE,
        operation,
        format!("{}", err.without_url()),
    )
}

#[async_trait]
impl Slack for SlackWebApi {
    async fn user_email(&self, user: &SlackUserId) -> Result<Option<String>, PortError> {
        const OP: &str = "users.info";
        let response = self
            .http
            .get(format!("{}/users.info", self.api_url))
            .bearer_auth(self.token(OP)?)
            .query(&[("user", user.as_str())])
            .send()
            .await
            .map_err(|e| transport(OP, e))?;
        let envelope = self.envelope(OP, response).await?;
        Ok(envelope
            .user
            .and_then(|u| u.profile)
            .and_then(|p| p.email)
            .filter(|e| !e.is_empty()))
    }

    async fn post_message(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        text: &str,
    ) -> Result<(), PortError> {
        const OP: &str = "chat.postMessage";
        let mut body = json!({ "channel": channel, "text": text, "unfurl_links": false });
        if let Some(ts) = thread_ts {
            body["thread_ts"] = json!(ts);
        }
        let response = self
            .http
            .post(format!("{}/chat.postMessage", self.api_url))
            .bearer_auth(self.token(OP)?)
            .json(&body)
            .send()
            .await
            .map_err(|e| transport(OP, e))?;
        self.envelope(OP, response).await.map(|_| ())
    }

    async fn respond_ephemeral(&self, response_url: &str, text: &str) -> Result<(), PortError> {
        const OP: &str = "response_url";
        let response = self
            .http
            .post(response_url)
            .json(&break_glass_core::slack::message::ephemeral(text))
            .send()
            .await
            .map_err(|e| transport(OP, e))?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(PortError::new(
                PortErrorKind::Other,
                SERVICE,
                OP,
                format!("HTTP {}", response.status()),
            ))
        }
    }
}
