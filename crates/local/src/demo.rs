//! The main job on one machine: a signed click on the seed README's message
//! flows through access-requested, grant, hold, revoke and report, against
//! moto (Identity Center, Identity Store, SES, DynamoDB for the grant
//! ledger) and local Slack and CloudTrail stand-ins, with the story printed
//! as it happens. reconcile-access runs beside it (on the schedule, and when
//! an execution ends ABORTED or FAILED); `--drill abort` stops the execution
//! during the hold and shows reconcile-access finishing the revoke;
//! `--drill slack` asks through `/break-glass` and the modal, and ends the
//! grant early with End access now (after the refusals a stranger and the
//! cap meet).

use std::sync::Arc;
use std::time::{Duration, Instant};

use break_glass_adapters::audit::CloudTrailLookup;
use break_glass_adapters::directory::IdentityStore;
use break_glass_adapters::identity_center::SsoAdmin;
use break_glass_adapters::ledger::DynamoLedger;
use break_glass_adapters::mailer::Ses;
use break_glass_adapters::slack::{BotToken, SlackWebApi};
use break_glass_core::clock::{Clock, SystemClock};
use break_glass_core::ledger::{LedgerItem, LedgerKey};
use break_glass_core::ports::{IdentityCenter, Ledger};
use break_glass_testkit::cloudtrail::{CloudTrailStandIn, session_event};
use break_glass_testkit::slack::{Post, SlackStandIn};
use break_glass_testkit::{interaction_body, moto, seed_click, slack_headers};
use serde_json::Value;

use crate::asl::Definition;
use crate::binaries::LambdaBinaries;
use crate::reconciler::Reconciler;
use crate::runner::{ExecutionView, Functions, LocalStateMachine, PLACEHOLDERS, render};
use crate::server::{Answerer, Endpoint, InProcessControl, InProcessRules, router};

pub const INSTANCE: &str = "arn:aws:sso:::instance/ssoins-12345";
pub const PERMISSION_SET: &str = "arn:aws:sso:::permissionSet/ssoins-12345/ps-12345";
pub const ACCOUNT: &str = "123456789012";
const IDENTITY_STORE: &str = "d-90670demo1";
const SIGNING_SECRET: &str = "local-demo-signing-secret";
const BOT_TOKEN: &str = "xoxb-local-demo";
const SENDER: &str = "break-glass@example.com";
const ALERT_CHANNEL: &str = "C0ALERTS";
/// Where moto keeps the demo's Identity Center (and, by default, everything).
const SSO_HOME_REGION: &str = "us-east-1";
/// The grant ledger's table in moto, shared by every run (each run has a
/// user of its own, so an item of its own).
pub const LEDGER_TABLE: &str = "break-glass-ledger";

/// Failure drills, for the end-to-end tests and `scripts/demo --drill`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Drill {
    None,
    /// Identity Center refuses every deletion.
    RevokeFails,
    /// The clicker has no e-mail on their Slack profile.
    UnknownUser,
    /// The execution is stopped by hand (`POST /executions/{name}/stop`)
    /// during the hold: reconcile-access removes what it left behind.
    Abort,
    /// Everything from Slack but the button: `/break-glass` opens the
    /// modal, its submission starts the execution; during the hold someone
    /// else presses End (refused), the requester extends (to the cap, then
    /// past it: refused), App Home lists the grant, and End access now ends
    /// it early.
    Slack,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub moto_endpoint: String,
    pub definition: String,
    pub time_scale: f64,
    pub listen: String,
    pub drill: Drill,
    /// Run the compiled function binaries in this directory instead of the
    /// handlers in-process.
    pub lambda_binaries: Option<std::path::PathBuf>,
    /// Print the story to stdout.
    pub narrate: bool,
    /// reconcile-access's schedule, in the run's scaled time (`None`: only
    /// when an execution ends ABORTED or FAILED).
    pub reconcile_every: Option<Duration>,
    /// The functions' own region (`AWS_REGION`: the ledger, SES) when it is
    /// not Identity Center's home region (us-east-1 here), which they then
    /// reach through `SSO_REGION`. `None`: everything in us-east-1.
    pub function_region: Option<String>,
    /// Decide by a policy rule (`BREAK_GLASS_POLICY`) that lets the group
    /// `oncall-<run>` take BreakGlassAdmin (by name) in the demo account:
    /// `Some(true)` with the clicker in that group, `Some(false)` without.
    /// `None`: the three lists alone, as by default.
    pub policy_group: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct Outcome {
    pub click_status: u16,
    pub click_answer: String,
    pub execution: ExecutionView,
    pub thread: Vec<Post>,
    pub alerts: Vec<Post>,
    pub assigned_while_holding: bool,
    pub assigned_after: bool,
    /// The run's grant ledger item once the execution ended (none when the
    /// grant never got as far as the ledger).
    pub ledger_after: Option<LedgerItem>,
    pub emails: Vec<Value>,
    /// reconcile-access's runs, oldest first: each one's summary (or
    /// `{"error": …}`).
    pub reconciled: Vec<Value>,
    pub wall: Duration,
    pub slack_user: String,
    pub url: String,
    /// The Slack drill's steps: what was done, and what Slack showed.
    pub control: Vec<(String, String)>,
    /// `views.open` and `views.publish` requests Slack received.
    pub opened_views: Vec<Value>,
    pub published_views: Vec<Value>,
}

/// Somebody else in our workspace (the Slack drill's stranger).
const STRANGER: &str = "U0STRANGER";

/// Posts `body` to `url` signed like Slack: (status, body).
async fn post_signed(url: &str, body: &str, now: i64) -> Result<(u16, String), String> {
    let mut request = reqwest::Client::new().post(url).body(body.to_string());
    for (k, v) in slack_headers(SIGNING_SECRET, now, body.as_bytes()) {
        request = request.header(k, v);
    }
    let response = request
        .send()
        .await
        .map_err(|e| format!("posting to {url}: {e}"))?;
    let status = response.status().as_u16();
    Ok((status, response.text().await.unwrap_or_default()))
}

/// What an answer says to the person (an ephemeral's text, or the body).
fn said(answer: &str) -> String {
    serde_json::from_str::<Value>(answer)
        .ok()
        .and_then(|v| v["text"].as_str().map(str::to_string))
        .unwrap_or_else(|| answer.to_string())
}

/// `application/x-www-form-urlencoded`, as Slack encodes its forms.
fn form_encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'*' => (b as char).to_string(),
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `/break-glass <text>` as Slack posts it.
fn command_body(user: &str, text: &str, response_url: &str) -> String {
    [
        ("token", "legacy-verification-token"),
        ("team_id", break_glass_testkit::slack::TEAM_ID),
        ("team_domain", "example"),
        ("channel_id", DEMO_CHANNEL),
        ("channel_name", "incidents"),
        ("user_id", user),
        ("user_name", "alice"),
        ("command", "/break-glass"),
        ("text", text),
        ("api_app_id", "A0DEMO"),
        ("response_url", response_url),
        ("trigger_id", "13345224609.738474920.8088930838d88f008e0"),
    ]
    .iter()
    .map(|(k, v)| format!("{k}={}", form_encode(v)))
    .collect::<Vec<_>>()
    .join("&")
}

/// The channel the Slack drill's command is typed in.
const DEMO_CHANNEL: &str = "C0INCIDENTS";

/// The modal `view` submitted by `user` as it was prefilled, with the
/// incident link typed in.
fn submission(user: &str, view: &Value) -> Value {
    let mut values = serde_json::Map::new();
    for block in view["blocks"].as_array().into_iter().flatten() {
        let (Some(id), Some(action)) = (block["block_id"].as_str(), block["element"]["action_id"].as_str())
        else {
            continue;
        };
        let element = &block["element"];
        let value = match element["type"].as_str() {
            Some("static_select") => {
                serde_json::json!({"type": "static_select", "selected_option": element["initial_option"].clone()})
            }
            Some("url_text_input") => {
                serde_json::json!({"type": "url_text_input", "value": "https://incidents.example.com/INC-7"})
            }
            _ => serde_json::json!({"type": "plain_text_input", "value": element["initial_value"].clone()}),
        };
        values.insert(id.to_string(), serde_json::json!({ action: value }));
    }
    serde_json::json!({
        "type": "view_submission",
        "team": {"id": break_glass_testkit::slack::TEAM_ID, "domain": "example"},
        "user": {"id": user, "username": "alice", "name": "alice", "team_id": break_glass_testkit::slack::TEAM_ID},
        "api_app_id": "A0DEMO",
        "trigger_id": "12345.98765.abcd2358fdea",
        "view": {
            "id": "VDEMO0001",
            "type": "modal",
            "callback_id": view["callback_id"].clone(),
            "private_metadata": view["private_metadata"].clone(),
            "blocks": view["blocks"].clone(),
            "state": {"values": values},
            "hash": "156663117.cd33ad1f",
        },
    })
}

/// `user` presses button `action` (End or Extend) carrying `value` in the thread.
fn press(user: &str, action: &str, value: &str, response_url: &str) -> Value {
    serde_json::json!({
        "type": "block_actions",
        "team": {"id": break_glass_testkit::slack::TEAM_ID, "domain": "example"},
        "user": {"id": user, "username": "someone", "team_id": break_glass_testkit::slack::TEAM_ID},
        "api_app_id": "A0DEMO",
        "trigger_id": "12466734323.1395872398.3ad0ba1d3e9e1e2d3f7d1cbb2d3f7e1e",
        "container": {"type": "message", "message_ts": "1800000001.000100", "channel_id": DEMO_CHANNEL},
        "channel": {"id": DEMO_CHANNEL, "name": "incidents"},
        "response_url": response_url,
        "actions": [{"action_id": action, "block_id": "hold", "value": value, "type": "button", "action_ts": "1800000002.000100"}],
    })
}

/// The newest End/Extend button value in the thread's posts.
fn newest_hold_button(posts: &[Post]) -> Option<String> {
    posts.iter().rev().find_map(|p| {
        p.blocks.as_ref()?.as_array()?.iter().find_map(|b| {
            b["elements"]
                .as_array()?
                .iter()
                .find(|e| e["action_id"] == break_glass_core::slack::control::EXTEND_ACTION)
                .and_then(|e| e["value"].as_str().map(str::to_string))
        })
    })
}

/// Identity Center whose deletions are always refused.
fn say(on: bool, text: impl AsRef<str>) {
    if on {
        println!("{}", text.as_ref());
    }
}

/// The seed README's permission set (`ps-12345` in `ssoins-12345`) in moto:
/// the launcher mints that id for the first one created in that instance.
async fn permission_set(sdk: &aws_config::SdkConfig) -> Result<(), String> {
    // Runs in this process are seeded one at a time, so only one creates it.
    static SEEDING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    let _one_at_a_time = SEEDING.lock().await;
    let client = aws_sdk_ssoadmin::Client::new(sdk);
    let existing = client
        .list_permission_sets()
        .instance_arn(INSTANCE)
        .send()
        .await
        .map_err(|e| format!("moto ListPermissionSets: {e}"))?
        .permission_sets
        .unwrap_or_default();
    if existing.iter().any(|p| p == PERMISSION_SET) {
        return Ok(());
    }
    let created = client
        .create_permission_set()
        .instance_arn(INSTANCE)
        .name("BreakGlassAdmin")
        .session_duration("PT1H")
        .send()
        .await
        .map_err(|e| format!("moto CreatePermissionSet: {e}"))?;
    let arn = created
        .permission_set
        .and_then(|p| p.permission_set_arn)
        .unwrap_or_default();
    if arn != PERMISSION_SET {
        return Err(format!(
            "moto minted {arn}, not {PERMISSION_SET}: start moto with scripts/with-moto, whose launcher fixes the seed's ids"
        ));
    }
    Ok(())
}

/// One line about a ledger item: its state, who holds it and what changed.
fn ledger_line(item: &LedgerItem) -> String {
    let holders: Vec<&str> = item.holders.iter().map(|h| h.execution_name.as_str()).collect();
    format!(
        "{} (version {}, holders [{}]): {}",
        item.state.as_str(),
        item.version,
        holders.join(", "),
        item.last_change.what
    )
}

pub async fn run(opts: Options) -> Result<Outcome, String> {
    let started = Instant::now();
    let narrate = opts.narrate;
    let sdk = moto::sdk_at(&opts.moto_endpoint).await;
    permission_set(&sdk).await?;
    let tag = moto::unique("u").replace('-', "");
    let slack_user = format!(
        "U0{}",
        tag.to_uppercase().chars().skip(1).take(9).collect::<String>()
    );
    let email = format!("alice.{tag}@example.com");
    let user_id = moto::create_user(&sdk, IDENTITY_STORE, &email, &email).await;
    // What the functions keep in their own region; Identity Center stays in
    // `sdk`'s (its home region).
    let function_region = opts
        .function_region
        .clone()
        .unwrap_or_else(|| SSO_HOME_REGION.to_string());
    let fn_sdk = break_glass_adapters::in_region(&sdk, Some(&function_region));
    moto::create_ledger_table(&fn_sdk, LEDGER_TABLE).await?;
    let ledger = Arc::new(DynamoLedger::from_sdk(&fn_sdk, LEDGER_TABLE));
    let ledger_key = LedgerKey {
        user_id: user_id.clone(),
        account_id: ACCOUNT
            .parse()
            .map_err(|e: break_glass_core::domain::DomainError| e.to_string())?,
        permission_set_arn: PERMISSION_SET
            .parse()
            .map_err(|e: break_glass_core::domain::DomainError| e.to_string())?,
    };
    let _ = aws_sdk_sesv2::Client::new(&fn_sdk)
        .create_email_identity()
        .email_identity(SENDER)
        .send()
        .await;

    let slack = SlackStandIn::start(BOT_TOKEN).await;
    slack.add_user(
        &slack_user,
        (opts.drill != Drill::UnknownUser).then_some(email.as_str()),
    );
    slack.add_user(STRANGER, Some("someone.else@example.com"));
    let trail = CloudTrailStandIn::start().await;
    let now = SystemClock.now();
    for (i, (source, name, read_only)) in [
        ("signin.amazonaws.com", "ConsoleLogin", false),
        ("ec2.amazonaws.com", "DescribeInstances", true),
        ("logs.amazonaws.com", "FilterLogEvents", true),
        ("ecs.amazonaws.com", "UpdateService", false),
        ("ec2.amazonaws.com", "RebootInstances", false),
        ("iam.amazonaws.com", "CreateAccessKey", false),
        ("ec2.amazonaws.com", "AuthorizeSecurityGroupIngress", false),
        ("s3.amazonaws.com", "ListBuckets", true),
    ]
    .into_iter()
    .enumerate()
    {
        // Just before the click: inside the report's window however fast
        // the demo runs (the window never reaches into the future).
        let at = now - chrono::Duration::seconds(10 - i as i64);
        let mut event = session_event(
            &format!("demo-{tag}-{i}"),
            at,
            ACCOUNT,
            "BreakGlassAdmin",
            &email,
            source,
            name,
            read_only,
        );
        if name == "ConsoleLogin" {
            event["eventType"] = "AwsConsoleSignIn".into();
        }
        trail.add(event);
    }

    // The same variables the Lambdas read, in one map.
    let mut env: std::collections::HashMap<&str, String> = [
        (
            "STATE_MACHINE_ARN",
            "arn:aws:states:us-east-1:123456789012:stateMachine:break-glass-local".to_string(),
        ),
        ("SSO_INSTANCE_ARN", INSTANCE.into()),
        ("IDENTITY_STORE_ID", IDENTITY_STORE.into()),
        ("GRANT_LEDGER_TABLE", LEDGER_TABLE.into()),
        ("ALLOWED_ACCOUNT_IDS", ACCOUNT.into()),
        ("ALLOWED_PERMISSION_SET_ARNS", PERMISSION_SET.into()),
        // The seed click's workspace, which the Slack stand-in's users belong to.
        (
            "ALLOWED_SLACK_TEAM_IDS",
            break_glass_testkit::slack::TEAM_ID.into(),
        ),
        ("SLACK_SIGNING_SECRET", SIGNING_SECRET.into()),
        ("SLACK_BOT_TOKEN", BOT_TOKEN.into()),
        ("SLACK_API_URL", slack.api_url()),
        ("CLOUDTRAIL_DELAY_MINUTES", "1".into()),
        ("CLOUDTRAIL_REGIONS", "eu-west-1".into()),
        ("REPORT_SENDER", SENDER.into()),
        ("REPORT_RECIPIENTS", "security@example.com".into()),
        ("ALERT_SLACK_CHANNEL", ALERT_CHANNEL.into()),
        // reconcile-access trusts "ended" for holders that joined this many
        // real minutes ago (the runner's clock is real time; only waits are
        // scaled) or that the triggering event names.
        ("RECONCILE_MIN_AGE_MINUTES", "15".into()),
        // hold-access counts the hold in the runner's scaled time.
        ("HOLD_TIME_SCALE", opts.time_scale.to_string()),
    ]
    .into_iter()
    .collect();
    if function_region != SSO_HOME_REGION {
        env.insert("SSO_REGION", SSO_HOME_REGION.into());
    }
    if opts.drill == Drill::Slack {
        // One Extend reaches the cap: 1 h asked + 1 h = 2 h.
        env.insert("MAX_DURATION_MINUTES", "120".into());
        env.insert("EXTEND_MINUTES", "60".into());
        env.insert("ACCOUNT_NAMES", format!("{ACCOUNT}=Production"));
    }
    if let Some(member) = opts.policy_group {
        let group = format!("oncall-{tag}");
        let group_id = moto::create_group(&sdk, IDENTITY_STORE, &group).await;
        if member {
            moto::add_to_group(&sdk, IDENTITY_STORE, &group_id, &user_id).await;
        }
        env.insert(
            "BREAK_GLASS_POLICY",
            serde_json::json!({"rules": [{
                "name": "oncall-admin",
                "accounts": [ACCOUNT],
                "permission_sets": ["BreakGlassAdmin"],
                "groups": [group],
                "max_duration_minutes": 120,
            }]})
            .to_string(),
        );
    }
    let env_pairs: Vec<(String, String)> = env.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
    let lookup = move |k: &str| env.get(k).cloned();
    let e = |err: break_glass_core::config::ConfigError| err.to_string();
    let definition = Definition::parse(&render(&opts.definition, PLACEHOLDERS)).map_err(|e| e.to_string())?;
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let listener = tokio::net::TcpListener::bind(&opts.listen)
        .await
        .map_err(|e| format!("listen on {}: {e}", opts.listen))?;
    let url = format!("http://{}", listener.local_addr().map_err(|e| e.to_string())?);
    let (machine, answerer, reconciler) = match &opts.lambda_binaries {
        Some(dir) => {
            // The real binaries, as Lambda runs them: AWS through moto, Step
            // Functions through this process, CloudTrail through its stand-in.
            let mut binary_env = env_pairs;
            binary_env.extend(
                [
                    ("AWS_ENDPOINT_URL", opts.moto_endpoint.as_str()),
                    ("AWS_ENDPOINT_URL_SFN", url.as_str()),
                    ("AWS_ENDPOINT_URL_CLOUDTRAIL", trail.url()),
                    ("AWS_REGION", function_region.as_str()),
                    ("AWS_ACCESS_KEY_ID", "testing"),
                    ("AWS_SECRET_ACCESS_KEY", "testing"),
                    ("AWS_EC2_METADATA_DISABLED", "true"),
                ]
                .map(|(k, v)| (k.to_string(), v.to_string())),
            );
            if opts.drill == Drill::RevokeFails {
                return Err("the revoke drill needs in-process functions".into());
            }
            let binaries = Arc::new(LambdaBinaries::start(dir, &binary_env).await?);
            let machine =
                LocalStateMachine::new(definition, binaries.clone(), clock.clone(), opts.time_scale);
            let reconciler = Reconciler::binary(binaries.clone(), crate::sfn_api::STATE_MACHINE_ARN);
            (machine, Answerer::Binary(binaries), reconciler)
        }
        None => {
            let cloudtrail_sdk = moto::sdk_at(trail.url()).await;
            let sso: Arc<dyn IdentityCenter> = Arc::new(SsoAdmin::from_sdk(
                &sdk,
                INSTANCE
                    .parse()
                    .map_err(|e: break_glass_core::domain::DomainError| e.to_string())?,
            ));
            let slack_api: Arc<SlackWebApi> = Arc::new(
                SlackWebApi::new(slack.api_url(), Some(BotToken::new(BOT_TOKEN)))
                    .with_hooks_url(slack.hooks_url()),
            );
            let grant = grant_access::Config::from_env(&lookup).map_err(e)?;
            let functions = Functions {
                grant_rules: crate::runner::grant_rules(&grant, &sdk),
                grant,
                revoke: revoke_access::Config::from_env(&lookup).map_err(e)?,
                hold: hold_access::Config::from_env(&lookup).map_err(e)?,
                report: report_on_access::Config::from_env(&lookup).map_err(e)?,
                revoke_identity_center: match opts.drill {
                    Drill::RevokeFails => {
                        Arc::new(break_glass_testkit::refusing::RefusingDeletes(sso.clone()))
                    }
                    _ => sso.clone(),
                },
                identity_center: sso,
                directory: Arc::new(IdentityStore::from_sdk(&sdk, IDENTITY_STORE)),
                ledger: ledger.clone(),
                slack: slack_api.clone(),
                trail: Arc::new(CloudTrailLookup::new(&cloudtrail_sdk, None)),
                mailer: Arc::new(Ses::from_sdk(&fn_sdk)),
                alerts: None,
                clock: clock.clone(),
                // The demo configures no audit role: sessions are not ended.
                session_policy: None,
            };
            let reconciler = Reconciler::in_process(
                reconcile_access::Config::from_env(&lookup).map_err(e)?,
                &functions,
            );
            let machine =
                LocalStateMachine::new(definition, Arc::new(functions), clock.clone(), opts.time_scale);
            let access = access_requested::Config::from_env(&lookup).map_err(e)?;
            let answerer = Answerer::InProcess {
                rules: InProcessRules::wire(&access, &fn_sdk, &sdk),
                control: InProcessControl::wire(&access, &fn_sdk, &sdk),
                config: Arc::new(access),
                secret: Arc::new(break_glass_core::slack::SigningSecret::new(SIGNING_SECRET)),
                slack: slack_api,
                clock: clock.clone(),
            };
            (machine, answerer, reconciler)
        }
    };
    reconciler.clone().spawn(machine.clone(), opts.reconcile_every);
    let app = router(Endpoint {
        machine: machine.clone(),
        answerer,
    });
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    say(
        narrate,
        format!(
            "break-glass-local listening on {url} (time runs {}x faster)",
            opts.time_scale
        ),
    );
    say(
        narrate,
        format!(
            "moto: {}   Slack stand-in: {}   CloudTrail stand-in: {}",
            opts.moto_endpoint,
            slack.api_url(),
            trail.url()
        ),
    );

    let mut control: Vec<(String, String)> = Vec::new();
    let (click_status, click_answer) = if opts.drill == Drill::Slack {
        // `/break-glass` with what the person knows, in #incidents.
        let text = format!("{ACCOUNT} BreakGlassAdmin 1h checkout is down, rolling back by hand");
        say(narrate, format!("\n{slack_user} types: /break-glass {text}"));
        let (status, answer) = post_signed(
            &format!("{url}/slack/commands"),
            &command_body(&slack_user, &text, &slack.response_url("command")),
            clock.now().timestamp(),
        )
        .await?;
        control.push(("command".into(), format!("HTTP {status}: {}", said(&answer))));
        let view = slack
            .opened_views()
            .last()
            .map(|o| o["view"].clone())
            .ok_or_else(|| format!("the command opened no modal (HTTP {status}: {answer})"))?;
        say(
            narrate,
            format!(
                "  Slack opens the modal (views.open): {} blocks, prefilled from the command",
                view["blocks"].as_array().map_or(0, Vec::len)
            ),
        );
        say(
            narrate,
            format!("{slack_user} adds the incident link and submits the modal"),
        );
        let (status, answer) = post_signed(
            &format!("{url}/slack/interactions"),
            &interaction_body(&submission(&slack_user, &view)),
            clock.now().timestamp(),
        )
        .await?;
        control.push(("submit".into(), format!("HTTP {status}: {answer}")));
        say(
            narrate,
            format!("  HTTP {status} {answer}(an empty 200 closes the modal)"),
        );
        (status, answer)
    } else {
        // The click: the seed README's message, "Break Glass Prod", signed like Slack.
        let body = interaction_body(&seed_click(
            &slack_user,
            "1764460800.000100",
            &slack.response_url("demo"),
        ));
        say(
            narrate,
            format!(
                "\n{} clicks \"Break Glass Prod\" on \"Deployment *ABC* is being rolled back.\"",
                slack_user
            ),
        );
        let (click_status, click_answer) = post_signed(
            &format!("{url}/slack/interactions"),
            &body,
            clock.now().timestamp(),
        )
        .await?;
        say(
            narrate,
            format!(
                "  Slack (only to {slack_user}), HTTP {click_status}: {}",
                said(&click_answer)
            ),
        );
        (click_status, click_answer)
    };

    let Some(name) = machine.executions().first().map(|e| e.name.clone()) else {
        return Err(format!(
            "the click started no execution (HTTP {click_status}: {click_answer})"
        ));
    };
    say(narrate, format!("  execution {name} started"));

    let deadline = Instant::now() + Duration::from_secs(90);
    let (mut shown_posts, mut last_state, mut assigned_while_holding, mut last_assigned) =
        (0, None, false, None);
    let mut stopped = false;
    let mut pressed = false;
    let mut last_ledger: Option<LedgerItem> = None;
    let execution = loop {
        let view = machine.execution(&name).ok_or("execution vanished")?;
        if view.current_state != last_state {
            if let Some(state) = &view.current_state {
                say(narrate, format!("  state: {state}"));
            }
            last_state = view.current_state.clone();
        }
        let posts = slack.posts();
        for p in posts.iter().skip(shown_posts) {
            let place = if p.channel == ALERT_CHANNEL {
                "alert channel".to_string()
            } else {
                format!("thread {}", p.thread_ts.as_deref().unwrap_or("-"))
            };
            say(
                narrate,
                format!("  Slack ({place}): {}", p.text.replace('\n', "\n      ")),
            );
        }
        shown_posts = posts.len();
        // This run's user only: other runs share the seed's permission set.
        let assigned = moto::assigned_users(
            &sdk,
            &moto::IdentityCenterFixture {
                instance_arn: INSTANCE.into(),
                identity_store_id: IDENTITY_STORE.into(),
                permission_set_arn: PERMISSION_SET.into(),
            },
            ACCOUNT,
        )
        .await
        .contains(&user_id);
        if view.current_state.as_deref() == Some("Hold") && assigned {
            assigned_while_holding = true;
        }
        if last_assigned != Some(assigned) {
            say(
                narrate,
                format!(
                    "  Identity Center (moto): {ACCOUNT} / BreakGlassAdmin assignment {}",
                    if assigned { "PRESENT" } else { "absent" }
                ),
            );
            last_assigned = Some(assigned);
        }
        let item = ledger.get(&ledger_key).await.map_err(|e| e.to_string())?;
        if item.as_ref().map(|i| i.version) != last_ledger.as_ref().map(|i| i.version) {
            if let Some(item) = &item {
                say(
                    narrate,
                    format!("  grant ledger (moto DynamoDB): {}", ledger_line(item)),
                );
            }
            last_ledger = item;
        }
        if view.status != "RUNNING" {
            break view;
        }
        if opts.drill == Drill::Abort && assigned_while_holding && !stopped {
            // Granted and holding: stop it by hand, as a person would.
            say(
                narrate,
                format!("\nsomeone stops {name} during the hold: POST {url}/executions/{name}/stop"),
            );
            let response = reqwest::Client::new()
                .post(format!("{url}/executions/{name}/stop"))
                .send()
                .await
                .map_err(|e| format!("stopping {name}: {e}"))?;
            if !response.status().is_success() {
                return Err(format!("stopping {name}: HTTP {}", response.status()));
            }
            stopped = true;
            continue;
        }
        if opts.drill == Drill::Slack && assigned_while_holding && !pressed {
            pressed = true;
            slack_presses(&url, &slack, &slack_user, clock.as_ref(), narrate, &mut control).await?;
            continue;
        }
        if Instant::now() > deadline {
            return Err(format!(
                "execution {name} still running after 90 s (state {:?})",
                view.current_state
            ));
        }

        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    if opts.drill == Drill::Abort {
        say(
            narrate,
            format!(
                "  execution {name}: {}; reconcile-access is told",
                execution.status
            ),
        );
        let ours = format!("{name} ended {}", execution.status);
        let deadline = Instant::now() + Duration::from_secs(60);
        let run = loop {
            if let Some(run) = reconciler
                .runs()
                .into_iter()
                .find(|r| r["trigger"] == ours.as_str())
            {
                break run;
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "reconcile-access did not run for {name} within 60 s; its runs: {:?}",
                    reconciler.runs()
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        say(narrate, format!("  reconcile-access: {run}"));
        for p in slack.posts().iter().skip(shown_posts) {
            let place = if p.channel == ALERT_CHANNEL {
                "alert channel".to_string()
            } else {
                format!("thread {}", p.thread_ts.as_deref().unwrap_or("-"))
            };
            say(
                narrate,
                format!("  Slack ({place}): {}", p.text.replace('\n', "\n      ")),
            );
        }
        let assigned = moto::assigned_users(
            &sdk,
            &moto::IdentityCenterFixture {
                instance_arn: INSTANCE.into(),
                identity_store_id: IDENTITY_STORE.into(),
                permission_set_arn: PERMISSION_SET.into(),
            },
            ACCOUNT,
        )
        .await
        .contains(&user_id);
        say(
            narrate,
            format!(
                "  Identity Center (moto): {ACCOUNT} / BreakGlassAdmin assignment {}",
                if assigned { "PRESENT" } else { "absent" }
            ),
        );
        last_assigned = Some(assigned);
        if let Some(item) = ledger.get(&ledger_key).await.map_err(|e| e.to_string())? {
            say(
                narrate,
                format!("  grant ledger (moto DynamoDB): {}", ledger_line(&item)),
            );
        }
    }
    let assigned_after = last_assigned.unwrap_or(false);
    let ledger_after = ledger.get(&ledger_key).await.map_err(|e| e.to_string())?;
    let emails: Vec<Value> = moto::sent_emails(&opts.moto_endpoint)
        .await
        .into_iter()
        .filter(|m| m["body"].as_str().is_some_and(|b| b.contains(&email)))
        .collect();
    say(
        narrate,
        format!(
            "\nexecution {name}: {}{}",
            execution.status,
            execution
                .error
                .as_ref()
                .map(|e| format!(" ({})", e.error))
                .unwrap_or_default()
        ),
    );
    for m in &emails {
        say(
            narrate,
            format!(
                "e-mail (moto SES) to {}: {}",
                m["destinations"]["ToAddresses"],
                m["subject"].as_str().unwrap_or_default()
            ),
        );
    }
    let posts = slack.posts();
    let (alerts, thread): (Vec<Post>, Vec<Post>) =
        posts.into_iter().partition(|p| p.channel == ALERT_CHANNEL);
    let wall = started.elapsed();
    say(
        narrate,
        format!("\ndone in {:.1} s. Look next at:", wall.as_secs_f64()),
    );
    say(
        narrate,
        "  - the execution's history: the JSON printed by `break-glass-local serve` at GET /executions;",
    );
    say(
        narrate,
        "  - the e-mail above in full: moto's /moto-api/data.json, under ses -> RawMessage;",
    );
    say(
        narrate,
        "  - README.md, \"Deploying\", to run the same thing in AWS.",
    );
    Ok(Outcome {
        click_status,
        click_answer,
        execution,
        thread,
        alerts,
        assigned_while_holding,
        assigned_after,
        ledger_after,
        emails,
        reconciled: reconciler.runs(),
        wall,
        slack_user,
        url,
        control,
        opened_views: slack.opened_views(),
        published_views: slack.published_views(),
    })
}

/// The Slack drill's presses during the hold, each answer recorded.
async fn slack_presses(
    url: &str,
    slack: &SlackStandIn,
    requester: &str,
    clock: &dyn Clock,
    narrate: bool,
    control: &mut Vec<(String, String)>,
) -> Result<(), String> {
    let interactions = format!("{url}/slack/interactions");
    let button = newest_hold_button(&slack.posts()).ok_or("the granted message has no End/Extend buttons")?;
    let steps: [(&str, &str, &str); 4] = [
        (
            "stranger ends",
            STRANGER,
            break_glass_core::slack::control::END_ACTION,
        ),
        (
            "requester extends",
            requester,
            break_glass_core::slack::control::EXTEND_ACTION,
        ),
        (
            "requester extends again (same button)",
            requester,
            break_glass_core::slack::control::EXTEND_ACTION,
        ),
        (
            "requester extends past the cap",
            requester,
            break_glass_core::slack::control::EXTEND_ACTION,
        ),
    ];
    for (i, (step, who, action)) in steps.into_iter().enumerate() {
        // The last press uses the button the extension posted (from the new end).
        let value = if i == 3 {
            newest_hold_button(&slack.posts()).ok_or("the extension posted no buttons")?
        } else {
            button.clone()
        };
        say(narrate, format!("\n{who} presses {action} ({step})"));
        let (status, answer) = post_signed(
            &interactions,
            &interaction_body(&press(
                who,
                action,
                &value,
                &slack.response_url(&format!("press{i}")),
            )),
            clock.now().timestamp(),
        )
        .await?;
        say(
            narrate,
            format!("  Slack (only to {who}), HTTP {status}: {}", said(&answer)),
        );
        control.push((step.into(), said(&answer)));
    }
    // App Home: Slack checks the events URL, then the requester opens it.
    let challenge =
        serde_json::json!({"token": "x", "challenge": "3eZbrw1aBm2rZgRNFdxV", "type": "url_verification"});
    let (status, answer) = post_signed(
        &format!("{url}/slack/events"),
        &challenge.to_string(),
        clock.now().timestamp(),
    )
    .await?;
    control.push(("url_verification".into(), format!("HTTP {status}: {answer}")));
    let opened = serde_json::json!({
        "token": "x", "team_id": break_glass_testkit::slack::TEAM_ID, "api_app_id": "A0DEMO", "type": "event_callback",
        "event": {"type": "app_home_opened", "user": requester, "channel": "D0DEMO", "tab": "home", "event_ts": "1800000003.000100"},
        "event_id": "Ev0DEMO", "event_time": 1_800_000_003
    });
    let (status, _) = post_signed(
        &format!("{url}/slack/events"),
        &opened.to_string(),
        clock.now().timestamp(),
    )
    .await?;
    say(
        narrate,
        format!(
            "\n{requester} opens App Home: HTTP {status}, {} view(s) published",
            slack.published_views().len()
        ),
    );
    control.push(("app_home_opened".into(), format!("HTTP {status}")));
    say(narrate, format!("\n{requester} presses End access now"));
    let (status, answer) = post_signed(
        &interactions,
        &interaction_body(&press(
            requester,
            break_glass_core::slack::control::END_ACTION,
            &newest_hold_button(&slack.posts()).unwrap_or(button),
            &slack.response_url("end"),
        )),
        clock.now().timestamp(),
    )
    .await?;
    say(
        narrate,
        format!("  Slack (only to {requester}), HTTP {status}: {}", said(&answer)),
    );
    control.push(("requester ends".into(), said(&answer)));
    Ok(())
}
