//! A small Amazon States Language interpreter: exactly the parts
//! break-glass-access's definition uses, following the documented semantics,
//! and a clear refusal (naming the field) for anything else.
//!
//! Supported: Task (a Lambda by ARN, or `lambda:invoke.waitForTaskToken`
//! with `FunctionName` and `Payload`, woken through [`Callbacks`]), Wait (Seconds, SecondsPath, Timestamp, TimestampPath),
//! Choice (the common comparison operators, And/Or/Not), Pass, Succeed,
//! Fail; Retry (ErrorEquals, IntervalSeconds, MaxAttempts, BackoffRate,
//! MaxDelaySeconds, JitterStrategy), Catch (ErrorEquals, ResultPath, Next);
//! InputPath, Parameters, ResultSelector, ResultPath, OutputPath; reference
//! paths (`$.a.b[0]`) and the context object (`$$.Execution.Name`, ...).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use break_glass_core::clock::Clock;
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{Map, Value, json};
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DefinitionError {
    #[error("state {state:?}: field {field} is not supported by the local interpreter")]
    Unsupported { state: String, field: String },
    #[error("state {state:?}: {problem}")]
    Invalid { state: String, problem: String },
    #[error("definition: {0}")]
    Top(String),
}

/// An error as ASL sees it: a name for Retry/Catch, and a cause.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Error)]
#[error("{error}: {cause}")]
pub struct TaskError {
    pub error: String,
    pub cause: String,
}

impl TaskError {
    pub fn new(error: impl Into<String>, cause: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            cause: cause.into(),
        }
    }
}

#[async_trait]
pub trait Invoker: Send + Sync {
    /// Runs the task's resource with its effective input.
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError>;
    /// Where `SendTaskSuccess` finds the callback tasks waiting; `None`: a
    /// callback task waits for its timeout.
    fn callbacks(&self) -> Option<&Callbacks> {
        None
    }
}

/// The Lambda integration that waits for a task token.
pub const WAIT_FOR_TASK_TOKEN: &str = "arn:aws:states:::lambda:invoke.waitForTaskToken";

/// Why `SendTaskSuccess` did not wake anything: Step Functions' own error
/// names (`TaskTimedOut` also when the task has ended for any other reason).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CallbackError {
    #[error("TaskTimedOut: the task is no longer waiting for this token")]
    TaskTimedOut,
}

/// The callback tasks waiting for their token, as Step Functions keeps
/// them: a token wakes its task once; afterwards it is `TaskTimedOut`.
#[derive(Debug, Default)]
pub struct Callbacks {
    waiting: std::sync::Mutex<BTreeMap<String, tokio::sync::oneshot::Sender<Value>>>,
    issued: std::sync::atomic::AtomicU64,
}

impl Callbacks {
    /// A fresh token for `execution`'s `state`, and what its callback sends.
    fn register(&self, execution: &str, state: &str) -> (String, tokio::sync::oneshot::Receiver<Value>) {
        let n = self.issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let token = format!("{execution}/{state}/{n}");
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.lock().insert(token.clone(), tx);
        (token, rx)
    }

    fn forget(&self, token: &str) {
        self.lock().remove(token);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, tokio::sync::oneshot::Sender<Value>>> {
        self.waiting
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `SendTaskSuccess`: the waiting task ends with `output`.
    pub fn send_success(&self, token: &str, output: Value) -> Result<(), CallbackError> {
        let waiting = self.lock().remove(token).ok_or(CallbackError::TaskTimedOut)?;
        waiting.send(output).map_err(|_| CallbackError::TaskTimedOut)
    }
}

#[derive(Debug, Clone)]
enum Transition {
    Next(String),
    End,
}

#[derive(Debug, Clone)]
struct Retrier {
    errors: Vec<String>,
    interval: f64,
    max_attempts: u32,
    backoff: f64,
    max_delay: Option<f64>,
    full_jitter: bool,
}

#[derive(Debug, Clone)]
struct Catcher {
    errors: Vec<String>,
    result_path: Option<String>,
    next: String,
}

/// `None` inside means the path was JSON `null` (discard).
#[derive(Debug, Clone, Default)]
struct Io {
    input_path: Option<Option<String>>,
    parameters: Option<Value>,
    result_selector: Option<Value>,
    result_path: Option<Option<String>>,
    output_path: Option<Option<String>>,
}

#[derive(Debug, Clone)]
enum Wait {
    Seconds(u64),
    SecondsPath(String),
    Timestamp(DateTime<Utc>),
    TimestampPath(String),
}

#[derive(Debug, Clone)]
enum Timeout {
    Seconds(u64),
    /// `TimeoutSecondsPath`: read from the state's input; scaled like a
    /// Wait, since it is how long a hold lasts, not how long a Lambda runs.
    Path(String),
}

#[derive(Debug, Clone)]
enum Kind {
    Task {
        resource: String,
        retry: Vec<Retrier>,
        catch: Vec<Catcher>,
        timeout: Option<Timeout>,
    },
    Wait(Wait),
    Choice {
        choices: Vec<(Value, String)>,
        default: Option<String>,
    },
    Pass {
        result: Option<Value>,
    },
    Succeed,
    Fail {
        error: String,
        cause: String,
    },
}

#[derive(Debug, Clone)]
struct State {
    kind: Kind,
    io: Io,
    next: Transition,
}

#[derive(Debug, Clone)]
pub struct Definition {
    start_at: String,
    states: BTreeMap<String, State>,
}

const COMMON: &[&str] = &["Type", "Comment"];

fn allowed_fields(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Task" => &[
            "Resource",
            "Next",
            "End",
            "InputPath",
            "Parameters",
            "ResultSelector",
            "ResultPath",
            "OutputPath",
            "Retry",
            "Catch",
            "TimeoutSeconds",
            "TimeoutSecondsPath",
        ],
        "Wait" => &[
            "Next",
            "End",
            "InputPath",
            "OutputPath",
            "Seconds",
            "SecondsPath",
            "Timestamp",
            "TimestampPath",
        ],
        "Choice" => &["Choices", "Default", "InputPath", "OutputPath"],
        "Pass" => &[
            "Next",
            "End",
            "InputPath",
            "Parameters",
            "Result",
            "ResultPath",
            "OutputPath",
        ],
        "Succeed" => &["InputPath", "OutputPath"],
        "Fail" => &["Error", "Cause"],
        _ => return None,
    })
}

fn invalid(state: &str, problem: impl Into<String>) -> DefinitionError {
    DefinitionError::Invalid {
        state: state.to_string(),
        problem: problem.into(),
    }
}

fn opt_path(
    name: &str,
    obj: &Map<String, Value>,
    field: &str,
) -> Result<Option<Option<String>>, DefinitionError> {
    match obj.get(field) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(p)) if p.starts_with('$') => Ok(Some(Some(p.clone()))),
        Some(_) => Err(invalid(name, format!("{field} must be a path or null"))),
    }
}

fn errors_of(name: &str, v: &Value) -> Result<Vec<String>, DefinitionError> {
    let list = v["ErrorEquals"]
        .as_array()
        .ok_or_else(|| invalid(name, "ErrorEquals must be a list"))?;
    let errors: Vec<String> = list
        .iter()
        .filter_map(|e| e.as_str().map(str::to_string))
        .collect();
    if errors.is_empty() || errors.len() != list.len() {
        return Err(invalid(name, "ErrorEquals must be a non-empty list of names"));
    }
    if errors.iter().any(|e| e == "States.ALL") && errors.len() > 1 {
        return Err(invalid(name, "States.ALL must stand alone in ErrorEquals"));
    }
    Ok(errors)
}

impl Definition {
    pub fn parse(text: &str) -> Result<Self, DefinitionError> {
        let root: Value = serde_json::from_str(text).map_err(|e| DefinitionError::Top(e.to_string()))?;
        let obj = root
            .as_object()
            .ok_or_else(|| DefinitionError::Top("not an object".into()))?;
        for key in obj.keys() {
            if !["StartAt", "States", "Comment", "TimeoutSeconds", "Version"].contains(&key.as_str()) {
                return Err(DefinitionError::Unsupported {
                    state: "(top level)".into(),
                    field: key.clone(),
                });
            }
        }
        let start_at = obj["StartAt"]
            .as_str()
            .ok_or_else(|| DefinitionError::Top("StartAt is missing".into()))?
            .to_string();
        let mut states = BTreeMap::new();
        let raw_states = obj
            .get("States")
            .and_then(Value::as_object)
            .ok_or_else(|| DefinitionError::Top("States is missing".into()))?;
        for (name, raw) in raw_states {
            states.insert(name.clone(), Self::state(name, raw)?);
        }
        let def = Self { start_at, states };
        def.check_targets()?;
        Ok(def)
    }

    fn state(name: &str, raw: &Value) -> Result<State, DefinitionError> {
        let obj = raw.as_object().ok_or_else(|| invalid(name, "not an object"))?;
        let kind_name = obj.get("Type").and_then(Value::as_str).unwrap_or_default();
        let allowed = allowed_fields(kind_name).ok_or_else(|| DefinitionError::Unsupported {
            state: name.into(),
            field: format!("Type {kind_name:?}"),
        })?;
        for key in obj.keys() {
            if !allowed.contains(&key.as_str()) && !COMMON.contains(&key.as_str()) {
                return Err(DefinitionError::Unsupported {
                    state: name.into(),
                    field: key.clone(),
                });
            }
        }
        let io = Io {
            input_path: opt_path(name, obj, "InputPath")?,
            parameters: obj.get("Parameters").cloned(),
            result_selector: obj.get("ResultSelector").cloned(),
            result_path: opt_path(name, obj, "ResultPath")?,
            output_path: opt_path(name, obj, "OutputPath")?,
        };
        let next = match (obj.get("Next").and_then(Value::as_str), obj.get("End")) {
            (Some(n), None) => Transition::Next(n.to_string()),
            (None, Some(Value::Bool(true))) => Transition::End,
            (None, None) if matches!(kind_name, "Choice" | "Succeed" | "Fail") => Transition::End,
            _ => return Err(invalid(name, "needs exactly one of Next or End: true")),
        };
        let kind = match kind_name {
            "Task" => {
                let resource = obj["Resource"]
                    .as_str()
                    .ok_or_else(|| invalid(name, "Resource is missing"))?
                    .to_string();
                let mut retry = Vec::new();
                for r in obj
                    .get("Retry")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                {
                    for key in r
                        .as_object()
                        .map(|o| o.keys().cloned().collect::<Vec<_>>())
                        .unwrap_or_default()
                    {
                        if ![
                            "ErrorEquals",
                            "IntervalSeconds",
                            "MaxAttempts",
                            "BackoffRate",
                            "MaxDelaySeconds",
                            "JitterStrategy",
                            "Comment",
                        ]
                        .contains(&key.as_str())
                        {
                            return Err(DefinitionError::Unsupported {
                                state: name.into(),
                                field: format!("Retry.{key}"),
                            });
                        }
                    }
                    retry.push(Retrier {
                        errors: errors_of(name, &r)?,
                        interval: r["IntervalSeconds"].as_f64().unwrap_or(1.0),
                        max_attempts: r["MaxAttempts"].as_u64().unwrap_or(3) as u32,
                        backoff: r["BackoffRate"].as_f64().unwrap_or(2.0),
                        max_delay: r["MaxDelaySeconds"].as_f64(),
                        full_jitter: r["JitterStrategy"] == "FULL",
                    });
                }
                let mut catch = Vec::new();
                for c in obj
                    .get("Catch")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default()
                {
                    let co = c.as_object().cloned().unwrap_or_default();
                    for key in co.keys() {
                        if !["ErrorEquals", "ResultPath", "Next", "Comment"].contains(&key.as_str()) {
                            return Err(DefinitionError::Unsupported {
                                state: name.into(),
                                field: format!("Catch.{key}"),
                            });
                        }
                    }
                    catch.push(Catcher {
                        errors: errors_of(name, &c)?,
                        result_path: opt_path(name, &co, "ResultPath")?.unwrap_or(Some("$".into())),
                        next: c["Next"]
                            .as_str()
                            .ok_or_else(|| invalid(name, "Catch without Next"))?
                            .to_string(),
                    });
                }
                let timeout = match (obj.get("TimeoutSeconds"), obj.get("TimeoutSecondsPath")) {
                    (Some(_), Some(_)) => {
                        return Err(invalid(
                            name,
                            "TimeoutSeconds and TimeoutSecondsPath are exclusive",
                        ));
                    }
                    (Some(t), None) => {
                        Some(Timeout::Seconds(t.as_u64().ok_or_else(|| {
                            invalid(name, "TimeoutSeconds must be a whole number")
                        })?))
                    }
                    (None, Some(p)) => Some(Timeout::Path(
                        p.as_str()
                            .ok_or_else(|| invalid(name, "TimeoutSecondsPath must be a path"))?
                            .to_string(),
                    )),
                    (None, None) => None,
                };
                if resource == WAIT_FOR_TASK_TOKEN
                    && obj
                        .get("Parameters")
                        .and_then(|p| p.get("FunctionName"))
                        .and_then(Value::as_str)
                        .is_none()
                {
                    return Err(invalid(
                        name,
                        "a waitForTaskToken task needs Parameters.FunctionName",
                    ));
                }
                Kind::Task {
                    resource,
                    retry,
                    catch,
                    timeout,
                }
            }
            "Wait" => {
                let forms: Vec<&str> = ["Seconds", "SecondsPath", "Timestamp", "TimestampPath"]
                    .into_iter()
                    .filter(|f| obj.contains_key(*f))
                    .collect();
                if forms.len() != 1 {
                    return Err(invalid(
                        name,
                        "a Wait needs exactly one of Seconds, SecondsPath, Timestamp, TimestampPath",
                    ));
                }
                Kind::Wait(match forms[0] {
                    "Seconds" => Wait::Seconds(
                        obj["Seconds"]
                            .as_u64()
                            .ok_or_else(|| invalid(name, "Seconds must be a whole number"))?,
                    ),
                    "SecondsPath" => {
                        Wait::SecondsPath(obj["SecondsPath"].as_str().unwrap_or("$").to_string())
                    }
                    "Timestamp" => Wait::Timestamp(
                        obj["Timestamp"]
                            .as_str()
                            .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                            .ok_or_else(|| invalid(name, "Timestamp must be RFC 3339"))?
                            .with_timezone(&Utc),
                    ),
                    _ => Wait::TimestampPath(obj["TimestampPath"].as_str().unwrap_or("$").to_string()),
                })
            }
            "Choice" => {
                let choices = obj["Choices"]
                    .as_array()
                    .ok_or_else(|| invalid(name, "Choices must be a list"))?
                    .iter()
                    .map(|c| {
                        check_rule(name, c)?;
                        let next = c["Next"]
                            .as_str()
                            .ok_or_else(|| invalid(name, "a Choice rule needs Next"))?;
                        Ok((c.clone(), next.to_string()))
                    })
                    .collect::<Result<Vec<_>, DefinitionError>>()?;
                Kind::Choice {
                    choices,
                    default: obj.get("Default").and_then(Value::as_str).map(str::to_string),
                }
            }
            "Pass" => Kind::Pass {
                result: obj.get("Result").cloned(),
            },
            "Succeed" => Kind::Succeed,
            _ => Kind::Fail {
                error: obj
                    .get("Error")
                    .and_then(Value::as_str)
                    .unwrap_or("States.Fail")
                    .to_string(),
                cause: obj
                    .get("Cause")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
            },
        };
        Ok(State { kind, io, next })
    }

    fn check_targets(&self) -> Result<(), DefinitionError> {
        if !self.states.contains_key(&self.start_at) {
            return Err(DefinitionError::Top(format!(
                "StartAt {:?} is not a state",
                self.start_at
            )));
        }
        for (name, state) in &self.states {
            let mut targets = Vec::new();
            if let Transition::Next(n) = &state.next {
                targets.push(n.clone());
            }
            match &state.kind {
                Kind::Task { catch, .. } => targets.extend(catch.iter().map(|c| c.next.clone())),
                Kind::Choice { choices, default } => {
                    targets.extend(choices.iter().map(|(_, n)| n.clone()));
                    targets.extend(default.clone());
                }
                _ => {}
            }
            if let Some(missing) = targets.iter().find(|t| !self.states.contains_key(*t)) {
                return Err(invalid(
                    name,
                    format!("goes to {missing:?}, which is not a state"),
                ));
            }
        }
        Ok(())
    }

    /// The Task resources, for wiring.
    pub fn resources(&self) -> Vec<String> {
        let mut out: Vec<String> = self
            .states
            .values()
            .filter_map(|s| match &s.kind {
                Kind::Task { resource, .. } if resource == WAIT_FOR_TASK_TOKEN => {
                    s.io.parameters
                        .as_ref()
                        .and_then(|p| p["FunctionName"].as_str())
                        .map(str::to_string)
                }
                Kind::Task { resource, .. } => Some(resource.clone()),
                _ => None,
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

const OPERATORS: &[&str] = &[
    "StringEquals",
    "StringLessThan",
    "StringGreaterThan",
    "NumericEquals",
    "NumericLessThan",
    "NumericGreaterThan",
    "NumericLessThanEquals",
    "NumericGreaterThanEquals",
    "BooleanEquals",
    "TimestampEquals",
    "TimestampLessThan",
    "TimestampGreaterThan",
    "IsPresent",
    "IsNull",
];

fn check_rule(state: &str, rule: &Value) -> Result<(), DefinitionError> {
    let obj = rule
        .as_object()
        .ok_or_else(|| invalid(state, "a Choice rule must be an object"))?;
    for key in obj.keys() {
        let known = ["Variable", "Next", "And", "Or", "Not", "Comment"].contains(&key.as_str())
            || OPERATORS.contains(&key.as_str());
        if !known {
            return Err(DefinitionError::Unsupported {
                state: state.into(),
                field: format!("Choices.{key}"),
            });
        }
    }
    for nested in ["And", "Or"] {
        for r in obj.get(nested).and_then(Value::as_array).into_iter().flatten() {
            check_rule(state, r)?;
        }
    }
    if let Some(r) = obj.get("Not") {
        check_rule(state, r)?;
    }
    Ok(())
}

/// Reads a reference path (`$`, `$.a.b`, `$.list[2].c`, `$$.Execution.Name`).
pub fn read_path(path: &str, input: &Value, context: &Value) -> Option<Value> {
    let (root, rest) = if let Some(rest) = path.strip_prefix("$$") {
        (context, rest)
    } else {
        (input, path.strip_prefix('$')?)
    };
    let mut cur = root.clone();
    for segment in split_path(rest)? {
        cur = match segment {
            Segment::Field(f) => cur.get(&f)?.clone(),
            Segment::Index(i) => cur.get(i)?.clone(),
        };
    }
    Some(cur)
}

enum Segment {
    Field(String),
    Index(usize),
}

fn split_path(rest: &str) -> Option<Vec<Segment>> {
    let mut out = Vec::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '.' => {
                let mut field = String::new();
                while let Some(&n) = chars.peek() {
                    if n == '.' || n == '[' {
                        break;
                    }
                    field.push(n);
                    chars.next();
                }
                if field.is_empty() {
                    return None;
                }
                out.push(Segment::Field(field));
            }
            '[' => {
                let mut digits = String::new();
                for n in chars.by_ref() {
                    if n == ']' {
                        break;
                    }
                    digits.push(n);
                }
                out.push(Segment::Index(digits.parse().ok()?));
            }
            _ => return None,
        }
    }
    Some(out)
}

/// Writes `value` at a ResultPath inside `input` (creating objects on the way).
fn write_path(path: &str, input: Value, value: Value) -> Result<Value, TaskError> {
    let rest = path
        .strip_prefix('$')
        .ok_or_else(|| TaskError::new("States.ResultPathMatchFailure", path))?;
    let segments = split_path(rest).ok_or_else(|| TaskError::new("States.ResultPathMatchFailure", path))?;
    if segments.is_empty() {
        return Ok(value);
    }
    let mut root = input;
    let mut cur = &mut root;
    for (i, seg) in segments.iter().enumerate() {
        let Segment::Field(f) = seg else {
            return Err(TaskError::new(
                "States.ResultPathMatchFailure",
                format!("{path}: indexes are not supported"),
            ));
        };
        if !cur.is_object() {
            if cur.is_null() {
                *cur = json!({});
            } else {
                return Err(TaskError::new(
                    "States.ResultPathMatchFailure",
                    format!("{path}: not an object"),
                ));
            }
        }
        let obj = cur
            .as_object_mut()
            .ok_or_else(|| TaskError::new("States.ResultPathMatchFailure", path))?;
        if i + 1 == segments.len() {
            obj.insert(f.clone(), value);
            break;
        }
        cur = obj.entry(f.clone()).or_insert(Value::Null);
    }
    Ok(root)
}

/// Payload templates: keys ending in `.$` take a path's value.
fn template(t: &Value, input: &Value, context: &Value) -> Result<Value, TaskError> {
    Ok(match t {
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, v) in map {
                if let Some(key) = k.strip_suffix(".$") {
                    let path = v.as_str().unwrap_or_default();
                    if !path.starts_with('$') {
                        return Err(TaskError::new(
                            "States.Runtime",
                            format!("{k}: intrinsic functions are not supported locally"),
                        ));
                    }
                    let value = read_path(path, input, context).ok_or_else(|| {
                        TaskError::new("States.Runtime", format!("{k}: path {path} matched nothing"))
                    })?;
                    out.insert(key.to_string(), value);
                } else {
                    out.insert(k.clone(), template(v, input, context)?);
                }
            }
            Value::Object(out)
        }
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|i| template(i, input, context))
                .collect::<Result<_, _>>()?,
        ),
        other => other.clone(),
    })
}

fn select(
    path: &Option<Option<String>>,
    value: &Value,
    context: &Value,
    what: &str,
) -> Result<Value, TaskError> {
    match path {
        None => Ok(value.clone()),
        Some(None) => Ok(json!({})),
        Some(Some(p)) => read_path(p, value, context)
            .ok_or_else(|| TaskError::new("States.Runtime", format!("{what} {p} matched nothing"))),
    }
}

fn matches(errors: &[String], error: &str) -> bool {
    errors.iter().any(|e| {
        e == error
            || (e == "States.ALL" && error != "States.Runtime")
            || (e == "States.TaskFailed" && error != "States.Timeout" && !error.starts_with("States.Runtime"))
    })
}

fn evaluate(rule: &Value, input: &Value, context: &Value) -> Result<bool, TaskError> {
    if let Some(all) = rule.get("And").and_then(Value::as_array) {
        for r in all {
            if !evaluate(r, input, context)? {
                return Ok(false);
            }
        }
        return Ok(true);
    }
    if let Some(any) = rule.get("Or").and_then(Value::as_array) {
        for r in any {
            if evaluate(r, input, context)? {
                return Ok(true);
            }
        }
        return Ok(false);
    }
    if let Some(not) = rule.get("Not") {
        return Ok(!evaluate(not, input, context)?);
    }
    let variable = rule["Variable"].as_str().unwrap_or("$");
    let value = read_path(variable, input, context);
    let ts = |v: &Value| v.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok());
    for op in OPERATORS {
        let Some(expected) = rule.get(*op) else { continue };
        if *op == "IsPresent" {
            return Ok(value.is_some() == expected.as_bool().unwrap_or(true));
        }
        let Some(v) = value else {
            return Err(TaskError::new(
                "States.Runtime",
                format!("Choice variable {variable} matched nothing"),
            ));
        };
        return Ok(match *op {
            "IsNull" => v.is_null() == expected.as_bool().unwrap_or(true),
            "StringEquals" => v.as_str().is_some() && v.as_str() == expected.as_str(),
            "StringLessThan" => v.as_str().zip(expected.as_str()).is_some_and(|(a, b)| a < b),
            "StringGreaterThan" => v.as_str().zip(expected.as_str()).is_some_and(|(a, b)| a > b),
            "BooleanEquals" => v.as_bool().is_some() && v.as_bool() == expected.as_bool(),
            "NumericEquals" => v.as_f64().zip(expected.as_f64()).is_some_and(|(a, b)| a == b),
            "NumericLessThan" => v.as_f64().zip(expected.as_f64()).is_some_and(|(a, b)| a < b),
            "NumericGreaterThan" => v.as_f64().zip(expected.as_f64()).is_some_and(|(a, b)| a > b),
            "NumericLessThanEquals" => v.as_f64().zip(expected.as_f64()).is_some_and(|(a, b)| a <= b),
            "NumericGreaterThanEquals" => v.as_f64().zip(expected.as_f64()).is_some_and(|(a, b)| a >= b),
            "TimestampEquals" => ts(&v).zip(ts(expected)).is_some_and(|(a, b)| a == b),
            "TimestampLessThan" => ts(&v).zip(ts(expected)).is_some_and(|(a, b)| a < b),
            _ => ts(&v).zip(ts(expected)).is_some_and(|(a, b)| a > b),
        });
    }
    Err(TaskError::new(
        "States.Runtime",
        "Choice rule without a comparison",
    ))
}

/// One step of an execution's history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEvent {
    pub timestamp: DateTime<Utc>,
    /// `StateEntered`, `TaskFailed`, `TaskRetried`, `TaskSucceeded`, `Waiting`, `StateExited`, `ExecutionSucceeded`, `ExecutionFailed` (and `ExecutionAborted`, recorded by the local runner).
    pub kind: &'static str,
    pub state: String,
    pub detail: Value,
}

/// How an execution ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Ending {
    Succeeded(Value),
    Failed(TaskError),
}

/// Runs a definition to its end. `time_scale` divides every wait and retry
/// interval (1 = real time); task timeouts are not scaled.
pub async fn execute(
    definition: &Definition,
    input: Value,
    context: &Value,
    invoker: &dyn Invoker,
    clock: &dyn Clock,
    time_scale: f64,
    on_event: &(dyn Fn(HistoryEvent) + Send + Sync),
) -> Ending {
    let event = |kind: &'static str, state: &str, detail: Value| {
        on_event(HistoryEvent {
            timestamp: clock.now(),
            kind,
            state: state.to_string(),
            detail,
        })
    };
    let scaled = |seconds: f64| Duration::from_secs_f64((seconds / time_scale.max(1e-9)).max(0.0));
    let mut name = definition.start_at.clone();
    let mut data = input;
    loop {
        let Some(state) = definition.states.get(&name) else {
            return Ending::Failed(TaskError::new("States.Runtime", format!("no state {name}")));
        };
        event("StateEntered", &name, data.clone());
        let context = {
            let mut c = context.clone();
            c["State"] = json!({"Name": name, "EnteredTime": clock.now().to_rfc3339()});
            c
        };
        let step: Result<(Value, Option<String>), TaskError> = async {
            let effective = select(&state.io.input_path, &data, &context, "InputPath")?;
            match &state.kind {
                Kind::Fail { error, cause } => Err(TaskError::new(error.clone(), cause.clone())),
                Kind::Succeed => Ok((
                    select(&state.io.output_path, &effective, &context, "OutputPath")?,
                    None,
                )),
                Kind::Pass { result } => {
                    let produced = match (result, &state.io.parameters) {
                        (Some(r), _) => r.clone(),
                        (None, Some(p)) => template(p, &effective, &context)?,
                        (None, None) => effective.clone(),
                    };
                    let merged = merge_result(&state.io.result_path, data.clone(), produced)?;
                    Ok((
                        select(&state.io.output_path, &merged, &context, "OutputPath")?,
                        next_of(&state.next),
                    ))
                }
                Kind::Wait(wait) => {
                    let seconds = match wait {
                        Wait::Seconds(s) => *s as f64,
                        Wait::SecondsPath(p) => read_path(p, &effective, &context)
                            .and_then(|v| v.as_f64())
                            .ok_or_else(|| {
                            TaskError::new("States.Runtime", format!("SecondsPath {p} is not a number"))
                        })?,
                        Wait::Timestamp(t) => seconds_until(*t, clock.now()),
                        Wait::TimestampPath(p) => {
                            let t = read_path(p, &effective, &context)
                                .and_then(|v| v.as_str().and_then(|s| DateTime::parse_from_rfc3339(s).ok()))
                                .ok_or_else(|| {
                                    TaskError::new(
                                        "States.Runtime",
                                        format!("TimestampPath {p} is not an RFC 3339 timestamp"),
                                    )
                                })?;
                            seconds_until(t.with_timezone(&Utc), clock.now())
                        }
                    };
                    event(
                        "Waiting",
                        &name,
                        json!({"seconds": seconds, "scaled_seconds": scaled(seconds).as_secs_f64()}),
                    );
                    clock.sleep(scaled(seconds)).await;
                    Ok((
                        select(&state.io.output_path, &effective, &context, "OutputPath")?,
                        next_of(&state.next),
                    ))
                }
                Kind::Choice { choices, default } => {
                    for (rule, next) in choices {
                        if evaluate(rule, &effective, &context)? {
                            return Ok((
                                select(&state.io.output_path, &effective, &context, "OutputPath")?,
                                Some(next.clone()),
                            ));
                        }
                    }
                    match default {
                        Some(d) => Ok((
                            select(&state.io.output_path, &effective, &context, "OutputPath")?,
                            Some(d.clone()),
                        )),
                        None => Err(TaskError::new(
                            "States.NoChoiceMatched",
                            format!("no choice of {name} matched"),
                        )),
                    }
                }
                Kind::Task {
                    resource,
                    retry,
                    catch,
                    timeout,
                } => {
                    let limit = match timeout {
                        None => None,
                        Some(Timeout::Seconds(t)) => Some(Duration::from_secs(*t)),
                        Some(Timeout::Path(p)) => {
                            let seconds = read_path(p, &effective, &context)
                                .and_then(|v| v.as_u64())
                                .filter(|s| *s > 0)
                                .ok_or_else(|| {
                                    TaskError::new(
                                        "States.Runtime",
                                        format!("TimeoutSecondsPath {p} is not a positive whole number"),
                                    )
                                })?;
                            Some(scaled(seconds as f64))
                        }
                    };
                    let callback = resource == WAIT_FOR_TASK_TOKEN;
                    let mut attempts: BTreeMap<usize, u32> = BTreeMap::new();
                    loop {
                        // Each attempt gets its own token, as in Step Functions.
                        let (token, woken) = match (callback, invoker.callbacks()) {
                            (true, Some(callbacks)) => {
                                let execution = context["Execution"]["Name"].as_str().unwrap_or_default();
                                let (token, rx) = callbacks.register(execution, &name);
                                (Some(token), Some(rx))
                            }
                            _ => (None, None),
                        };
                        let context = {
                            let mut c = context.clone();
                            if let Some(token) = &token {
                                c["Task"] = json!({"Token": token});
                            }
                            c
                        };
                        let payload = match &state.io.parameters {
                            Some(p) => template(p, &effective, &context)?,
                            None => effective.clone(),
                        };
                        let call = async {
                            if !callback {
                                return invoker.invoke(resource, payload.clone()).await;
                            }
                            let function = payload["FunctionName"].as_str().unwrap_or_default().to_string();
                            invoker
                                .invoke(&function, payload.get("Payload").cloned().unwrap_or(Value::Null))
                                .await?;
                            match woken {
                                Some(rx) => rx.await.map_err(|_| {
                                    TaskError::new("States.Runtime", "the callback was dropped")
                                }),
                                None => std::future::pending().await,
                            }
                        };
                        let result = match limit {
                            Some(t) => tokio::time::timeout(t, call).await.unwrap_or_else(|_| {
                                Err(TaskError::new(
                                    "States.Timeout",
                                    format!("{name} ran longer than {} s", t.as_secs_f64()),
                                ))
                            }),
                            None => call.await,
                        };
                        if let (Some(token), Some(callbacks)) = (&token, invoker.callbacks()) {
                            callbacks.forget(token);
                        }
                        match result {
                            Ok(output) => {
                                event("TaskSucceeded", &name, output.clone());
                                let selected = match &state.io.result_selector {
                                    Some(s) => template(s, &output, &context)?,
                                    None => output,
                                };
                                let merged = merge_result(&state.io.result_path, data.clone(), selected)?;
                                return Ok((
                                    select(&state.io.output_path, &merged, &context, "OutputPath")?,
                                    next_of(&state.next),
                                ));
                            }
                            Err(err) => {
                                event(
                                    "TaskFailed",
                                    &name,
                                    json!({"error": err.error, "cause": err.cause}),
                                );
                                if let Some((i, r)) = retry
                                    .iter()
                                    .enumerate()
                                    .find(|(_, r)| matches(&r.errors, &err.error))
                                {
                                    let n = attempts.entry(i).or_insert(0);
                                    if *n < r.max_attempts {
                                        let mut delay = r.interval * r.backoff.powi(*n as i32);
                                        if let Some(max) = r.max_delay {
                                            delay = delay.min(max);
                                        }
                                        if r.full_jitter {
                                            let spread =
                                                (clock.now().timestamp_subsec_nanos() % 1000) as f64 / 1000.0;
                                            delay *= spread;
                                        }
                                        *n += 1;
                                        event(
                                            "TaskRetried",
                                            &name,
                                            json!({"attempt": *n, "delay_seconds": delay}),
                                        );
                                        clock.sleep(scaled(delay)).await;
                                        continue;
                                    }
                                }
                                if let Some(c) = catch.iter().find(|c| matches(&c.errors, &err.error)) {
                                    let error_output = json!({"Error": err.error, "Cause": err.cause});
                                    let merged = merge_result(
                                        &Some(c.result_path.clone()),
                                        data.clone(),
                                        error_output,
                                    )?;
                                    return Ok((merged, Some(c.next.clone())));
                                }
                                return Err(err);
                            }
                        }
                    }
                }
            }
        }
        .await;
        match step {
            Ok((output, Some(next))) => {
                event("StateExited", &name, output.clone());
                data = output;
                name = next;
            }
            Ok((output, None)) => {
                event("StateExited", &name, output.clone());
                event("ExecutionSucceeded", &name, output.clone());
                return Ending::Succeeded(output);
            }
            Err(err) => {
                event(
                    "ExecutionFailed",
                    &name,
                    json!({"error": err.error, "cause": err.cause}),
                );
                return Ending::Failed(err);
            }
        }
    }
}

fn next_of(t: &Transition) -> Option<String> {
    match t {
        Transition::Next(n) => Some(n.clone()),
        Transition::End => None,
    }
}

fn seconds_until(t: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
    ((t - now).num_milliseconds() as f64 / 1000.0).max(0.0)
}

fn merge_result(path: &Option<Option<String>>, input: Value, result: Value) -> Result<Value, TaskError> {
    match path {
        None => Ok(result),
        Some(None) => Ok(input),
        Some(Some(p)) => write_path(p, input, result),
    }
}
