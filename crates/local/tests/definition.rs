//! The state machine definition is product code: these checks hold it to
//! the promises in ARCHITECTURE.md.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};

use break_glass_local::asl::Definition;
use break_glass_local::runner::{PLACEHOLDERS, render};
use serde_json::Value;

const DEFINITION: &str = include_str!("../../../statemachine/break-glass.asl.json");

fn states() -> BTreeMap<String, Value> {
    let v: Value = serde_json::from_str(DEFINITION).unwrap();
    v["States"].as_object().unwrap().clone().into_iter().collect()
}

fn targets(state: &Value) -> Vec<String> {
    let mut out: Vec<String> = state["Next"].as_str().map(str::to_string).into_iter().collect();
    for c in state["Catch"].as_array().into_iter().flatten() {
        out.push(c["Next"].as_str().unwrap().to_string());
    }
    for c in state["Choices"].as_array().into_iter().flatten() {
        out.push(c["Next"].as_str().unwrap().to_string());
    }
    out.extend(state["Default"].as_str().map(str::to_string));
    out
}

#[test]
fn every_transition_lands_on_a_state_and_every_state_is_reachable() {
    let states = states();
    let mut seen = BTreeSet::from(["Grant".to_string()]);
    let mut todo = vec!["Grant".to_string()];
    while let Some(name) = todo.pop() {
        for t in targets(&states[&name]) {
            assert!(states.contains_key(&t), "{name} goes to missing state {t}");
            if seen.insert(t.clone()) {
                todo.push(t);
            }
        }
    }
    let all: BTreeSet<String> = states.keys().cloned().collect();
    assert_eq!(seen, all, "unreachable states");
}

#[test]
fn every_task_retries_and_catches_everything() {
    for (name, state) in states() {
        if state["Type"] != "Task" {
            continue;
        }
        assert!(
            state["Retry"].as_array().is_some_and(|r| !r.is_empty()),
            "{name} has no Retry"
        );
        let catches = state["Catch"]
            .as_array()
            .unwrap_or_else(|| panic!("{name} has no Catch"));
        let last = catches.last().unwrap();
        assert_eq!(
            last["ErrorEquals"],
            serde_json::json!(["States.ALL"]),
            "{name}: the last Catch must take everything"
        );
        assert!(
            state["TimeoutSeconds"].as_u64().is_some() || state["TimeoutSecondsPath"].as_str().is_some(),
            "{name} has no timeout"
        );
    }
}

/// Every path from a successful grant reaches Revoke before any end, and
/// every path out of Revoke other than success ends in a Fail after an alert.
#[test]
fn no_path_from_a_successful_grant_skips_the_revoke() {
    let states = states();
    let grant_success = states["Grant"]["Next"].as_str().unwrap().to_string();
    fn ends_without(
        states: &BTreeMap<String, Value>,
        from: &str,
        avoiding: &str,
        seen: &mut BTreeSet<String>,
    ) -> bool {
        if from == avoiding || !seen.insert(from.to_string()) {
            return false;
        }
        let s = &states[from];
        if s["Type"] == "Succeed" || s["Type"] == "Fail" || s["End"] == true {
            return true;
        }
        targets(s).iter().any(|t| ends_without(states, t, avoiding, seen))
    }
    assert!(!ends_without(
        &states,
        &grant_success,
        "Revoke",
        &mut BTreeSet::new()
    ));

    let revoke = &states["Revoke"];
    for c in revoke["Catch"].as_array().unwrap() {
        let alert = &states[c["Next"].as_str().unwrap()];
        assert_eq!(alert["Type"], "Task", "a failed revoke must alert");
        let end = &states[alert["Next"].as_str().unwrap()];
        assert_eq!(end["Type"], "Fail", "and then fail, so the alarm fires");
        for ac in alert["Catch"].as_array().unwrap() {
            assert_eq!(
                states[ac["Next"].as_str().unwrap()]["Type"],
                "Fail",
                "even when alerting fails"
            );
        }
    }
}

#[test]
fn catches_keep_the_input_and_the_waits_read_the_functions_timestamps() {
    let states = states();
    for (name, state) in &states {
        for c in state["Catch"].as_array().into_iter().flatten() {
            // null discards the error and keeps the input as it was.
            let path = if c["ResultPath"].is_null() && c.get("ResultPath").is_some() {
                "null"
            } else {
                c["ResultPath"].as_str().unwrap_or("$")
            };
            assert_ne!(
                path, "$",
                "{name}: a Catch must not throw away the execution document"
            );
        }
    }
    assert_eq!(states["HoldWithoutWaking"]["TimestampPath"], "$.hold.until");
    assert_eq!(states["Hold"]["TimeoutSecondsPath"], "$.hold.seconds");
    assert_eq!(states["WaitForCloudTrail"]["TimestampPath"], "$.revoke.report_at");
}

/// The hold is a loop (CheckHold → Hold → CheckHold …) that End access now
/// and Extend act on. Every cycle in the graph is that loop, and every pass
/// through it waits (a timed callback or a Wait) before CheckHold decides
/// again; the only way out is the revoke, whether CheckHold says over,
/// fails, or cannot be read.
#[test]
fn the_hold_loop_waits_every_time_round_and_leaves_only_for_the_revoke() {
    let states = states();
    let choice_targets = |s: &Value| -> Vec<String> {
        let mut out: Vec<String> = s["Choices"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["Next"].as_str().unwrap().to_string())
            .collect();
        out.extend(s["Default"].as_str().map(str::to_string));
        out
    };
    let all_targets = |s: &Value| -> Vec<String> {
        let mut t = targets(s);
        t.extend(choice_targets(s));
        t
    };
    // Every state that can reach itself is part of the hold loop.
    let loop_states: BTreeSet<&str> = ["CheckHold", "HoldOrRevoke", "Hold", "HoldWithoutWaking"].into();
    for name in states.keys() {
        let mut seen = BTreeSet::new();
        let mut todo = all_targets(&states[name]);
        let mut cyclic = false;
        while let Some(t) = todo.pop() {
            if &t == name {
                cyclic = true;
                break;
            }
            if seen.insert(t.clone()) {
                todo.extend(all_targets(&states[&t]));
            }
        }
        assert_eq!(
            cyclic,
            loop_states.contains(name.as_str()),
            "{name}: cycles only in the hold loop"
        );
    }
    // Leaving the loop: only to Revoke.
    for name in &loop_states {
        for t in all_targets(&states[*name]) {
            assert!(
                loop_states.contains(t.as_str()) || t == "Revoke",
                "{name} leaves the hold for {t}, not the revoke"
            );
        }
    }
    // Into CheckHold, except from Grant: only after waiting.
    for (name, state) in &states {
        if name == "Grant" {
            continue;
        }
        if all_targets(state).iter().any(|t| t == "CheckHold") {
            let waits = state["Type"] == "Wait" || state["TimeoutSecondsPath"].is_string();
            assert!(waits, "{name} goes back to CheckHold without waiting");
        }
    }
    // CheckHold's errors revoke; Hold's own errors fall back to a Wait.
    let check = &states["CheckHold"];
    let last = check["Catch"].as_array().unwrap().last().unwrap();
    assert_eq!(last["Next"], "Revoke");
    assert_eq!(
        states["HoldOrRevoke"]["Default"], "Revoke",
        "anything CheckHold did not say is a hold with time left revokes"
    );
    let hold = &states["Hold"];
    assert_eq!(
        hold["Resource"],
        "arn:aws:states:::lambda:invoke.waitForTaskToken"
    );
    assert_eq!(hold["Parameters"]["Payload"]["task_token.$"], "$$.Task.Token");
    let catches = hold["Catch"].as_array().unwrap();
    assert_eq!(catches.last().unwrap()["Next"], "HoldWithoutWaking");
    assert!(
        !hold["Retry"].as_array().unwrap().iter().any(|r| r["ErrorEquals"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e == "HoldOver" || e == "States.Timeout" || e == "States.ALL")),
        "the hold's wake-ups are not retried"
    );
}

#[test]
fn the_placeholders_are_exactly_the_ones_terraform_substitutes() {
    let mut found = BTreeSet::new();
    let mut rest = DEFINITION;
    while let Some(i) = rest.find("${") {
        let end = rest[i..].find('}').unwrap();
        found.insert(rest[i + 2..i + end].to_string());
        rest = &rest[i + end..];
    }
    let expected: BTreeSet<String> = PLACEHOLDERS.iter().map(|(n, _)| n.to_string()).collect();
    assert_eq!(found, expected);
    let tf = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../infrastructure/step_functions.tf"
    ))
    .expect("infrastructure/step_functions.tf renders the definition");
    for name in &expected {
        assert!(
            tf.contains(&format!("{name} ")) || tf.contains(&format!("{name}=")),
            "Terraform does not substitute {name}"
        );
    }
    assert!(Definition::parse(&render(DEFINITION, PLACEHOLDERS)).is_ok());
}

/// The error names a Lambda task can end with besides its own: what Step
/// Functions and Lambda raise when a function is throttled, crashes, panics,
/// fails to start or runs out of time.
const LAMBDA_FAILURES: &[&str] = &[
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.Unknown",
    "States.Timeout",
    "States.TaskFailed",
    "Sandbox.Timedout",
    "Runtime.ExitError",
];

/// The retrier Step Functions would pick for `error` (the first that
/// matches), as (ErrorEquals, MaxAttempts).
fn retrier_for(state: &Value, error: &str) -> Option<(Vec<String>, u64)> {
    for r in state["Retry"].as_array()? {
        let names: Vec<String> = r["ErrorEquals"]
            .as_array()?
            .iter()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect();
        let hit = names.iter().any(|n| {
            n == error || n == "States.ALL" || (n == "States.TaskFailed" && error != "States.Timeout")
        });
        if hit {
            return Some((names, r["MaxAttempts"].as_u64().unwrap_or(3)));
        }
    }
    None
}

#[test]
fn revoke_retries_every_error_but_bad_input() {
    let states = states();
    let revoke = &states["Revoke"];
    let own = [
        "RevokeUnverified",
        "RevokeInProgressElsewhere",
        "DependencyUnavailable",
        "AwsCallFailed",
        "SomethingNobodyNamedYet",
    ];
    for error in own.iter().chain(LAMBDA_FAILURES) {
        let (names, attempts) =
            retrier_for(revoke, error).unwrap_or_else(|| panic!("{error} is not retried"));
        assert!(
            attempts >= 5,
            "{error} is retried only {attempts} times ({names:?})"
        );
    }
    let (_, attempts) = retrier_for(revoke, "InvalidExecutionInput").unwrap_or_default();
    assert_eq!(attempts, 0, "bad input is not retried: it will not get better");
}

/// grant-access resumes its own ledger hold, so a crash or a timeout is
/// retried; errors that mean "nothing was granted" are not.
#[test]
fn grant_retries_crashes_and_contention_but_not_refusals() {
    let states = states();
    let grant = &states["Grant"];
    for error in LAMBDA_FAILURES
        .iter()
        .filter(|e| **e != "States.TaskFailed")
        .chain(&["DependencyUnavailable", "GrantInProgressElsewhere"])
    {
        assert!(retrier_for(grant, error).is_some(), "{error} is not retried");
    }
    for refusal in [
        "IdentityNotFound",
        "RequesterNotAllowed",
        "PermissionSetNotFound",
        "AssignmentFailed",
        "GrantRolledBack",
        "GrantCleanupUnverified",
        "InvalidExecutionInput",
    ] {
        assert!(retrier_for(grant, refusal).is_none(), "{refusal} is retried");
    }
    // A grant waiting for another execution's change must outwait that
    // change's ledger lease (7 minutes), or it gives up on a healthy system.
    let r = grant["Retry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| {
            r["ErrorEquals"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e == "GrantInProgressElsewhere")
        })
        .unwrap();
    let (mut wait, mut delay) = (0.0, r["IntervalSeconds"].as_f64().unwrap());
    for _ in 0..r["MaxAttempts"].as_u64().unwrap() {
        wait += delay.min(r["MaxDelaySeconds"].as_f64().unwrap_or(f64::MAX));
        delay *= r["BackoffRate"].as_f64().unwrap_or(2.0);
    }
    let lease = break_glass_core::ledger::OPERATOR_LEASE.as_secs_f64();
    // FULL jitter draws each delay from [0, delay]: half of it on average.
    assert!(
        wait / 2.0 > lease,
        "waits {wait} s in all (half with jitter), the lease is {lease} s"
    );
    // An uncertain grant (cleanup unverified, or retries exhausted after a
    // crash) must alert, not claim nothing was granted.
    let catches = grant["Catch"].as_array().unwrap();
    let nothing_granted = catches[0]["ErrorEquals"].as_array().unwrap();
    assert!(
        !nothing_granted
            .iter()
            .any(|e| e == "GrantCleanupUnverified" || e == "States.Timeout")
    );
}

/// The shape behind `revoke_retries_every_error_but_bad_input`: Revoke's
/// retriers are bad input first (never retried), then `States.ALL`, so an
/// error nobody has named yet is retried too; only then the alert.
#[test]
fn revoke_retries_everything_after_refusing_bad_input() {
    let states = states();
    let revoke = &states["Revoke"];
    let retriers = revoke["Retry"].as_array().unwrap();
    let (last, before) = retriers.split_last().unwrap();
    assert_eq!(last["ErrorEquals"], serde_json::json!(["States.ALL"]));
    assert!(last["MaxAttempts"].as_u64().unwrap_or(3) >= 5, "{last}");
    assert!(!before.is_empty(), "bad input is refused before States.ALL");
    for r in before {
        assert_eq!(
            r["ErrorEquals"],
            serde_json::json!(["InvalidExecutionInput"]),
            "{r}"
        );
        assert_eq!(r["MaxAttempts"], 0, "{r}");
    }
    let catches = revoke["Catch"].as_array().unwrap();
    assert_eq!(catches.len(), 1);
    assert_eq!(catches[0]["ErrorEquals"], serde_json::json!(["States.ALL"]));
    assert_eq!(catches[0]["Next"], "AlertRevokeFailed");
}

/// The Catch states alert through the notify function (the report-on-access
/// binary with concurrency of its own), never behind a 15-minute report,
/// and wait out throttling and Lambda's own errors longer than a report's
/// retries would.
#[test]
fn alerts_go_to_their_own_function_and_outwait_throttling() {
    let states = states();
    let alerting: BTreeSet<String> = states
        .values()
        .flat_map(|s| s["Catch"].as_array().cloned().unwrap_or_default())
        .map(|c| c["Next"].as_str().unwrap().to_string())
        .filter(|n| states[n]["Type"] == "Task")
        // The hold's ways out: the revoke itself, or another look.
        .filter(|n| !["Revoke", "CheckHold"].contains(&n.as_str()))
        .collect();
    assert_eq!(alerting.len(), 4, "{alerting:?}");
    for (name, state) in &states {
        if state["Type"] != "Task" {
            continue;
        }
        let notify = state["Resource"] == "${notify_arn}";
        assert_eq!(notify, alerting.contains(name), "{name}: {}", state["Resource"]);
    }
    assert_eq!(states["Report"]["Resource"], "${report_on_access_arn}");
    for name in &alerting {
        for error in [
            "Lambda.TooManyRequestsException",
            "Lambda.ServiceException",
            "Lambda.AWSLambdaException",
            "Lambda.SdkClientException",
        ] {
            let (names, attempts) =
                retrier_for(&states[name], error).unwrap_or_else(|| panic!("{name}: {error} is not retried"));
            assert!(
                attempts >= 6,
                "{name}: {error} is retried {attempts} times ({names:?})"
            );
        }
        // A crash or a timeout may have posted already: not retried.
        assert!(retrier_for(&states[name], "States.Timeout").is_none(), "{name}");
    }
}
