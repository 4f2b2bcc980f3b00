//! A Lambda Runtime API stand-in: what the Lambda service offers a function
//! process on `AWS_LAMBDA_RUNTIME_API`. Events queued with [`RuntimeApi::invoke`]
//! are handed out on `GET /2018-06-01/runtime/invocation/next`, and the
//! function's `…/response` or `…/error` completes the call. Lets the real
//! release binaries run locally (break-glass-local --lambda-binaries, the
//! cold-start measurement).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::Value;
use tokio::sync::{Notify, oneshot};

/// What a function answered with `/error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionError {
    pub error_type: String,
    pub error_message: String,
}

type Reply = oneshot::Sender<Result<Value, FunctionError>>;

#[derive(Debug, Default)]
struct Inner {
    queue: VecDeque<(String, Value)>,
    waiting: HashMap<String, Reply>,
    next_id: u64,
    first_poll: Option<Instant>,
    init_error: Option<FunctionError>,
}

#[derive(Debug, Default)]
struct Shared {
    inner: Mutex<Inner>,
    ready: Notify,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug, Clone)]
pub struct RuntimeApi {
    address: String,
    shared: Arc<Shared>,
}

impl RuntimeApi {
    pub async fn start(function_name: &str) -> Self {
        let shared = Arc::new(Shared::default());
        let function_arn = format!("arn:aws:lambda:us-east-1:123456789012:function:{function_name}");
        let app = Router::new()
            .route("/2018-06-01/runtime/invocation/next", get(next))
            .route("/2018-06-01/runtime/invocation/{id}/response", post(response))
            .route("/2018-06-01/runtime/invocation/{id}/error", post(error))
            .route("/2018-06-01/runtime/init/error", post(init_error))
            .with_state((shared.clone(), function_arn));
        let address = crate::serve_local("127.0.0.1:0", app).await.to_string();
        Self { address, shared }
    }

    /// `host:port`, the value of `AWS_LAMBDA_RUNTIME_API`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The environment the Lambda service gives a function process.
    pub fn lambda_environment(&self, function_name: &str) -> Vec<(String, String)> {
        [
            ("AWS_LAMBDA_RUNTIME_API", self.address.as_str()),
            ("AWS_LAMBDA_FUNCTION_NAME", function_name),
            ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256"),
            ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST"),
            ("AWS_LAMBDA_LOG_STREAM_NAME", "local"),
            ("AWS_LAMBDA_LOG_GROUP_NAME", "local"),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// When the function first asked for an event: the end of its cold start.
    pub fn first_poll(&self) -> Option<Instant> {
        self.shared.lock().first_poll
    }

    pub fn init_error(&self) -> Option<FunctionError> {
        self.shared.lock().init_error.clone()
    }

    /// Hands `event` to the function and waits for its answer.
    pub async fn invoke(&self, event: Value, timeout: Duration) -> Result<Value, FunctionError> {
        let (tx, rx) = oneshot::channel();
        {
            let mut inner = self.shared.lock();
            if let Some(e) = &inner.init_error {
                return Err(e.clone());
            }
            inner.next_id += 1;
            let id = format!("req-{:08}", inner.next_id);
            inner.waiting.insert(id.clone(), tx);
            inner.queue.push_back((id, event));
        }
        self.shared.ready.notify_one();
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(FunctionError {
                error_type: "Runtime.ExitError".into(),
                error_message: "the function went away".into(),
            }),
            Err(_) => Err(FunctionError {
                error_type: "States.Timeout".into(),
                error_message: format!("no answer within {timeout:?}"),
            }),
        }
    }
}

type AppState = (Arc<Shared>, String);

async fn next(State((shared, arn)): State<AppState>) -> Response {
    shared.lock().first_poll.get_or_insert_with(Instant::now);
    loop {
        let notified = shared.ready.notified();
        if let Some((id, event)) = shared.lock().queue.pop_front() {
            let deadline = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() + 900_000)
                .unwrap_or_default();
            let mut headers = HeaderMap::new();
            let put = |h: &mut HeaderMap, k: &'static str, v: String| {
                if let Ok(v) = HeaderValue::from_str(&v) {
                    h.insert(k, v);
                }
            };
            put(&mut headers, "lambda-runtime-aws-request-id", id);
            put(&mut headers, "lambda-runtime-deadline-ms", deadline.to_string());
            put(&mut headers, "lambda-runtime-invoked-function-arn", arn.clone());
            put(
                &mut headers,
                "lambda-runtime-trace-id",
                "Root=1-00000000-000000000000000000000000;Sampled=0".into(),
            );
            put(&mut headers, "content-type", "application/json".into());
            return (StatusCode::OK, headers, event.to_string()).into_response();
        }
        notified.await;
    }
}

fn complete(shared: &Shared, id: &str, answer: Result<Value, FunctionError>) -> Response {
    match shared.lock().waiting.remove(id) {
        Some(reply) => {
            let _ = reply.send(answer);
            (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
        }
        None => (StatusCode::BAD_REQUEST, r#"{"errorType":"InvalidRequestID"}"#).into_response(),
    }
}

async fn response(State((shared, _)): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    complete(&shared, &id, Ok(value))
}

fn function_error(body: &[u8]) -> FunctionError {
    let v: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    FunctionError {
        error_type: v["errorType"].as_str().unwrap_or("Unhandled").to_string(),
        error_message: v["errorMessage"].as_str().unwrap_or_default().to_string(),
    }
}

async fn error(State((shared, _)): State<AppState>, Path(id): Path<String>, body: Bytes) -> Response {
    complete(&shared, &id, Err(function_error(&body)))
}

async fn init_error(State((shared, _)): State<AppState>, body: Bytes) -> Response {
    let e = function_error(&body);
    let waiting: Vec<Reply> = {
        let mut inner = shared.lock();
        inner.init_error = Some(e.clone());
        inner.waiting.drain().map(|(_, r)| r).collect()
    };
    for reply in waiting {
        let _ = reply.send(Err(e.clone()));
    }
    (StatusCode::ACCEPTED, r#"{"status":"OK"}"#).into_response()
}
