//! access-requested: the Slack interactivity endpoint.
//!
//! Verify, parse, authorise, start exactly one execution, answer Slack. The
//! handler never fails as a Lambda: every outcome, including refusals, is an
//! HTTP answer Slack can show, and nothing is started unless every check
//! passed.

mod config;
mod control;

use std::time::Duration;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::{HeaderMap, HeaderValue, header::CONTENT_TYPE};
use base64::Engine as _;
use break_glass_core::access::{IdentityError, resolve_requester};
use break_glass_core::clock::Clock;
use break_glass_core::contract::{AccessRequest, Execution};
use break_glass_core::domain::AccessDuration;
use break_glass_core::policy::PolicyViolation;
use break_glass_core::ports::{
    Directory, ExecutionStatus, Executions, IdentityCenter, PortError, PortErrorKind, Slack, StartOutcome,
};
use break_glass_core::requester::{
    LookupCache, Member, PolicyRules, PolicyUnavailable, RulesRefusal, decide as decide_by_rules,
    member_groups,
};
use break_glass_core::retry::Backoff;
use break_glass_core::rules::{Allowed, RuleRefusal, Wanted};
use break_glass_core::slack::payload::PayloadShape;
use break_glass_core::slack::signature::{SIGNATURE_HEADER, TIMESTAMP_HEADER, find_header};
use break_glass_core::slack::{
    BreakGlassClick, Interaction, PayloadError, SignatureError, SigningSecret, message, parse_interaction,
    verify_request,
};
pub use config::{Config, ControlConfig, RulesConfig};
pub use control::{Answer, ControlDeps};

/// How many grants one message can have started for one person before we
/// stop looking for a free execution name (each is one short-lived grant).
const MAX_GENERATIONS: u32 = 50;

/// How long checking the clicker against the rules may take (Slack profile,
/// Identity Store user and groups, the policy when its minute is up): Slack
/// wants its answer within 3 s, and starting the execution and answering
/// through `response_url` need the rest. Past it the click is refused.
pub const RULES_CHECK_BUDGET: Duration = Duration::from_millis(1500);

/// Everything the handler needs, built once per cold start.
#[derive(Debug)]
pub struct Deps<'a> {
    pub config: &'a Config,
    pub secret: &'a SigningSecret,
    pub executions: &'a dyn Executions,
    /// Answers through `response_url`; with rules, also reads the clicker's
    /// profile (`users.info`, so it carries the bot token).
    pub slack: &'a dyn Slack,
    pub clock: &'a dyn Clock,
    /// What deciding by the policy's rules needs; `None` without rules.
    pub rules: Option<RuleDeps<'a>>,
    /// The slash command, the modal, End and Extend, App Home; `None` when
    /// `config.control` is.
    pub control: Option<ControlDeps<'a>>,
}

/// The policy's rules and where the clicker is looked up.
#[derive(Debug, Clone, Copy)]
pub struct RuleDeps<'a> {
    pub policy: &'a PolicyRules,
    pub directory: &'a dyn Directory,
    /// Permission set names, for rules that name one by name.
    pub identity_center: &'a dyn IdentityCenter,
    /// Who clicked and their groups, for a minute (per cold start).
    pub cache: &'a LookupCache,
}

/// What happened to a request; each maps to one HTTP answer.
#[derive(Debug)]
pub enum Outcome {
    BadEncoding,
    Unauthorized(SignatureError),
    Malformed(PayloadError),
    Ignored(String),
    /// Anything but a Break Glass click (the command, the modal, End,
    /// Extend, App Home), answered already.
    Answered(Box<Answer>),
    Refused(Box<BreakGlassClick>, PolicyViolation),
    /// Every check passed and we asked Step Functions.
    Attempted {
        shape: PayloadShape,
        request: Box<AccessRequest>,
        /// The rule that allowed it, when rules decide.
        rule: Option<String>,
        result: StartResult,
    },
}

#[derive(Debug)]
pub enum StartResult {
    Started {
        execution_name: String,
    },
    /// A repeat click: this request's execution is already running.
    AlreadyRunning {
        execution_name: String,
    },
    Failed(PortError),
}

/// The Lambda entry point: an API Gateway HTTP API (or function URL) v2 event.
pub async fn handle(event: ApiGatewayV2httpRequest, deps: &Deps<'_>) -> ApiGatewayV2httpResponse {
    let headers: Vec<(&str, &[u8])> = event
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    let raw = event.body.as_deref().unwrap_or_default();
    let route = Route::of(event.raw_path.as_deref().unwrap_or_default());
    let outcome = if event.is_base64_encoded {
        match base64::engine::general_purpose::STANDARD.decode(raw) {
            Ok(body) => route.decide(&headers, &body, deps).await,
            Err(_) => Outcome::BadEncoding,
        }
    } else {
        route.decide(&headers, raw.as_bytes(), deps).await
    };
    log(&outcome);
    respond(&outcome, deps).await
}

/// Which of Slack's three request URLs a request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// `/slack/interactions` (and anything else, as before there were three).
    Interactions,
    /// `/slack/commands`: `/break-glass`.
    Commands,
    /// `/slack/events`: the Events API.
    Events,
}

impl Route {
    pub fn of(path: &str) -> Self {
        if path.ends_with("/slack/commands") {
            Self::Commands
        } else if path.ends_with("/slack/events") {
            Self::Events
        } else {
            Self::Interactions
        }
    }

    /// Verify first, whatever the route; then parse and act.
    pub async fn decide(self, headers: &[(&str, &[u8])], body: &[u8], deps: &Deps<'_>) -> Outcome {
        match self {
            Self::Interactions => decide(headers, body, deps).await,
            Self::Commands | Self::Events => {
                let timestamp = find_header(headers.iter().copied(), TIMESTAMP_HEADER);
                let signature = find_header(headers.iter().copied(), SIGNATURE_HEADER);
                if let Err(err) = verify_request(deps.secret, timestamp, signature, body, deps.clock.now()) {
                    return Outcome::Unauthorized(err);
                }
                if self == Self::Commands {
                    command(body, deps).await
                } else {
                    event(body, deps).await
                }
            }
        }
    }
}

async fn command(body: &[u8], deps: &Deps<'_>) -> Outcome {
    let command = match break_glass_core::slack::control::parse_command(body) {
        Ok(command) => command,
        Err(err) => return Outcome::Malformed(err),
    };
    let text = command.text.clone();
    Outcome::Answered(Box::new(
        control::open_modal(
            deps,
            &command.who,
            &command.trigger_id,
            |choices| break_glass_core::slack::views::parse_prefill(&text, choices),
            command.channel_id.as_ref(),
        )
        .await,
    ))
}

async fn event(body: &[u8], deps: &Deps<'_>) -> Outcome {
    use break_glass_core::slack::control::{Event, parse_event};
    match parse_event(body) {
        Err(err) => Outcome::Malformed(err),
        Ok(Event::Ignored(reason)) => Outcome::Ignored(reason),
        Ok(Event::UrlVerification { challenge }) => Outcome::Answered(Box::new(Answer {
            status: 200,
            body: Some(serde_json::json!({ "challenge": challenge })),
            outcome: "url_verification",
            detail: String::new(),
        })),
        Ok(Event::HomeOpened { who }) => Outcome::Answered(Box::new(control::publish_home(deps, &who).await)),
    }
}

/// Verify, parse, authorise, start: in that order, stopping at the first no.
pub async fn decide(headers: &[(&str, &[u8])], body: &[u8], deps: &Deps<'_>) -> Outcome {
    let timestamp = find_header(headers.iter().copied(), TIMESTAMP_HEADER);
    let signature = find_header(headers.iter().copied(), SIGNATURE_HEADER);
    if let Err(err) = verify_request(deps.secret, timestamp, signature, body, deps.clock.now()) {
        return Outcome::Unauthorized(err);
    }
    let click = match parse_interaction(body) {
        Ok(Interaction::BreakGlass(click)) => click,
        Ok(Interaction::Ignored { reason }) => return Outcome::Ignored(reason),
        Ok(Interaction::Control(click)) => {
            return Outcome::Answered(Box::new(control::act(deps, &click).await));
        }
        Ok(Interaction::OpenModal(opener)) => {
            return Outcome::Answered(Box::new(control::open_from_home(deps, &opener).await));
        }
        Ok(Interaction::Submission(submission)) => {
            return Outcome::Answered(Box::new(control::submit(deps, &submission).await));
        }
        Err(err) => return Outcome::Malformed(err),
    };
    // REQUIRE_REASON: a button asks in the modal first, prefilled with what
    // the button names (the modal's submission is checked in full).
    if deps.config.control.as_ref().is_some_and(|c| c.require_reason) {
        // Without a trigger nothing can ask: refuse rather than start
        // without the reason the deployment requires.
        if click.trigger_id.is_none() || deps.control.is_none() {
            return Outcome::Refused(click, PolicyViolation::ReasonRequired);
        }
        return ask_for_a_reason(&click, deps).await;
    }
    let decided = authorise(&click, deps).await;
    let (duration, rule) = match decided {
        Ok(decided) => decided,
        // A rule would allow it with a reason: ask for one in the modal
        // rather than refuse (its submission is checked in full again).
        Err(PolicyViolation::Rules(RulesRefusal::Refused(RuleRefusal::ReasonRequired { .. })))
            if deps.control.is_some() && click.trigger_id.is_some() =>
        {
            return ask_for_a_reason(&click, deps).await;
        }
        Err(violation) => return Outcome::Refused(click, violation),
    };
    let request = AccessRequest::from_click(&click, duration, deps.clock.now());
    let result = start(&request, deps.executions).await;
    Outcome::Attempted {
        shape: click.shape,
        request: Box::new(request),
        rule,
        result,
    }
}

/// Opens the modal for a button click, prefilled with what the button
/// names: the reason is asked before anything starts.
async fn ask_for_a_reason(click: &BreakGlassClick, deps: &Deps<'_>) -> Outcome {
    let Some(trigger_id) = &click.trigger_id else {
        return Outcome::Ignored("no trigger to open the modal with".into());
    };
    let who = break_glass_core::slack::control::Who {
        team_id: click.team_id.clone(),
        workspace: click.workspace.clone(),
        api_app_id: click.api_app_id.clone(),
        user_id: click.user_id.clone(),
        user_name: click.user_name.clone(),
    };
    let prefill = break_glass_core::slack::views::Prefill {
        account: Some(click.account_id.clone()),
        permission_set: Some(click.permission_set_arn.clone()),
        duration: click.duration,
        reason: None,
    };
    Outcome::Answered(Box::new(
        control::open_modal(deps, &who, trigger_id, |_| prefill, Some(&click.channel_id)).await,
    ))
}

/// The policy's answer for a click (or a modal's request): the duration
/// granted and the rule that allowed it (`None` for the allow lists).
pub(crate) async fn authorise(
    click: &BreakGlassClick,
    deps: &Deps<'_>,
) -> Result<(AccessDuration, Option<String>), PolicyViolation> {
    match &deps.rules {
        None if deps.config.rules.is_none() => deps.config.policy.authorise(click).map(|d| (d, None)),
        // Configured for rules but not given them: refuse rather than fall
        // back to lists that may not even be set.
        None => Err(not_wired()),
        Some(rules) => match tokio::time::timeout(RULES_CHECK_BUDGET, by_rules(click, rules, deps)).await {
            Ok(decided) => decided.map(|(d, allowed)| (d, allowed.map(|a| a.rule))),
            Err(_) => Err(PolicyViolation::CheckTimedOut),
        },
    }
}

/// A deployment mistake (rules without their configuration, or the other
/// way round): nobody is let in.
fn not_wired() -> PolicyViolation {
    PolicyViolation::PolicyUnavailable(PolicyUnavailable::Unreadable(PortError::new(
        PortErrorKind::Invalid,
        "access-requested",
        "rules",
        "the rules and their configuration do not match",
    )))
}

/// The click by the policy's rules: the checks that need no lookup first
/// (workspace, app, the lists that are set), then who the clicker is in
/// Identity Center and their groups (remembered for a minute), then the
/// rules. Anything that cannot be read refuses.
async fn by_rules(
    click: &BreakGlassClick,
    rules: &RuleDeps<'_>,
    deps: &Deps<'_>,
) -> Result<(AccessDuration, Option<Allowed>), PolicyViolation> {
    let policy = &deps.config.policy;
    let clock = deps.clock;
    // Retries must fit in the budget: one short round at most.
    let backoff = Backoff::API.within(Duration::from_millis(600));
    policy.admit(click)?;
    let Some(set) = rules
        .policy
        .current(clock, backoff)
        .await
        .map_err(PolicyViolation::PolicyUnavailable)?
    else {
        return policy.authorise(click).map(|d| (d, None));
    };
    let Some(identity) = deps.config.identity() else {
        return Err(not_wired());
    };
    let now = clock.now();
    let member = match rules.cache.member(&click.user_id, now) {
        Some(member) => member,
        None => {
            let (user, email) =
                resolve_requester(deps.slack, rules.directory, identity, &click.user_id, clock)
                    .await
                    .map_err(|e| match e {
                        IdentityError::Unavailable(p) => PolicyViolation::Rules(RulesRefusal::Unreadable(p)),
                        other => PolicyViolation::Requester(other),
                    })?;
            let group_ids = member_groups(rules.directory, clock, backoff, &user.user_id)
                .await
                .map_err(|e| PolicyViolation::Rules(RulesRefusal::Unreadable(e)))?;
            let member = Member {
                user,
                email,
                group_ids,
            };
            rules.cache.remember_member(&click.user_id, &member, now);
            member
        }
    };
    let wanted = Wanted {
        account: &click.account_id,
        permission_set: &click.permission_set_arn,
        permission_set_name: None,
        duration: click.duration,
        // A button click says no reason (rules that require one do not
        // cover it); the modal's does.
        reason: click.reason.as_deref(),
    };
    let allowed = decide_by_rules(
        &set,
        &member,
        wanted,
        policy.default_duration,
        rules.directory,
        rules.identity_center,
        clock,
        backoff,
        Some(rules.cache),
    )
    .await
    .map_err(PolicyViolation::Rules)?;
    Ok((allowed.duration, Some(allowed)))
}

/// Starts the request's execution under the first name that is free or
/// still running: a running one means this click is a repeat.
pub(crate) async fn start(request: &AccessRequest, executions: &dyn Executions) -> StartResult {
    for generation in 1..=MAX_GENERATIONS {
        let execution_name = request.execution_name(generation);
        let input = match serde_json::to_string(&Execution::new(&execution_name, request.clone())) {
            Ok(input) => input,
            Err(e) => {
                return StartResult::Failed(PortError::new(
                    PortErrorKind::Invalid,
                    "states",
                    "StartExecution",
                    e.to_string(),
                ));
            }
        };
        match executions.start(&execution_name, &input).await {
            Ok(StartOutcome::Started { .. }) => return StartResult::Started { execution_name },
            Ok(StartOutcome::AlreadyExists) => match executions.status(&execution_name).await {
                Ok(Some(ExecutionStatus::Ended(_))) => continue,
                // Running, or not yet visible: either way this click repeats it.
                Ok(Some(ExecutionStatus::Running) | None) => {
                    return StartResult::AlreadyRunning { execution_name };
                }
                Err(error) => return StartResult::Failed(error),
            },
            Err(error) => return StartResult::Failed(error),
        }
    }
    StartResult::Failed(PortError::new(
        PortErrorKind::Other,
        "states",
        "StartExecution",
        format!("{MAX_GENERATIONS} grants already came from this message; post a new one"),
    ))
}

fn describe(request: &AccessRequest) -> String {
    format!(
        "{} as {}, for {}",
        request.account_id,
        request.permission_set_arn.permission_set_id(),
        request.duration_seconds
    )
}

/// The clicker-facing words for an outcome, when there are any.
pub fn ephemeral_text(outcome: &Outcome) -> Option<String> {
    match outcome {
        Outcome::Refused(_, violation) => Some(format!(
            ":no_entry: Break glass refused: {violation}. Nothing was granted."
        )),
        Outcome::Attempted { request, result, .. } => Some(match result {
            StartResult::Started { .. } => format!(
                ":rotating_light: Breaking glass: {}. Updates follow in this message's thread.",
                describe(request)
            ),
            StartResult::AlreadyRunning { .. } => format!(
                "Break glass for {} is already in progress from an earlier click; nothing new was started.",
                describe(request)
            ),
            StartResult::Failed(_) => {
                ":warning: Break glass could not be started (Step Functions did not accept it). \
                 Nothing was granted. Try again in a moment; if it keeps failing, tell the platform team."
                    .to_string()
            }
        }),
        _ => None,
    }
}

async fn respond(outcome: &Outcome, deps: &Deps<'_>) -> ApiGatewayV2httpResponse {
    match outcome {
        Outcome::BadEncoding => text(400, "request body is not valid base64"),
        // Whoever fails the signature check learns nothing from the answer
        // (not which header, not how far off our clock is); the log has the
        // precise reason.
        Outcome::Unauthorized(_) => text(401, "invalid request signature"),
        Outcome::Malformed(err) => text(400, &format!("malformed interaction: {err}")),
        Outcome::Ignored(_) => text(200, ""),
        Outcome::Answered(answer) => match &answer.body {
            Some(body) => json(answer.status, body),
            None => text(answer.status, ""),
        },
        Outcome::Refused(..) | Outcome::Attempted { .. } => {
            let words = ephemeral_text(outcome).unwrap_or_default();
            // Block Kit ignores the body of our HTTP answer: its clicker is
            // told through response_url. Legacy attachments read the body, so
            // posting to response_url as well would say everything twice.
            if let Some(url) = block_kit_response_url(outcome) {
                answer_privately(deps.slack, url, &words).await;
            }
            json(200, &message::ephemeral(&words))
        }
    }
}

/// Tells the clicker alone through `response_url`, within 1.5 s (Slack's
/// 3 s include everything else); a failure is logged, never fatal.
pub(crate) async fn answer_privately(slack: &dyn Slack, url: &str, text: &str) {
    match tokio::time::timeout(Duration::from_millis(1500), slack.respond_ephemeral(url, text)).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, "could not answer through response_url"),
        Err(_) => tracing::warn!("response_url answer timed out"),
    }
}

fn block_kit_response_url(outcome: &Outcome) -> Option<&str> {
    match outcome {
        Outcome::Refused(click, _) if click.shape == PayloadShape::BlockActions => Some(&click.response_url),
        Outcome::Attempted {
            shape: PayloadShape::BlockActions,
            request,
            ..
        } => Some(&request.slack.response_url),
        _ => None,
    }
}

fn log(outcome: &Outcome) {
    match outcome {
        Outcome::BadEncoding => tracing::warn!(outcome = "bad_encoding", "refused: body is not valid base64"),
        Outcome::Unauthorized(err) => {
            tracing::warn!(outcome = "unauthorized", reason = %err, "refused: Slack signature check failed");
        }
        Outcome::Malformed(err) => {
            tracing::warn!(outcome = "malformed", reason = %err, "refused: malformed payload")
        }
        Outcome::Ignored(reason) => tracing::info!(outcome = "ignored", %reason, "not a break glass click"),
        Outcome::Answered(answer) => {
            tracing::info!(outcome = answer.outcome, detail = %answer.detail, "answered")
        }
        Outcome::Refused(click, violation) => tracing::warn!(
            outcome = "refused",
            reason = %violation,
            slack_user = %click.user_id,
            slack_team = %click.team_id,
            account = %click.account_id,
            permission_set = %click.permission_set_arn,
            "refused by policy"
        ),
        Outcome::Attempted {
            request,
            result,
            rule,
            ..
        } => match result {
            StartResult::Started { execution_name } => tracing::info!(
                outcome = "started",
                execution = %execution_name,
                rule = rule.as_deref().unwrap_or("(allow lists)"),
                slack_user = %request.requester.slack_user_id,
                account = %request.account_id,
                permission_set = %request.permission_set_arn,
                duration_seconds = request.duration_seconds.seconds(),
                "break glass started"
            ),
            StartResult::AlreadyRunning { execution_name } => tracing::info!(
                outcome = "already_running",
                execution = %execution_name,
                slack_user = %request.requester.slack_user_id,
                "repeat click; execution already running"
            ),
            StartResult::Failed(error) => tracing::error!(
                outcome = "start_failed",
                %error,
                slack_user = %request.requester.slack_user_id,
                account = %request.account_id,
                "could not start the execution"
            ),
        },
    }
}

fn text(status: i64, body: &str) -> ApiGatewayV2httpResponse {
    response(status, "text/plain; charset=utf-8", body.to_string())
}

fn json(status: i64, body: &serde_json::Value) -> ApiGatewayV2httpResponse {
    response(status, "application/json", body.to_string())
}

fn response(status: i64, content_type: &'static str, body: String) -> ApiGatewayV2httpResponse {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    let mut response = ApiGatewayV2httpResponse::default();
    response.status_code = status;
    response.headers = headers;
    response.body = Some(Body::Text(body));
    response
}
