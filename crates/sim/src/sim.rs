//! One seed's run: plan the clicks, run each execution through the real
//! definition with the real handlers, let Identity Center settle, check.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use break_glass_core::ErrorType;
use break_glass_core::contract::{AccessRequest, Execution, Requester, SlackThread};
use break_glass_core::domain::AccessDuration;
use break_glass_local::asl::{self, Definition, Ending, HistoryEvent, Invoker, TaskError};
use break_glass_local::runner::{PLACEHOLDERS, render};

use serde_json::{Value, json};

use crate::legacy;
use crate::ports::{Invocation, SimClock, SimPorts};
use crate::world::{self, ExecutionRecord, GrantInvocation, Variant, World, clock_text};

/// The deployed definition, rendered the way break-glass-local renders it.
pub fn definition() -> &'static Definition {
    static DEFINITION: OnceLock<Definition> = OnceLock::new();
    DEFINITION.get_or_init(|| {
        let text = render(
            include_str!("../../../statemachine/break-glass.asl.json"),
            PLACEHOLDERS,
        );
        Definition::parse(&text).unwrap_or_else(|e| panic!("statemachine/break-glass.asl.json: {e}"))
    })
}

/// The functions' configuration, read once per process (grant-access's
/// `Config::from_env` leaks its workspace list by design).
#[derive(Debug)]
pub struct Configs {
    pub grant: grant_access::Config,
    pub revoke: revoke_access::Config,
    pub reconcile: reconcile_access::Config,
}

pub const STATE_MACHINE_ARN: &str = "arn:aws:states:us-east-1:111122223333:stateMachine:break-glass";
pub const ALERT_CHANNEL: &str = "C0ALERTS";

pub fn configs() -> &'static Configs {
    static CONFIGS: OnceLock<Configs> = OnceLock::new();
    CONFIGS.get_or_init(|| {
        let env = |name: &str| -> Option<String> {
            let value = match name {
                "SSO_INSTANCE_ARN" => world::INSTANCE_ARN,
                "IDENTITY_STORE_ID" => "d-9067000000",
                "GRANT_LEDGER_TABLE" => "break-glass-grants",
                "STATE_MACHINE_ARN" => STATE_MACHINE_ARN,
                "ALLOWED_ACCOUNT_IDS" => world::ACCOUNT_ID,
                "ALLOWED_PERMISSION_SET_ARNS" => world::PERMISSION_SET_ARN,
                "ALERT_SLACK_CHANNEL" => ALERT_CHANNEL,
                "ALERT_TOPIC_ARN" => "arn:aws:sns:us-east-1:111122223333:break-glass-alerts",
                "RECONCILE_MIN_AGE_MINUTES" => "15",
                "ALLOWED_SLACK_TEAM_IDS" => "T0SIM",
                "IDENTITY_LOOKUP" => "email",
                "SLACK_BOT_TOKEN" => "xoxb-simulated",
                "CLOUDTRAIL_DELAY_MINUTES" => "15",
                "AUDIT_ROLE_NAME" => "break-glass-audit",
                _ => return None,
            };
            Some(value.to_string())
        };
        Configs {
            grant: grant_access::Config::from_env(&env)
                .unwrap_or_else(|e| panic!("grant-access config: {e}")),
            revoke: revoke_access::Config::from_env(&env)
                .unwrap_or_else(|e| panic!("revoke-access config: {e}")),
            reconcile: reconcile_access::Config::from_env(&env)
                .unwrap_or_else(|e| panic!("reconcile-access config: {e}")),
        }
    })
}

fn task_error<E: ErrorType + std::fmt::Display>(e: E) -> TaskError {
    TaskError::new(
        e.error_type(),
        json!({"errorType": e.error_type(), "errorMessage": e.to_string()}).to_string(),
    )
}

/// Runs one execution's tasks: grant-access and revoke-access for real
/// (under the seed's Lambda faults), report-on-access recorded.
struct SimInvoker {
    world: Arc<World>,
    execution: usize,
}

const GRANT: &str = "local:grant-access";
const REVOKE: &str = "local:revoke-access";
const REPORT: &str = "local:report-on-access";
const HOLD: &str = "local:hold-access";

/// The legacy variant has no ledger: it holds until `grant.expires_at`, as
/// the plain Wait it had.
fn legacy_hold(input: &Value, now: chrono::DateTime<chrono::Utc>) -> Result<Value, TaskError> {
    if input.get("task_token").is_some() {
        return Ok(json!({}));
    }
    let mut out = input.clone();
    let until = input["grant"]["expires_at"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let left = chrono::DateTime::parse_from_rfc3339(&until)
        .map(|t| (t.with_timezone(&chrono::Utc) - now).num_seconds().max(0) as u64)
        .unwrap_or(0);
    out["hold"] = json!({"over": left <= 2, "seconds": if left <= 2 { 0 } else { left }, "until": until});
    Ok(out)
}

#[async_trait]
impl Invoker for SimInvoker {
    fn callbacks(&self) -> Option<&asl::Callbacks> {
        Some(&self.world.callbacks)
    }

    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        let (w, i) = (&self.world, self.execution);
        let label = w.label(i);
        let state = w.execution(i, |e| e.state.clone());
        match resource {
            REPORT => {
                if state.starts_with("Alert") && input.get("error").is_some() {
                    let error = input["error"]["Error"].as_str().unwrap_or("?").to_string();
                    w.log(&label, format!("LOUD ALERT from {state}: {error}"));
                    w.stat("loud alerts");
                    w.execution(i, |e| e.alert = Some(format!("{state}: {error}")));
                } else {
                    w.log(&label, format!("report-on-access ({state})"));
                }
                return Ok(input);
            }
            HOLD => {
                if w.variant == Variant::Legacy {
                    return legacy_hold(&input, w.now());
                }
                let refused = w.rng(|r| r.chance(w.faults.lambda_throttle));
                if refused {
                    w.log(&label, "Lambda: TooManyRequestsException, hold-access not run");
                    return Err(TaskError::new(
                        "Lambda.TooManyRequestsException",
                        "Rate exceeded (simulated)",
                    ));
                }
                let inv = Invocation::new(Arc::clone(w), i, "hold");
                let ports = SimPorts(Arc::clone(&inv));
                let clock = SimClock(Arc::clone(w));
                let deps = hold_access::Deps {
                    ledger: &ports,
                    clock: &clock,
                    time_scale: 1.0,
                };
                // A crash fails the invocation as Lambda reports it; the
                // function's timeout is 30 s.
                let result = tokio::select! {
                    biased;
                    where_ = inv.crashed() => Err(TaskError::new("Lambda.Unknown", format!("the function died {where_} (simulated)"))),
                    result = hold_access::handle(input, &deps) => result.map_err(task_error),
                    () = tokio::time::sleep(Duration::from_secs(30)) => Err(TaskError::new("Sandbox.Timedout", "the function timed out (simulated)")),
                };
                match &result {
                    Ok(out) if out.get("hold").is_some() => {
                        w.log(&inv.label, format!("CheckHold -> {}", out["hold"]));
                    }
                    Ok(_) => w.log(&inv.label, "hold token stored"),
                    Err(e) => w.log(&inv.label, format!("hold-access failed: {}", e.error)),
                }
                return result;
            }
            GRANT | REVOKE => {}
            other => {
                return Err(TaskError::new(
                    "States.Runtime",
                    format!("unknown resource {other}"),
                ));
            }
        }
        let grant = resource == GRANT;
        if !grant {
            w.close_window(i, "revoke started");
        }
        let f = &w.faults;
        let (refused, broken, crash_name) = w.rng(|r| {
            (
                r.chance(f.lambda_throttle),
                r.chance(f.lambda_error),
                if r.chance(0.85) {
                    "Lambda.Unknown"
                } else {
                    "Sandbox.Timedout"
                },
            )
        });
        if refused {
            w.log(&label, "Lambda: TooManyRequestsException, not run");
            return Err(TaskError::new(
                "Lambda.TooManyRequestsException",
                "Rate exceeded (simulated)",
            ));
        }
        if broken {
            w.log(&label, "Lambda: ServiceException, not run");
            return Err(TaskError::new("Lambda.ServiceException", "simulated"));
        }
        let inv = Invocation::new(Arc::clone(w), i, if grant { "grant" } else { "revoke" });
        if grant {
            w.execution(i, |e| {
                e.grant_invocations.push(GrantInvocation {
                    id: inv.id,
                    ..GrantInvocation::default()
                })
            });
        }
        w.log(&inv.label, "invoked");
        // The function runs as a task of its own, as Lambda runs it apart
        // from Step Functions: a state's timeout stops it (the guard), but
        // an execution stopped by hand does not (see `Detach`).
        let task = tokio::task::spawn_local(run_invocation(Arc::clone(w), i, inv, grant, input, crash_name));
        let guard = Detach {
            world: Arc::clone(w),
            execution: i,
            task: task.abort_handle(),
        };
        let result = task
            .await
            .unwrap_or_else(|e| Err(TaskError::new("Lambda.Unknown", format!("simulated: {e}"))));
        drop(guard);
        result
    }
}

/// Stops an invocation whose state gave up on it (timeout), unless its
/// execution was aborted: then, as in Lambda, it runs to its end or to the
/// function's timeout.
struct Detach {
    world: Arc<World>,
    execution: usize,
    task: tokio::task::AbortHandle,
}

impl Drop for Detach {
    fn drop(&mut self) {
        if self.world.execution(self.execution, |e| e.aborted.is_none()) {
            self.task.abort();
        } else if !self.task.is_finished() {
            self.world.stat("invocations outliving their aborted execution");
        }
    }
}

/// grant-access's, revoke-access's and reconcile-access's Lambda timeout
/// (`infrastructure/main.tf`): an invocation that outlives its aborted
/// execution stops here at the latest, as the ledger's operator lease
/// (420 s) assumes.
const LAMBDA_TIMEOUT: Duration = Duration::from_secs(300);

async fn run_invocation(
    w: Arc<World>,
    i: usize,
    inv: Arc<Invocation>,
    grant: bool,
    input: Value,
    crash_name: &'static str,
) -> Result<Value, TaskError> {
    let w = &w;

    let ports = SimPorts(Arc::clone(&inv));
    let clock = SimClock(Arc::clone(w));
    let run = async {
        let c = configs();
        match (w.variant, grant) {
            (Variant::Legacy, grant) => {
                let deps = legacy::Deps {
                    identity_center: &ports,
                    directory: &ports,
                    slack: &ports,
                    executions: &ports,
                    clock: &clock,
                };
                if grant {
                    legacy::grant_handle(input, &deps).await
                } else {
                    legacy::revoke_handle(input, &deps).await
                }
            }
            (_, true) => {
                let deps = grant_access::Deps {
                    config: &c.grant,
                    identity_center: &ports,
                    directory: &ports,
                    ledger: &ports,
                    slack: &ports,
                    clock: &clock,
                    rules: &break_glass_core::requester::NO_RULES,
                };
                grant_access::handle(input, &deps).await.map_err(task_error)
            }
            (_, false) => {
                let deps = revoke_access::Deps {
                    config: &c.revoke,
                    identity_center: &ports,
                    ledger: &ports,
                    slack: &ports,
                    clock: &clock,
                    session_policy: Some(&ports),
                };
                revoke_access::handle(input, &deps).await.map_err(task_error)
            }
        }
    };
    let result = tokio::select! {
        biased;
        where_ = inv.crashed() => Err(TaskError::new(crash_name, format!("the function died {where_} (simulated)"))),
        result = run => result,
        () = tokio::time::sleep(LAMBDA_TIMEOUT) => Err(TaskError::new("Sandbox.Timedout", "the function timed out (simulated)")),
    };
    match &result {
        Ok(_) => w.log(&inv.label, "returned"),
        Err(e) => w.log(&inv.label, format!("failed: {} {}", e.error, e.cause)),
    }
    if grant {
        let outcome = result
            .as_ref()
            .map(|_| ())
            .map_err(|e| (e.error.clone(), e.cause.clone()));
        w.execution(i, |e| {
            if let Some(g) = e.grant_invocations.iter_mut().find(|g| g.id == inv.id) {
                g.outcome = Some(outcome);
            }
        });
    }
    if !grant
        && let Ok(v) = &result
        && let Ok(execution) = Execution::from_value(v.clone())
        && let Some(r) = &execution.revoke
    {
        check_sessions(w, &inv.label, r);
    }
    if !grant
        && w.execution(i, |e| e.aborted.is_some())
        && let Ok(v) = &result
        && let Ok(execution) = Execution::from_value(v.clone())
        && let Some(r) = execution.revoke
    {
        // Nobody records the task's success for an aborted execution.
        w.log(
            &inv.label,
            format!(
                "after the abort: revoke {:?}, verified: {}",
                r.outcome, r.verified
            ),
        );
        w.execution(i, |e| e.revoke_verified = r.verified);
    }
    result
}

fn record_event(world: &World, i: usize, event: HistoryEvent) {
    let label = world.label(i);
    match event.kind {
        "StateEntered" => {
            let at = world.elapsed();
            world.execution(i, |e| {
                e.state = event.state.clone();
                if event.state == "CheckHold" && e.hold_entered.is_none() {
                    e.hold_entered = Some(at);
                }
                if event.state == "HoldWithoutWaking" {
                    e.hold_fallback = true;
                }
            });
            world.log(&label, format!("-> {}", event.state));
        }
        "Waiting" => world.log(
            &label,
            format!(
                "{} waits {:.0} s",
                event.state,
                event.detail["seconds"].as_f64().unwrap_or(0.0)
            ),
        ),
        "TaskFailed" => world.log(
            &label,
            format!(
                "{} failed: {}",
                event.state,
                event.detail["error"].as_str().unwrap_or_default()
            ),
        ),
        "TaskRetried" => world.log(
            &label,
            format!(
                "{} retry {} in {:.1} s",
                event.state,
                event.detail["attempt"],
                event.detail["delay_seconds"].as_f64().unwrap_or(0.0)
            ),
        ),
        "TaskSucceeded" => {
            let Ok(execution) = Execution::from_value(event.detail.clone()) else {
                return;
            };
            let now = world.elapsed();
            match event.state.as_str() {
                "Grant" => {
                    if let Some(g) = execution.grant {
                        world.log(&label, format!("Grant succeeded: {:?}", g.assignment));
                        world.stat(match g.assignment {
                            break_glass_core::contract::AssignmentSource::Created => "grants created",
                            break_glass_core::contract::AssignmentSource::PreExisting => {
                                "grants pre-existing"
                            }
                            break_glass_core::contract::AssignmentSource::SharedWithRunningExecution => {
                                "grants shared"
                            }
                        });
                        world.execution(i, |e| e.grant = Some((now, g)));
                    }
                }
                "Revoke" => {
                    if let Some(r) = execution.revoke {
                        world.log(
                            &label,
                            format!("Revoke succeeded: {:?}, verified: {}", r.outcome, r.verified),
                        );
                        world.execution(i, |e| e.revoke_verified = r.verified);
                    }
                }
                _ => {}
            }
        }
        _ => {}
    }
}

async fn run_execution(world: Arc<World>, i: usize, input: Value) {
    let name = world.execution(i, |e| {
        e.started = Some(world.elapsed());
        e.name.clone()
    });
    world.stat("executions");
    let context = json!({
        "Execution": {"Name": name, "Id": format!("sim:execution:break-glass:{name}"), "Input": input, "StartTime": world.now().to_rfc3339()},
        "StateMachine": {"Name": "break-glass", "Id": "sim:stateMachine:break-glass"}
    });
    let invoker = SimInvoker {
        world: Arc::clone(&world),
        execution: i,
    };
    let recorder = {
        let world = Arc::clone(&world);
        move |event: HistoryEvent| record_event(&world, i, event)
    };
    let clock = SimClock(Arc::clone(&world));
    let ending = asl::execute(definition(), input, &context, &invoker, &clock, 1.0, &recorder).await;
    let text = match &ending {
        Ending::Succeeded(_) => "Succeeded".to_string(),
        Ending::Failed(e) => format!("Failed {}", e.error),
    };
    world.log(&world.label(i), format!("execution ended: {text}"));
    world.execution(i, |e| {
        e.ended = Some(world.elapsed());
        e.ending = Some(text);
    });
    world.close_window(i, "execution ended");
}

/// What the seed decides before anything runs: who clicks when, for how long.
fn plan(world: &World) -> Vec<(ExecutionRecord, Value)> {
    let now = world.now();
    world.rng(|r| {
        let n = r.between(2, 5) as usize;
        // All at once (double clicks, a team piling in), within minutes, or
        // spread over hours: holds overlap, abut, or are disjoint.
        let window_ms = *r.pick(&[5_000, 120_000, 1_200_000, 5_400_000, 14_400_000]);
        let two_slack_users = r.chance(0.25);
        let mut ends: Vec<Duration> = Vec::new();
        (0..n)
            .map(|i| {
                let mut click = Duration::from_millis(r.below(window_ms + 1));
                // Abutting holds: click just as an earlier one's hold runs
                // out (its grant took a few seconds), so a grant meets the
                // last holder's removal.
                if !ends.is_empty() && r.chance(0.35) {
                    let end = ends[r.below(ends.len() as u64) as usize];
                    click = end + r.millis(0, 45_000);
                }
                let minutes = if r.chance(0.2) {
                    r.between(1, 3)
                } else {
                    r.between(1, 90)
                };
                ends.push(click + Duration::from_secs(minutes * 60));
                let slack_user = if two_slack_users && r.chance(0.5) {
                    world::SLACK_USERS[1]
                } else {
                    world::SLACK_USERS[0]
                };
                let name = format!("sim-e{i}");
                let message_ts = format!("1772442000.{:06}", i + 1);
                let request = AccessRequest {
                    requester: Requester {
                        slack_user_id: slack_user.parse().unwrap_or_else(|e| panic!("{e}")),
                        slack_user_name: "alice".into(),
                        slack_team_id: "T0SIM".into(),
                    },
                    slack: SlackThread {
                        channel_id: "C0SIM".into(),
                        message_ts: message_ts.clone(),
                        thread_ts: message_ts,
                        response_url: "https://hooks.slack.com/actions/T0SIM/1/simulated".into(),
                    },
                    account_id: world::ACCOUNT_ID.parse().unwrap_or_else(|e| panic!("{e}")),
                    permission_set_arn: world::PERMISSION_SET_ARN
                        .parse()
                        .unwrap_or_else(|e| panic!("{e}")),
                    duration_seconds: AccessDuration::from_minutes(minutes).unwrap_or_else(|e| panic!("{e}")),
                    requested_at: now + chrono::Duration::from_std(click).unwrap_or_default(),
                    reason: None,
                    incident: None,
                };
                let input = serde_json::to_value(Execution::new(name.clone(), request)).unwrap_or_default();
                let record = ExecutionRecord {
                    name,
                    slack_user: slack_user.to_string(),
                    click,
                    minutes,
                    input: input.to_string(),
                    ..ExecutionRecord::default()
                };
                (record, input)
            })
            .collect()
    })
}

/// How long after the last execution ends Identity Center is given to
/// finish whatever it was still doing, before the end state is checked.
const SETTLE: Duration = Duration::from_secs(3600);
/// A run that has not finished in this much simulated time is stuck.
const STUCK: Duration = Duration::from_secs(14 * 24 * 3600);

pub async fn simulate(world: Arc<World>) {
    let mut handles = Vec::new();
    let mut latest = Duration::ZERO;
    for (record, input) in plan(&world) {
        world.log(
            "plan",
            format!(
                "{} clicks at {} as {} for {} min",
                crate::world::short(&record.name),
                clock_text(record.click),
                record.slack_user,
                record.minutes
            ),
        );
        let (click, hold) = (record.click, Duration::from_secs(record.minutes * 60));
        latest = latest.max(click + hold);
        // StopExecution, some time between the click and a while after
        // the hold should have ended.
        // Often while its grant or its revoke is running, so a Lambda
        // invocation outlives it.
        let abort = world.rng(|r| {
            r.chance(ABORT).then(|| match r.below(3) {
                0 => r.millis(0, 60_000),
                1 => hold + r.millis(0, 60_000),
                _ => r.millis(0, (hold + ABORT_LATE).as_millis() as u64),
            })
        });
        if let Some(after) = abort {
            world.log(
                "plan",
                format!(
                    "{} is stopped at {}",
                    crate::world::short(&record.name),
                    clock_text(click + after)
                ),
            );
        }
        // End access now or Extend, pressed some time between the click
        // and a while after the hold should have ended; sometimes by
        // somebody else, who must be refused.
        let press = world.rng(|r| {
            r.chance(PRESS).then(|| {
                (
                    r.chance(0.6),
                    r.chance(0.15),
                    r.millis(0, (hold + Duration::from_secs(120)).as_millis() as u64),
                )
            })
        });
        let i = world.add_execution(record);
        if let Some((end, stranger, after)) = press {
            let world = Arc::clone(&world);
            // Detached: a press whose ledger call "crashes" hangs, as a
            // dead Lambda would, and must not hold the run up.
            tokio::task::spawn_local(async move {
                tokio::time::sleep(click + after).await;
                press_button(world, i, end, stranger).await;
            });
        }
        let world = Arc::clone(&world);
        handles.push(tokio::task::spawn_local(async move {
            tokio::time::sleep(click).await;
            let run = Box::pin(run_execution(Arc::clone(&world), i, input));
            match abort {
                None => run.await,
                Some(after) => abort_at(world, i, run, after).await,
            }
        }));
    }
    // Scheduled sweeps while the executions run.
    let sweeps: Vec<Duration> = world.rng(|r| {
        let n = r.below(4);
        (0..n)
            .map(|_| r.millis(0, (latest + ABORT_LATE).as_millis() as u64))
            .collect()
    });
    let mut sweep_handles = Vec::new();
    for at in sweeps {
        world.log("plan", format!("reconcile sweep at {}", clock_text(at)));
        let world = Arc::clone(&world);
        sweep_handles.push(tokio::task::spawn_local(async move {
            tokio::time::sleep(at).await;
            reconcile(world, None, false).await;
        }));
    }
    let all = async {
        for h in handles.into_iter().chain(sweep_handles) {
            let _ = h.await;
        }
    };
    if tokio::time::timeout(STUCK, all).await.is_err() {
        world.violate('s', "executions still running after 14 simulated days".into());
        return;
    }
    tokio::time::sleep(SETTLE).await;
    // (e): one reconcile run, nothing failing, after every holder is older
    // than the minimum age.
    world.calm_down();
    reconcile(Arc::clone(&world), None, true).await;
    tokio::time::sleep(SETTLE).await;
    check_end(&world);
}

/// How likely somebody presses End access now or Extend on an execution.
const PRESS: f64 = 0.4;

/// End access now (`end`) or Extend, as access-requested does it: the
/// ledger first, then the hold's token.
async fn press_button(world: Arc<World>, i: usize, end: bool, stranger: bool) {
    use break_glass_core::access::{Limits, end_hold, extend_hold};
    use break_glass_core::ledger::LedgerKey;
    use break_glass_core::ledger::hold::{ControlRefusal, Presser};
    let (name, holder_user) = world.execution(i, |e| (e.name.clone(), e.slack_user.clone()));
    let presser_user = if stranger {
        "U0MALLORY".to_string()
    } else {
        holder_user
    };
    let inv = Invocation::new(Arc::clone(&world), i, if end { "end" } else { "extend" });
    let ports = SimPorts(Arc::clone(&inv));
    let clock = SimClock(Arc::clone(&world));
    let key = LedgerKey {
        user_id: world::USER_ID.into(),
        account_id: world::ACCOUNT_ID.parse().unwrap_or_else(|e| panic!("{e}")),
        permission_set_arn: world::PERMISSION_SET_ARN
            .parse()
            .unwrap_or_else(|e| panic!("{e}")),
    };
    let presser = Presser {
        slack_user_id: &presser_user,
        is_admin: false,
    };
    let label = inv.label.clone();
    let outcome = if end {
        end_hold(&ports, &clock, Limits::DEFAULT, &key, &name, presser)
            .await
            .map(|(token, _)| {
                let woke = token
                    .filter(|_| world.variant != Variant::NoWake)
                    .map(|t| world.callbacks.send_success(&t, json!({"woken": "end"})).is_ok())
                    .unwrap_or(false);
                world.stat("ends pressed");
                let at = world.elapsed();
                world.execution(i, |e| {
                    e.end_pressed.get_or_insert(at);
                });
                format!("End access now recorded (hold woken: {woke})")
            })
    } else {
        let from = world
            .ledger_get(&key)
            .and_then(|item| item.holder(&name).map(|h| h.expires_at))
            .unwrap_or_else(|| world.now());
        extend_hold(
            &ports,
            &clock,
            Limits::DEFAULT,
            &key,
            &name,
            presser,
            from,
            chrono::Duration::minutes(10),
            chrono::Duration::minutes(120),
        )
        .await
        .map(|(until, moved, _)| {
            world.stat("extensions pressed");
            format!("Extend -> {until} (moved: {moved})")
        })
    };
    match outcome {
        Ok(text) if stranger => world.violate('g', format!("{name}: a stranger's press took effect: {text}")),
        Ok(text) => world.log(&label, text),
        Err(break_glass_core::access::ControlError::Refused(ControlRefusal::NotYours)) if stranger => {
            world.log(&label, "refused: not theirs");
        }
        Err(e) => world.log(&label, format!("refused: {e}")),
    }
}

/// How likely an execution is to be stopped by hand.
const ABORT: f64 = 0.15;
/// How long after its hold an execution may still be stopped.
const ABORT_LATE: Duration = Duration::from_secs(20 * 60);

/// Runs execution `i` until `after`, then stops it as StopExecution does:
/// no further state, no Catch; its Lambda invocation in flight runs on.
async fn abort_at(
    world: Arc<World>,
    i: usize,
    mut run: std::pin::Pin<Box<impl std::future::Future<Output = ()>>>,
    after: Duration,
) {
    let stopped = tokio::select! {
        biased;
        () = &mut run => false,
        () = tokio::time::sleep(after) => true,
    };
    if !stopped {
        return;
    }
    let now = world.elapsed();
    let state = world.execution(i, |e| {
        e.aborted = Some(now);
        e.ended = Some(now);
        e.ending = Some("ABORTED".into());
        e.state.clone()
    });
    drop(run);
    world.stat("executions aborted");
    world.log(&world.label(i), format!("ABORTED in {state}"));
    world.close_window(i, "execution aborted");
    // EventBridge's status-change event, a moment later.
    let delay = world.rng(|r| r.millis(50, 30_000));
    let name = world.execution(i, |e| e.name.clone());
    tokio::task::spawn_local(async move {
        tokio::time::sleep(delay).await;
        reconcile(world, Some(name), false).await;
    });
}

/// One run of reconcile-access: a sweep, or for an execution that ended
/// ABORTED. Its calls fail and crash like any function's (until `calm`).
async fn reconcile(world: Arc<World>, ended: Option<String>, last: bool) {
    let inv = Invocation::reconciler(Arc::clone(&world));
    let id = inv.id;
    let event = match &ended {
        Some(name) => json!({
            "detail-type": "Step Functions Execution Status Change",
            "source": "aws.states",
            "id": format!("event-{id}"),
            "detail": {"name": name, "status": "ABORTED", "stateMachineArn": STATE_MACHINE_ARN},
        }),
        None => json!({"source": "aws.scheduler", "id": format!("sweep-{id}")}),
    };
    world.log(
        &inv.label,
        format!(
            "reconcile-access invoked ({})",
            ended
                .as_deref()
                .map(|n| format!("{} ABORTED", crate::world::short(n)))
                .unwrap_or_else(|| if last {
                    "final sweep".into()
                } else {
                    "sweep".into()
                })
        ),
    );
    let ports = SimPorts(Arc::clone(&inv));
    let clock = SimClock(Arc::clone(&world));
    let run = async {
        let deps = reconcile_access::Deps {
            config: &configs().reconcile,
            ledger: &ports,
            identity_center: &ports,
            executions: &ports,
            slack: &ports,
            alerts: Some(&ports),
            clock: &clock,
            session_policy: Some(&ports),
        };
        reconcile_access::handle(event, &deps).await
    };
    let result = tokio::select! {
        biased;
        where_ = inv.crashed() => Err(format!("the function died {where_} (simulated)")),
        result = run => result.map_err(|e| e.to_string()),
        () = tokio::time::sleep(LAMBDA_TIMEOUT) => Err("the function timed out (simulated)".into()),
    };
    match &result {
        Ok(summary) => {
            world.stat("reconcile runs completed");
            for _ in 0..summary["finished"].as_u64().unwrap_or(0) {
                world.stat("reconciler: leftover assignments removed");
            }
            world.log(&inv.label, format!("reconcile-access returned {summary}"));
            if last {
                world.set_final_reconcile(summary.to_string());
            }
        }
        Err(e) => {
            world.stat("reconcile runs failed");
            world.log(&inv.label, format!("reconcile-access failed: {e}"));
        }
    }
}

/// Whether a grant invocation's failure says it removed (or never made)
/// what it created, verified.
fn claims_verified_rollback(outcome: &Option<Result<(), (String, String)>>) -> bool {
    match outcome {
        Some(Err((error, cause))) => {
            error == "GrantRolledBack"
                || error == "AssignmentFailed"
                || (error == "DependencyUnavailable" && cause.contains("rolled back, verified"))
        }
        _ => false,
    }
}

/// (f) Ending sessions never fails, undoes or hides a revoke: a removal
/// that answered says whether the sessions were ended, and "ended" is only
/// said when IAM's default policy version holds the Deny at that moment.
fn check_sessions(world: &World, label: &str, r: &break_glass_core::contract::Revoke) {
    use break_glass_core::contract::RevokeOutcome;
    let removed = matches!(r.outcome, RevokeOutcome::Deleted | RevokeOutcome::AlreadyGone);
    if removed && !r.sessions_ended && r.sessions_not_ended.is_none() {
        world.violate(
            'f',
            format!("{label} removed the assignment and said nothing about its sessions"),
        );
    }
    if !removed && (r.sessions_ended || r.sessions_not_ended.is_some()) {
        world.violate(
            'f',
            format!("{label} left the assignment in place but wrote about ending its sessions"),
        );
    }
    if r.sessions_ended {
        let policy = world.iam_read();
        let holds = break_glass_core::sessions::PolicyDocument::parse(&policy.document)
            .is_ok_and(|d| d.ends_sessions_of(world::USER_ID, r.revoked_at));
        if !holds {
            world.violate(
                'f',
                format!("{label} said the sessions were ended, but the policy has no such Deny"),
            );
        }
        world.stat("sessions ended");
    } else if removed {
        world.stat("sessions not ended");
    }
}

/// How long after End access now (or after the hold began, if End came
/// first) the revoke must have started: CheckHold's retries with every
/// attempt hung to its timeout, the hold's own retries, and Lambda
/// throttling, with room to spare.
const END_TO_REVOKE: Duration = Duration::from_secs(900);

fn check_end(world: &World) {
    let executions = world.executions();
    // (h) End access now ends the hold: unless the execution was stopped by
    // hand or its hold had to wait without a token, the revoke started soon
    // after the press.
    for e in &executions {
        let (Some(pressed), None, false) = (e.end_pressed, e.aborted, e.hold_fallback) else {
            continue;
        };
        world.stat("ends checked");
        let from = pressed.max(e.hold_entered.unwrap_or(pressed));
        match e.closed {
            Some(closed) if closed <= from + END_TO_REVOKE => {}
            other => world.violate(
                'h',
                format!(
                    "{}: End access now at {} but the revoke started at {:?}",
                    e.name,
                    clock_text(pressed),
                    other.map(clock_text)
                ),
            ),
        }
    }
    let (present, standing) = (world.present(), world.standing());
    world.log(
        "end",
        format!("assignment present: {present}, standing access: {standing}"),
    );
    // (b)
    let alerts: Vec<&ExecutionRecord> = executions.iter().filter(|e| e.alert.is_some()).collect();
    if alerts.is_empty() {
        world.stat("seeds with the end state checked");
        if present != standing {
            let summary: Vec<String> = executions
                .iter()
                .map(|e| {
                    format!(
                        "{} {}",
                        crate::world::short(&e.name),
                        e.ending.as_deref().unwrap_or("running")
                    )
                })
                .collect();
            world.violate(
                'b',
                format!(
                    "assignment {} at the end, standing access {} ({})",
                    if present { "PRESENT" } else { "ABSENT" },
                    if standing { "yes" } else { "no" },
                    summary.join(", ")
                ),
            );
        }
    }
    // (d)
    for e in &executions {
        let creators: Vec<&GrantInvocation> = e.grant_invocations.iter().filter(|g| g.created).collect();
        if creators.is_empty() {
            continue;
        }
        // Every run of an execution's grant works on the same hold (the
        // ledger knows it by execution name), so a verified rollback by the
        // last creating run, or by any run after it, covers what was created.
        let last_creator = e.grant_invocations.iter().rposition(|g| g.created).unwrap_or(0);
        // A stopped execution never finishes its revoke: the reconciler
        // (or whoever takes an unfinished removal over) must, verified, or
        // the reconciler says loudly that it could not.
        let reconciled = e.aborted.is_some() && (e.removal_verified || !e.reconciler_alerts.is_empty());
        let discharged = e.alert.is_some()
            || reconciled
            || e.revoke_verified
            || e.grant_invocations[last_creator..]
                .iter()
                .any(|g| claims_verified_rollback(&g.outcome));
        if !discharged {
            let what: Vec<String> = creators
                .iter()
                .map(|g| match &g.outcome {
                    None => format!("grant#{} cut off", g.id),
                    Some(Ok(())) => format!("grant#{} succeeded", g.id),
                    Some(Err((error, _))) => format!("grant#{} {error}", g.id),
                })
                .collect();
            world.violate(
                'd',
                format!(
                    "{} created the assignment ({}) and ended {} without a verified revoke or an alert",
                    crate::world::short(&e.name),
                    what.join(", "),
                    e.ending.as_deref().unwrap_or("running")
                ),
            );
        }
    }
    // (e)
    match world.final_reconcile() {
        None => world.violate('e', "the final reconcile run did not complete".into()),
        Some(summary) => {
            world.stat("seeds with (e) checked");
            if present && !standing {
                world.violate(
                    'e',
                    format!(
                        "the assignment is PRESENT without standing access after the final reconcile ({summary})"
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use break_glass_core::contract::{Revoke, RevokeOutcome};
    use break_glass_core::sessions::{SessionDeny, plan_end_sessions};

    use super::*;

    fn revoke(ended: bool, not_ended: Option<&str>) -> Revoke {
        let at: chrono::DateTime<chrono::Utc> = "2026-03-02T10:00:00Z".parse().unwrap();
        Revoke {
            revoked_at: at,
            outcome: RevokeOutcome::Deleted,
            verified: true,
            sessions_valid_until: at,
            report_at: at,
            slack_unreachable: None,
            sessions_ended: ended,
            sessions_not_ended: not_ended.map(str::to_string),
        }
    }

    /// Invariant (f) can fail: "ended" without the Deny in IAM, and a
    /// removal that says nothing about its sessions, are both caught.
    #[tokio::test(start_paused = true)]
    async fn a_claim_iam_does_not_back_is_a_violation() {
        let world = World::new(7, world::Variant::Current);
        check_sessions(&world, "e1 revoke#1", &revoke(true, None));
        check_sessions(&world, "e1 revoke#2", &revoke(false, None));
        let found: Vec<char> = world.violations().iter().map(|v| v.invariant).collect();
        assert_eq!(found, vec!['f', 'f'], "{:?}", world.violations());

        let r = revoke(true, None);
        let deny = SessionDeny {
            user_id: world::USER_ID.into(),
            issued_before: r.revoked_at,
            until: r.revoked_at + chrono::Duration::hours(1),
        };
        let doc = plan_end_sessions(&world.iam_read().document, &deny, r.revoked_at)
            .unwrap()
            .write
            .unwrap();
        world.iam_write("test", &doc).unwrap();
        check_sessions(&world, "e1 revoke#3", &r);
        check_sessions(
            &world,
            "e1 revoke#4",
            &revoke(false, Some("IAM did not answer in time")),
        );
        assert_eq!(world.violations().len(), 2, "backed claims pass");
    }
}
