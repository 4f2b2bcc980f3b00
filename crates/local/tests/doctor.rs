//! `break-glass-local doctor` against moto (with scripts/moto_server.py's
//! patches: AssumeRole needs the role to exist, provisioning is per target
//! account, verified SES identities say so) and the Slack and CloudTrail
//! stand-ins: a healthy deployment passes, and each kind of broken one is
//! named by its own line, with nothing else reported.

#![allow(clippy::unwrap_used)]

use std::process::Stdio;

use aws_config::SdkConfig;
use break_glass_core::config::{SecretSource, map_env};
use break_glass_core::doctor::{Finding, Settings};
use break_glass_local::doctor::{self, Options, SHIPPED_DEFINITION};
use break_glass_testkit::cloudtrail::CloudTrailStandIn;
use break_glass_testkit::moto::{self, unique};
use break_glass_testkit::slack::SlackStandIn;
use serde_json::json;
use tokio::io::AsyncWriteExt;

const ACCOUNT_A: &str = "123456789012";
const ACCOUNT_B: &str = "210987654321";
const BOT_TOKEN: &str = "xoxb-doctor-test";

/// One deployment of this test's own in moto, healthy as set up.
struct Deployed {
    sdk: SdkConfig,
    slack: SlackStandIn,
    trail: CloudTrailStandIn,
    signing_secret_arn: String,
    bot_token_arn: String,
    instance_arn: String,
    identity_store_id: String,
    permission_set_arn: String,
    sender: String,
    audit_role: String,
    session_policy: String,
    state_machine_arn: String,
    function_arns: serde_json::Value,
}

async fn secret(sdk: &SdkConfig, value: Option<&str>) -> String {
    let out = aws_sdk_secretsmanager::Client::new(sdk)
        .create_secret()
        .name(unique("doctor-secret"))
        .set_secret_string(value.map(str::to_string))
        .send()
        .await
        .unwrap();
    out.arn.unwrap()
}

/// An IAM role in `account`: moto keeps one IAM per account, chosen by this
/// header (the SDK's credentials all map to 123456789012).
async fn create_role(account: &str, name: &str) {
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]});
    let answer = reqwest::Client::new()
        .post(format!("{}/", moto::endpoint()))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .header("x-moto-account-id", account)
        .form(&[
            ("Action", "CreateRole"),
            ("Version", "2010-05-08"),
            ("RoleName", name),
            ("AssumeRolePolicyDocument", &trust.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.text().await.unwrap());
}

/// The session revocation policy in `account`, as modules/target-account
/// creates it.
async fn create_policy(account: &str, name: &str) {
    let document = json!({"Version": "2012-10-17", "Statement": [{"Sid": "NoSessionsRevoked", "Effect": "Deny",
        "Action": "*", "Resource": "*",
        "Condition": {"DateLessThan": {"aws:TokenIssueTime": "1970-01-01T00:00:00Z"}}}]});
    let answer = reqwest::Client::new()
        .post(format!("{}/", moto::endpoint()))
        .header(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=testing/20260101/us-east-1/iam/aws4_request, SignedHeaders=host, Signature=0",
        )
        .header("x-moto-account-id", account)
        .form(&[
            ("Action", "CreatePolicy"),
            ("Version", "2010-05-08"),
            ("PolicyName", name),
            ("PolicyDocument", &document.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert!(answer.status().is_success(), "{}", answer.text().await.unwrap());
}

async fn provision(sdk: &SdkConfig, instance: &str, permission_set: &str, account: &str) {
    aws_sdk_ssoadmin::Client::new(sdk)
        .provision_permission_set()
        .instance_arn(instance)
        .permission_set_arn(permission_set)
        .target_type(aws_sdk_ssoadmin::types::ProvisionTargetType::AwsAccount)
        .target_id(account)
        .send()
        .await
        .unwrap();
}

async fn state_machine(sdk: &SdkConfig, definition: &str) -> String {
    aws_sdk_sfn::Client::new(sdk)
        .create_state_machine()
        .name(unique("doctor"))
        .definition(definition)
        .role_arn("arn:aws:iam::123456789012:role/break-glass-states")
        .send()
        .await
        .unwrap()
        .state_machine_arn
}

fn render(function_arns: &serde_json::Value) -> String {
    let mut out = SHIPPED_DEFINITION.to_string();
    for (placeholder, function) in [
        ("grant_access_arn", "grant-access"),
        ("revoke_access_arn", "revoke-access"),
        ("report_on_access_arn", "report-on-access"),
        ("notify_arn", "notify"),
        ("hold_access_arn", "hold-access"),
    ] {
        out = out.replace(
            &format!("${{{placeholder}}}"),
            function_arns[function].as_str().unwrap(),
        );
    }
    out
}

impl Deployed {
    async fn healthy() -> Self {
        let sdk = moto::sdk().await;
        let fx = moto::identity_center(&sdk, "BreakGlassAdmin", "PT1H").await;
        for account in [ACCOUNT_A, ACCOUNT_B] {
            provision(&sdk, &fx.instance_arn, &fx.permission_set_arn, account).await;
        }
        let sender = format!("{}@example.com", unique("doctor"));
        moto::verify_sender(&sdk, &sender).await;
        let audit_role = unique("audit");
        let session_policy = unique("session-revocations");
        for account in [ACCOUNT_A, ACCOUNT_B] {
            create_role(account, &audit_role).await;
            create_policy(account, &session_policy).await;
        }
        aws_sdk_ssoadmin::Client::new(&sdk)
            .attach_customer_managed_policy_reference_to_permission_set()
            .instance_arn(&fx.instance_arn)
            .permission_set_arn(&fx.permission_set_arn)
            .customer_managed_policy_reference(
                aws_sdk_ssoadmin::types::CustomerManagedPolicyReference::builder()
                    .name(&session_policy)
                    .build()
                    .unwrap(),
            )
            .send()
            .await
            .unwrap();
        let name = unique("bg");
        let function_arns: serde_json::Value = [
            "access-requested",
            "grant-access",
            "hold-access",
            "revoke-access",
            "report-on-access",
            "reconcile-access",
            "notify",
        ]
        .iter()
        .map(|f| {
            (
                f.to_string(),
                json!(format!(
                    "arn:aws:lambda:us-east-1:{ACCOUNT_A}:function:{name}-{f}"
                )),
            )
        })
        .collect::<serde_json::Map<_, _>>()
        .into();
        Self {
            state_machine_arn: state_machine(&sdk, &render(&function_arns)).await,
            signing_secret_arn: secret(&sdk, Some("8f742231b10e8888abcd99yyyzzz85a5")).await,
            bot_token_arn: secret(&sdk, Some(BOT_TOKEN)).await,
            slack: SlackStandIn::start(BOT_TOKEN).await,
            trail: CloudTrailStandIn::start().await,
            instance_arn: fx.instance_arn,
            identity_store_id: fx.identity_store_id,
            permission_set_arn: fx.permission_set_arn,
            sender,
            audit_role,
            session_policy,
            function_arns,
            sdk,
        }
    }

    /// What `terraform output -json` prints for this deployment.
    fn outputs(&self) -> serde_json::Value {
        let out = |value: serde_json::Value| json!({"sensitive": false, "type": "string", "value": value});
        json!({
            "signing_secret_arn": out(json!(self.signing_secret_arn)),
            "bot_token_secret_arn": out(json!(self.bot_token_arn)),
            "sso_instance_arn": out(json!(self.instance_arn)),
            "identity_store_id": out(json!(self.identity_store_id)),
            "allowed_account_ids": out(json!([ACCOUNT_A, ACCOUNT_B])),
            "allowed_permission_set_arns": out(json!([self.permission_set_arn])),
            "report_sender": out(json!(self.sender)),
            "audit_role_name": out(json!(self.audit_role)),
            "session_revocation_policy_name": out(json!(self.session_policy)),
            "end_sessions_on_revoke": out(json!(true)),
            "state_machine_arn": out(json!(self.state_machine_arn)),
            "region": out(json!("us-east-1")),
            "function_arns": out(self.function_arns.clone()),
            "slack_interactivity_url": out(json!("https://example.execute-api.us-east-1.amazonaws.com/slack/interactions")),
        })
    }

    fn settings(&self) -> Settings {
        let env = map_env([("SLACK_API_URL", &self.slack.api_url())]);
        Settings::from_outputs(&self.outputs().to_string(), &env).unwrap()
    }

    async fn check(&self, settings: &Settings) -> Vec<Finding> {
        let options = Options {
            cloudtrail_endpoint: Some(self.trail.url().to_string()),
            ..Options::default()
        };
        doctor::run(settings, &self.sdk, &options).await
    }
}

fn problems(findings: &[Finding]) -> Vec<String> {
    findings
        .iter()
        .filter(|f| !f.ok)
        .map(|f| f.text.clone())
        .collect()
}

/// The one problem found, after checking there is exactly one.
fn only_problem(findings: &[Finding]) -> String {
    let p = problems(findings);
    assert_eq!(p.len(), 1, "{findings:#?}");
    p[0].clone()
}

#[tokio::test]
async fn a_healthy_deployment_passes_every_check() {
    let d = Deployed::healthy().await;
    let findings = d.check(&d.settings()).await;
    assert!(problems(&findings).is_empty(), "{findings:#?}");
    let text: Vec<String> = findings.iter().map(|f| f.text.clone()).collect();
    // 2 secrets, auth.test, the permission set, 2 provisionings, the
    // sender, 2 audit roles, the session policy in 2 accounts and
    // referenced by the permission set, the state machine.
    assert_eq!(text.len(), 13, "{text:#?}");
    for expected in [
        format!("Slack signing secret {} holds a value", d.signing_secret_arn),
        format!(
            "permission set {} is provisioned to account {ACCOUNT_B}",
            d.permission_set_arn
        ),
        format!("SES sender {} is verified in us-east-1", d.sender),
        format!(
            "audit role {} in account {ACCOUNT_B} can be assumed and CloudTrail LookupEvents answers",
            d.audit_role
        ),
        format!(
            "state machine {} runs the shipped definition (statemachine/break-glass.asl.json)",
            d.state_machine_arn
        ),
        format!(
            "session revocation policy {} exists in account {ACCOUNT_B} (read as audit role {})",
            d.session_policy, d.audit_role
        ),
        format!(
            "permission set {} references the session revocation policy {}",
            d.permission_set_arn, d.session_policy
        ),
    ] {
        assert!(text.contains(&expected), "{expected}\nnot in {text:#?}");
    }
    assert!(
        text.iter()
            .any(|l| l.starts_with("Slack accepts the bot token") && l.contains("T0001"))
    );
    // It asked CloudTrail once per account, with the assumed role.
    assert_eq!(d.trail.requests().len(), 2);
}

#[tokio::test]
async fn a_secret_without_a_value_or_with_a_blank_one_is_named() {
    let d = Deployed::healthy().await;
    // As Terraform leaves it: created, never given a value.
    let mut s = d.settings();
    let unset = secret(&d.sdk, None).await;
    s.signing_secret = SecretSource::SecretsManager { arn: unset.clone() };
    assert!(
        only_problem(&d.check(&s).await).starts_with(&format!(
            "Slack signing secret {unset} has no value: aws secretsmanager put-secret-value --secret-id {unset} --secret-string '<signing secret>'"
        ))
    );
    let blank = secret(&d.sdk, Some("  ")).await;
    s.signing_secret = SecretSource::SecretsManager { arn: blank.clone() };
    assert!(only_problem(&d.check(&s).await).starts_with(&format!("Slack signing secret {blank} is empty")));
    // A missing bot token: there is nothing to try auth.test with either.
    let mut s = d.settings();
    s.slack.bot_token = SecretSource::SecretsManager { arn: unset.clone() };
    let p = problems(&d.check(&s).await);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(p[0].starts_with(&format!("Slack bot token {unset} has no value")));
    assert!(p[1].starts_with("Slack auth.test not tried"));
}

#[tokio::test]
async fn a_bot_token_slack_refuses_is_named() {
    let d = Deployed::healthy().await;
    let mut s = d.settings();
    let revoked = secret(&d.sdk, Some("xoxb-revoked")).await;
    s.slack.bot_token = SecretSource::SecretsManager { arn: revoked.clone() };
    let findings = d.check(&s).await;
    let p = only_problem(&findings);
    assert!(
        p.starts_with(&format!(
            "Slack refuses the bot token ({}/auth.test: invalid_auth): reinstall the app and store its Bot User OAuth Token (xoxb-…) in {revoked}",
            d.slack.api_url()
        )),
        "{p}"
    );
    assert!(findings.iter().all(|f| !f.to_string().contains("xoxb-revoked")));
}

#[tokio::test]
async fn a_permission_set_that_does_not_exist_is_named() {
    let d = Deployed::healthy().await;
    let mut s = d.settings();
    let gone = format!(
        "{}/ps-0000000000000000",
        d.instance_arn.replace(":instance/", ":permissionSet/")
    );
    s.permission_sets.insert(gone.parse().unwrap());
    let p = only_problem(&d.check(&s).await);
    assert!(
        p.starts_with(&format!(
            "permission set {gone} does not exist in Identity Center instance {}",
            d.instance_arn
        )),
        "{p}"
    );
}

#[tokio::test]
async fn a_permission_set_not_provisioned_to_an_account_is_named() {
    let d = Deployed::healthy().await;
    let mut s = d.settings();
    let other = "333333333333";
    s.accounts.insert(other.parse().unwrap());
    create_role(other, &d.audit_role).await;
    create_policy(other, &d.session_policy).await;
    let p = only_problem(&d.check(&s).await);
    assert_eq!(
        p,
        format!(
            "permission set {ps} is not provisioned to account {other}: provision it once (aws sso-admin provision-permission-set --instance-arn {i} --permission-set-arn {ps} --target-type AWS_ACCOUNT --target-id {other})",
            ps = d.permission_set_arn,
            i = d.instance_arn
        )
    );
}

#[tokio::test]
async fn an_unverified_sender_is_named() {
    let d = Deployed::healthy().await;
    let mut s = d.settings();
    s.sender = format!("{}@unverified.example", unique("nobody"));
    let p = only_problem(&d.check(&s).await);
    assert!(
        p.starts_with(&format!(
            "SES sender {} is not verified in us-east-1: aws sesv2 create-email-identity --email-identity {} --region us-east-1",
            s.sender, s.sender
        )),
        "{p}"
    );
    // A sender of a verified domain is fine.
    let domain = format!("{}.example", unique("dom"));
    moto::verify_sender(&d.sdk, &domain).await;
    s.sender = format!("reports@{domain}");
    assert!(problems(&d.check(&s).await).is_empty());
}

#[tokio::test]
async fn an_audit_role_that_cannot_be_assumed_is_named() {
    let d = Deployed::healthy().await;
    let mut s = d.settings();
    let missing = unique("no-such-role");
    s.audit_role_name = Some(missing.clone());
    let p = problems(&d.check(&s).await);
    assert_eq!(p.len(), 2, "one line per account: {p:#?}");
    for (line, account) in p.iter().zip([ACCOUNT_A, ACCOUNT_B]) {
        assert!(
            line.starts_with(&format!(
                "audit role {missing} in account {account} cannot be assumed ("
            )),
            "{line}"
        );
        assert!(line.contains("AccessDenied"), "{line}");
        assert!(
            line.contains("trusting the report_role_arn and revoke_role_arn outputs")
                && line.ends_with("add your role to the module's checker_role_arns"),
            "{line}"
        );
    }
    // The role in one account only.
    create_role(ACCOUNT_A, &missing).await;
    let p = only_problem(&d.check(&s).await);
    assert!(
        p.starts_with(&format!(
            "audit role {missing} in account {ACCOUNT_B} cannot be assumed"
        )),
        "{p}"
    );
}

#[tokio::test]
async fn a_session_policy_missing_or_not_referenced_is_named() {
    let d = Deployed::healthy().await;
    let mut outputs = d.outputs();
    outputs["session_revocation_policy_name"]["value"] = json!("not-deployed");
    let env = map_env([("SLACK_API_URL", &d.slack.api_url())]);
    let settings = Settings::from_outputs(&outputs.to_string(), &env).unwrap();
    let p = problems(&d.check(&settings).await);
    assert_eq!(p.len(), 3, "{p:#?}");
    for account in [ACCOUNT_A, ACCOUNT_B] {
        assert!(
            p.contains(&format!(
                "session revocation policy not-deployed does not exist in account {account}: deploy infrastructure/modules/target-account there (session_revocation_policy_name = \"not-deployed\")"
            )),
            "{p:#?}"
        );
    }
    assert!(
        p[2].starts_with(&format!(
            "permission set {} does not reference the session revocation policy not-deployed",
            d.permission_set_arn
        )),
        "{p:#?}"
    );

    // Switched off: nothing to check.
    outputs["end_sessions_on_revoke"]["value"] = json!(false);
    let settings = Settings::from_outputs(&outputs.to_string(), &env).unwrap();
    assert!(problems(&d.check(&settings).await).is_empty());
}

#[tokio::test]
async fn a_missing_state_machine_or_a_different_definition_is_named() {
    let d = Deployed::healthy().await;
    let mut s = d.settings();
    let missing = d
        .state_machine_arn
        .replace(":stateMachine:", ":stateMachine:gone-");
    s.state_machine_arn = missing.clone();
    assert_eq!(
        only_problem(&d.check(&s).await),
        format!(
            "state machine {missing} does not exist: terraform apply the module (infrastructure/step_functions.tf)"
        )
    );

    // Someone edited it in the console: fewer revoke retries.
    let mut edited: serde_json::Value = serde_json::from_str(&render(&d.function_arns)).unwrap();
    let retries = &mut edited["States"]["Revoke"]["Retry"][0]["MaxAttempts"];
    let shipped = retries.clone();
    *retries = json!(1);
    s.state_machine_arn = state_machine(&d.sdk, &edited.to_string()).await;
    let p = only_problem(&d.check(&s).await);
    assert_eq!(
        p,
        format!(
            "state machine {} differs from the shipped definition: $.States.Revoke.Retry[0].MaxAttempts is 1, expected {shipped}: terraform apply this version of the module",
            s.state_machine_arn
        )
    );

    // Wired to another deployment's functions.
    let mut others = d.function_arns.clone();
    others["grant-access"] = json!("arn:aws:lambda:us-east-1:123456789012:function:other-grant-access");
    s.state_machine_arn = state_machine(&d.sdk, &render(&others)).await;
    let p = only_problem(&d.check(&s).await);
    assert!(
        p.contains(
            "$.States.Grant.Resource is \"arn:aws:lambda:us-east-1:123456789012:function:other-grant-access\""
        ),
        "{p}"
    );
}

async fn cli(
    d: &Deployed,
    args: &[&str],
    env: &[(&str, String)],
    stdin: Option<String>,
) -> (i32, String, String) {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_break-glass-local"));
    cmd.arg("doctor")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ENDPOINT_URL", moto::endpoint())
        .env("AWS_ENDPOINT_URL_CLOUDTRAIL", d.trail.url())
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("SLACK_API_URL", d.slack.api_url())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    let out = child.wait_with_output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[tokio::test]
async fn the_command_reads_terraform_outputs_from_stdin_and_exits_by_what_it_found() {
    let d = Deployed::healthy().await;
    let (code, stdout, stderr) = cli(&d, &["--outputs", "-"], &[], Some(d.outputs().to_string())).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 14, "{stdout}");
    assert!(lines.iter().all(|l| l.starts_with("ok      ")), "{stdout}");
    assert_eq!(
        lines.last().copied(),
        Some("ok      no policy rules: the allow lists decide who may break glass")
    );

    // The same deployment with its sender unverified and its state machine
    // gone: two lines say so, the rest still pass, and it exits 1.
    let mut outputs = d.outputs();
    outputs["report_sender"]["value"] = json!("nobody@unverified.example");
    outputs["state_machine_arn"]["value"] = json!(
        d.state_machine_arn
            .replace(":stateMachine:", ":stateMachine:gone-")
    );
    let file = std::env::temp_dir().join(format!("{}.json", unique("outputs")));
    std::fs::write(&file, outputs.to_string()).unwrap();
    let (code, stdout, stderr) = cli(&d, &["--outputs", file.to_str().unwrap()], &[], None).await;
    std::fs::remove_file(&file).unwrap();
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let problems: Vec<&str> = stdout.lines().filter(|l| l.starts_with("PROBLEM ")).collect();
    assert_eq!(problems.len(), 2, "{stdout}");
    assert!(
        problems[0].starts_with("PROBLEM SES sender nobody@unverified.example is not verified in us-east-1")
    );
    assert!(problems[1].contains("does not exist: terraform apply the module"));
    assert_eq!(
        stdout.lines().filter(|l| l.starts_with("ok      ")).count(),
        12,
        "{stdout}"
    );
    assert!(stderr.contains("2 problems"), "{stderr}");
    assert!(!stdout.contains(BOT_TOKEN) && !stderr.contains(BOT_TOKEN));
}

#[tokio::test]
async fn the_command_reads_the_functions_environment_without_outputs() {
    let d = Deployed::healthy().await;
    let env = [
        ("SLACK_SIGNING_SECRET_ARN", d.signing_secret_arn.clone()),
        ("SLACK_BOT_TOKEN_ARN", d.bot_token_arn.clone()),
        ("SSO_INSTANCE_ARN", d.instance_arn.clone()),
        ("ALLOWED_ACCOUNT_IDS", format!("{ACCOUNT_A},{ACCOUNT_B}")),
        ("ALLOWED_PERMISSION_SET_ARNS", d.permission_set_arn.clone()),
        ("REPORT_SENDER", d.sender.clone()),
        ("AUDIT_ROLE_NAME", d.audit_role.clone()),
        ("SESSION_REVOCATION_POLICY_NAME", d.session_policy.clone()),
        ("STATE_MACHINE_ARN", d.state_machine_arn.clone()),
    ];
    let (code, stdout, stderr) = cli(&d, &[], &env, None).await;
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert_eq!(stdout.lines().count(), 14, "{stdout}");

    // A missing variable is named before anything is asked.
    let (code, stdout, stderr) = cli(&d, &[], &env[1..], None).await;
    assert_eq!(code, 1);
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        stderr.contains("SLACK_SIGNING_SECRET_ARN or SLACK_SIGNING_SECRET"),
        "{stderr}"
    );
}

/// The policy's rules, read from their SSM parameter as the functions read
/// them: each rule listed with its group resolved in the Identity Store and
/// its permission set by name; a group nobody synced is a problem.
#[tokio::test]
async fn each_policy_rule_is_listed_with_what_it_resolves_to() {
    let d = Deployed::healthy().await;
    let group = unique("oncall");
    let group_id = moto::create_group(&d.sdk, &d.identity_store_id, &group).await;
    let parameter = format!("/{}/policy", unique("bg"));
    let policy = json!({"rules": [
        {"name": "oncall-admin", "accounts": [ACCOUNT_A], "permission_sets": ["BreakGlassAdmin"],
         "groups": [group], "max_duration_minutes": 120},
        {"name": "ghosts", "accounts": ["*"], "permission_sets": ["BreakGlassAdmin"],
         "groups": ["nobody-synced-this"], "max_duration_minutes": 30},
    ]});
    aws_sdk_ssm::Client::new(&d.sdk)
        .put_parameter()
        .name(&parameter)
        .value(policy.to_string())
        .r#type(aws_sdk_ssm::types::ParameterType::SecureString)
        .send()
        .await
        .unwrap();
    let mut outputs = d.outputs();
    outputs["policy_parameter_name"] = json!({"sensitive": false, "type": "string", "value": parameter});
    let source = doctor::Source::Outputs(outputs.to_string());
    let env = map_env([("SLACK_API_URL", &d.slack.api_url())]);
    let settings = doctor::settings(&source, &env).unwrap();
    let policy = doctor::policy_settings(&source, &env, &settings).unwrap();
    let findings = doctor::run_policy(&settings, &policy, &d.sdk, &Options::default()).await;
    let lines: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert_eq!(lines.len(), 3, "{lines:#?}");
    assert_eq!(
        lines[0],
        format!(
            "ok      rule oncall-admin: BreakGlassAdmin ({}) in {ACCOUNT_A} for group {group} ({group_id}); up to 2 hours",
            d.permission_set_arn
        )
    );
    assert!(
        lines[1].starts_with(&format!(
            "ok      rule ghosts: BreakGlassAdmin ({}) in * (= {ACCOUNT_A}, {ACCOUNT_B})",
            d.permission_set_arn
        )),
        "{}",
        lines[1]
    );
    assert!(
        lines[2].starts_with("PROBLEM rule ghosts's group nobody-synced-this is not in the Identity Store"),
        "{}",
        lines[2]
    );
}
