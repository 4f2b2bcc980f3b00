//! [`Slack`] over Slack's Web API (`users.info`, `chat.postMessage`) and an
//! interaction's `response_url`; `auth.test` for `doctor`.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use break_glass_core::domain::SlackUserId;
use break_glass_core::ports::{PortError, PortErrorKind, Slack, SlackAuth, SlackProfile};
use break_glass_core::slack::payload::RESPONSE_URL_PREFIX;
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
    /// Where `https://hooks.slack.com/` is served instead: a stand-in, in
    /// tests and local runs only.
    hooks_url: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    ok: bool,
    /// `chat.postMessage`'s message timestamp.
    #[serde(default)]
    ts: Option<String>,
    #[serde(default)]
    error: Option<String>,
    /// `users.info`'s user object; read as [`User`] there (`auth.test`
    /// answers a user *name* here).
    #[serde(default)]
    user: Option<serde_json::Value>,
    /// `auth.test`'s answer.
    #[serde(default)]
    team_id: Option<String>,
    #[serde(default)]
    user_id: Option<String>,
}

/// `users.info`'s `user`. Flags Slack leaves out are false; ids it leaves
/// out are `None`, which the policy refuses.
#[derive(Deserialize)]
struct User {
    #[serde(default)]
    profile: Option<Profile>,
    #[serde(default)]
    team_id: Option<String>,
    #[serde(default)]
    enterprise_user: Option<EnterpriseUser>,
    #[serde(default)]
    deleted: bool,
    #[serde(default)]
    is_bot: bool,
    #[serde(default)]
    is_restricted: bool,
    #[serde(default)]
    is_ultra_restricted: bool,
    #[serde(default)]
    is_stranger: bool,
}

#[derive(Deserialize)]
struct EnterpriseUser {
    #[serde(default)]
    enterprise_id: Option<String>,
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
        crate::ensure_crypto_provider();
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
            hooks_url: None,
        }
    }

    /// Sends what would go to `https://hooks.slack.com/…` to `base/…`
    /// instead: for a Slack stand-in. Production never sets it.
    pub fn with_hooks_url(mut self, base: impl Into<String>) -> Self {
        let base = base.into();
        self.hooks_url = Some(format!("{}/", base.trim_end_matches('/')));
        self
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

impl SlackWebApi {
    /// POSTs `body` as JSON to Web API `method` with the bot token.
    async fn call(
        &self,
        operation: &'static str,
        method: &str,
        body: &serde_json::Value,
    ) -> Result<Envelope, PortError> {
        let response = self
            .http
            .post(format!("{}/{method}", self.api_url))
            .bearer_auth(self.token(operation)?)
            .json(body)
            .send()
            .await
            .map_err(|e| transport(operation, e))?;
        self.envelope(operation, response).await
    }

    /// `auth.test`: whether Slack accepts the bot token, and whose it is.
    /// Read-only: what `doctor` asks.
    pub async fn auth_test(&self) -> Result<SlackAuth, PortError> {
        const OP: &str = "auth.test";
        let response = self
            .http
            .post(format!("{}/auth.test", self.api_url))
            .bearer_auth(self.token(OP)?)
            .send()
            .await
            .map_err(|e| transport(OP, e))?;
        let envelope = self.envelope(OP, response).await?;
        Ok(SlackAuth {
            team_id: envelope.team_id,
            user_id: envelope.user_id,
        })
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
    async fn user_profile(&self, user: &SlackUserId) -> Result<SlackProfile, PortError> {
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
        let user: User = envelope
            .user
            .and_then(|u| serde_json::from_value(u).ok())
            .ok_or_else(|| PortError::new(PortErrorKind::Other, SERVICE, OP, "answer has no user"))?;
        Ok(SlackProfile {
            email: user.profile.and_then(|p| p.email).filter(|e| !e.is_empty()),
            team_id: user.team_id,
            enterprise_id: user.enterprise_user.and_then(|e| e.enterprise_id),
            is_restricted: user.is_restricted,
            is_ultra_restricted: user.is_ultra_restricted,
            is_stranger: user.is_stranger,
            deleted: user.deleted,
            is_bot: user.is_bot,
        })
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

    async fn post_blocks(
        &self,
        channel: &str,
        thread_ts: Option<&str>,
        text: &str,
        blocks: &serde_json::Value,
    ) -> Result<(), PortError> {
        const OP: &str = "chat.postMessage";
        let mut body = json!({ "channel": channel, "text": text, "blocks": blocks, "unfurl_links": false });
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

    async fn start_thread(
        &self,
        channel: &str,
        text: &str,
        blocks: &serde_json::Value,
    ) -> Result<String, PortError> {
        const OP: &str = "chat.postMessage";
        let body = json!({ "channel": channel, "text": text, "blocks": blocks, "unfurl_links": false });
        let envelope = self.call(OP, "chat.postMessage", &body).await?;
        envelope
            .ts
            .ok_or_else(|| PortError::new(PortErrorKind::Other, SERVICE, OP, "answer has no ts"))
    }

    async fn open_view(&self, trigger_id: &str, view: &serde_json::Value) -> Result<(), PortError> {
        let body = json!({ "trigger_id": trigger_id, "view": view });
        self.call("views.open", "views.open", &body).await.map(|_| ())
    }

    async fn publish_home(&self, user: &SlackUserId, view: &serde_json::Value) -> Result<(), PortError> {
        let body = json!({ "user_id": user.as_str(), "view": view });
        self.call("views.publish", "views.publish", &body)
            .await
            .map(|_| ())
    }

    async fn respond_ephemeral(&self, response_url: &str, text: &str) -> Result<(), PortError> {
        const OP: &str = "response_url";
        // The parser only lets Slack's URLs through; this is the last line:
        // a response_url comes from a request body, and we POST nowhere else.
        let Some(path) = response_url.strip_prefix(RESPONSE_URL_PREFIX) else {
            return Err(PortError::new(
                PortErrorKind::Invalid,
                SERVICE,
                OP,
                format!("not a Slack response URL (not under {RESPONSE_URL_PREFIX})"),
            ));
        };
        let target = match &self.hooks_url {
            Some(base) => format!("{base}{path}"),
            None => response_url.to_string(),
        };
        let response = self
            .http
            .post(target)
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
