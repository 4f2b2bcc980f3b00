//! A CloudTrail stand-in speaking the real `LookupEvents` JSON 1.1 protocol
//! (moto answers it with HTTP 500): lookup by `Username`, time window,
//! `MaxResults` pages and opaque `NextToken`s that must be sent back with the
//! same parameters, newest events first, and `ThrottlingException` answers
//! on demand.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

#[derive(Debug, Clone)]
struct Stored {
    username: String,
    time: DateTime<Utc>,
    raw: Value,
}

#[derive(Debug, Default)]
struct Inner {
    events: Vec<Stored>,
    /// 1-based request numbers to answer with ThrottlingException.
    throttle: Vec<u64>,
    requests: u64,
    log: Vec<Value>,
}

#[derive(Debug, Clone, Default)]
struct Shared(Arc<Mutex<Inner>>);

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug, Clone)]
pub struct CloudTrailStandIn {
    url: String,
    shared: Shared,
}

impl CloudTrailStandIn {
    pub async fn start() -> Self {
        Self::start_on("127.0.0.1:0").await
    }

    pub async fn start_on(addr: &str) -> Self {
        let shared = Shared::default();
        let app = Router::new()
            .route("/", post(lookup_events))
            .with_state(shared.clone());
        let url = format!("http://{}", crate::serve_local(addr, app).await);
        Self { url, shared }
    }

    /// What `AWS_ENDPOINT_URL_CLOUDTRAIL` should be.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stores a `CloudTrailEvent` document; the lookup `Username` is its
    /// session name (the part of `userIdentity.arn` after the last `/`).
    pub fn add(&self, event: Value) {
        let username = event["userIdentity"]["arn"]
            .as_str()
            .and_then(|a| a.rsplit('/').next())
            .unwrap_or_default()
            .to_string();
        let time = event["eventTime"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        self.shared.lock().events.push(Stored {
            username,
            time,
            raw: event,
        });
    }

    pub fn throttle_requests(&self, numbers: &[u64]) {
        self.shared.lock().throttle = numbers.to_vec();
    }

    /// The request bodies received, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.shared.lock().log.clone()
    }
}

fn error(kind: &str, message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [("content-type", "application/x-amz-json-1.1")],
        json!({"__type": kind, "message": message}).to_string(),
    )
        .into_response()
}

fn epoch(v: &Value) -> Option<DateTime<Utc>> {
    let secs = v.as_f64()?;
    DateTime::from_timestamp(secs.floor() as i64, 0)
}

async fn lookup_events(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if !target.ends_with("LookupEvents") {
        return error("UnknownOperationException", "only LookupEvents is served here");
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error("SerializationException", "body is not JSON");
    };
    let mut inner = shared.lock();
    inner.requests += 1;
    inner.log.push(request.clone());
    if inner.throttle.contains(&inner.requests) {
        return error("ThrottlingException", "Rate exceeded");
    }
    let attributes = request["LookupAttributes"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    if attributes.len() > 1 {
        return error(
            "InvalidLookupAttributesException",
            "only one lookup attribute is allowed",
        );
    }
    let username = attributes
        .first()
        .filter(|a| a["AttributeKey"] == "Username")
        .and_then(|a| a["AttributeValue"].as_str())
        .map(str::to_string);
    let start = epoch(&request["StartTime"]);
    let end = epoch(&request["EndTime"]);
    let max = request["MaxResults"].as_u64().unwrap_or(50);
    if !(1..=50).contains(&max) {
        return error("InvalidMaxResultsException", "MaxResults must be 1 to 50");
    }
    let fingerprint = format!("{username:?}|{start:?}|{end:?}");
    let offset = match request["NextToken"].as_str() {
        None => 0,
        Some(token) => match token.split_once('#') {
            Some((n, fp)) if fp == fingerprint => n.parse::<usize>().unwrap_or(0),
            _ => {
                return error(
                    "InvalidNextTokenException",
                    "NextToken does not match the parameters",
                );
            }
        },
    };
    let mut matching: Vec<&Stored> = inner
        .events
        .iter()
        .filter(|e| username.as_ref().is_none_or(|u| &e.username == u))
        .filter(|e| start.is_none_or(|s| e.time >= s) && end.is_none_or(|t| e.time <= t))
        .collect();
    matching.sort_by_key(|e| std::cmp::Reverse(e.time));
    let page: Vec<Value> = matching
        .iter()
        .skip(offset)
        .take(max as usize)
        .map(|e| {
            json!({
                "EventId": e.raw["eventID"],
                "EventName": e.raw["eventName"],
                "ReadOnly": e.raw["readOnly"].as_bool().map(|b| b.to_string()),
                "EventTime": e.time.timestamp(),
                "EventSource": e.raw["eventSource"],
                "Username": e.username,
                "Resources": [],
                "CloudTrailEvent": e.raw.to_string(),
            })
        })
        .collect();
    let next = offset + page.len();
    let mut answer = json!({ "Events": page });
    if next < matching.len() {
        answer["NextToken"] = json!(format!("{next}#{fingerprint}"));
    }
    (
        [("content-type", "application/x-amz-json-1.1")],
        answer.to_string(),
    )
        .into_response()
}

/// A management event made in an Identity Center session, in the shape
/// CloudTrail records (the AWS CLI documentation's `lookup-events` example,
/// with the `AWSReservedSSO_` role of a permission set).
#[allow(clippy::too_many_arguments)]
pub fn session_event(
    id: &str,
    time: DateTime<Utc>,
    account: &str,
    permission_set: &str,
    user_name: &str,
    source: &str,
    name: &str,
    read_only: bool,
) -> Value {
    let role = format!("AWSReservedSSO_{permission_set}_0a1b2c3d4e5f6a7b");
    json!({
        "eventVersion": "1.09",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": format!("AROAEXAMPLEID:{user_name}"),
            "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{user_name}"),
            "accountId": account,
            "accessKeyId": "ASIAEXAMPLEKEY",
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROAEXAMPLEID",
                    "arn": format!("arn:aws:iam::{account}:role/aws-reserved/sso.amazonaws.com/eu-west-1/{role}"),
                    "accountId": account,
                    "userName": role
                },
                "attributes": {"creationDate": time.to_rfc3339(), "mfaAuthenticated": "false"}
            }
        },
        "eventTime": time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "eventSource": source,
        "eventName": name,
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "203.0.113.10",
        "userAgent": "aws-cli/2.22.0 md/Botocore#1.36.0 ua/2.0 os/linux#6.1",
        "requestParameters": null,
        "responseElements": null,
        "requestID": format!("req-{id}"),
        "eventID": id,
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": account,
        "eventCategory": "Management"
    })
}
