//! A CloudTrail stand-in speaking the real `LookupEvents` JSON 1.1 protocol
//! (moto answers it with HTTP 500): lookup by `Username`, time window,
//! `MaxResults` pages and opaque `NextToken`s that must be sent back with the
//! same parameters, newest events first, and `ThrottlingException` answers
//! on demand or, like CloudTrail, whenever a region is called faster than
//! its rate (2 calls per second per region by default, once enabled). The
//! region is the one the request was signed for. It also answers STS
//! `AssumeRole`, so the audit role's credentials can be seen expiring and
//! being renewed under a test's clock.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

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
    /// `None`: found in every region.
    region: Option<String>,
    raw: Value,
}

/// A token bucket per region: `rate` calls per second, bursts of `rate`.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// One request as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Call {
    pub region: String,
    /// The access key id the request was signed with.
    pub access_key: String,
    pub at: Instant,
    pub throttled: bool,
}

#[derive(Debug, Default)]
struct Inner {
    events: Vec<Stored>,
    /// 1-based request numbers to answer with ThrottlingException.
    throttle: Vec<u64>,
    /// Calls per second allowed per region, when limited.
    rate: Option<f64>,
    buckets: HashMap<String, Bucket>,
    requests: u64,
    log: Vec<Value>,
    calls: Vec<Call>,
    /// Role ARNs asked for through STS `AssumeRole`, in order.
    assumed: Vec<String>,
}

impl Inner {
    /// Takes a token from `region`'s bucket, or says it is empty.
    fn admit(&mut self, region: &str, now: Instant) -> bool {
        let Some(rate) = self.rate else { return true };
        let bucket = self.buckets.entry(region.to_string()).or_insert(Bucket {
            tokens: rate,
            at: now,
        });
        bucket.tokens = (bucket.tokens + now.duration_since(bucket.at).as_secs_f64() * rate).min(rate);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
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

    /// Stores a `CloudTrailEvent` document, found in every region; the
    /// lookup `Username` is its session name (the part of
    /// `userIdentity.arn` after the last `/`).
    pub fn add(&self, event: Value) {
        self.store(None, event);
    }

    /// Stores an event found only in `region` (its `awsRegion` is set to it).
    pub fn add_in(&self, region: &str, mut event: Value) {
        event["awsRegion"] = Value::String(region.to_string());
        self.store(Some(region.to_string()), event);
    }

    fn store(&self, region: Option<String>, event: Value) {
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
            region,
            raw: event,
        });
    }

    pub fn throttle_requests(&self, numbers: &[u64]) {
        self.shared.lock().throttle = numbers.to_vec();
    }

    /// Answers `ThrottlingException` whenever a region is called faster
    /// than `calls_per_second` (CloudTrail's limit is 2).
    pub fn limit_rate(&self, calls_per_second: f64) {
        self.shared.lock().rate = Some(calls_per_second);
    }

    /// The request bodies received, in order.
    pub fn requests(&self) -> Vec<Value> {
        self.shared.lock().log.clone()
    }

    /// Every call, with its region, when it came and whether it was throttled.
    pub fn calls(&self) -> Vec<Call> {
        self.shared.lock().calls.clone()
    }

    /// The roles assumed through this stand-in's STS `AssumeRole`, in order.
    pub fn roles_assumed(&self) -> Vec<String> {
        self.shared.lock().assumed.clone()
    }
}

/// The region a SigV4 request was signed for: `Credential=<key>/<date>/<region>/…`.
fn signed_region(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?;
    credential.split('/').nth(2).map(str::to_string)
}

/// The access key id a SigV4 request was signed with.
fn signed_key(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get("authorization")?.to_str().ok()?;
    let credential = auth.split("Credential=").nth(1)?;
    credential.split('/').next().map(str::to_string)
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

/// STS `AssumeRole` (query protocol), for tests that point one SDK
/// configuration (STS and CloudTrail alike) here: each call issues new
/// credentials (`ASIASTANDIN<n>`) expiring `DurationSeconds` after the time
/// the request was signed at, so a test's clock decides when they expire.
fn assume_role(shared: &Shared, headers: &HeaderMap, body: &[u8]) -> Response {
    let form: HashMap<String, String> = form_urlencoded::parse(body).into_owned().collect();
    let Some(role) = form.get("RoleArn").cloned() else {
        return (StatusCode::BAD_REQUEST, "RoleArn is required").into_response();
    };
    let seconds: i64 = form
        .get("DurationSeconds")
        .and_then(|d| d.parse().ok())
        .unwrap_or(3600);
    let signed_at = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .and_then(|d| chrono::NaiveDateTime::parse_from_str(d, "%Y%m%dT%H%M%SZ").ok())
        .map(|d| d.and_utc())
        .unwrap_or_else(Utc::now);
    let expiration = (signed_at + chrono::Duration::seconds(seconds)).format("%Y-%m-%dT%H:%M:%SZ");
    let n = {
        let mut inner = shared.lock();
        inner.assumed.push(role.clone());
        inner.assumed.len()
    };
    let xml = format!(
        "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><AssumeRoleResult>\
         <AssumedRoleUser><Arn>{role}/break-glass-report</Arn><AssumedRoleId>AROASTANDIN:break-glass-report</AssumedRoleId></AssumedRoleUser>\
         <Credentials><AccessKeyId>ASIASTANDIN{n}</AccessKeyId><SecretAccessKey>secret{n}</SecretAccessKey>\
         <SessionToken>token{n}</SessionToken><Expiration>{expiration}</Expiration></Credentials>\
         </AssumeRoleResult><ResponseMetadata><RequestId>standin-{n}</RequestId></ResponseMetadata></AssumeRoleResponse>"
    );
    ([(axum::http::header::CONTENT_TYPE, "text/xml")], xml).into_response()
}

async fn lookup_events(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    if headers.get("x-amz-target").is_none() && body.starts_with(b"Action=AssumeRole") {
        return assume_role(&shared, &headers, &body);
    }
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
    let region = signed_region(&headers);
    let mut inner = shared.lock();
    inner.requests += 1;
    inner.log.push(request.clone());
    let now = Instant::now();
    let throttled =
        inner.throttle.contains(&inner.requests) || !inner.admit(region.as_deref().unwrap_or_default(), now);
    inner.calls.push(Call {
        region: region.clone().unwrap_or_default(),
        access_key: signed_key(&headers).unwrap_or_default(),
        at: now,
        throttled,
    });
    if throttled {
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
        .filter(|e| e.region.is_none() || e.region == region)
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

/// A session event of the size CloudTrail really records (1.5 to 2 KB):
/// a full Identity Center `userIdentity`, a long SDK user agent, request
/// parameters, response elements and TLS details, cycling through common
/// calls (a tenth of them writes, some high risk, some denied). For
/// benchmarks and volume tests.
pub fn realistic_event(i: u64, time: DateTime<Utc>, account: &str, region: &str, user_name: &str) -> Value {
    const CALLS: &[(&str, &str, bool)] = &[
        ("ec2.amazonaws.com", "DescribeInstances", true),
        ("s3.amazonaws.com", "ListBuckets", true),
        ("logs.amazonaws.com", "FilterLogEvents", true),
        ("ecs.amazonaws.com", "DescribeServices", true),
        ("cloudwatch.amazonaws.com", "GetMetricData", true),
        ("ec2.amazonaws.com", "DescribeSecurityGroups", true),
        ("lambda.amazonaws.com", "GetFunction", true),
        ("dynamodb.amazonaws.com", "DescribeTable", true),
        ("rds.amazonaws.com", "DescribeDBInstances", true),
        ("ecs.amazonaws.com", "UpdateService", false),
    ];
    let (source, name, read_only) = CALLS[(i % CALLS.len() as u64) as usize];
    let (source, name, read_only) = match i % 500 {
        499 => ("iam.amazonaws.com", "AttachRolePolicy", false),
        249 => ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", false),
        _ => (source, name, read_only),
    };
    let role = "AWSReservedSSO_BreakGlassAdmin_0a1b2c3d4e5f6a7b";
    let mut event = json!({
        "eventVersion": "1.10",
        "userIdentity": {
            "type": "AssumedRole",
            "principalId": format!("AROA3EXAMPLEROLEID4X7:{user_name}"),
            "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{user_name}"),
            "accountId": account,
            "accessKeyId": format!("ASIA3EXAMPLE{:08X}", i / 1000),
            "sessionContext": {
                "sessionIssuer": {
                    "type": "Role",
                    "principalId": "AROA3EXAMPLEROLEID4X7",
                    "arn": format!("arn:aws:iam::{account}:role/aws-reserved/sso.amazonaws.com/{region}/{role}"),
                    "accountId": account,
                    "userName": role
                },
                "attributes": {"creationDate": time.format("%Y-%m-%dT%H:00:00Z").to_string(), "mfaAuthenticated": "false"}
            }
        },
        "eventTime": time.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "eventSource": source,
        "eventName": name,
        "awsRegion": region,
        "sourceIPAddress": format!("198.51.100.{}", i % 250 + 1),
        "userAgent": "aws-cli/2.22.0 md/awscrt#0.23.4 ua/2.0 os/linux#6.1.0-27-amd64 md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#debian.12 md/prompt#off md/command#ecs.describe-services",
        "requestParameters": {
            "cluster": "arn:aws:ecs:eu-west-1:123456789012:cluster/production-web",
            "services": [format!("checkout-{}", i % 7), "payments-api", "inventory-worker"],
            "include": ["TAGS"],
            "filterSet": {"items": [{"name": "instance-state-name", "valueSet": {"items": [{"value": "running"}]}}]},
            "maxResults": 100
        },
        "responseElements": null,
        "requestID": format!("{:08x}-1b2c-4d3e-8f4a-{:012x}", i * 7919, i),
        "eventID": format!("{:08x}-5e6f-4a7b-9c8d-{:012x}", i * 104_729, i),
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": account,
        "eventCategory": "Management",
        "tlsDetails": {
            "tlsVersion": "TLSv1.3",
            "cipherSuite": "TLS_AES_128_GCM_SHA256",
            "clientProvidedHostHeader": format!("{}.{region}.amazonaws.com", source.trim_end_matches(".amazonaws.com"))
        },
        "sessionCredentialFromConsole": "false"
    });
    if !read_only {
        event["responseElements"] = json!({
            "service": {
                "serviceArn": format!("arn:aws:ecs:{region}:{account}:service/production-web/checkout-{}", i % 7),
                "status": "ACTIVE", "desiredCount": 6, "runningCount": 6, "pendingCount": 0,
                "deployments": [{"id": format!("ecs-svc/{:019}", i), "status": "PRIMARY", "rolloutState": "IN_PROGRESS"}]
            }
        });
        if name == "AttachRolePolicy" {
            event["requestParameters"] = json!({"roleName": "ops-automation", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"});
            event["errorCode"] = json!("AccessDenied");
            event["errorMessage"] = json!(format!(
                "User: arn:aws:sts::{account}:assumed-role/{role}/{user_name} is not authorized to perform: iam:AttachRolePolicy on resource: role ops-automation because no identity-based policy allows the iam:AttachRolePolicy action"
            ));
        }
    }
    event
}
