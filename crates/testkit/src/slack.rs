//! A Slack Web API stand-in speaking Slack's documented shapes: `users.info`,
//! `auth.test`, `chat.postMessage`, `views.open`, `views.publish` (bearer token checked, `ok`/`error` envelopes) and the
//! `response_url` of interactions. It records what it was sent.
//!
//! Response URLs it hands out are Slack's (`https://hooks.slack.com/…`), as
//! the parser demands; point a `SlackWebApi` at [`SlackStandIn::hooks_url`]
//! with `with_hooks_url` to have them served here.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::{Value, json};

/// The workspace every stand-in account belongs to unless told otherwise:
/// the one the seed click comes from (`team.id` `T0001`).
pub const TEAM_ID: &str = "T0001";

/// A Slack account as `users.info` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub email: Option<String>,
    pub team_id: String,
    pub enterprise_id: Option<String>,
    pub is_restricted: bool,
    pub is_ultra_restricted: bool,
    pub is_stranger: bool,
    pub deleted: bool,
    pub is_bot: bool,
}

impl Account {
    /// A full member of [`TEAM_ID`].
    pub fn member(email: Option<&str>) -> Self {
        Self {
            email: email.map(str::to_string),
            team_id: TEAM_ID.to_string(),
            enterprise_id: None,
            is_restricted: false,
            is_ultra_restricted: false,
            is_stranger: false,
            deleted: false,
            is_bot: false,
        }
    }
}

/// A `chat.postMessage` as received.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Post {
    pub channel: String,
    pub thread_ts: Option<String>,
    pub text: String,
    /// Block Kit blocks, when the message had them.
    pub blocks: Option<Value>,
    /// When it arrived, for latency measurements.
    #[serde(skip)]
    pub received_at: std::time::Instant,
}

#[derive(Debug, Default)]
struct Inner {
    token: String,
    users: HashMap<String, Account>,
    posts: Vec<Post>,
    responses: Vec<Value>,
    /// `views.open` bodies: `{trigger_id, view}`.
    opened: Vec<Value>,
    /// `views.publish` bodies: `{user_id, view}`.
    published: Vec<Value>,
    /// When set, chat.postMessage answers `{"ok": false, "error": this}`.
    post_error: Option<String>,
    next_ts: u64,
}

#[derive(Debug, Clone, Default)]
struct Shared(Arc<Mutex<Inner>>);

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug, Clone)]
pub struct SlackStandIn {
    base: String,
    shared: Shared,
}

impl SlackStandIn {
    /// Starts on 127.0.0.1, a free port; accepts `token` as the bot token.
    pub async fn start(token: &str) -> Self {
        Self::start_on("127.0.0.1:0", token).await
    }

    pub async fn start_on(addr: &str, token: &str) -> Self {
        let shared = Shared::default();
        shared.lock().token = token.to_string();
        shared.lock().next_ts = 1_800_000_000;
        let app = Router::new()
            .route("/api/users.info", get(users_info).post(users_info))
            .route("/api/chat.postMessage", post(post_message))
            .route("/api/auth.test", get(auth_test).post(auth_test))
            .route("/api/views.open", post(views_open))
            .route("/api/views.publish", post(views_publish))
            .route("/actions/{*rest}", post(response_url))
            .route("/_standin/messages", get(dump))
            .with_state(shared.clone());
        let base = format!("http://{}", crate::serve_local(addr, app).await);
        Self { base, shared }
    }

    /// What `SLACK_API_URL` should be.
    pub fn api_url(&self) -> String {
        format!("{}/api", self.base)
    }

    /// A response_url for an interaction, as Slack hands them out; served
    /// by this stand-in through [`Self::hooks_url`].
    pub fn response_url(&self, id: &str) -> String {
        format!("https://hooks.slack.com/actions/{TEAM_ID}/{id}/Zp4hQ2")
    }

    /// Where `https://hooks.slack.com/` is served here.
    pub fn hooks_url(&self) -> String {
        self.base.clone()
    }

    /// A full member of [`TEAM_ID`], with `email` on the profile (None: a
    /// profile without e-mail).
    pub fn add_user(&self, id: &str, email: Option<&str>) {
        self.add_account(id, Account::member(email));
    }

    /// Any account: a guest, a stranger, a bot, another workspace's member.
    pub fn add_account(&self, id: &str, account: Account) {
        self.shared.lock().users.insert(id.to_string(), account);
    }

    pub fn fail_posts_with(&self, error: Option<&str>) {
        self.shared.lock().post_error = error.map(str::to_string);
    }

    pub fn posts(&self) -> Vec<Post> {
        self.shared.lock().posts.clone()
    }

    /// Bodies posted to response URLs.
    pub fn responses(&self) -> Vec<Value> {
        self.shared.lock().responses.clone()
    }

    /// `views.open` requests: `{trigger_id, view}`.
    pub fn opened_views(&self) -> Vec<Value> {
        self.shared.lock().opened.clone()
    }

    /// `views.publish` requests: `{user_id, view}`.
    pub fn published_views(&self) -> Vec<Value> {
        self.shared.lock().published.clone()
    }
}

/// Slack's checks of a view: a modal or home view with blocks, a modal
/// with a title and a trigger; what it would refuse, refused the same way.
fn view_error(body: &Value, kind: &str) -> Option<&'static str> {
    let view = &body["view"];
    if view["type"] != kind || !view["blocks"].is_array() {
        return Some("invalid_arguments");
    }
    if view["blocks"].as_array().is_some_and(|b| b.len() > 100) {
        return Some("invalid_arguments");
    }
    if kind == "modal"
        && (view["title"]["text"]
            .as_str()
            .is_none_or(|t| t.chars().count() > 24))
    {
        return Some("invalid_arguments");
    }
    None
}

async fn views_open(State(shared): State<Shared>, headers: HeaderMap, body: String) -> Response {
    if let Some(denied) = auth_error(&shared, &headers) {
        return denied;
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return Json(json!({"ok": false, "error": "invalid_json"})).into_response();
    };
    if body["trigger_id"].as_str().is_none_or(str::is_empty) {
        return Json(json!({"ok": false, "error": "invalid_trigger_id"})).into_response();
    }
    if let Some(error) = view_error(&body, "modal") {
        return Json(json!({"ok": false, "error": error})).into_response();
    }
    shared.lock().opened.push(body.clone());
    Json(json!({"ok": true, "view": body["view"]})).into_response()
}

async fn views_publish(State(shared): State<Shared>, headers: HeaderMap, body: String) -> Response {
    if let Some(denied) = auth_error(&shared, &headers) {
        return denied;
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return Json(json!({"ok": false, "error": "invalid_json"})).into_response();
    };
    if body["user_id"].as_str().is_none_or(str::is_empty) {
        return Json(json!({"ok": false, "error": "user_not_found"})).into_response();
    }
    if let Some(error) = view_error(&body, "home") {
        return Json(json!({"ok": false, "error": error})).into_response();
    }
    shared.lock().published.push(body.clone());
    Json(json!({"ok": true, "view": body["view"]})).into_response()
}

/// Slack's answer to a missing or wrong bot token, if it is one.
fn auth_error(shared: &Shared, headers: &HeaderMap) -> Option<Response> {
    let expected = format!("Bearer {}", shared.lock().token);
    let error = match headers.get("authorization").and_then(|v| v.to_str().ok()) {
        None => "not_authed",
        Some(v) if v != expected => "invalid_auth",
        Some(_) => return None,
    };
    Some(Json(json!({"ok": false, "error": error})).into_response())
}

async fn users_info(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    if let Some(denied) = auth_error(&shared, &headers) {
        return denied;
    }
    let Some(user) = query.get("user") else {
        return Json(json!({"ok": false, "error": "user_not_found"})).into_response();
    };
    let found = shared.lock().users.get(user).cloned();
    match found {
        None => Json(json!({"ok": false, "error": "user_not_found"})).into_response(),
        Some(account) => {
            let mut profile = json!({"real_name": user, "display_name": user, "team": account.team_id});
            if let Some(email) = &account.email {
                profile["email"] = json!(email);
            }
            let mut answer = json!({
                "id": user,
                "team_id": account.team_id,
                "name": user,
                "deleted": account.deleted,
                "is_bot": account.is_bot,
                "is_app_user": false,
                "is_restricted": account.is_restricted,
                "is_ultra_restricted": account.is_ultra_restricted,
                "profile": profile,
            });
            // Slack sends these only when they apply.
            if account.is_stranger {
                answer["is_stranger"] = json!(true);
            }
            if let Some(org) = &account.enterprise_id {
                answer["enterprise_user"] =
                    json!({"id": user, "enterprise_id": org, "teams": [account.team_id]});
            }
            Json(json!({"ok": true, "user": answer})).into_response()
        }
    }
}

/// The bot user every stand-in token belongs to.
pub const BOT_USER_ID: &str = "UBREAKGLASS";

async fn auth_test(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    if let Some(denied) = auth_error(&shared, &headers) {
        return denied;
    }
    Json(json!({
        "ok": true,
        "url": "https://example.slack.com/",
        "team": "Example",
        "user": "break-glass",
        "team_id": TEAM_ID,
        "user_id": BOT_USER_ID,
        "bot_id": "BBREAKGLASS",
        "is_enterprise_install": false,
    }))
    .into_response()
}

async fn post_message(State(shared): State<Shared>, headers: HeaderMap, body: String) -> Response {
    if let Some(denied) = auth_error(&shared, &headers) {
        return denied;
    }
    let Ok(body) = serde_json::from_str::<Value>(&body) else {
        return Json(json!({"ok": false, "error": "invalid_json"})).into_response();
    };
    let mut inner = shared.lock();
    if let Some(error) = inner.post_error.clone() {
        return Json(json!({"ok": false, "error": error})).into_response();
    }
    let (Some(channel), Some(text)) = (body["channel"].as_str(), body["text"].as_str()) else {
        return Json(json!({"ok": false, "error": "no_text"})).into_response();
    };
    inner.next_ts += 1;
    let ts = format!("{}.000100", inner.next_ts);
    inner.posts.push(Post {
        channel: channel.to_string(),
        thread_ts: body["thread_ts"].as_str().map(str::to_string),
        text: text.to_string(),
        blocks: body.get("blocks").cloned(),
        received_at: std::time::Instant::now(),
    });
    Json(json!({"ok": true, "channel": channel, "ts": ts, "message": {"type": "message", "text": text, "ts": ts}}))
        .into_response()
}

async fn response_url(State(shared): State<Shared>, body: String) -> Response {
    match serde_json::from_str::<Value>(&body) {
        Ok(value) => {
            shared.lock().responses.push(value);
            (StatusCode::OK, "ok").into_response()
        }
        Err(_) => (StatusCode::BAD_REQUEST, "invalid_payload").into_response(),
    }
}

async fn dump(State(shared): State<Shared>) -> Response {
    let inner = shared.lock();
    Json(json!({"posts": inner.posts, "responses": inner.responses, "opened": inner.opened, "published": inner.published}))
        .into_response()
}
