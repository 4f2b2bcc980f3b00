//! The local Slack endpoint and the executions view, over HTTP.

use std::sync::Arc;

use access_requested::{Deps, RuleDeps};
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body as LambdaBody;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use break_glass_core::clock::Clock;
use break_glass_core::ports::{Directory, IdentityCenter, Slack};
use break_glass_core::requester::{LookupCache, PolicyRules};
use break_glass_core::slack::SigningSecret;

use crate::binaries::LambdaBinaries;
use crate::runner::LocalStateMachine;

/// Who answers Slack: the handler in-process, or the access-requested binary.
#[derive(Debug, Clone)]
pub enum Answerer {
    InProcess {
        config: Arc<access_requested::Config>,
        secret: Arc<SigningSecret>,
        slack: Arc<dyn Slack>,
        clock: Arc<dyn Clock>,
        /// Set when the policy's rules decide who may break into what.
        rules: Option<InProcessRules>,
        /// Set when the slash command, the modal, End and Extend are.
        control: Option<InProcessControl>,
    },
    Binary(Arc<LambdaBinaries>),
}

/// What access-requested needs, in-process, to decide by the policy's
/// rules: the same lookups its `main.rs` wires in Lambda.
#[derive(Debug, Clone)]
pub struct InProcessRules {
    pub policy: Arc<PolicyRules>,
    pub directory: Arc<dyn Directory>,
    pub identity_center: Arc<dyn IdentityCenter>,
    pub cache: Arc<LookupCache>,
}

impl InProcessRules {
    /// `None` when `config` has no rules (the three lists decide alone).
    pub fn wire(
        config: &access_requested::Config,
        sdk: &aws_config::SdkConfig,
        sso_sdk: &aws_config::SdkConfig,
    ) -> Option<Self> {
        let rules = config.rules.as_ref()?;
        Some(Self {
            policy: Arc::new(PolicyRules::from_setting(
                Some(&rules.setting),
                &config.policy.instance,
                config.policy.max_duration,
                |name| Box::new(break_glass_adapters::policy::SsmParameter::from_sdk(sdk, name)),
            )),
            directory: Arc::new(break_glass_adapters::directory::IdentityStore::from_sdk(
                sso_sdk,
                &rules.identity_store_id,
            )),
            identity_center: Arc::new(break_glass_adapters::identity_center::SsoAdmin::from_sdk(
                sso_sdk,
                config.policy.instance.clone(),
            )),
            cache: Arc::new(LookupCache::default()),
        })
    }
}

/// What access-requested needs, in-process, for the command, the modal,
/// End, Extend and App Home: the same clients its `main.rs` wires.
#[derive(Debug, Clone)]
pub struct InProcessControl {
    pub ledger: Arc<dyn break_glass_core::ports::Ledger>,
    pub identity_center: Arc<dyn IdentityCenter>,
}

impl InProcessControl {
    /// `None` when `config` has no control settings (no `GRANT_LEDGER_TABLE`).
    pub fn wire(
        config: &access_requested::Config,
        sdk: &aws_config::SdkConfig,
        sso_sdk: &aws_config::SdkConfig,
    ) -> Option<Self> {
        let control = config.control.as_ref()?;
        Some(Self {
            ledger: Arc::new(break_glass_adapters::ledger::DynamoLedger::from_sdk(
                sdk,
                &control.ledger_table,
            )),
            identity_center: Arc::new(break_glass_adapters::identity_center::SsoAdmin::from_sdk(
                sso_sdk,
                config.policy.instance.clone(),
            )),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Endpoint {
    pub machine: Arc<LocalStateMachine>,
    pub answerer: Answerer,
}

/// `POST /slack/interactions`, `GET /executions`,
/// `POST /executions/{name}/stop` (abort, like `StopExecution`), and the Step Functions API
/// (`POST /` with `X-Amz-Target: AWSStepFunctions.*`).
pub fn router(endpoint: Endpoint) -> Router {
    let sfn = Router::new()
        .route("/", post(crate::sfn_api::serve))
        .with_state(endpoint.machine.clone());
    Router::new()
        .route("/slack/interactions", post(interactions))
        .route("/slack/commands", post(commands))
        .route("/slack/events", post(events))
        .route("/executions", get(executions))
        .route("/executions/{name}/stop", post(stop))
        .with_state(endpoint)
        .merge(sfn)
}

async fn interactions(State(e): State<Endpoint>, headers: HeaderMap, body: Bytes) -> Response {
    answer(e, "/slack/interactions", headers, body).await
}

async fn commands(State(e): State<Endpoint>, headers: HeaderMap, body: Bytes) -> Response {
    answer(e, "/slack/commands", headers, body).await
}

async fn events(State(e): State<Endpoint>, headers: HeaderMap, body: Bytes) -> Response {
    answer(e, "/slack/events", headers, body).await
}

/// Hands the request to access-requested exactly as API Gateway would:
/// a payload 2.0 event, body base64-encoded.
async fn answer(e: Endpoint, path: &str, headers: HeaderMap, body: Bytes) -> Response {
    use base64::Engine as _;
    let mut event = ApiGatewayV2httpRequest::default();
    event.headers = headers;
    event.body = Some(base64::engine::general_purpose::STANDARD.encode(&body));
    event.is_base64_encoded = true;
    event.raw_path = Some(path.into());
    let answer = match &e.answerer {
        Answerer::InProcess {
            config,
            secret,
            slack,
            clock,
            rules,
            control,
        } => {
            let deps = Deps {
                config,
                secret,
                executions: e.machine.as_ref(),
                slack: slack.as_ref(),
                clock: clock.as_ref(),
                rules: rules.as_ref().map(|r| RuleDeps {
                    policy: &r.policy,
                    directory: r.directory.as_ref(),
                    identity_center: r.identity_center.as_ref(),
                    cache: &r.cache,
                }),
                control: config.control.as_ref().zip(control.as_ref()).map(|(c, w)| {
                    access_requested::ControlDeps {
                        config: c,
                        ledger: w.ledger.as_ref(),
                        identity_center: w.identity_center.as_ref(),
                    }
                }),
            };
            access_requested::handle(event, &deps).await
        }
        Answerer::Binary(binaries) => {
            let event = serde_json::to_value(&event).unwrap_or_default();
            let answered = binaries
                .invoke("access-requested", event, std::time::Duration::from_secs(10))
                .await;
            match answered.map(serde_json::from_value::<ApiGatewayV2httpResponse>) {
                Ok(Ok(response)) => response,
                Ok(Err(e)) => {
                    return (StatusCode::BAD_GATEWAY, format!("unreadable answer: {e}")).into_response();
                }
                Err(e) => {
                    return (
                        StatusCode::BAD_GATEWAY,
                        format!("{}: {}", e.error_type, e.error_message),
                    )
                        .into_response();
                }
            }
        }
    };
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

/// Aborts a running execution, as `StopExecution` does: 200 with the
/// execution (an ended one is left as it was), 404 for an unknown one.
async fn stop(State(e): State<Endpoint>, Path(name): Path<String>) -> Response {
    match e.machine.stop(&name) {
        Some(view) => Json(view).into_response(),
        None => (StatusCode::NOT_FOUND, format!("no execution {name}\n")).into_response(),
    }
}
