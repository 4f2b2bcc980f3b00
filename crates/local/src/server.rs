//! The local Slack endpoint and the executions view, over HTTP.

use std::sync::Arc;

use access_requested::Deps;
use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::encodings::Body as LambdaBody;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use break_glass_core::clock::Clock;
use break_glass_core::ports::Slack;
use break_glass_core::slack::SigningSecret;

use crate::runner::LocalStateMachine;

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub machine: Arc<LocalStateMachine>,
    pub config: Arc<access_requested::Config>,
    pub secret: Arc<SigningSecret>,
    pub slack: Arc<dyn Slack>,
    pub clock: Arc<dyn Clock>,
}

pub fn router(endpoint: Endpoint) -> Router {
    Router::new()
        .route("/slack/interactions", post(interactions))
        .route("/executions", get(executions))
        .with_state(endpoint)
}

/// Hands the request to access-requested exactly as API Gateway would:
/// a payload 2.0 event, body base64-encoded.
async fn interactions(State(e): State<Endpoint>, headers: HeaderMap, body: Bytes) -> Response {
    use base64::Engine as _;
    let mut event = ApiGatewayV2httpRequest::default();
    event.headers = headers;
    event.body = Some(base64::engine::general_purpose::STANDARD.encode(&body));
    event.is_base64_encoded = true;
    event.raw_path = Some("/slack/interactions".into());
    let deps = Deps {
        config: &e.config,
        secret: &e.secret,
        executions: e.machine.as_ref(),
        slack: e.slack.as_ref(),
        clock: e.clock.as_ref(),
    };
    let answer = access_requested::handle(event, &deps).await;
    let status = StatusCode::from_u16(u16::try_from(answer.status_code).unwrap_or(500))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let body = match answer.body {
        Some(LambdaBody::Text(t)) => t.into_bytes(),
        Some(LambdaBody::Binary(b)) => b,
        _ => Vec::new(),
    };
    (status, answer.headers, body).into_response()
}

async fn executions(State(e): State<Endpoint>) -> Response {
    Json(e.machine.executions()).into_response()
}
