//! Everything but the Break Glass button: `/break-glass` and the modal it
//! opens, the modal's submission, End access now and Extend, and App Home.
//! Each answer is an HTTP response Slack shows; nothing changes unless every
//! check passed.

use std::collections::BTreeMap;
use std::time::Duration;

use break_glass_core::access::{ControlError, Limits, Thread, end_hold, extend_hold, tell_channel, utc_time};
use break_glass_core::domain::{AccountId, PermissionSetArn, SlackChannelId};
use break_glass_core::ledger::LedgerKey;
use break_glass_core::ledger::hold::{ControlRefusal, Presser, active_holds};
use break_glass_core::ports::{IdentityCenter, Ledger};
use break_glass_core::retry::Deadline;
use break_glass_core::slack::control::{ControlAction, ControlClick, HoldRef, Opener, Submission, Who};
use break_glass_core::slack::views::{self, Choices, HomeGrant, Metadata, Prefill};
use serde_json::{Value, json};

use crate::{ControlConfig, Deps, StartResult};

/// How long everything behind one Slack answer may take: Slack gives 3 s,
/// and a `trigger_id` dies with them.
const BUDGET: Duration = Duration::from_millis(1500);
/// How long naming the permission sets may take before the modal opens
/// with their ids (the trigger dies 3 s after the click).
const NAMES_BUDGET: Duration = Duration::from_millis(500);

/// What access-requested needs for these, beyond a click's.
#[derive(Debug, Clone, Copy)]
pub struct ControlDeps<'a> {
    pub config: &'a ControlConfig,
    pub ledger: &'a dyn Ledger,
    /// Permission set names for the modal and App Home.
    pub identity_center: &'a dyn IdentityCenter,
}

/// An answer for Slack, and what to log.
#[derive(Debug, Clone, PartialEq)]
pub struct Answer {
    pub status: i64,
    /// JSON to send back (`None`: an empty 200, which closes a modal).
    pub body: Option<Value>,
    pub outcome: &'static str,
    pub detail: String,
}

impl Answer {
    fn ok(outcome: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status: 200,
            body: None,
            outcome,
            detail: detail.into(),
        }
    }
    fn ephemeral(outcome: &'static str, text: &str) -> Self {
        Self {
            status: 200,
            body: Some(break_glass_core::slack::message::ephemeral(text)),
            outcome,
            detail: text.to_string(),
        }
    }
    fn field_errors(outcome: &'static str, errors: BTreeMap<String, String>) -> Self {
        Self {
            status: 200,
            detail: format!("{errors:?}"),
            body: Some(views::errors_response(&errors)),
            outcome,
        }
    }
}

fn not_configured() -> Answer {
    Answer::ephemeral(
        "not_configured",
        ":warning: Break glass from Slack is not set up here (no grant ledger configured). Use the Break Glass button.",
    )
}

/// The modal's choices: the allow lists, named.
pub(crate) async fn choices(deps: &Deps<'_>, control: &ControlDeps<'_>) -> Choices {
    let policy = &deps.config.policy;
    let accounts = policy.accounts.as_ref().map(|accounts| {
        accounts
            .iter()
            .map(|a| (a.clone(), control.config.account_names.get(a).cloned()))
            .collect()
    });
    let permission_sets = match &policy.permission_sets {
        None => None,
        Some(sets) => {
            let named = sets.iter().map(|arn| async move {
                let name =
                    tokio::time::timeout(NAMES_BUDGET, control.identity_center.permission_set(arn)).await;
                let name = match name {
                    Ok(Ok(info)) => info.name,
                    _ => arn.permission_set_id().to_string(),
                };
                (arn.clone(), name)
            });
            Some(futures_util::future::join_all(named).await)
        }
    };
    Choices {
        accounts,
        permission_sets,
        durations: views::duration_steps(policy.default_duration, policy.max_duration),
        default_duration: policy.default_duration,
    }
}

/// Opens the modal for `who` with `trigger_id`, prefilled.
pub(crate) async fn open_modal(
    deps: &Deps<'_>,
    who: &Who,
    trigger_id: &str,
    prefill: impl FnOnce(&Choices) -> Prefill,
    channel: Option<&SlackChannelId>,
) -> Answer {
    let Some(control) = &deps.control else {
        return not_configured();
    };
    if let Err(violation) =
        deps.config
            .policy
            .admit_person(&who.workspace, who.api_app_id.as_ref(), &who.user_id)
    {
        return Answer::ephemeral(
            "refused",
            &format!(":no_entry: Break glass refused: {violation}. Nothing was granted."),
        );
    }
    let choices = choices(deps, control).await;
    let prefill = prefill(&choices);
    let metadata = Metadata {
        channel: channel.map(|c| c.as_str().to_string()),
    };
    let view = views::modal(&choices, &prefill, &metadata);
    match tokio::time::timeout(BUDGET, deps.slack.open_view(trigger_id, &view)).await {
        Ok(Ok(())) => Answer::ok("modal_opened", format!("for {}", who.user_id)),
        Ok(Err(error)) => {
            tracing::warn!(%error, "views.open failed");
            Answer::ephemeral(
                "modal_failed",
                ":warning: The break-glass form could not be opened (Slack refused it). Try again.",
            )
        }
        Err(_) => Answer::ephemeral(
            "modal_failed",
            ":warning: The break-glass form could not be opened in time. Try again.",
        ),
    }
}

/// App Home's button.
pub(crate) async fn open_from_home(deps: &Deps<'_>, opener: &Opener) -> Answer {
    open_modal(
        deps,
        &opener.who,
        &opener.trigger_id,
        |_| Prefill::default(),
        None,
    )
    .await
}

/// The modal, submitted: its fields checked, then the policy as for a
/// click, then the story's first message, then the execution.
pub(crate) async fn submit(deps: &Deps<'_>, submission: &Submission) -> Answer {
    let Some(control) = &deps.control else {
        return not_configured();
    };
    let who = &submission.who;
    let policy = &deps.config.policy;
    let general = |text: String| BTreeMap::from([(views::ACCOUNT.to_string(), text)]);
    if let Err(violation) = policy.admit_person(&who.workspace, who.api_app_id.as_ref(), &who.user_id) {
        return Answer::field_errors("refused", general(format!("Refused: {violation}.")));
    }
    let choices = choices(deps, control).await;
    let request = match views::validate(&submission.values, &choices) {
        Ok(request) => request,
        Err(errors) => return Answer::field_errors("invalid_submission", errors),
    };
    // The metadata is ours (set when the modal opened) and comes back
    // signed; still, only a channel id is taken from it.
    let metadata: Metadata = serde_json::from_str(&submission.private_metadata).unwrap_or_default();
    let command_channel = metadata.channel.and_then(|c| c.parse::<SlackChannelId>().ok());
    let channels: Vec<SlackChannelId> = command_channel
        .into_iter()
        .chain(control.config.channel.clone())
        .collect();
    let Some(first) = channels.first() else {
        return Answer::field_errors(
            "no_channel",
            general("There is no channel to post this in: run /break-glass in a channel.".into()),
        );
    };
    let mut click = who.as_click(
        request.account.clone(),
        request.permission_set.clone(),
        first.clone(),
        submission.view_id.clone(),
    );
    click.duration = Some(request.duration);
    click.reason = Some(request.reason.clone());
    click.incident = request.incident.clone();
    let decided = match crate::authorise(&click, deps).await {
        Ok(decided) => decided,
        Err(violation) => {
            tracing::warn!(outcome = "refused", reason = %violation, slack_user = %who.user_id, "modal refused by policy");
            return Answer::field_errors("refused", general(format!("Refused: {violation}.")));
        }
    };
    let (duration, rule) = decided;
    let text = format!(
        ":rotating_light: <@{}> is breaking glass: {} in {} for {}.",
        who.user_id,
        name_of(&choices, &request.permission_set),
        account_label(control.config, &request.account),
        duration
    );
    let mut blocks = vec![json!({"type": "section", "text": {"type": "mrkdwn", "text": text}})];
    if let Some(line) = views::why_line(Some(&request.reason), request.incident.as_deref()) {
        blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": line}]}));
    }
    let blocks = Value::Array(blocks);
    let mut posted = None;
    for channel in &channels {
        match deps.slack.start_thread(channel.as_str(), &text, &blocks).await {
            Ok(ts) => {
                posted = Some((channel.clone(), ts));
                break;
            }
            Err(error) => tracing::warn!(%error, channel = %channel, "could not post the request"),
        }
    }
    let Some((channel, ts)) = posted else {
        return Answer::field_errors(
            "no_channel",
            general("Could not post in the channel: invite the Break Glass app there, or run /break-glass where it is.".into()),
        );
    };
    click.channel_id = channel.clone();
    click.thread_ts = Some(ts.clone());
    let request = break_glass_core::contract::AccessRequest::from_click(&click, duration, deps.clock.now());
    let result = crate::start(&request, deps.executions).await;
    let reply = match &result {
        StartResult::Started { execution_name } => {
            tracing::info!(outcome = "started", execution = %execution_name, rule = rule.as_deref().unwrap_or("(allow lists)"), slack_user = %who.user_id, account = %request.account_id, "break glass started from the modal");
            None
        }
        StartResult::AlreadyRunning { execution_name } => {
            tracing::info!(outcome = "already_running", execution = %execution_name, "modal submitted again");
            Some("This request was already submitted; nothing new was started.".to_string())
        }
        StartResult::Failed(error) => {
            tracing::error!(outcome = "start_failed", %error, "could not start the execution");
            Some(":warning: Break glass could not be started (Step Functions did not accept it). Nothing was granted. Try again.".to_string())
        }
    };
    if let Some(reply) = reply {
        tell_channel(deps.slack, channel.as_str(), Some(&ts), &reply).await;
    }
    match result {
        StartResult::Failed(_) => Answer::field_errors(
            "start_failed",
            general("Break glass could not be started; nothing was granted. Try again.".into()),
        ),
        _ => Answer::ok("started", "from the modal"),
    }
}

fn name_of(choices: &Choices, arn: &PermissionSetArn) -> String {
    choices
        .permission_sets
        .as_ref()
        .and_then(|sets| sets.iter().find(|(a, _)| a == arn).map(|(_, n)| n.clone()))
        .unwrap_or_else(|| arn.permission_set_id().to_string())
}

fn account_label(config: &ControlConfig, account: &AccountId) -> String {
    match config.account_names.get(account) {
        Some(name) => format!("{name} ({})", account.as_str()),
        None => account.as_str().to_string(),
    }
}

/// End access now, or Extend.
pub(crate) async fn act(deps: &Deps<'_>, click: &ControlClick) -> Answer {
    let Some(control) = &deps.control else {
        return not_configured();
    };
    let who = &click.who;
    // Workspace and app as for anything else; not the user list: the
    // ledger decides who may act on a grant (its requester, the admins).
    if let Err(violation) = deps
        .config
        .policy
        .admit_from(&who.workspace, who.api_app_id.as_ref())
    {
        return reply(
            deps,
            click,
            "refused",
            &format!(":no_entry: Refused: {violation}. Nothing changed."),
        )
        .await;
    }
    let hold = &click.hold;
    let key = LedgerKey {
        user_id: hold.user.clone(),
        account_id: hold.account.clone(),
        permission_set_arn: hold.permission_set.clone(),
    };
    let presser = Presser {
        slack_user_id: who.user_id.as_str(),
        is_admin: control.config.admins.contains(&who.user_id),
    };
    let clock = deps.clock;
    let limits = Limits::DEFAULT.until(Deadline::after(clock, BUDGET), clock);
    let mut new_until = None;
    let (outcome, text, thread_text, thread): (&'static str, String, Option<String>, Thread) = match click
        .action
    {
        ControlAction::End => match end_hold(control.ledger, clock, limits, &key, &hold.execution, presser)
            .await
        {
            Ok((token, thread)) => {
                if let Some(token) = token {
                    match deps
                        .executions
                        .send_task_success(&token, r#"{"woken":"end"}"#)
                        .await
                    {
                        Ok(true) => {}
                        // The hold woke on its own just now: it reads the end.
                        Ok(false) => tracing::info!("the hold had already woken; it will read the end"),
                        Err(error) => tracing::warn!(%error, "could not wake the hold; it ends at its time"),
                    }
                }
                (
                    "ended",
                    "Ending access now: the revoke runs in a few seconds, then the report as usual."
                        .to_string(),
                    Some(format!(
                        ":octagonal_sign: <@{}> ended access early; revoking now.",
                        who.user_id
                    )),
                    thread,
                )
            }
            Err(e) => refusal(e),
        },
        ControlAction::Extend => {
            let longest = deps.config.policy.max_duration.as_chrono();
            let by = control.config.extend.as_chrono();
            match extend_hold(
                control.ledger,
                clock,
                limits,
                &key,
                &hold.execution,
                presser,
                hold.until,
                by,
                longest,
            )
            .await
            {
                Ok((until, moved, thread)) => {
                    let when = utc_time(until, clock.now());
                    new_until = Some(until);
                    if moved {
                        (
                            "extended",
                            format!("Extended: access now ends at {when}."),
                            Some(format!(
                                ":hourglass_flowing_sand: <@{}> extended access by {}: it now ends at {when}.",
                                who.user_id, control.config.extend
                            )),
                            thread,
                        )
                    } else {
                        (
                            "already_extended",
                            format!("Already extended: access ends at {when}."),
                            None,
                            None,
                        )
                    }
                }
                Err(e) => refusal(e),
            }
        }
    };
    if let (Some(thread_text), Some((channel, ts))) = (&thread_text, &thread) {
        let blocks = match click.action {
            ControlAction::Extend => {
                // The new end gets its own buttons: the old ones extend from
                // the old end, so pressing them again changes nothing.
                let next = HoldRef {
                    until: new_until.unwrap_or(hold.until),
                    ..hold.clone()
                };
                Some(views::granted_blocks(thread_text, &next, control.config.extend))
            }
            ControlAction::End => None,
        };
        let posted = match blocks {
            Some(blocks) => {
                deps.slack
                    .post_blocks(channel, Some(ts), thread_text, &blocks)
                    .await
            }
            None => deps.slack.post_message(channel, Some(ts), thread_text).await,
        };
        if let Err(error) = posted {
            tracing::warn!(%error, "could not tell the thread");
        }
    }
    tracing::info!(outcome, execution = %hold.execution, slack_user = %who.user_id, "hold control");
    let answer = reply(deps, click, outcome, &text).await;
    if click.response_url.is_none() {
        // From App Home: show it as it now stands.
        publish_home(deps, who).await;
    }
    answer
}

fn refusal(e: ControlError) -> (&'static str, String, Option<String>, Thread) {
    match e {
        ControlError::Refused(refusal) => {
            let outcome = match refusal {
                ControlRefusal::NotYours => "not_yours",
                ControlRefusal::PastCap { .. } => "past_cap",
                ControlRefusal::AlreadyEnding(_) => "already_ending",
                _ => "past_hold",
            };
            (
                outcome,
                format!(":no_entry: {refusal}. Nothing changed."),
                None,
                None,
            )
        }
        ControlError::Ledger(error) => {
            tracing::error!(%error, "the grant ledger could not be changed");
            (
                "ledger_unavailable",
                ":warning: That could not be done just now (the grant ledger did not answer). Nothing changed; try again."
                    .to_string(),
                None,
                None,
            )
        }
    }
}

/// Tells the presser, privately: through the message's `response_url`, as
/// Block Kit ignores the HTTP body.
async fn reply(deps: &Deps<'_>, click: &ControlClick, outcome: &'static str, text: &str) -> Answer {
    if let Some(url) = &click.response_url {
        crate::answer_privately(deps.slack, url, text).await;
    }
    Answer::ephemeral(outcome, text)
}

/// App Home for `who`: their running grants, from the ledger.
pub(crate) async fn publish_home(deps: &Deps<'_>, who: &Who) -> Answer {
    let Some(control) = &deps.control else {
        return Answer::ok("ignored", "no grant ledger configured");
    };
    if let Err(violation) = deps
        .config
        .policy
        .admit_from(&who.workspace, who.api_app_id.as_ref())
    {
        return Answer::ok("refused", violation.to_string());
    }
    let items = match control.ledger.open_items().await {
        Ok(items) => items,
        Err(error) => {
            tracing::warn!(%error, "could not read the grant ledger for App Home");
            return Answer::ok("ledger_unavailable", error.to_string());
        }
    };
    let choices = choices(deps, control).await;
    let grants: Vec<HomeGrant> = active_holds(&items, who.user_id.as_str())
        .into_iter()
        .map(|(item, holder)| HomeGrant {
            hold: HoldRef {
                execution: holder.execution_name.clone(),
                user: item.key.user_id.clone(),
                account: item.key.account_id.clone(),
                permission_set: item.key.permission_set_arn.clone(),
                until: holder.expires_at,
            },
            account_label: account_label(control.config, &item.key.account_id),
            permission_set_label: name_of(&choices, &item.key.permission_set_arn),
            reason: holder.reason.clone(),
        })
        .collect();
    let view = views::home(&grants, control.config.extend, deps.clock.now());
    match deps.slack.publish_home(&who.user_id, &view).await {
        Ok(()) => Answer::ok("home_published", format!("{} grants", grants.len())),
        Err(error) => {
            tracing::warn!(%error, "views.publish failed");
            Answer::ok("home_failed", error.to_string())
        }
    }
}
