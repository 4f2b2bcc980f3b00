//! A CloudWatch Logs Insights stand-in speaking `StartQuery`,
//! `GetQueryResults` and `StopQuery` (AWS JSON 1.1, `Logs_20140328`) over
//! one log group of CloudTrail records, with Logs Insights' limits: at most
//! 10,000 rows per query (lower on request, to test splitting), and a cap
//! on queries running at once (`LimitExceededException`).
//!
//! It understands the query language the report writes, and refuses
//! anything else by name so a changed query cannot pass unnoticed:
//! `fields`, `filter` with `and`-joined `field = "v"` and `field like /re/`,
//! `sort @timestamp asc|desc`, `limit n`, and `stats count(*) as n by
//! <fields>` or `by bin(<n>m) as <name>`.

use std::collections::{BTreeMap, HashMap};
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
    time: DateTime<Utc>,
    raw: Value,
    text: String,
}

#[derive(Debug, Clone)]
struct Query {
    rows: Vec<Vec<(String, String)>>,
    /// `GetQueryResults` calls left before it reports `Complete`.
    polls_left: u32,
    status: &'static str,
    text: String,
}

#[derive(Debug)]
struct Inner {
    log_group: String,
    events: Vec<Stored>,
    queries: HashMap<String, Query>,
    row_cap: usize,
    max_running: usize,
    polls_to_complete: u32,
    started: Vec<String>,
    stopped: Vec<String>,
    refused: u64,
    most_running: usize,
}

#[derive(Debug, Clone)]
struct Shared(Arc<Mutex<Inner>>);

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Debug, Clone)]
pub struct LogsInsightsStandIn {
    url: String,
    shared: Shared,
}

impl LogsInsightsStandIn {
    /// Serves the log group `log_group` on a free 127.0.0.1 port.
    pub async fn start(log_group: &str) -> Self {
        let shared = Shared(Arc::new(Mutex::new(Inner {
            log_group: log_group.to_string(),
            events: Vec::new(),
            queries: HashMap::new(),
            row_cap: 10_000,
            max_running: 30,
            polls_to_complete: 1,
            started: Vec::new(),
            stopped: Vec::new(),
            refused: 0,
            most_running: 0,
        })));
        let app = Router::new().route("/", post(serve)).with_state(shared.clone());
        let url = format!("http://{}", crate::serve_local("127.0.0.1:0", app).await);
        Self { url, shared }
    }

    /// What `AWS_ENDPOINT_URL_CLOUDWATCH_LOGS` should be.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Stores a CloudTrail record as the trail delivers it: one log event,
    /// timestamped at its `eventTime`.
    pub fn add(&self, event: Value) {
        let time = event["eventTime"]
            .as_str()
            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default();
        let text = event.to_string();
        self.shared.lock().events.push(Stored {
            time,
            raw: event,
            text,
        });
    }

    /// Fewer rows per query than Logs Insights' 10,000.
    pub fn cap_rows(&self, rows: usize) {
        self.shared.lock().row_cap = rows;
    }

    pub fn limit_running(&self, queries: usize) {
        self.shared.lock().max_running = queries;
    }

    /// How many `GetQueryResults` calls answer `Running` before `Complete`.
    pub fn polls_to_complete(&self, polls: u32) {
        self.shared.lock().polls_to_complete = polls;
    }

    /// Query strings started, in order.
    pub fn started(&self) -> Vec<String> {
        self.shared.lock().started.clone()
    }

    /// Query strings of queries stopped.
    pub fn stopped(&self) -> Vec<String> {
        self.shared.lock().stopped.clone()
    }

    /// The most queries that ran at once, and how many starts were refused.
    pub fn concurrency(&self) -> (usize, u64) {
        let inner = self.shared.lock();
        (inner.most_running, inner.refused)
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

fn ok(body: Value) -> Response {
    ([("content-type", "application/x-amz-json-1.1")], body.to_string()).into_response()
}

async fn serve(State(shared): State<Shared>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return error("SerializationException", "body is not JSON");
    };
    let mut inner = shared.lock();
    match target.as_str() {
        "Logs_20140328.StartQuery" => start_query(&mut inner, &request),
        "Logs_20140328.GetQueryResults" => {
            let id = request["queryId"].as_str().unwrap_or_default();
            let Some(q) = inner.queries.get_mut(id) else {
                return error("ResourceNotFoundException", "no such query");
            };
            if q.status == "Running" {
                if q.polls_left == 0 {
                    q.status = "Complete";
                } else {
                    q.polls_left -= 1;
                }
            }
            let rows: Vec<Value> = if q.status == "Complete" {
                q.rows
                    .iter()
                    .map(|row| {
                        Value::Array(row.iter().map(|(f, v)| json!({"field": f, "value": v})).collect())
                    })
                    .collect()
            } else {
                Vec::new()
            };
            ok(json!({
                "status": q.status,
                "results": rows,
                "statistics": {"recordsMatched": q.rows.len() as f64, "recordsScanned": 0.0, "bytesScanned": 0.0}
            }))
        }
        "Logs_20140328.StopQuery" => {
            let id = request["queryId"].as_str().unwrap_or_default().to_string();
            let text = match inner.queries.get_mut(&id) {
                Some(q) if q.status == "Running" => {
                    q.status = "Cancelled";
                    q.text.clone()
                }
                Some(_) => return error("InvalidParameterException", "query is not running"),
                None => return error("ResourceNotFoundException", "no such query"),
            };
            inner.stopped.push(text);
            ok(json!({"success": true}))
        }
        other => error(
            "UnknownOperationException",
            &format!("{other} is not served here"),
        ),
    }
}

fn start_query(inner: &mut Inner, request: &Value) -> Response {
    let group = request["logGroupName"]
        .as_str()
        .or_else(|| request["logGroupNames"][0].as_str())
        .or_else(|| request["logGroupIdentifiers"][0].as_str())
        .unwrap_or_default();
    if group != inner.log_group {
        return error(
            "ResourceNotFoundException",
            &format!("log group {group} does not exist"),
        );
    }
    let running = inner.queries.values().filter(|q| q.status == "Running").count();
    if running >= inner.max_running {
        inner.refused += 1;
        return error("LimitExceededException", "too many concurrent queries");
    }
    let (Some(start), Some(end)) = (request["startTime"].as_i64(), request["endTime"].as_i64()) else {
        return error("InvalidParameterException", "startTime and endTime are required");
    };
    let text = request["queryString"].as_str().unwrap_or_default().to_string();
    let limit = request["limit"].as_u64().map_or(10_000, |l| l as usize);
    if !(1..=10_000).contains(&limit) {
        return error("InvalidParameterException", "limit must be 1 to 10000");
    }
    let rows = match run(&inner.events, &text, start, end, limit.min(inner.row_cap)) {
        Ok(rows) => rows,
        Err(why) => return error("MalformedQueryException", &why),
    };
    let id = format!("q-{}", inner.queries.len() + 1);
    inner.queries.insert(
        id.clone(),
        Query {
            rows,
            polls_left: inner.polls_to_complete,
            status: "Running",
            text: text.clone(),
        },
    );
    inner.started.push(text);
    inner.most_running = inner.most_running.max(running + 1);
    ok(json!({"queryId": id}))
}

/// A JSON path into the record: `userIdentity.arn`.
fn lookup<'a>(event: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(event, |v, p| v.get(p))
}

fn scalar(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(if *b { "1" } else { "0" }.to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

enum Clause {
    Equals(String, String),
    Like(String, regex_lite::Regex),
}

fn parse_filter(expr: &str) -> Result<Vec<Clause>, String> {
    expr.split(" and ")
        .map(|clause| {
            let clause = clause.trim();
            if let Some((field, value)) = clause.split_once(" = ") {
                let value = value
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .ok_or_else(|| format!("unquoted value in {clause:?}"))?;
                Ok(Clause::Equals(field.trim().to_string(), value.to_string()))
            } else if let Some((field, pattern)) = clause.split_once(" like ") {
                let pattern = pattern
                    .strip_prefix('/')
                    .and_then(|p| p.strip_suffix('/'))
                    .ok_or_else(|| format!("not a /regex/ in {clause:?}"))?;
                let pattern = pattern.replace("\\/", "/").replace("\\#", "#");
                let re =
                    regex_lite::Regex::new(&pattern).map_err(|e| format!("bad regex {pattern:?}: {e}"))?;
                Ok(Clause::Like(field.trim().to_string(), re))
            } else {
                Err(format!("unsupported filter clause {clause:?}"))
            }
        })
        .collect()
}

fn matches(event: &Value, clauses: &[Clause]) -> bool {
    clauses.iter().all(|c| match c {
        Clause::Equals(field, value) => scalar(lookup(event, field)).as_deref() == Some(value.as_str()),
        Clause::Like(field, re) => scalar(lookup(event, field)).is_some_and(|v| re.is_match(&v)),
    })
}

fn engine_time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

fn run(
    events: &[Stored],
    text: &str,
    start: i64,
    end: i64,
    cap: usize,
) -> Result<Vec<Vec<(String, String)>>, String> {
    let mut selected: Vec<&Stored> = events
        .iter()
        .filter(|e| e.time.timestamp() >= start && e.time.timestamp() <= end)
        .collect();
    let mut stats: Option<String> = None;
    let mut limit = cap;
    let mut descending = false;
    for command in text.split(" | ") {
        let command = command.trim();
        if let Some(expr) = command.strip_prefix("filter ") {
            let clauses = parse_filter(expr)?;
            selected.retain(|e| matches(&e.raw, &clauses));
        } else if command.starts_with("fields ") {
        } else if let Some(order) = command.strip_prefix("sort @timestamp ") {
            descending = match order {
                "asc" => false,
                "desc" => true,
                other => return Err(format!("unsupported sort order {other:?}")),
            };
        } else if let Some(n) = command.strip_prefix("limit ") {
            limit = limit.min(n.parse().map_err(|_| format!("bad limit {n:?}"))?);
        } else if let Some(by) = command.strip_prefix("stats count(*) as n by ") {
            stats = Some(by.to_string());
        } else {
            return Err(format!("unsupported command {command:?}"));
        }
    }
    selected.sort_by_key(|e| e.time);
    if descending {
        selected.reverse();
    }
    let Some(by) = stats else {
        return Ok(selected
            .into_iter()
            .take(limit)
            .map(|e| {
                vec![
                    ("@timestamp".to_string(), engine_time(e.time)),
                    ("@message".to_string(), e.text.clone()),
                ]
            })
            .collect());
    };
    let mut groups: BTreeMap<Vec<(String, String)>, u64> = BTreeMap::new();
    if let Some(bin) = by.strip_prefix("bin(") {
        let (minutes, name) = bin
            .split_once("m) as ")
            .ok_or_else(|| format!("unsupported bin {by:?}"))?;
        let width = minutes.parse::<i64>().map_err(|_| format!("bad bin {by:?}"))? * 60;
        for e in &selected {
            let at =
                DateTime::from_timestamp(e.time.timestamp().div_euclid(width) * width, 0).unwrap_or_default();
            *groups
                .entry(vec![(name.to_string(), engine_time(at))])
                .or_default() += 1;
        }
    } else {
        let fields: Vec<&str> = by.split(',').map(str::trim).collect();
        for e in &selected {
            let key = fields
                .iter()
                .filter_map(|f| scalar(lookup(&e.raw, f)).map(|v| (f.to_string(), v)))
                .collect();
            *groups.entry(key).or_default() += 1;
        }
    }
    Ok(groups
        .into_iter()
        .take(limit)
        .map(|(mut key, n)| {
            key.push(("n".to_string(), n.to_string()));
            key
        })
        .collect())
}
