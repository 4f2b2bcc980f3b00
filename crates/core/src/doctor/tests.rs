#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use super::*;
use crate::config::map_env;
use crate::ports::{PermissionSetInfo, SlackAuth};

const INSTANCE: &str = "arn:aws:sso:::instance/ssoins-1111";
const PS_A: &str = "arn:aws:sso:::permissionSet/ssoins-1111/ps-aaaa";
const PS_B: &str = "arn:aws:sso:::permissionSet/ssoins-1111/ps-bbbb";
const SIGNING: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:signing";
const TOKEN: &str = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:token";
const MACHINE: &str = "arn:aws:states:eu-west-1:123456789012:stateMachine:bg-access";
const TEMPLATE: &str = r#"{"StartAt":"Grant","States":{
  "Grant":{"Type":"Task","Resource":"${grant_access_arn}","Next":"Revoke"},
  "Revoke":{"Type":"Task","Resource":"${revoke_access_arn}","Retry":[{"ErrorEquals":["X"],"MaxAttempts":10}],"Next":"Report"},
  "Report":{"Type":"Task","Resource":"${report_on_access_arn}","End":true},
  "Failed":{"Type":"Task","Resource":"${report_on_access_arn}","End":true}}}"#;

fn arn(function: &str) -> String {
    format!("arn:aws:lambda:eu-west-1:123456789012:function:bg-{function}")
}

fn rendered() -> String {
    TEMPLATE
        .replace("${grant_access_arn}", &arn("grant-access"))
        .replace("${revoke_access_arn}", &arn("revoke-access"))
        .replace("${report_on_access_arn}", &arn("report-on-access"))
}

fn settings() -> Settings {
    Settings::from_env(&map_env([
        ("SLACK_SIGNING_SECRET_ARN", SIGNING),
        ("SLACK_BOT_TOKEN_ARN", TOKEN),
        ("SSO_INSTANCE_ARN", INSTANCE),
        ("ALLOWED_ACCOUNT_IDS", "111111111111,222222222222"),
        ("ALLOWED_PERMISSION_SET_ARNS", &format!("{PS_A},{PS_B}")),
        ("REPORT_SENDER", "break-glass@example.com"),
        ("AUDIT_ROLE_NAME", "bg-audit"),
        ("STATE_MACHINE_ARN", MACHINE),
        ("AWS_REGION", "eu-west-1"),
    ]))
    .unwrap()
}

/// A deployment as described by its fields; a healthy one by default.
#[derive(Debug)]
struct Fake {
    secrets: HashMap<String, Result<String, PortErrorKind>>,
    slack: Result<SlackAuth, PortErrorKind>,
    permission_sets: Vec<String>,
    provisioned: HashMap<String, Vec<String>>,
    identities: HashMap<String, bool>,
    unassumable: Vec<String>,
    lookup_refused: Vec<String>,
    definition: Option<String>,
    /// Calls to this service never answer.
    hangs: Option<&'static str>,
}

impl Fake {
    fn healthy() -> Self {
        Self {
            secrets: HashMap::from([
                (SIGNING.to_string(), Ok("s3cr3t-signing".to_string())),
                (TOKEN.to_string(), Ok("xoxb-s3cr3t".to_string())),
            ]),
            slack: Ok(SlackAuth {
                team_id: Some("T0001".into()),
                user_id: Some("UBOT".into()),
            }),
            permission_sets: vec![PS_A.into(), PS_B.into()],
            provisioned: HashMap::from([
                (
                    "111111111111".to_string(),
                    vec![PS_A.to_string(), PS_B.to_string()],
                ),
                (
                    "222222222222".to_string(),
                    vec![PS_B.to_string(), PS_A.to_string()],
                ),
            ]),
            identities: HashMap::from([("break-glass@example.com".to_string(), true)]),
            unassumable: vec![],
            lookup_refused: vec![],
            definition: Some(rendered()),
            hangs: None,
        }
    }

    async fn maybe_hang(&self, service: &str) {
        if self.hangs == Some(service) {
            std::future::pending::<()>().await;
        }
    }
}

fn err(kind: PortErrorKind, op: &'static str) -> PortError {
    PortError::new(kind, "fake", op, format!("{kind:?}"))
}

#[async_trait]
impl Deployment for Fake {
    async fn secret(&self, source: &SecretSource) -> Result<String, PortError> {
        self.maybe_hang("secretsmanager").await;
        match source {
            SecretSource::Plain(v) => Ok(v.clone()),
            SecretSource::SecretsManager { arn } => match self.secrets.get(arn) {
                Some(Ok(v)) => Ok(v.clone()),
                Some(Err(kind)) => Err(err(*kind, "GetSecretValue")),
                None => Err(err(PortErrorKind::NotFound, "GetSecretValue")),
            },
        }
    }
    async fn slack_auth(&self, token: &str) -> Result<SlackAuth, PortError> {
        assert_eq!(token, "xoxb-s3cr3t");
        self.slack.clone().map_err(|k| err(k, "auth.test"))
    }
    async fn permission_set(
        &self,
        _: &InstanceArn,
        ps: &PermissionSetArn,
    ) -> Result<PermissionSetInfo, PortError> {
        self.maybe_hang("sso").await;
        if self.permission_sets.iter().any(|p| p == ps.as_str()) {
            Ok(PermissionSetInfo {
                name: format!("Set-{}", ps.permission_set_id()),
                session_duration: None,
            })
        } else {
            Err(err(PortErrorKind::NotFound, "DescribePermissionSet"))
        }
    }
    async fn provisioned_permission_sets(
        &self,
        _: &InstanceArn,
        account: &AccountId,
    ) -> Result<Vec<String>, PortError> {
        self.maybe_hang("sso").await;
        Ok(self
            .provisioned
            .get(account.as_str())
            .cloned()
            .unwrap_or_default())
    }
    async fn sending_identity(&self, identity: &str) -> Result<Option<bool>, PortError> {
        Ok(self.identities.get(identity).copied())
    }
    async fn audit_access(
        &self,
        account: Option<&AccountId>,
        role: Option<&str>,
    ) -> Result<(), AuditAccessError> {
        let account = account.map(|a| a.as_str().to_string()).unwrap_or_default();
        if role.is_some() && self.unassumable.contains(&account) {
            return Err(AuditAccessError::AssumeRole(err(
                PortErrorKind::AccessDenied,
                "AssumeRole",
            )));
        }
        if self.lookup_refused.contains(&account) {
            return Err(AuditAccessError::LookupEvents(err(
                PortErrorKind::AccessDenied,
                "LookupEvents",
            )));
        }
        Ok(())
    }
    async fn state_machine_definition(&self, arn: &str) -> Result<Option<String>, PortError> {
        assert_eq!(arn, MACHINE);
        Ok(self.definition.clone())
    }
    async fn session_policy_exists(
        &self,
        _account: &AccountId,
        _role: &str,
        _policy_name: &str,
    ) -> Result<bool, PortError> {
        Ok(true)
    }
    async fn customer_managed_policies(
        &self,
        _: &InstanceArn,
        _: &PermissionSetArn,
    ) -> Result<Vec<String>, PortError> {
        Ok(vec![crate::sessions::DEFAULT_POLICY_NAME.to_string()])
    }
}

async fn run(fake: &Fake) -> Vec<Finding> {
    examine(&settings(), fake, TEMPLATE, Duration::from_secs(5)).await
}

fn problems(findings: &[Finding]) -> Vec<String> {
    findings
        .iter()
        .filter(|f| !f.ok)
        .map(|f| f.text.clone())
        .collect()
}

#[tokio::test]
async fn a_healthy_deployment_has_an_ok_line_per_check_and_no_problem() {
    let findings = run(&Fake::healthy()).await;
    assert_eq!(problems(&findings), Vec::<String>::new());
    // 2 secrets + auth.test, 2 permission sets, 2×2 provisionings, the
    // sender, 2 audit roles, the session policy in 2 accounts and in 2
    // permission sets, the state machine.
    assert_eq!(findings.len(), 3 + 2 + 4 + 1 + 2 + 2 + 2 + 1, "{findings:#?}");
    let text: Vec<String> = findings.iter().map(ToString::to_string).collect();
    assert!(text.iter().all(|l| l.starts_with("ok      ")), "{text:#?}");
    assert!(
        text.iter()
            .any(|l| l.contains("Slack accepts the bot token") && l.contains("T0001"))
    );
}

#[tokio::test]
async fn no_line_ever_shows_a_secret() {
    let mut fake = Fake::healthy();
    fake.slack = Err(PortErrorKind::AccessDenied);
    let findings = run(&fake).await;
    for f in &findings {
        assert!(!f.to_string().contains("s3cr3t"), "{f}");
    }
    let plain = Settings {
        signing_secret: SecretSource::Plain("plain-s3cr3t".into()),
        ..settings()
    };
    let findings = examine(&plain, &Fake::healthy(), TEMPLATE, Duration::from_secs(5)).await;
    assert!(findings.iter().all(|f| !f.to_string().contains("s3cr3t")));
}

#[tokio::test]
async fn every_broken_piece_is_named_by_one_line_and_hides_nothing_else() {
    let mut fake = Fake::healthy();
    fake.secrets.insert(SIGNING.into(), Ok("  ".into()));
    fake.permission_sets.retain(|p| p != PS_B);
    fake.provisioned.insert("222222222222".into(), vec![]);
    fake.identities.clear();
    fake.unassumable.push("111111111111".into());
    fake.lookup_refused.push("222222222222".into());
    fake.definition = Some(rendered().replace("\"MaxAttempts\":10", "\"MaxAttempts\":3"));
    let findings = run(&fake).await;
    let problems = problems(&findings);
    let expect = [
        format!(
            "Slack signing secret {SIGNING} is empty: aws secretsmanager put-secret-value --secret-id {SIGNING}"
        ),
        format!("permission set {PS_B} does not exist in Identity Center instance {INSTANCE}"),
        format!(
            "permission set {PS_A} is not provisioned to account 222222222222: provision it once (aws sso-admin provision-permission-set --instance-arn {INSTANCE} --permission-set-arn {PS_A} --target-type AWS_ACCOUNT --target-id 222222222222)"
        ),
        "SES sender break-glass@example.com is not verified in eu-west-1: aws sesv2 create-email-identity"
            .to_string(),
        "audit role bg-audit in account 111111111111 cannot be assumed".to_string(),
        "CloudTrail LookupEvents fails as audit role bg-audit in account 222222222222".to_string(),
        format!(
            "state machine {MACHINE} differs from the shipped definition: $.States.Revoke.Retry[0].MaxAttempts is 3, expected 10: terraform apply"
        ),
    ];
    assert_eq!(problems.len(), expect.len(), "{problems:#?}");
    for (p, e) in problems.iter().zip(&expect) {
        assert!(p.starts_with(e.as_str()), "{p}\n does not start with\n{e}");
    }
    // What still works is still said.
    let oks: Vec<&str> = findings
        .iter()
        .filter(|f| f.ok)
        .map(|f| f.text.as_str())
        .collect();
    assert!(oks.iter().any(|l| l.starts_with("Slack bot token")), "{oks:#?}");
    assert!(oks.iter().any(|l| l.starts_with("Slack accepts")), "{oks:#?}");
    assert!(oks.contains(&format!("permission set {PS_A} is provisioned to account 111111111111").as_str()));
    // A permission set that does not exist is not also "not provisioned".
    assert!(
        !problems
            .iter()
            .any(|p| p.contains(PS_B) && p.contains("provisioned"))
    );
}

#[tokio::test]
async fn a_missing_bot_token_skips_auth_test_and_a_refused_one_says_so() {
    let mut fake = Fake::healthy();
    fake.secrets.insert(TOKEN.into(), Err(PortErrorKind::NotFound));
    let p = problems(&run(&fake).await);
    assert_eq!(p.len(), 2, "{p:#?}");
    assert!(p[0].starts_with(&format!(
        "Slack bot token {TOKEN} has no value: aws secretsmanager put-secret-value"
    )));
    assert!(p[1].starts_with("Slack auth.test not tried"));

    let mut fake = Fake::healthy();
    fake.slack = Err(PortErrorKind::AccessDenied);
    let p = problems(&run(&fake).await);
    assert_eq!(p.len(), 1, "{p:#?}");
    assert!(p[0].starts_with("Slack refuses the bot token"), "{}", p[0]);
    assert!(p[0].contains(TOKEN), "{}", p[0]);
}

#[tokio::test]
async fn the_sender_may_be_verified_through_its_domain_and_pending_is_its_own_line() {
    let mut fake = Fake::healthy();
    fake.identities = HashMap::from([("example.com".to_string(), true)]);
    let findings = run(&fake).await;
    assert!(problems(&findings).is_empty());
    assert!(
        findings
            .iter()
            .any(|f| f.text.contains("its domain example.com is"))
    );

    fake.identities = HashMap::from([("break-glass@example.com".to_string(), false)]);
    let p = problems(&run(&fake).await);
    assert_eq!(p.len(), 1);
    assert!(
        p[0].starts_with(
            "SES sender break-glass@example.com is not verified for sending in eu-west-1: open the link"
        ),
        "{}",
        p[0]
    );
}

#[tokio::test]
async fn without_an_audit_role_lookup_events_is_tried_in_this_account() {
    let mut s = settings();
    s.audit_role_name = None;
    let findings = examine(&s, &Fake::healthy(), TEMPLATE, Duration::from_secs(5)).await;
    let audit: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.text.contains("CloudTrail"))
        .collect();
    assert_eq!(audit.len(), 1, "{findings:#?}");
    assert!(audit[0].ok && audit[0].text.contains("no audit role configured"));
}

#[tokio::test]
async fn a_check_that_hangs_is_reported_and_the_others_finish() {
    let mut fake = Fake::healthy();
    fake.hangs = Some("sso");
    let started = std::time::Instant::now();
    let findings = examine(&settings(), &fake, TEMPLATE, Duration::from_millis(200)).await;
    assert!(started.elapsed() < Duration::from_secs(3));
    let p = problems(&findings);
    // Two permission sets and two accounts, each bounded on its own.
    assert_eq!(p.len(), 4, "{p:#?}");
    assert!(p.iter().all(|l| l.contains("no answer within")), "{p:#?}");
    assert!(
        findings
            .iter()
            .any(|f| f.ok && f.text.starts_with("state machine"))
    );
}

#[tokio::test]
async fn a_missing_state_machine_is_named() {
    let mut fake = Fake::healthy();
    fake.definition = None;
    let p = problems(&run(&fake).await);
    assert_eq!(
        p,
        [format!(
            "state machine {MACHINE} does not exist: terraform apply the module (infrastructure/step_functions.tf)"
        )]
    );
}

#[test]
fn definitions_compare_as_json_and_name_each_difference_by_path() {
    let none = BTreeMap::new();
    // Whitespace and key order do not matter.
    let reordered: serde_json::Value = serde_json::from_str(&rendered()).unwrap();
    assert_eq!(
        compare_definition(TEMPLATE, &reordered.to_string(), &none),
        Vec::<String>::new()
    );
    let pretty = serde_json::to_string_pretty(&reordered).unwrap();
    assert_eq!(compare_definition(TEMPLATE, &pretty, &none), Vec::<String>::new());

    let mut changed = reordered.clone();
    changed["States"]["Grant"]["Next"] = json!("Report");
    changed["States"]["Extra"] = json!({"Type": "Pass", "End": true});
    changed["States"]["Revoke"]["Retry"] = json!([]);
    changed["States"]["Report"].as_object_mut().unwrap().remove("End");
    let d = compare_definition(TEMPLATE, &changed.to_string(), &none);
    assert_eq!(
        d,
        [
            "$.States.Grant.Next is \"Report\", expected \"Revoke\"",
            "$.States.Report.End is missing",
            "$.States.Revoke.Retry has 0 items, expected 1",
            "$.States.Extra is not in the shipped definition",
        ]
    );
    assert!(
        compare_definition(TEMPLATE, "not json", &none)[0].starts_with("the deployed definition is not JSON")
    );
}

#[test]
fn placeholders_bind_to_the_functions_they_name() {
    let none = BTreeMap::new();
    // Swapped: grant runs revoke-access and the other way round.
    let swapped = TEMPLATE
        .replace("${grant_access_arn}", &arn("revoke-access"))
        .replace("${revoke_access_arn}", &arn("grant-access"))
        .replace("${report_on_access_arn}", &arn("report-on-access"));
    let d = compare_definition(TEMPLATE, &swapped, &none);
    assert_eq!(d.len(), 2, "{d:#?}");
    assert!(d[0].starts_with("$.States.Grant.Resource is \"arn:aws:lambda:eu-west-1:123456789012:function:bg-revoke-access\", expected the ARN of the grant-access Lambda function"), "{}", d[0]);

    // One placeholder, two values.
    let split = rendered().replacen(&arn("report-on-access"), &arn("other-report-on-access"), 1);
    let d = compare_definition(TEMPLATE, &split, &none);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert!(d[0].contains("but ${report_on_access_arn} is"), "{}", d[0]);

    // Known values (the function_arns output) must match exactly.
    let known = BTreeMap::from([(
        "grant_access_arn".to_string(),
        arn("grant-access").replace("bg-", "prod-"),
    )]);
    let d = compare_definition(TEMPLATE, &rendered(), &known);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert!(d[0].starts_with("$.States.Grant.Resource is \"arn:aws:lambda:eu-west-1:123456789012:function:bg-grant-access\", but ${grant_access_arn} is \"arn:aws:lambda:eu-west-1:123456789012:function:prod-grant-access\" (the deployed function)"), "{}", d[0]);
}

#[test]
fn the_real_definition_renders_and_compares_clean() {
    let template = include_str!("../../../../statemachine/break-glass.asl.json");
    let known: BTreeMap<String, String> = [
        ("grant_access_arn", arn("grant-access")),
        ("revoke_access_arn", arn("revoke-access")),
        ("report_on_access_arn", arn("report-on-access")),
        ("notify_arn", arn("notify")),
        ("hold_access_arn", arn("hold-access")),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let mut deployed = template.to_string();
    for (k, v) in &known {
        deployed = deployed.replace(&format!("${{{k}}}"), v);
    }
    assert_eq!(
        compare_definition(template, &deployed, &known),
        Vec::<String>::new()
    );
    assert_eq!(
        compare_definition(template, &deployed, &BTreeMap::new()),
        Vec::<String>::new()
    );
}

fn outputs() -> serde_json::Value {
    let out = |value: serde_json::Value| json!({"sensitive": false, "type": "string", "value": value});
    json!({
        "signing_secret_arn": out(json!(SIGNING)),
        "bot_token_secret_arn": out(json!(TOKEN)),
        "sso_instance_arn": out(json!(INSTANCE)),
        "identity_store_id": out(json!("d-1111")),
        "allowed_account_ids": out(json!(["111111111111", "222222222222"])),
        "allowed_permission_set_arns": out(json!([PS_A])),
        "report_sender": out(json!("break-glass@example.com")),
        "audit_role_name": out(json!("")),
        "state_machine_arn": out(json!(MACHINE)),
        "region": out(json!("eu-west-1")),
        "function_arns": out(json!({"grant-access": arn("grant-access"), "access-requested": arn("access-requested")})),
        "slack_interactivity_url": out(json!("https://example.com/slack/interactions")),
    })
}

#[test]
fn terraform_outputs_are_read_like_the_functions_environment() {
    let env = map_env([
        ("SLACK_API_URL", "http://127.0.0.1:9/api"),
        ("SSO_REGION", "us-east-1"),
    ]);
    let s = Settings::from_outputs(&outputs().to_string(), &env).unwrap();
    assert_eq!(s.accounts.len(), 2);
    assert_eq!(s.permission_sets.len(), 1);
    assert_eq!(s.audit_role_name, None, "an empty audit_role_name is none");
    assert_eq!(s.region.as_deref(), Some("eu-west-1"));
    assert_eq!(s.sso_region.as_deref(), Some("us-east-1"));
    assert_eq!(s.slack.api_url, "http://127.0.0.1:9/api");
    assert_eq!(s.task_arns.get("grant_access_arn"), Some(&arn("grant-access")));
    assert_eq!(s.task_arns.len(), 1);

    // An sso_region output wins over the environment.
    let mut o = outputs();
    o["sso_region"] = json!({"value": "eu-central-1"});
    let s = Settings::from_outputs(&o.to_string(), &env).unwrap();
    assert_eq!(s.sso_region.as_deref(), Some("eu-central-1"));

    let mut o = outputs();
    o.as_object_mut().unwrap().remove("report_sender");
    assert_eq!(
        Settings::from_outputs(&o.to_string(), &map_env([])).unwrap_err(),
        OutputsError::Missing("report_sender")
    );
    let mut o = outputs();
    o["allowed_account_ids"] = json!({"value": []});
    let e = Settings::from_outputs(&o.to_string(), &map_env([])).unwrap_err();
    assert!(
        matches!(
            e,
            OutputsError::Invalid {
                output: "allowed_account_ids",
                ..
            }
        ),
        "{e}"
    );
    assert!(matches!(
        Settings::from_outputs("nope", &map_env([])),
        Err(OutputsError::NotJson(_))
    ));
}

#[test]
fn the_module_outputs_may_come_through_a_root_output() {
    let env = map_env([]);
    // `terraform output -json break_glass` of `value = module.break_glass`.
    let raw: serde_json::Map<String, serde_json::Value> = outputs()
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["value"].clone()))
        .collect();
    let raw = serde_json::Value::Object(raw);
    let s = Settings::from_outputs(&raw.to_string(), &env).unwrap();
    assert_eq!(s.state_machine_arn, MACHINE);
    assert_eq!(s.task_arns.len(), 1);
    // `terraform output -json` of a root with that output among others.
    let root = json!({
        "break_glass": {"sensitive": false, "type": ["object", {}], "value": raw},
        "other": {"sensitive": false, "type": "string", "value": "x"},
    });
    let s = Settings::from_outputs(&root.to_string(), &env).unwrap();
    assert_eq!(s.accounts.len(), 2);
    assert_eq!(s.task_arns.len(), 1);
    assert_eq!(
        Settings::from_outputs(r#"{"other": {"value": "x"}}"#, &env).unwrap_err(),
        OutputsError::Missing("sso_instance_arn")
    );
}

#[test]
fn the_environment_is_read_like_the_functions_read_it() {
    let e = Settings::from_env(&map_env([("SSO_INSTANCE_ARN", INSTANCE)])).unwrap_err();
    assert_eq!(e, ConfigError::Missing("ALLOWED_PERMISSION_SET_ARNS"));
    let s = settings();
    assert_eq!(s.audit_role_name.as_deref(), Some("bg-audit"));
    assert_eq!(s.slack.api_url, SlackSettings::DEFAULT_API_URL);
    assert!(s.task_arns.is_empty());
}
