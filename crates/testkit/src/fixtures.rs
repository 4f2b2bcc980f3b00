//! Execution documents for tests and benchmarks: one place that knows how to
//! build a valid request, so each test states only what it cares about.

use std::sync::LazyLock;

use break_glass_core::contract::{AccessRequest, Execution, Requester, SlackThread};
use break_glass_core::domain::AccessDuration;
use break_glass_core::policy::SlackWorkspaces;
use chrono::{DateTime, Utc};

/// Our workspace in tests: the stand-in's [`crate::slack::TEAM_ID`], no
/// Enterprise Grid organisation.
pub fn workspaces() -> &'static SlackWorkspaces {
    static WORKSPACES: LazyLock<SlackWorkspaces> = LazyLock::new(|| SlackWorkspaces {
        teams: [crate::slack::TEAM_ID.parse().unwrap()].into(),
        enterprises: Default::default(),
    });
    &WORKSPACES
}

/// A click by `slack_user` on message `1.1` in channel `C1` of team `T1`,
/// for account 123456789012, one hour.
pub fn request(
    slack_user: &str,
    permission_set_arn: &str,
    response_url: &str,
    at: DateTime<Utc>,
) -> AccessRequest {
    AccessRequest {
        requester: Requester {
            slack_user_id: slack_user.parse().unwrap(),
            slack_user_name: slack_user.to_lowercase(),
            slack_team_id: "T1".into(),
        },
        slack: SlackThread {
            channel_id: "C1".into(),
            message_ts: "1.1".into(),
            thread_ts: "1.1".into(),
            response_url: response_url.into(),
        },
        account_id: "123456789012".parse().unwrap(),
        permission_set_arn: permission_set_arn.parse().unwrap(),
        duration_seconds: AccessDuration::from_minutes(60).unwrap(),
        requested_at: at,
        reason: None,
        incident: None,
    }
}

/// The first execution for `request`, as access-requested starts it.
pub fn execution(request: AccessRequest) -> Execution {
    Execution::new(request.execution_name(1), request)
}
