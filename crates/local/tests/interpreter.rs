//! The interpreter against the documented Amazon States Language semantics,
//! on a pinned clock so waits take no time.

#![allow(clippy::unwrap_used)]

use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use break_glass_core::clock::ManualClock;
use break_glass_local::asl::{Definition, Ending, HistoryEvent, Invoker, TaskError, execute};
use serde_json::{Value, json};

/// Fails each resource the given number of times with the given error, then
/// echoes its input with `{"ran": resource}` added.
struct Script {
    failures: Mutex<Vec<(String, String, u32)>>,
    calls: Mutex<Vec<(String, Value)>>,
}

impl Script {
    fn new(failures: &[(&str, &str, u32)]) -> Self {
        Self {
            failures: Mutex::new(
                failures
                    .iter()
                    .map(|(r, e, n)| (r.to_string(), e.to_string(), *n))
                    .collect(),
            ),
            calls: Mutex::new(Vec::new()),
        }
    }
}

#[async_trait]
impl Invoker for Script {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        self.calls
            .lock()
            .unwrap()
            .push((resource.to_string(), input.clone()));
        for f in self.failures.lock().unwrap().iter_mut() {
            if f.0 == resource && f.2 > 0 {
                f.2 -= 1;
                return Err(TaskError::new(f.1.clone(), "scripted"));
            }
        }
        Ok(json!({"ran": resource, "input": input}))
    }
}

async fn run(
    definition: &str,
    input: Value,
    script: &Script,
    clock: &ManualClock,
) -> (Ending, Vec<HistoryEvent>) {
    let def = Definition::parse(definition).unwrap();
    let events = Mutex::new(Vec::new());
    let record = |e: HistoryEvent| events.lock().unwrap().push(e);
    let context = json!({"Execution": {"Name": "exec-1"}});
    let ending = execute(&def, input, &context, script, clock, 1.0, &record).await;
    (ending, events.into_inner().unwrap())
}

#[tokio::test]
async fn paths_parameters_and_the_context_object() {
    let def = r#"{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"r","InputPath":"$.in",
        "Parameters":{"fixed":1,"name.$":"$$.Execution.Name","x.$":"$.x"},
        "ResultSelector":{"ran.$":"$.ran"},"ResultPath":"$.out.result","OutputPath":"$.out","End":true}}}"#;
    let script = Script::new(&[]);
    let (ending, _) = run(
        def,
        json!({"in": {"x": [1, 2]}}),
        &script,
        &ManualClock::at_unix(0),
    )
    .await;
    assert_eq!(ending, Ending::Succeeded(json!({"result": {"ran": "r"}})));
    assert_eq!(
        script.calls.lock().unwrap()[0].1,
        json!({"fixed": 1, "name": "exec-1", "x": [1, 2]})
    );
}

#[tokio::test]
async fn all_four_waits() {
    let def = r#"{"StartAt":"A","States":{
        "A":{"Type":"Wait","Seconds":10,"Next":"B"},
        "B":{"Type":"Wait","SecondsPath":"$.s","Next":"C"},
        "C":{"Type":"Wait","Timestamp":"1970-01-01T00:02:00Z","Next":"D"},
        "D":{"Type":"Wait","TimestampPath":"$.t","End":true}}}"#;
    let clock = ManualClock::at_unix(0);
    let (ending, _) = run(
        def,
        json!({"s": 5, "t": "1970-01-01T00:05:00Z"}),
        &Script::new(&[]),
        &clock,
    )
    .await;
    assert!(matches!(ending, Ending::Succeeded(_)));
    assert_eq!(
        clock.sleeps(),
        vec![
            Duration::from_secs(10),
            Duration::from_secs(5),
            Duration::from_secs(105),
            Duration::from_secs(180)
        ]
    );
}

#[tokio::test]
async fn a_timestamp_in_the_past_does_not_wait() {
    let def = r#"{"StartAt":"W","States":{"W":{"Type":"Wait","TimestampPath":"$.t","End":true}}}"#;
    let clock = ManualClock::at_unix(1_000_000);
    run(
        def,
        json!({"t": "1970-01-01T00:00:00Z"}),
        &Script::new(&[]),
        &clock,
    )
    .await;
    assert_eq!(clock.sleeps(), vec![Duration::ZERO]);
}

#[tokio::test]
async fn retry_backs_off_then_catch_keeps_the_input() {
    let def = r#"{"StartAt":"T","States":{
        "T":{"Type":"Task","Resource":"r","Retry":[{"ErrorEquals":["Flaky"],"IntervalSeconds":2,"MaxAttempts":2,"BackoffRate":3}],
             "Catch":[{"ErrorEquals":["States.ALL"],"ResultPath":"$.error","Next":"F"}],"Next":"OK"},
        "OK":{"Type":"Succeed"},
        "F":{"Type":"Pass","Next":"Done"},
        "Done":{"Type":"Fail","Error":"Gave","Cause":"up"}}}"#;
    let clock = ManualClock::at_unix(0);
    let script = Script::new(&[("r", "Flaky", 3)]);
    let (ending, events) = run(def, json!({"keep": true}), &script, &clock).await;
    assert_eq!(ending, Ending::Failed(TaskError::new("Gave", "up")));
    assert_eq!(
        clock.sleeps(),
        vec![Duration::from_secs(2), Duration::from_secs(6)]
    );
    assert_eq!(script.calls.lock().unwrap().len(), 3);
    let caught = events
        .iter()
        .find(|e| e.kind == "StateEntered" && e.state == "F")
        .unwrap();
    assert_eq!(
        caught.detail,
        json!({"keep": true, "error": {"Error": "Flaky", "Cause": "scripted"}})
    );
}

#[tokio::test]
async fn a_retried_task_that_recovers_goes_on() {
    let def = r#"{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"r",
        "Retry":[{"ErrorEquals":["States.TaskFailed"],"IntervalSeconds":1,"MaxAttempts":3}],"End":true}}}"#;
    let (ending, _) = run(
        def,
        json!({}),
        &Script::new(&[("r", "Boom", 2)]),
        &ManualClock::at_unix(0),
    )
    .await;
    assert!(matches!(ending, Ending::Succeeded(v) if v["ran"] == "r"));
}

#[tokio::test]
async fn choice_pass_and_default() {
    let def = r#"{"StartAt":"C","States":{
        "C":{"Type":"Choice","Choices":[
            {"And":[{"Variable":"$.n","NumericGreaterThan":5},{"Not":{"Variable":"$.s","StringEquals":"no"}}],"Next":"Big"},
            {"Variable":"$.missing","IsPresent":true,"Next":"Big"}],
            "Default":"Small"},
        "Big":{"Type":"Pass","Result":"big","ResultPath":"$.size","End":true},
        "Small":{"Type":"Pass","Parameters":{"n.$":"$.n"},"End":true}}}"#;
    let clock = ManualClock::at_unix(0);
    let (big, _) = run(def, json!({"n": 7, "s": "yes"}), &Script::new(&[]), &clock).await;
    assert_eq!(big, Ending::Succeeded(json!({"n": 7, "s": "yes", "size": "big"})));
    let (small, _) = run(def, json!({"n": 7, "s": "no"}), &Script::new(&[]), &clock).await;
    assert_eq!(small, Ending::Succeeded(json!({"n": 7})));
}

#[test]
fn anything_unsupported_is_refused_by_name() {
    for (def, field) in [
        (
            r#"{"StartAt":"M","States":{"M":{"Type":"Map","End":true}}}"#,
            "Type \"Map\"",
        ),
        (
            r#"{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"r","HeartbeatSeconds":5,"End":true}}}"#,
            "HeartbeatSeconds",
        ),
        (
            r#"{"StartAt":"T","States":{"T":{"Type":"Task","Resource":"r","Retry":[{"ErrorEquals":["X"],"Bogus":1}],"End":true}}}"#,
            "Retry.Bogus",
        ),
        (
            r#"{"StartAt":"C","States":{"C":{"Type":"Choice","Choices":[{"Variable":"$.a","StringMatches":"x*","Next":"C"}]}}}"#,
            "Choices.StringMatches",
        ),
        (
            r#"{"StartAt":"A","QueryLanguage":"JSONata","States":{"A":{"Type":"Succeed"}}}"#,
            "QueryLanguage",
        ),
    ] {
        let err = Definition::parse(def).unwrap_err().to_string();
        assert!(err.contains(field), "{field}: {err}");
    }
    let err =
        Definition::parse(r#"{"StartAt":"A","States":{"A":{"Type":"Pass","Next":"Nowhere"}}}"#).unwrap_err();
    assert!(err.to_string().contains("Nowhere"));
}
