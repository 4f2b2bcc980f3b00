//! The whole break glass, end to end, through break-glass-local: the real
//! access-requested endpoint over HTTP, the real state machine definition,
//! the real handlers, moto, and the Slack and CloudTrail stand-ins.

#![allow(clippy::unwrap_used)]

use break_glass_core::ledger::{ItemState, Origin};
use break_glass_local::demo::{self, Drill, Outcome};

const DEFINITION: &str = include_str!("../../../statemachine/break-glass.asl.json");

async fn run(drill: Drill) -> Outcome {
    run_with(drill, None).await
}

async fn run_with(drill: Drill, lambda_binaries: Option<std::path::PathBuf>) -> Outcome {
    run_in(drill, lambda_binaries, None).await
}

async fn run_in(
    drill: Drill,
    lambda_binaries: Option<std::path::PathBuf>,
    function_region: Option<&str>,
) -> Outcome {
    try_run(drill, lambda_binaries, function_region, None)
        .await
        .unwrap()
}

async fn try_run(
    drill: Drill,
    lambda_binaries: Option<std::path::PathBuf>,
    function_region: Option<&str>,
    policy_group: Option<bool>,
) -> Result<Outcome, String> {
    demo::run(demo::Options {
        moto_endpoint: break_glass_testkit::moto::endpoint(),
        definition: DEFINITION.into(),
        // The abort drill stops the execution during the hold: a hold long
        // enough (6 s) to catch.
        time_scale: if matches!(drill, Drill::Abort | Drill::Slack) {
            600.0
        } else {
            7200.0
        },
        listen: "127.0.0.1:0".into(),
        drill,
        lambda_binaries,
        narrate: false,
        // Only when an execution ends badly: a sweep's drift report would
        // see the other tests' assignments.
        reconcile_every: None,
        function_region: function_region.map(str::to_string),
        policy_group,
    })
    .await
}

fn states(outcome: &Outcome) -> Vec<String> {
    outcome
        .execution
        .history
        .iter()
        .filter(|e| e.kind == "StateEntered")
        .map(|e| e.state.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signed_click_is_granted_held_revoked_and_reported() {
    let o = run(Drill::None).await;
    assert_eq!(o.click_status, 200);
    assert!(
        o.click_answer
            .contains("Breaking glass: 123456789012 as ps-12345, for 1 hour"),
        "{}",
        o.click_answer
    );
    assert_eq!(o.execution.status, "SUCCEEDED", "{:?}", o.execution.error);
    assert_eq!(
        states(&o),
        [
            "Grant",
            "CheckHold",
            "HoldOrRevoke",
            "Hold",
            "CheckHold",
            "HoldOrRevoke",
            "Revoke",
            "WaitForCloudTrail",
            "Report"
        ]
    );
    assert!(
        o.assigned_while_holding,
        "the assignment must exist during the window"
    );
    assert!(!o.assigned_after, "and be gone after");
    let item = o.ledger_after.as_ref().expect("the grant is in the ledger");
    assert_eq!(item.origin, Origin::BreakGlass);
    assert_eq!(
        item.state,
        ItemState::Closed,
        "closed once the removal was verified"
    );
    assert!(item.holders.is_empty() && item.operator.is_none(), "{item:?}");

    let thread: Vec<&str> = o.thread.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(thread.len(), 3, "{thread:?}");
    assert!(thread[0].starts_with(&format!(
        ":unlock: <@{}> has BreakGlassAdmin in 123456789012 until",
        o.slack_user
    )));
    assert!(thread[1].starts_with(":lock: Access removed"));
    assert!(thread[2].starts_with(":clipboard: Activity report for"));
    assert!(
        thread[2].contains("2 high-risk actions · 5 changes, 8 events"),
        "{}",
        thread[2]
    );
    assert!(
        o.thread
            .iter()
            .all(|p| p.thread_ts.as_deref() == Some("1764460800.000100"))
    );
    assert!(o.alerts.is_empty());

    assert_eq!(o.emails.len(), 1, "{:?}", o.emails);
    assert!(
        o.emails[0]["subject"]
            .as_str()
            .unwrap()
            .ends_with("2 high-risk actions · 5 changes, 8 events")
    );
    let output = o.execution.output.as_ref().unwrap();
    assert_eq!(output["revoke"]["outcome"]["action"], "deleted");
    assert_eq!(output["report"]["high_risk_events"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_that_keeps_failing_alerts_and_fails_the_execution() {
    let o = run(Drill::RevokeFails).await;
    assert_eq!(o.execution.status, "FAILED");
    assert_eq!(o.execution.error.as_ref().unwrap().error, "RevokeFailed");
    let retries = o
        .execution
        .history
        .iter()
        .filter(|e| e.kind == "TaskRetried" && e.state == "Revoke")
        .count();
    assert_eq!(retries, 10, "Revoke is retried before giving up");
    assert_eq!(states(&o).last().unwrap(), "RevokeFailed");
    assert!(states(&o).contains(&"AlertRevokeFailed".to_string()));
    assert!(!states(&o).contains(&"Report".to_string()));
    assert!(
        o.assigned_after,
        "the drill refused the deletion: access is still there, and we say so"
    );
    let item = o.ledger_after.as_ref().expect("the grant is in the ledger");
    assert_ne!(
        item.state,
        ItemState::Closed,
        "an unverified removal leaves the item open, for whoever comes next: {item:?}"
    );
    assert_eq!(o.alerts.len(), 1, "{:?}", o.alerts);
    assert!(o.alerts[0].text.contains("REVOKE FAILED"), "{}", o.alerts[0].text);
    assert!(
        o.thread
            .iter()
            .any(|p| p.text.contains("FAILED; the access may still be in place")),
        "{:?}",
        o.thread
    );
    assert!(
        !o.thread.iter().any(|p| p.text.contains("Access removed")),
        "never claim a revoke that did not happen"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_grant_revokes_nothing_and_tells_the_clicker() {
    let o = run(Drill::UnknownUser).await;
    assert_eq!(o.execution.status, "FAILED");
    assert_eq!(o.execution.error.as_ref().unwrap().error, "GrantFailed");
    assert_eq!(states(&o), ["Grant", "NotifyGrantFailed", "GrantFailed"]);
    assert!(!o.assigned_after);
    assert_eq!(o.ledger_after, None, "nobody was found: nothing was recorded");
    assert_eq!(o.thread.len(), 1, "{:?}", o.thread);
    assert!(
        o.thread[0]
            .text
            .contains("your Slack profile has no e-mail address"),
        "{}",
        o.thread[0].text
    );
    assert!(o.alerts.is_empty(), "nothing was granted: no alarm to raise");
    assert!(o.emails.is_empty());
}

fn binaries() -> std::path::PathBuf {
    let dir = std::env::var("BREAK_GLASS_LAMBDA_BINARIES")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| {
            std::path::PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../target/debug"))
        });
    assert!(
        dir.join("grant-access").is_file(),
        "{} has no grant-access binary: run cargo build --bins first (scripts/test does)",
        dir.display()
    );
    dir
}

/// The same break glass with the compiled Lambda binaries themselves, driven
/// through the Lambda Runtime API (scripts/test builds them first).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_lambda_binaries_do_the_same() {
    let o = run_with(Drill::None, Some(binaries())).await;
    assert_eq!(o.click_status, 200, "{}", o.click_answer);
    assert_eq!(o.execution.status, "SUCCEEDED", "{:?}", o.execution.error);
    assert_eq!(
        states(&o),
        [
            "Grant",
            "CheckHold",
            "HoldOrRevoke",
            "Hold",
            "CheckHold",
            "HoldOrRevoke",
            "Revoke",
            "WaitForCloudTrail",
            "Report"
        ]
    );
    assert!(o.assigned_while_holding);
    assert!(!o.assigned_after);
    assert_eq!(
        o.ledger_after.as_ref().map(|i| i.state),
        Some(ItemState::Closed),
        "the binaries keep the same ledger in moto's DynamoDB"
    );
    let thread: Vec<&str> = o.thread.iter().map(|p| p.text.as_str()).collect();
    assert_eq!(thread.len(), 3, "{thread:?}");
    assert!(thread[0].starts_with(":unlock:"));
    assert!(thread[1].starts_with(":lock: Access removed"));
    assert!(thread[2].starts_with(":clipboard: Activity report"));
    assert_eq!(o.emails.len(), 1);
}

/// Functions deployed in eu-west-1 with Identity Center's home region in
/// us-east-1 (`SSO_REGION`): the real binaries grant and revoke there, and
/// keep their ledger in their own region.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn functions_in_another_region_than_identity_center_grant_and_revoke() {
    let o = run_in(Drill::None, Some(binaries()), Some("eu-west-1")).await;
    assert_eq!(o.click_status, 200, "{}", o.click_answer);
    assert_eq!(o.execution.status, "SUCCEEDED", "{:?}", o.execution.error);
    assert!(o.assigned_while_holding, "granted in us-east-1's Identity Center");
    assert!(!o.assigned_after, "and revoked there");
    assert_eq!(
        o.ledger_after.as_ref().map(|i| i.state),
        Some(ItemState::Closed),
        "the ledger in eu-west-1 went through the grant"
    );
    let thread: Vec<&str> = o.thread.iter().map(|p| p.text.as_str()).collect();
    assert!(thread[1].starts_with(":lock: Access removed"), "{thread:?}");
}

/// A policy rule by Identity Center group, through the real binaries: a
/// member of the group is granted (the permission set named by name) and
/// the grant revoked; someone outside it is refused at the click, and
/// nothing starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_rule_decides_through_the_real_binaries() {
    let o = try_run(Drill::None, Some(binaries()), None, Some(true))
        .await
        .unwrap();
    assert_eq!(o.execution.status, "SUCCEEDED", "{:?}", o.execution.error);
    assert!(o.assigned_while_holding);
    assert!(!o.assigned_after);

    let refused = try_run(Drill::None, Some(binaries()), None, Some(false))
        .await
        .unwrap_err();
    assert!(
        refused.starts_with("the click started no execution (HTTP 200"),
        "{refused}"
    );
    assert!(
        refused.contains("BreakGlassAdmin in 123456789012 is for the oncall-"),
        "the refusal names the group: {refused}"
    );
}

/// The same rule in-process (`break-glass-local serve` without binaries).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_rule_decides_in_process_too() {
    let o = try_run(Drill::None, None, None, Some(true)).await.unwrap();
    assert_eq!(o.execution.status, "SUCCEEDED", "{:?}", o.execution.error);
    let refused = try_run(Drill::None, None, None, Some(false)).await.unwrap_err();
    assert!(refused.contains("is for the oncall-"), "{refused}");
}

/// Stopped by hand during the hold, the execution revokes nothing itself:
/// reconcile-access, told by the runner that it ended ABORTED, removes the
/// assignment, closes the ledger item and says so loudly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_execution_stopped_during_the_hold_is_finished_by_the_reconciler() {
    let o = run(Drill::Abort).await;
    assert_eq!(o.execution.status, "ABORTED", "{:?}", o.execution.history);
    assert_eq!(
        states(&o),
        ["Grant", "CheckHold", "HoldOrRevoke", "Hold"],
        "nothing runs after the stop"
    );
    assert_eq!(o.execution.history.last().unwrap().kind, "ExecutionAborted");
    assert!(o.assigned_while_holding);
    assert!(!o.assigned_after, "reconcile-access removed the assignment");
    let run = o
        .reconciled
        .iter()
        .find(|r| {
            r["trigger"]
                .as_str()
                .is_some_and(|t| t.ends_with("ended ABORTED"))
        })
        .unwrap_or_else(|| panic!("no reconcile run for the abort: {:?}", o.reconciled));
    assert!(run["finished"].as_u64().unwrap() >= 1, "{run}");
    let item = o.ledger_after.as_ref().expect("the grant is in the ledger");
    assert_eq!(item.state, ItemState::Closed, "{item:?}");
    assert!(item.holders.is_empty(), "{item:?}");
    assert_eq!(o.alerts.len(), 1, "{:?}", o.alerts);
    assert!(
        o.alerts[0]
            .text
            .contains("reconcile-access removed a break-glass assignment"),
        "{}",
        o.alerts[0].text
    );
    assert!(
        o.thread.iter().any(|p| p
            .text
            .contains("reconcile-access removed a break-glass assignment")),
        "the clicker's thread hears of it too: {:?}",
        o.thread
    );
    assert!(
        !o.thread
            .iter()
            .any(|p| p.text.starts_with(":lock: Access removed")),
        "the execution's own revoke never ran"
    );
}

/// The Slack flow end to end, against moto and the Slack stand-in:
/// `/break-glass` opens the modal (prefilled, names not ARNs), its
/// submission starts the execution with the reason and incident in its
/// input, the ledger, the thread and the e-mail; a stranger's End is
/// refused and access stays; an Extend moves the end once (a double click
/// does nothing more) and one past the cap is refused; App Home lists the
/// grant with its buttons; End access now by the requester ends the hold
/// early and the verified revoke and the report follow.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_slash_command_modal_end_and_extend_work_from_slack() {
    let o = run(Drill::Slack).await;
    let step = |name: &str| {
        o.control
            .iter()
            .find(|(s, _)| s == name)
            .map(|(_, said)| said.clone())
            .unwrap_or_else(|| panic!("no step {name}: {:?}", o.control))
    };
    // The command opened the modal, prefilled from its text.
    assert!(step("command").starts_with("HTTP 200"), "{}", step("command"));
    let view = &o.opened_views.first().expect("views.open")["view"];
    let block = |id: &str| {
        view["blocks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|b| b["block_id"] == id)
            .unwrap()
            .clone()
    };
    assert_eq!(
        block("account")["element"]["initial_option"]["text"]["text"],
        "Production (123456789012)"
    );
    assert_eq!(
        block("permission_set")["element"]["initial_option"]["text"]["text"],
        "BreakGlassAdmin"
    );
    assert_eq!(
        block("duration")["element"]["initial_option"]["text"]["text"],
        "1 hour"
    );
    assert_eq!(
        block("reason")["element"]["initial_value"],
        "checkout is down, rolling back by hand"
    );
    // The submission closed the modal and started the execution with the
    // reason and the incident.
    assert_eq!(step("submit"), "HTTP 200: ");
    let input = &o.execution.input["request"];
    assert_eq!(input["reason"], "checkout is down, rolling back by hand");
    assert_eq!(input["incident"], "https://incidents.example.com/INC-7");
    assert_eq!(
        input["slack"]["message_ts"], "VDEMO0001",
        "the modal names the request"
    );
    let first = &o.thread[0];
    assert!(
        first.thread_ts.is_none() && first.text.contains("is breaking glass"),
        "{first:?}"
    );
    assert!(
        o.thread
            .iter()
            .any(|p| p.text.contains("*Why:* checkout is down")),
        "the granted reply says why"
    );
    // Refusals change nothing: access held through them.
    assert!(
        step("stranger ends").contains("only the person who broke glass"),
        "{}",
        step("stranger ends")
    );
    assert!(o.assigned_while_holding);
    assert!(step("requester extends").starts_with("Extended: access now ends at"));
    assert!(step("requester extends again (same button)").starts_with("Already extended"));
    assert!(step("requester extends past the cap").contains("past the longest break glass allows"));
    assert!(
        o.thread
            .iter()
            .any(|p| p.text.contains("extended access by 1 hour"))
    );
    // App Home: the challenge answered, the grant listed with its buttons.
    assert!(step("url_verification").contains("3eZbrw1aBm2rZgRNFdxV"));
    let home = &o.published_views.first().expect("views.publish")["view"];
    let text = home.to_string();
    assert!(
        text.contains("break_glass_end") && text.contains("BreakGlassAdmin"),
        "{text}"
    );
    // End access now: the hold ended early, the revoke verified it gone.
    assert!(step("requester ends").starts_with("Ending access now"));
    assert_eq!(o.execution.status, "SUCCEEDED", "{:?}", o.execution.error);
    let output = o.execution.output.as_ref().unwrap();
    assert_eq!(output["hold"]["ended_early_by"], o.slack_user.as_str());
    assert_eq!(output["revoke"]["verified"], true);
    let revoked = output["revoke"]["revoked_at"].as_str().unwrap();
    let expires = output["grant"]["expires_at"].as_str().unwrap();
    assert!(
        revoked < expires,
        "revoked at {revoked}, before the hour was up ({expires})"
    );
    assert!(!o.assigned_after, "the assignment is gone");
    assert!(o.thread.iter().any(|p| p.text.contains("ended access early")));
    assert!(o.thread.iter().any(|p| p.text.contains("Activity report")));
    let subject = o.emails[0]["subject"].as_str().unwrap();
    assert!(
        subject.contains("(checkout is down, rolling back by hand)"),
        "{subject}"
    );
}

/// The Slack flow through the compiled binaries: access-requested opens
/// the modal with its bot token, reads and writes the ledger in DynamoDB and
/// wakes the hold through Step Functions' SendTaskSuccess; hold-access
/// stores and reads the token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_binaries_end_access_early_too() {
    let o = run_with(Drill::Slack, Some(binaries())).await;
    assert_eq!(o.execution.status, "SUCCEEDED", "{:?}", o.execution.error);
    let said: Vec<&str> = o.control.iter().map(|(_, s)| s.as_str()).collect();
    assert!(
        said.iter().any(|s| s.contains("only the person who broke glass")),
        "{said:?}"
    );
    assert!(
        said.iter().any(|s| s.starts_with("Ending access now")),
        "{said:?}"
    );
    let output = o.execution.output.as_ref().unwrap();
    assert_eq!(output["hold"]["ended_early_by"], o.slack_user.as_str());
    assert_eq!(output["revoke"]["verified"], true);
    assert!(!o.assigned_after);
}
