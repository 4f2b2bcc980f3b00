//! `doctor`: checks a deployment without granting anything. What to check
//! follows from the [`Settings`] (the Terraform module's outputs or the
//! functions' environment); every question goes through the read-only
//! [`Deployment`] port; each answer becomes a [`Finding`], one line that
//! says what is fine or what to fix. Checks run side by side, each within
//! its own time limit, so one that fails or hangs hides none of the others.
//! Secret values never reach a finding.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::future::Future;
use std::time::Duration;

use futures_util::future::{join_all, join5};
use serde_json::Value;
use thiserror::Error;

pub mod policy;

use crate::config::{self, ConfigError, Env, SecretSource, SlackSettings};
use crate::domain::{AccountId, InstanceArn, PermissionSetArn};
use crate::ports::{AuditAccessError, Deployment, PortError, PortErrorKind};

/// How long one call may take before its check is reported as not
/// answering: long enough for the SDK's own retries, short enough that the
/// whole run stays under a minute.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(20);

/// What the doctor checks, read like the functions read it.
#[derive(Debug, Clone)]
pub struct Settings {
    pub signing_secret: SecretSource,
    /// The bot token, and the Slack Web API it is tried against.
    pub slack: SlackSettings,
    pub instance: InstanceArn,
    pub accounts: BTreeSet<AccountId>,
    pub permission_sets: BTreeSet<PermissionSetArn>,
    pub sender: String,
    /// `None`: the report reads the deploying account's CloudTrail.
    pub audit_role_name: Option<String>,
    /// The session revocation policy revoke-access writes through the audit
    /// role; `None` when sessions are not ended (no audit role, or
    /// `END_SESSIONS_ON_REVOKE=false`).
    pub session_policy_name: Option<String>,
    pub state_machine_arn: String,
    /// The definition's template values (`grant_access_arn`, …) when known
    /// (the `function_arns` output); otherwise read off the deployed
    /// definition and checked for consistency.
    pub task_arns: BTreeMap<String, String>,
    /// The functions' region (`AWS_REGION`, output `region`).
    pub region: Option<String>,
    /// Identity Center's home region (`SSO_REGION`, output `sso_region`);
    /// `None`: the functions' region.
    pub sso_region: Option<String>,
}

impl Settings {
    /// From the functions' variables, as their `Config::from_env` reads
    /// them (the union of the five functions' environments).
    pub fn from_env(env: &dyn Env) -> Result<Self, ConfigError> {
        let instance: InstanceArn = config::required_parsed(env, "SSO_INSTANCE_ARN")?;
        let permission_sets: BTreeSet<PermissionSetArn> =
            config::required_allow_list(env, "ALLOWED_PERMISSION_SET_ARNS")?;
        if let Some(foreign) = permission_sets.iter().find(|ps| !ps.belongs_to(&instance)) {
            return Err(ConfigError::Invalid {
                var: "ALLOWED_PERMISSION_SET_ARNS",
                reason: format!(
                    "{foreign} is not in SSO_INSTANCE_ARN's instance {}",
                    instance.instance_id()
                ),
            });
        }
        let state_machine_arn = config::required(env, "STATE_MACHINE_ARN")?;
        if !state_machine_arn.contains(":stateMachine:") {
            return Err(ConfigError::Invalid {
                var: "STATE_MACHINE_ARN",
                reason: "expected a state machine ARN (arn:aws:states:…:stateMachine:…)".into(),
            });
        }
        let mut task_arns = BTreeMap::new();
        for (placeholder, var) in TASK_VARIABLES {
            if let Some(arn) = config::optional(env, var) {
                task_arns.insert(placeholder.to_string(), arn);
            }
        }
        let audit_role_name = config::optional(env, "AUDIT_ROLE_NAME");
        let end_sessions = config::parsed::<bool>(env, "END_SESSIONS_ON_REVOKE")?.unwrap_or(true);
        let session_policy_name = (audit_role_name.is_some() && end_sessions).then(|| {
            config::optional(env, "SESSION_REVOCATION_POLICY_NAME")
                .unwrap_or_else(|| crate::sessions::DEFAULT_POLICY_NAME.to_string())
        });
        Ok(Self {
            session_policy_name,
            signing_secret: config::secret(env, "SLACK_SIGNING_SECRET_ARN", "SLACK_SIGNING_SECRET")?,
            slack: SlackSettings::from_env(env)?,
            instance,
            accounts: config::required_allow_list(env, "ALLOWED_ACCOUNT_IDS")?,
            permission_sets,
            sender: config::required(env, "REPORT_SENDER")?,
            audit_role_name,
            state_machine_arn,
            task_arns,
            region: config::optional(env, "AWS_REGION")
                .or_else(|| config::optional(env, "AWS_DEFAULT_REGION")),
            sso_region: config::optional(env, "SSO_REGION"),
        })
    }

    /// From `terraform output -json`. `env` supplies what the module does
    /// not output: `SLACK_API_URL` (a stand-in in tests), and `SSO_REGION`
    /// when the module has no `sso_region` output.
    pub fn from_outputs(json: &str, env: &dyn Env) -> Result<Self, OutputsError> {
        let root: serde_json::Map<String, Value> =
            serde_json::from_str(json).map_err(|e| OutputsError::NotJson(e.to_string()))?;
        let outputs = module_outputs(root);
        let mut vars: BTreeMap<&'static str, String> = BTreeMap::new();
        for (output, var) in OUTPUT_VARIABLES {
            let Some(entry) = outputs.get(*output) else {
                continue;
            };
            let value = entry.get("value").unwrap_or(entry);
            let text = match value {
                Value::Null => continue,
                Value::String(s) => s.clone(),
                Value::Array(items) => items
                    .iter()
                    .map(|i| i.as_str().map(str::to_string).unwrap_or_else(|| i.to_string()))
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            vars.insert(var, text);
        }
        // SLACK_API_URL is no output: the environment says it. An sso_region
        // output wins over SSO_REGION.
        for (var, env_wins) in [("SLACK_API_URL", true), ("SSO_REGION", false)] {
            if let Some(value) = config::optional(env, var)
                && (env_wins || !vars.contains_key(var))
            {
                vars.insert(var, value);
            }
        }
        let lookup = |name: &str| vars.get(name).cloned();
        let mut settings = Self::from_env(&lookup).map_err(OutputsError::from_config)?;
        if let Some(arns) = outputs
            .get("function_arns")
            .map(|e| e.get("value").unwrap_or(e))
            .and_then(Value::as_object)
        {
            for (placeholder, function) in TASK_FUNCTIONS {
                if let Some(arn) = arns.get(*function).and_then(Value::as_str) {
                    settings
                        .task_arns
                        .insert(placeholder.to_string(), arn.to_string());
                }
            }
        }
        Ok(settings)
    }
}

/// The module's outputs, in any of the shapes a root module shows them:
/// `terraform output -json` where the module is the root (`{name: {value}}`),
/// `terraform output -json NAME` of a root output holding the whole module
/// (`output "break_glass" { value = module.break_glass }`: `{name: value}`),
/// or `terraform output -json` of a root with such an output.
fn module_outputs(root: serde_json::Map<String, Value>) -> serde_json::Map<String, Value> {
    if root.contains_key("state_machine_arn") {
        return root;
    }
    let mut holders = root.values().filter_map(|entry| {
        entry
            .get("value")
            .unwrap_or(entry)
            .as_object()
            .filter(|o| o.contains_key("state_machine_arn"))
    });
    match (holders.next(), holders.next()) {
        (Some(module), None) => module.clone(),
        _ => root,
    }
}

/// Terraform output → the variable the functions read it from.
const OUTPUT_VARIABLES: &[(&str, &str)] = &[
    ("signing_secret_arn", "SLACK_SIGNING_SECRET_ARN"),
    ("bot_token_secret_arn", "SLACK_BOT_TOKEN_ARN"),
    ("sso_instance_arn", "SSO_INSTANCE_ARN"),
    ("allowed_account_ids", "ALLOWED_ACCOUNT_IDS"),
    ("allowed_permission_set_arns", "ALLOWED_PERMISSION_SET_ARNS"),
    ("report_sender", "REPORT_SENDER"),
    ("audit_role_name", "AUDIT_ROLE_NAME"),
    ("end_sessions_on_revoke", "END_SESSIONS_ON_REVOKE"),
    ("session_revocation_policy_name", "SESSION_REVOCATION_POLICY_NAME"),
    ("state_machine_arn", "STATE_MACHINE_ARN"),
    ("region", "AWS_REGION"),
    ("sso_region", "SSO_REGION"),
];

/// The definition's placeholders and the functions they name
/// (`infrastructure/step_functions.tf`).
const TASK_FUNCTIONS: &[(&str, &str)] = &[
    ("grant_access_arn", "grant-access"),
    ("revoke_access_arn", "revoke-access"),
    ("report_on_access_arn", "report-on-access"),
    ("notify_arn", "notify"),
    ("hold_access_arn", "hold-access"),
];

/// In environment mode the function ARNs may be given by hand.
const TASK_VARIABLES: &[(&str, &str)] = &[
    ("grant_access_arn", "GRANT_ACCESS_FUNCTION_ARN"),
    ("revoke_access_arn", "REVOKE_ACCESS_FUNCTION_ARN"),
    ("report_on_access_arn", "REPORT_ON_ACCESS_FUNCTION_ARN"),
    ("notify_arn", "NOTIFY_FUNCTION_ARN"),
    ("hold_access_arn", "HOLD_ACCESS_FUNCTION_ARN"),
];

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OutputsError {
    #[error("the outputs are not `terraform output -json`: {0}")]
    NotJson(String),
    #[error("Terraform output {0} is missing: apply this version of the module (infrastructure/outputs.tf)")]
    Missing(&'static str),
    #[error("Terraform output {output} is invalid: {reason}")]
    Invalid { output: &'static str, reason: String },
}

impl OutputsError {
    fn from_config(e: ConfigError) -> Self {
        let output = |var: &str| OUTPUT_VARIABLES.iter().find(|(_, v)| *v == var).map(|(o, _)| *o);
        match e {
            ConfigError::Missing(var) | ConfigError::OneOf(var, _) => match output(var) {
                Some(o) => Self::Missing(o),
                None => Self::Invalid {
                    output: "(environment)",
                    reason: e.to_string(),
                },
            },
            ConfigError::Invalid { var, reason } => Self::Invalid {
                output: output(var).unwrap_or(var),
                reason,
            },
        }
    }
}

/// One line of the doctor's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub ok: bool,
    pub text: String,
}

impl Finding {
    fn ok(text: impl Into<String>) -> Self {
        Self {
            ok: true,
            text: text.into(),
        }
    }

    fn problem(text: impl Into<String>) -> Self {
        Self {
            ok: false,
            text: text.into(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tag = if self.ok { "ok     " } else { "PROBLEM" };
        // One line, whatever an error message carried.
        write!(f, "{tag} {}", self.text.replace(['\n', '\r'], " "))
    }
}

/// `call` within `limit`; a call that does not answer is an error like any
/// other, so its check reports it and the others go on.
async fn bounded<T, E: From<PortError>>(
    limit: Duration,
    service: &'static str,
    operation: &'static str,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    match tokio::time::timeout(limit, call).await {
        Ok(answer) => answer,
        Err(_) => Err(PortError::new(
            PortErrorKind::Transient,
            service,
            operation,
            format!("no answer within {} s", limit.as_secs()),
        )
        .into()),
    }
}

/// Every check, side by side; findings in a fixed order (Slack, Identity
/// Center, SES, CloudTrail, Step Functions).
pub async fn examine(
    settings: &Settings,
    deployment: &dyn Deployment,
    template: &str,
    limit: Duration,
) -> Vec<Finding> {
    let ((slack, identity_center, sender, audit, machine), sessions) = futures_util::future::join(
        join5(
            check_slack(settings, deployment, limit),
            check_permission_sets(settings, deployment, limit),
            check_sender(settings, deployment, limit),
            check_audit(settings, deployment, limit),
            check_state_machine(settings, deployment, template, limit),
        ),
        check_session_policy(settings, deployment, limit),
    )
    .await;
    [
        slack,
        identity_center,
        vec![sender],
        audit,
        sessions,
        vec![machine],
    ]
    .concat()
}

fn secret_name(source: &SecretSource) -> String {
    match source {
        SecretSource::SecretsManager { arn } => arn.clone(),
        SecretSource::Plain(_) => "(given in plain text)".into(),
    }
}

async fn check_secret(
    what: &str,
    source: &SecretSource,
    example: &str,
    deployment: &dyn Deployment,
    limit: Duration,
) -> (Finding, Option<String>) {
    let name = secret_name(source);
    let fix = match source {
        SecretSource::SecretsManager { arn } => {
            format!("aws secretsmanager put-secret-value --secret-id {arn} --secret-string '{example}'")
        }
        SecretSource::Plain(_) => "set it".into(),
    };
    match bounded(
        limit,
        "secretsmanager",
        "GetSecretValue",
        deployment.secret(source),
    )
    .await
    {
        Ok(value) if !value.trim().is_empty() => {
            (Finding::ok(format!("{what} {name} holds a value")), Some(value))
        }
        Ok(_) => (Finding::problem(format!("{what} {name} is empty: {fix}")), None),
        Err(e) if e.kind == PortErrorKind::NotFound => (
            Finding::problem(format!("{what} {name} has no value: {fix}")),
            None,
        ),
        Err(e) => (
            Finding::problem(format!(
                "{what} {name} cannot be read ({e}): allow these credentials secretsmanager:GetSecretValue and kms:Decrypt, or check the ARN"
            )),
            None,
        ),
    }
}

async fn check_slack(settings: &Settings, deployment: &dyn Deployment, limit: Duration) -> Vec<Finding> {
    let (signing, token) = futures_util::future::join(
        check_secret(
            "Slack signing secret",
            &settings.signing_secret,
            "<signing secret>",
            deployment,
            limit,
        ),
        check_secret(
            "Slack bot token",
            &settings.slack.bot_token,
            "xoxb-…",
            deployment,
            limit,
        ),
    )
    .await;
    let mut findings = vec![signing.0, token.0];
    let Some(token) = token.1 else {
        findings.push(Finding::problem(
            "Slack auth.test not tried: there is no bot token to try (see above)",
        ));
        return findings;
    };
    let api = &settings.slack.api_url;
    findings.push(
        match bounded(limit, "slack", "auth.test", deployment.slack_auth(&token)).await {
            Ok(auth) => Finding::ok(format!(
                "Slack accepts the bot token ({api}/auth.test: workspace {}, bot user {})",
                auth.team_id.as_deref().unwrap_or("?"),
                auth.user_id.as_deref().unwrap_or("?"),
            )),
            Err(e) if e.kind == PortErrorKind::AccessDenied => Finding::problem(format!(
                "Slack refuses the bot token ({api}/auth.test: {}): reinstall the app and store its Bot User OAuth Token (xoxb-…) in {}",
                e.message,
                secret_name(&settings.slack.bot_token),
            )),
            Err(e) => Finding::problem(format!(
                "Slack auth.test did not succeed ({e}): check that {api} is reachable from here and try again"
            )),
        },
    );
    findings
}

async fn check_permission_sets(
    settings: &Settings,
    deployment: &dyn Deployment,
    limit: Duration,
) -> Vec<Finding> {
    let instance = &settings.instance;
    let described = join_all(settings.permission_sets.iter().map(|ps| async move {
        (
            ps,
            bounded(
                limit,
                "sso",
                "DescribePermissionSet",
                deployment.permission_set(instance, ps),
            )
            .await,
        )
    }));
    let provisioned = join_all(settings.accounts.iter().map(|account| async move {
        (
            account,
            bounded(
                limit,
                "sso",
                "ListPermissionSetsProvisionedToAccount",
                deployment.provisioned_permission_sets(instance, account),
            )
            .await,
        )
    }));
    let (described, provisioned) = futures_util::future::join(described, provisioned).await;
    let mut findings = Vec::new();
    let mut existing = Vec::new();
    for (ps, answer) in described {
        match answer {
            Ok(info) => {
                findings.push(Finding::ok(format!(
                    "permission set {} ({ps}) exists in {}",
                    info.name,
                    instance.instance_id()
                )));
                existing.push(ps);
            }
            Err(e) if e.kind == PortErrorKind::NotFound => findings.push(Finding::problem(format!(
                "permission set {ps} does not exist in Identity Center instance {instance}: create it, or remove it from allowed_permission_set_arns"
            ))),
            Err(e) => findings.push(Finding::problem(format!(
                "permission set {ps} cannot be described ({e}): allow these credentials sso:DescribePermissionSet, and check SSO_INSTANCE_ARN and SSO_REGION"
            ))),
        }
    }
    for (account, answer) in provisioned {
        let listed = match answer {
            Ok(listed) => listed,
            Err(e) => {
                findings.push(Finding::problem(format!(
                    "permission sets provisioned to account {account} cannot be listed ({e}): allow these credentials sso:ListPermissionSetsProvisionedToAccount"
                )));
                continue;
            }
        };
        // A permission set that does not exist has its own line above.
        for ps in &existing {
            if listed.iter().any(|p| p == ps.as_str()) {
                findings.push(Finding::ok(format!(
                    "permission set {ps} is provisioned to account {account}"
                )));
            } else {
                findings.push(Finding::problem(format!(
                    "permission set {ps} is not provisioned to account {account}: provision it once (aws sso-admin provision-permission-set --instance-arn {instance} --permission-set-arn {ps} --target-type AWS_ACCOUNT --target-id {account})"
                )));
            }
        }
    }
    findings
}

async fn check_sender(settings: &Settings, deployment: &dyn Deployment, limit: Duration) -> Finding {
    let sender = &settings.sender;
    let region = settings.region.as_deref().unwrap_or("this region");
    let ask = |identity: String| async move {
        bounded(
            limit,
            "ses",
            "GetEmailIdentity",
            deployment.sending_identity(&identity),
        )
        .await
    };
    let address = ask(sender.clone()).await;
    if let Ok(Some(true)) = address {
        return Finding::ok(format!("SES sender {sender} is verified in {region}"));
    }
    // SES sends from any address of a verified domain.
    let domain = sender.rsplit_once('@').map(|(_, d)| d.to_string());
    let by_domain = match &domain {
        Some(d) => ask(d.clone()).await,
        None => Ok(None),
    };
    if let Ok(Some(true)) = by_domain {
        return Finding::ok(format!(
            "SES sender {sender} is verified in {region} (its domain {} is)",
            domain.unwrap_or_default()
        ));
    }
    match (address, by_domain) {
        (Err(e), _) | (_, Err(e)) => Finding::problem(format!(
            "SES sender {sender} cannot be checked ({e}): allow these credentials ses:GetEmailIdentity"
        )),
        (Ok(Some(false)), _) | (_, Ok(Some(false))) => Finding::problem(format!(
            "SES sender {sender} is not verified for sending in {region}: open the link SES e-mailed to it (or finish verifying its domain), then run doctor again"
        )),
        _ => Finding::problem(format!(
            "SES sender {sender} is not verified in {region}: aws sesv2 create-email-identity --email-identity {sender} --region {region}, then open the link it sends"
        )),
    }
}

async fn check_audit(settings: &Settings, deployment: &dyn Deployment, limit: Duration) -> Vec<Finding> {
    let Some(role) = settings.audit_role_name.as_deref() else {
        let answer = bounded(
            limit,
            "cloudtrail",
            "LookupEvents",
            deployment.audit_access(None, None),
        )
        .await;
        return vec![match answer {
            Ok(()) => Finding::ok(
                "CloudTrail LookupEvents answers in this account (no audit role configured: the report reads only this account)",
            ),
            Err(e) => Finding::problem(format!(
                "CloudTrail LookupEvents fails in this account ({e}): allow these credentials and report-on-access cloudtrail:LookupEvents"
            )),
        }];
    };
    join_all(settings.accounts.iter().map(|account| async move {
        let answer = bounded(
            limit,
            "sts",
            "AssumeRole",
            deployment.audit_access(Some(account), Some(role)),
        )
        .await;
        match answer {
            Ok(()) => Finding::ok(format!(
                "audit role {role} in account {account} can be assumed and CloudTrail LookupEvents answers"
            )),
            Err(AuditAccessError::AssumeRole(e)) => Finding::problem(format!(
                "audit role {role} in account {account} cannot be assumed ({e}): deploy infrastructure/modules/target-account there (role_name = \"{role}\") trusting the report_role_arn and revoke_role_arn outputs; to check it as yourself, add your role to the module's checker_role_arns"
            )),
            Err(AuditAccessError::LookupEvents(e)) => Finding::problem(format!(
                "CloudTrail LookupEvents fails as audit role {role} in account {account} ({e}): give the role cloudtrail:LookupEvents (infrastructure/modules/target-account does)"
            )),
            Err(AuditAccessError::NoAnswer(e)) => Finding::problem(format!(
                "audit role {role} in account {account} could not be checked ({e}): check the network and try again"
            )),
        }
    }))
    .await
}

/// Ending sessions needs the session revocation policy in every allowed
/// account (reachable through the audit role, as revoke-access reaches it)
/// and referenced by every allowed permission set, or the Deny it writes
/// applies to nobody.
async fn check_session_policy(
    settings: &Settings,
    deployment: &dyn Deployment,
    limit: Duration,
) -> Vec<Finding> {
    let (Some(role), Some(policy)) = (
        settings.audit_role_name.as_deref(),
        settings.session_policy_name.as_deref(),
    ) else {
        return Vec::new();
    };
    let in_accounts = join_all(settings.accounts.iter().map(|account| async move {
        match bounded(
            limit,
            "iam",
            "GetPolicy",
            deployment.session_policy_exists(account, role, policy),
        )
        .await
        {
            Ok(true) => Some(Finding::ok(format!(
                "session revocation policy {policy} exists in account {account} (read as audit role {role})"
            ))),
            Ok(false) => Some(Finding::problem(format!(
                "session revocation policy {policy} does not exist in account {account}: deploy infrastructure/modules/target-account there (session_revocation_policy_name = \"{policy}\")"
            ))),
            // The audit role's own line says it cannot be assumed.
            Err(e) if e.service == "sts" => None,
            Err(e) => Some(Finding::problem(format!(
                "session revocation policy {policy} in account {account} cannot be read as audit role {role} ({e}): deploy this version of infrastructure/modules/target-account there, trusting revoke_role_arn"
            ))),
        }
    }));
    let instance = &settings.instance;
    let attached = join_all(settings.permission_sets.iter().map(|ps| async move {
        // A permission set that cannot be described has its own line.
        bounded(limit, "sso", "DescribePermissionSet", deployment.permission_set(instance, ps))
            .await
            .ok()?;
        Some(match bounded(
            limit,
            "sso",
            "ListCustomerManagedPolicyReferencesInPermissionSet",
            deployment.customer_managed_policies(instance, ps),
        )
        .await
        {
            Ok(names) if names.iter().any(|n| n == policy) => Finding::ok(format!(
                "permission set {ps} references the session revocation policy {policy}"
            )),
            Ok(_) => Finding::problem(format!(
                "permission set {ps} does not reference the session revocation policy {policy}, so ending sessions has no effect: attach it once (aws_ssoadmin_customer_managed_policy_attachment, or aws sso-admin attach-customer-managed-policy-reference-to-permission-set --instance-arn {instance} --permission-set-arn {ps} --customer-managed-policy-reference Name={policy}), then provision the permission set"
            )),
            Err(e) => Finding::problem(format!(
                "the customer managed policies of permission set {ps} cannot be listed ({e}): allow these credentials sso:ListCustomerManagedPolicyReferencesInPermissionSet"
            )),
        })
    }));
    let (in_accounts, attached) = futures_util::future::join(in_accounts, attached).await;
    in_accounts.into_iter().chain(attached).flatten().collect()
}

async fn check_state_machine(
    settings: &Settings,
    deployment: &dyn Deployment,
    template: &str,
    limit: Duration,
) -> Finding {
    let arn = &settings.state_machine_arn;
    let answer = bounded(
        limit,
        "states",
        "DescribeStateMachine",
        deployment.state_machine_definition(arn),
    )
    .await;
    let deployed = match answer {
        Ok(Some(definition)) => definition,
        Ok(None) => {
            return Finding::problem(format!(
                "state machine {arn} does not exist: terraform apply the module (infrastructure/step_functions.tf)"
            ));
        }
        Err(e) => {
            return Finding::problem(format!(
                "state machine {arn} cannot be described ({e}): allow these credentials states:DescribeStateMachine"
            ));
        }
    };
    let differences = compare_definition(template, &deployed, &settings.task_arns);
    match differences.split_first() {
        None => Finding::ok(format!(
            "state machine {arn} runs the shipped definition (statemachine/break-glass.asl.json)"
        )),
        Some((first, rest)) => {
            let more = match rest.len() {
                0 => String::new(),
                n => format!(" (and {n} more difference{})", if n == 1 { "" } else { "s" }),
            };
            Finding::problem(format!(
                "state machine {arn} differs from the shipped definition: {first}{more}: terraform apply this version of the module"
            ))
        }
    }
}

/// How the deployed definition differs from `template` rendered the way
/// Terraform's `templatefile()` renders it, compared as parsed JSON (so
/// whitespace and key order do not matter): one description per
/// difference, each naming its JSON path. Placeholder values not in
/// `known` are read off the deployed definition: each must be the same
/// everywhere, and name the function its placeholder is named after.
pub fn compare_definition(template: &str, deployed: &str, known: &BTreeMap<String, String>) -> Vec<String> {
    let template: Value = match serde_json::from_str(template) {
        Ok(v) => v,
        Err(e) => return vec![format!("the shipped definition is not JSON ({e})")],
    };
    let deployed: Value = match serde_json::from_str(deployed) {
        Ok(v) => v,
        Err(e) => return vec![format!("the deployed definition is not JSON ({e})")],
    };
    let mut walk = Walk {
        bindings: known.clone(),
        known: known.keys().cloned().collect(),
        differences: Vec::new(),
    };
    walk.value("$", &template, &deployed);
    walk.differences
}

struct Walk {
    bindings: BTreeMap<String, String>,
    known: BTreeSet<String>,
    differences: Vec<String>,
}

/// `${name}`, the whole string.
fn placeholder(s: &str) -> Option<&str> {
    s.strip_prefix("${")?
        .strip_suffix('}')
        .filter(|n| !n.is_empty() && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

fn short(v: &Value) -> String {
    let text = v.to_string();
    if text.chars().count() > 60 {
        format!("{}…", text.chars().take(60).collect::<String>())
    } else {
        text
    }
}

impl Walk {
    fn value(&mut self, path: &str, template: &Value, deployed: &Value) {
        match (template, deployed) {
            (Value::String(t), _) if placeholder(t).is_some() => {
                let name = placeholder(t).unwrap_or_default().to_string();
                self.bind(path, &name, deployed);
            }
            (Value::String(t), Value::String(d)) if t.contains("${") => {
                // A placeholder inside a longer string: needs its values.
                let mut rendered = t.clone();
                for (name, value) in &self.bindings {
                    rendered = rendered.replace(&format!("${{{name}}}"), value);
                }
                if &rendered != d {
                    self.differences.push(format!(
                        "{path} is {}, expected {}",
                        short(deployed),
                        short(&Value::String(rendered))
                    ));
                }
            }
            (Value::Object(t), Value::Object(d)) => {
                // Sorted: the same lines in the same order whether or not
                // serde_json keeps insertion order (a feature another crate
                // may turn on).
                let sorted: std::collections::BTreeMap<&String, &Value> = t.iter().collect();
                for (key, tv) in sorted {
                    let child = format!("{path}.{key}");
                    match d.get(key) {
                        Some(dv) => self.value(&child, tv, dv),
                        None => self.differences.push(format!("{child} is missing")),
                    }
                }
                let extra: std::collections::BTreeSet<&String> =
                    d.keys().filter(|k| !t.contains_key(*k)).collect();
                for key in extra {
                    self.differences
                        .push(format!("{path}.{key} is not in the shipped definition"));
                }
            }
            (Value::Array(t), Value::Array(d)) => {
                if t.len() != d.len() {
                    self.differences
                        .push(format!("{path} has {} items, expected {}", d.len(), t.len()));
                }
                for (i, (tv, dv)) in t.iter().zip(d).enumerate() {
                    self.value(&format!("{path}[{i}]"), tv, dv);
                }
            }
            _ if template == deployed => {}
            _ => self.differences.push(format!(
                "{path} is {}, expected {}",
                short(deployed),
                short(template)
            )),
        }
    }

    fn bind(&mut self, path: &str, name: &str, deployed: &Value) {
        let Some(value) = deployed.as_str() else {
            self.differences.push(format!(
                "{path} is {}, expected the ARN of ${{{name}}}",
                short(deployed)
            ));
            return;
        };
        if let Some(bound) = self.bindings.get(name) {
            if bound != value {
                let whose = if self.known.contains(name) {
                    "the deployed function"
                } else {
                    "elsewhere in the definition"
                };
                self.differences.push(format!(
                    "{path} is {value:?}, but ${{{name}}} is {bound:?} ({whose})"
                ));
            }
            return;
        }
        // Unknown: it must at least be the function the placeholder names
        // (`grant_access_arn` → a Lambda function named `…grant-access`),
        // so two swapped functions do not pass.
        let function = name.strip_suffix("_arn").unwrap_or(name).replace('_', "-");
        let names_it = value.starts_with("arn:")
            && value.contains(":lambda:")
            && value
                .split_once(":function:")
                .map(|(_, rest)| rest.split(':').next().unwrap_or_default())
                .is_some_and(|f| f == function || f.ends_with(&format!("-{function}")));
        if !names_it {
            self.differences.push(format!(
                "{path} is {value:?}, expected the ARN of the {function} Lambda function"
            ));
        }
        self.bindings.insert(name.to_string(), value.to_string());
    }
}

#[cfg(test)]
mod tests;
