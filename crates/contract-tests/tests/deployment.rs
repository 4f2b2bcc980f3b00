//! The Terraform module against the code it deploys. These fail when someone
//! adds an environment variable, an SDK call or a state machine placeholder
//! on one side only.

#![allow(clippy::unwrap_used)]

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

const FUNCTIONS: [&str; 6] = [
    "access-requested",
    "grant-access",
    "hold-access",
    "revoke-access",
    "report-on-access",
    "reconcile-access",
];

fn root(path: &str) -> String {
    let full = format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{full}: {e}"))
}

fn terraform(file: &str) -> Value {
    hcl::from_str(&root(&format!("infrastructure/{file}"))).unwrap_or_else(|e| panic!("{file}: {e}"))
}

/// Valid values for every variable any function knows, so each `Config`
/// walks its whole happy path and asks for everything it reads.
fn sample(name: &str) -> Option<&'static str> {
    Some(match name {
        "STATE_MACHINE_ARN" => "arn:aws:states:eu-west-1:111111111111:stateMachine:break-glass-access",
        "SSO_INSTANCE_ARN" => "arn:aws:sso:::instance/ssoins-1",
        "ALLOWED_ACCOUNT_IDS" => "123456789012",
        "ALLOWED_PERMISSION_SET_ARNS" => "arn:aws:sso:::permissionSet/ssoins-1/ps-1",
        "ALLOWED_SLACK_USER_IDS" => "U1",
        "ALLOWED_SLACK_TEAM_IDS" => "T1",
        "ALLOWED_SLACK_ENTERPRISE_IDS" => "E1",
        "SLACK_APP_ID" => "A1",
        "DEFAULT_DURATION_MINUTES" => "60",
        "MAX_DURATION_MINUTES" => "240",
        "SLACK_SIGNING_SECRET_ARN" | "SLACK_BOT_TOKEN_ARN" => {
            "arn:aws:secretsmanager:eu-west-1:111111111111:secret:x"
        }
        "IDENTITY_STORE_ID" => "d-1234567890",
        "GRANT_LEDGER_TABLE" => "break-glass-grant-ledger",
        "IDENTITY_LOOKUP" => "email",
        "SLACK_API_URL" => "https://slack.com/api",
        "CLOUDTRAIL_DELAY_MINUTES" => "15",
        "CLOUDTRAIL_REGIONS" => "eu-west-1",
        "REPORT_SOURCE" => "logs-insights",
        "CLOUDTRAIL_LOG_GROUP" => "arn:aws:logs:eu-west-1:222222222222:log-group:org-trail",
        "AUDIT_ROLE_NAME" => "break-glass-audit",
        "END_SESSIONS_ON_REVOKE" => "true",
        "SESSION_REVOCATION_POLICY_NAME" => "break-glass-session-revocations",
        "REPORT_SENDER" => "break-glass@example.com",
        "REPORT_RECIPIENTS" => "security@example.com",
        "REPORT_CC_REQUESTER" => "true",
        "ALERT_SLACK_CHANNEL" => "C1",
        "ALERT_TOPIC_ARN" => "arn:aws:sns:eu-west-1:111111111111:alerts",
        "RECONCILE_MIN_AGE_MINUTES" => "15",
        "SSO_REGION" => "us-east-1",
        "POLICY_PARAMETER_NAME" => "/break-glass/policy",
        "ADMIN_SLACK_USER_IDS" => "U7",
        "HOLD_TIME_SCALE" => "1",
        "EXTEND_MINUTES" => "60",
        "REQUIRE_REASON" => "false",
        "BREAK_GLASS_CHANNEL" => "C2",
        "ACCOUNT_NAMES" => "123456789012=Production",
        _ => return None,
    })
}

/// Variables Lambda sets itself; the module must not.
const RESERVED: &[&str] = &["AWS_REGION"];

fn variables_read(function: &str) -> BTreeSet<String> {
    let asked = RefCell::new(BTreeSet::new());
    let env = |name: &str| {
        asked.borrow_mut().insert(name.to_string());
        sample(name).map(str::to_string)
    };
    let ok = match function {
        "access-requested" => access_requested::Config::from_env(&env).map(|_| ()),
        "grant-access" => grant_access::Config::from_env(&env).map(|_| ()),
        "revoke-access" => revoke_access::Config::from_env(&env).map(|_| ()),
        "reconcile-access" => reconcile_access::Config::from_env(&env).map(|_| ()),
        "hold-access" => hold_access::Config::from_env(&env).map(|_| ()),
        _ => report_on_access::Config::from_env(&env).map(|_| ()),
    };
    assert_eq!(ok, Ok(()), "{function}'s Config rejects the sample environment");
    asked
        .into_inner()
        .into_iter()
        .filter(|n| !RESERVED.contains(&n.as_str()))
        .collect()
}

#[test]
fn every_variable_a_function_reads_is_set_and_nothing_else() {
    let main = terraform("main.tf");
    for function in FUNCTIONS {
        let set: BTreeSet<String> = main["locals"]["environment"][function]
            .as_object()
            .unwrap_or_else(|| panic!("locals.environment has no {function}"))
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            set,
            variables_read(function),
            "{function}: Terraform's environment vs what Config reads"
        );
    }
    let lambda = root("infrastructure/lambda.tf");
    assert!(
        lambda.contains(
            "variables = { for name, value in local.environment[each.key] : name => value if value != null }"
        ),
        "the functions take locals.environment, leaving out what is null (unset)"
    );
}

/// An empty allow list stops a function, so Terraform must leave an unset
/// optional list out of the environment (null), never pass `join(",", [])`;
/// and the workspace list has no default, so nobody deploys without one.
#[test]
fn optional_allow_lists_are_left_out_and_the_workspaces_are_required() {
    let main = terraform("main.tf");
    let variables = terraform("variables.tf");
    let environment = &main["locals"]["environment"];
    for (function, var, local, input) in [
        (
            "access-requested",
            "ALLOWED_SLACK_USER_IDS",
            "slack_user_ids",
            "allowed_slack_user_ids",
        ),
        (
            "access-requested",
            "ALLOWED_SLACK_ENTERPRISE_IDS",
            "slack_enterprise_ids",
            "allowed_slack_enterprise_ids",
        ),
        (
            "grant-access",
            "ALLOWED_SLACK_ENTERPRISE_IDS",
            "slack_enterprise_ids",
            "allowed_slack_enterprise_ids",
        ),
    ] {
        let value = environment[function][var].to_string();
        assert!(
            value.contains(&format!("local.{local}")),
            "{function} {var} = {value}"
        );
        let computed = main["locals"][local].to_string();
        assert!(
            computed.contains(&format!("var.{input} == null ? null")),
            "local.{local} = {computed}"
        );
        assert_eq!(
            variables["variable"][input].get("default"),
            Some(&Value::Null),
            "variable {input} defaults to null"
        );
    }
    let teams = &variables["variable"]["allowed_slack_team_ids"];
    assert!(teams.is_object(), "variable allowed_slack_team_ids exists");
    assert!(
        teams.get("default").is_none(),
        "allowed_slack_team_ids has no default"
    );
    for function in ["access-requested", "grant-access"] {
        assert!(
            environment[function]["ALLOWED_SLACK_TEAM_IDS"]
                .to_string()
                .contains("var.allowed_slack_team_ids"),
            "{function}"
        );
    }
}

// ------------------------------------------------------------------ IAM

/// An adapter module, the IAM service prefix of its SDK client, and the
/// core port trait it implements.
const ADAPTERS: &[(&str, &str)] = &[
    ("executions", "states"),
    ("ledger", "dynamodb"),
    ("identity_center", "sso"),
    ("directory", "identitystore"),
    ("mailer", "ses"),
    ("alerts", "sns"),
    ("audit", "cloudtrail"),
    ("audit_logs", "logs"),
    ("secrets", "secretsmanager"),
    ("policy", "ssm"),
    ("session_policy", "iam"),
];

/// Adapters whose service calls are made as the audit role in the target
/// account, not as the function's role: the function needs only to assume
/// it, and the role (modules/target-account) must allow the calls.
const THROUGH_AUDIT_ROLE: &[&str] = &["session_policy"];

/// `describe_account_assignment_creation_status` → `DescribeAccountAssignmentCreationStatus`.
fn pascal(snake: &str) -> String {
    snake
        .split('_')
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// Top-level and impl functions of a Rust file: name → body text.
fn functions_of(text: &str) -> BTreeMap<String, String> {
    let re = regex_lite::Regex::new(r"(?m)^\s*(?:pub(?:\([a-z]+\))? )?(?:async )?fn ([a-z_0-9]+)").unwrap();
    let starts: Vec<(usize, String)> = re
        .captures_iter(text)
        .map(|c| (c.get(0).unwrap().start(), c[1].to_string()))
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(i, (start, name))| {
            let end = starts.get(i + 1).map(|(s, _)| *s).unwrap_or(text.len());
            (name.clone(), text[*start..end].to_string())
        })
        .collect()
}

/// SDK operations each adapter method performs (following calls to other
/// functions of the same file, and to `pub(crate)` helpers of other adapter
/// files it imports), as IAM actions.
fn adapter_actions() -> BTreeMap<String, BTreeSet<String>> {
    let op = regex_lite::Regex::new(r"(?:client|Client::new\([^)]*\))\s*\.\s*([a-z_]+)\(\)").unwrap();
    // Calls to this file's own functions: free (`helper(`, `Self::helper(`)
    // or on `self`; a method of some other value (`map.get(`) is not one,
    // even when it shares a name with one of ours.
    let helper = regex_lite::Regex::new(r"(^|self\.|[^.A-Za-z0-9_])([a-z_][a-z0-9_]*)\(").unwrap();
    let files: Vec<(&str, &str, String, BTreeMap<String, String>)> = ADAPTERS
        .iter()
        .map(|(module, service)| {
            let text = root(&format!("crates/adapters/src/{module}.rs"));
            let fns = functions_of(&text)
                .into_iter()
                .map(|(name, body)| (name, body.split_whitespace().collect::<Vec<_>>().join("")))
                .collect();
            (*module, *service, text, fns)
        })
        .collect();
    // What each function does itself, and the helpers (own file or another
    // adapter file's) it calls.
    let mut direct: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    let mut calls: BTreeMap<(String, String), BTreeSet<(String, String)>> = BTreeMap::new();
    for (module, service, text, fns) in &files {
        for (name, body) in fns {
            let key = (module.to_string(), name.clone());
            let actions = direct.entry(key.clone()).or_default();
            for c in op
                .captures_iter(body)
                .filter(|c| !["clone", "config"].contains(&&c[1]))
            {
                let service = if &c[1] == "assume_role" { "sts" } else { service };
                actions.insert(format!("{service}:{}", pascal(&c[1])));
            }
            // aws_config's assume-role credentials provider calls STS itself.
            if body.contains("AssumeRoleProvider::builder(") {
                actions.insert("sts:AssumeRole".into());
            }
            for h in helper.captures_iter(body).map(|c| c[2].to_string()) {
                if fns.contains_key(&h) {
                    calls
                        .entry(key.clone())
                        .or_default()
                        .insert((module.to_string(), h.clone()));
                }
                for (other, _, _, other_fns) in &files {
                    if other != module
                        && text.contains(&format!("crate::{other}::"))
                        && other_fns.contains_key(&h)
                    {
                        calls
                            .entry(key.clone())
                            .or_default()
                            .insert((other.to_string(), h.clone()));
                    }
                }
            }
        }
    }
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for start in direct.keys() {
        let mut seen = BTreeSet::new();
        let mut todo = vec![start.clone()];
        let mut actions = BTreeSet::new();
        while let Some(f) = todo.pop() {
            if !seen.insert(f.clone()) {
                continue;
            }
            actions.extend(direct.get(&f).cloned().unwrap_or_default());
            todo.extend(calls.get(&f).cloned().unwrap_or_default());
        }
        if !actions.is_empty() {
            out.entry(format!("{}::{}", start.0, start.1))
                .or_default()
                .extend(actions);
        }
    }
    out
}

/// The source a function runs: its own crate, plus the core functions it
/// calls (transitively).
fn code_of(function: &str) -> String {
    let mut code = String::new();
    let dir = format!("{}/../{function}/src", env!("CARGO_MANIFEST_DIR"));
    for entry in std::fs::read_dir(&dir).unwrap() {
        code.push_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap());
    }
    with_core_calls(code)
}

/// `code` plus the core functions it calls (transitively).
fn with_core_calls(mut code: String) -> String {
    let mut core = BTreeMap::new();
    for file in ["access", "audit", "retry", "requester", "sessions"] {
        core.extend(functions_of(&root(&format!("crates/core/src/{file}.rs"))));
    }
    let mut included = BTreeSet::new();
    loop {
        let before = included.len();
        for (name, body) in &core {
            if !included.contains(name) && code.contains(&format!("{name}(")) {
                included.insert(name.clone());
                code.push_str(body);
            }
        }
        if included.len() == before {
            return code;
        }
    }
}

/// The IAM actions a function's code needs: adapter methods its `main.rs`
/// wires and its code calls.
fn actions_needed(function: &str) -> BTreeSet<String> {
    let main = root(&format!("crates/{function}/src/main.rs"));
    actions_needed_by(&main, &code_of(function))
}

/// The IAM actions `code` needs, run by the binary whose `main.rs` is `main`
/// (with the wiring helpers of the adapters crate's `lib.rs` it calls).
fn actions_needed_by(main: &str, code: &str) -> BTreeSet<String> {
    // A helper of lib.rs counts by the adapter calls it spells out in full
    // (`secrets::resolve_with(`), never by a bare name it happens to use.
    let helpers: String = functions_of(&root("crates/adapters/src/lib.rs"))
        .into_iter()
        .filter(|(name, _)| main.contains(&format!("{name}(")))
        .map(|(_, body)| body)
        .collect();
    let mut needed = BTreeSet::new();
    for (key, actions) in adapter_actions() {
        let (module, method) = key.split_once("::").unwrap();
        let wired = main.contains(&format!("break_glass_adapters::{module}"))
            || main.contains(&format!("{module}::"))
            || helpers.contains(&format!("{module}::{method}("));
        let called = code.contains(&format!(".{method}("))
            || main.contains(&format!("{method}("))
            || helpers.contains(&format!("{module}::{method}("));
        if wired && called {
            let audit_role = THROUGH_AUDIT_ROLE.contains(&module);
            needed.extend(
                actions
                    .into_iter()
                    .filter(|a| !audit_role || a.starts_with("sts:")),
            );
        }
    }
    needed
}

/// Every action a function's role policy allows (its statements, dynamic
/// ones included), limited to services the code talks to.
fn actions_allowed(function: &str) -> BTreeSet<String> {
    let iam = terraform("iam.tf");
    let doc = &iam["data"]["aws_iam_policy_document"][function.replace('-', "_")];
    let mut statements = statements_of(doc);
    // The documents it is built on besides the common one (the ledger's).
    for source in doc["source_policy_documents"].as_array().into_iter().flatten() {
        let source = source.as_str().unwrap_or_default();
        if let Some(name) = source
            .strip_prefix("${data.aws_iam_policy_document.")
            .and_then(|s| s.strip_suffix(".json}"))
            .filter(|n| !n.starts_with("common"))
        {
            statements.extend(statements_of(&iam["data"]["aws_iam_policy_document"][name]));
        }
    }
    // What checking the policy's rules adds (policy.tf), when they are set.
    statements.extend(statements_of(
        &terraform("policy.tf")["data"]["aws_iam_policy_document"]
            [format!("policy_rules_{}", function.replace('-', "_"))],
    ));
    // IAM is reached only through the audit role (in the target account),
    // never with the function's own.
    let services: BTreeSet<&str> = ADAPTERS
        .iter()
        .filter(|(module, _)| !THROUGH_AUDIT_ROLE.contains(module))
        .map(|(_, s)| *s)
        .chain(["sts"])
        .collect();
    statements
        .iter()
        .flat_map(|s| s["actions"].as_array().cloned().unwrap_or_default())
        .filter_map(|a| a.as_str().map(str::to_string))
        .filter(|a| services.contains(a.split(':').next().unwrap_or_default()))
        .collect()
}

/// A policy document's statements, dynamic ones included.
fn statements_of(doc: &Value) -> Vec<Value> {
    let mut statements: Vec<Value> = match &doc["statement"] {
        Value::Array(s) => s.clone(),
        Value::Object(_) => vec![doc["statement"].clone()],
        _ => vec![],
    };
    if let Some(dynamic) = doc["dynamic"]["statement"].as_array() {
        statements.extend(dynamic.iter().map(|d| d["content"].clone()));
    }
    statements
}

#[test]
fn every_aws_call_is_allowed_by_the_role_and_nothing_more() {
    for function in FUNCTIONS {
        let needed = actions_needed(function);
        let allowed = actions_allowed(function);
        assert!(
            !needed.is_empty(),
            "{function}: found no AWS calls; is the scan broken?"
        );
        let missing: Vec<_> = needed.difference(&allowed).collect();
        let extra: Vec<_> = allowed.difference(&needed).collect();
        assert!(
            missing.is_empty(),
            "{function} calls {missing:?}, which its role does not allow"
        );
        assert!(
            extra.is_empty(),
            "{function}'s role allows {extra:?}, which its code never calls"
        );
    }
}

#[test]
fn the_scan_sees_what_each_function_really_does() {
    // Spot checks, so a broken scan cannot pass by finding nothing on both sides.
    let grant = actions_needed("grant-access");
    for a in [
        "sso:CreateAccountAssignment",
        "sso:DeleteAccountAssignment",
        "identitystore:GetUserId",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
    ] {
        assert!(grant.contains(a), "grant-access: {a} not found in {grant:?}");
    }
    let revoke = actions_needed("revoke-access");
    assert!(
        !revoke.contains("sso:CreateAccountAssignment"),
        "revoke-access never creates"
    );
    for function in ["grant-access", "revoke-access"] {
        let needed = actions_needed(function);
        for a in ["dynamodb:GetItem", "dynamodb:PutItem"] {
            assert!(needed.contains(a), "{function}: {a} not found in {needed:?}");
        }
        assert!(
            !needed.iter().any(|a| a.starts_with("states:")),
            "{function} reads the grant ledger, not Step Functions: {needed:?}"
        );
    }
    let reconcile = actions_needed("reconcile-access");
    for a in [
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "sso:DeleteAccountAssignment",
        "sso:DescribeAccountAssignmentDeletionStatus",
        "sso:ListAccountAssignments",
        "states:DescribeExecution",
        "sns:Publish",
    ] {
        assert!(
            reconcile.contains(a),
            "reconcile-access: {a} not found in {reconcile:?}"
        );
    }
    assert!(
        !reconcile.contains("sso:CreateAccountAssignment"),
        "reconcile-access never creates"
    );
    assert_eq!(
        adapter_actions()["ledger::open_items"],
        ["dynamodb:Query".to_string()].into(),
        "the reconciler's read is seen too"
    );
    let report = actions_needed("report-on-access");
    for a in [
        "cloudtrail:LookupEvents",
        "logs:StartQuery",
        "logs:GetQueryResults",
        "logs:StopQuery",
        "sts:AssumeRole",
        "ses:SendEmail",
        "sns:Publish",
    ] {
        assert!(
            report.contains(a),
            "report-on-access: {a} not found in {report:?}"
        );
    }
    assert_eq!(
        actions_needed("access-requested"),
        [
            "dynamodb:GetItem",
            "dynamodb:PutItem",
            "dynamodb:Query",
            "identitystore:DescribeUser",
            "identitystore:GetGroupId",
            "identitystore:GetUserId",
            "identitystore:ListGroupMembershipsForMember",
            "secretsmanager:GetSecretValue",
            "sso:DescribePermissionSet",
            "ssm:GetParameter",
            "states:DescribeExecution",
            "states:SendTaskSuccess",
            "states:StartExecution",
        ]
        .map(String::from)
        .into()
    );
    for a in [
        "ssm:GetParameter",
        "identitystore:ListGroupMembershipsForMember",
        "identitystore:GetGroupId",
    ] {
        assert!(grant.contains(a), "grant-access: {a} not found in {grant:?}");
    }
}

/// The policy's rules: one SSM parameter, encrypted with the module's key,
/// named to the two functions that read it, readable by them alone, and
/// only when rules are set; otherwise the allow lists decide.
#[test]
fn the_policy_parameter_is_the_one_the_functions_read() {
    let policy = terraform("policy.tf");
    let parameter = &policy["resource"]["aws_ssm_parameter"]["policy"];
    assert_eq!(parameter["type"], "SecureString");
    assert_eq!(parameter["key_id"], "${aws_kms_key.this.arn}");
    assert!(
        parameter["count"]
            .to_string()
            .contains("local.policy_rules_enabled"),
        "{}",
        parameter["count"]
    );
    let locals = policy["locals"]
        .as_array()
        .cloned()
        .unwrap_or_else(|| vec![policy["locals"].clone()]);
    let name = locals
        .iter()
        .find_map(|l| l.get("policy_parameter_name"))
        .unwrap()
        .to_string();
    assert!(name.contains("aws_ssm_parameter.policy[0].name"), "{name}");
    assert!(name.contains(": null"), "no rules, no parameter: {name}");

    let main = terraform("main.tf");
    for function in ["access-requested", "grant-access"] {
        assert_eq!(
            main["locals"]["environment"][function]["POLICY_PARAMETER_NAME"],
            "${local.policy_parameter_name}",
            "{function} is told the parameter's name"
        );
        let doc = &policy["data"]["aws_iam_policy_document"]
            [format!("policy_rules_{}", function.replace('-', "_"))];
        let reads: Vec<Value> = statements_of(doc)
            .into_iter()
            .filter(|s| {
                s["actions"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|a| a == "ssm:GetParameter")
            })
            .collect();
        assert_eq!(reads.len(), 1, "{function} reads the parameter in one statement");
        let statement = &reads[0];
        assert_eq!(
            statement["resources"],
            serde_json::json!(["${aws_ssm_parameter.policy[0].arn}"]),
            "{function} may read that parameter and no other"
        );
        assert!(
            doc["count"].to_string().contains("local.policy_rules_enabled"),
            "{function}'s extra rights only with rules"
        );
    }
    for function in ["revoke-access", "report-on-access", "reconcile-access"] {
        assert!(
            main["locals"]["environment"][function]
                .get("POLICY_PARAMETER_NAME")
                .is_none(),
            "{function} does not decide who may break glass"
        );
    }
    let attached = &policy["resource"]["aws_iam_role_policy"]["policy_rules"];
    let for_each = attached["for_each"].to_string();
    assert!(
        for_each.contains("access-requested") && for_each.contains("grant-access"),
        "{for_each}"
    );
}

/// The table Terraform creates is the one the adapter reads and writes: its
/// key, the open-items index (keys, every attribute projected), the TTL
/// attribute; kept safe; and named to the functions that use it.
#[test]
fn the_grant_ledger_table_is_the_one_the_adapter_uses() {
    let dynamodb = terraform("dynamodb.tf");
    let table = &dynamodb["resource"]["aws_dynamodb_table"]["ledger"];
    assert_eq!(table["hash_key"], "pk");
    assert!(table.get("range_key").is_none(), "the key is pk alone");
    assert_eq!(table["billing_mode"], "PAY_PER_REQUEST");
    assert_eq!(table["deletion_protection_enabled"], true);
    assert_eq!(table["point_in_time_recovery"]["enabled"], true);
    assert_eq!(table["server_side_encryption"]["enabled"], true);
    assert_eq!(
        table["server_side_encryption"]["kms_key_arn"],
        "${aws_kms_key.this.arn}"
    );
    assert_eq!(table["ttl"]["attribute_name"], "ttl");
    assert_eq!(table["ttl"]["enabled"], true);
    let index = &table["global_secondary_index"];
    assert_eq!(index["name"], "open-items");
    assert_eq!(index["hash_key"], "open");
    assert_eq!(index["range_key"], "holds_until");
    assert_eq!(index["projection_type"], "ALL");
    let attributes: BTreeMap<String, String> = table["attribute"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["name"].as_str().unwrap().into(),
                a["type"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        attributes,
        [("holds_until", "S"), ("open", "S"), ("pk", "S")]
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .into()
    );

    let adapter = root("crates/adapters/src/ledger.rs");
    assert!(adapter.contains(r#"pub const OPEN_ITEMS_INDEX: &str = "open-items";"#));
    for attribute in [r#""pk""#, r#""open""#, r#""holds_until""#, r#""ttl""#] {
        assert!(adapter.contains(attribute), "the adapter writes {attribute}");
    }
    let testkit = root("crates/testkit/src/moto.rs");
    for name in [r#""open-items""#, r#""open""#, r#""holds_until""#, r#""ttl""#] {
        assert!(testkit.contains(name), "create_ledger_table creates {name}");
    }

    let main = terraform("main.tf");
    for function in [
        "access-requested",
        "grant-access",
        "hold-access",
        "revoke-access",
        "reconcile-access",
    ] {
        assert_eq!(
            main["locals"]["environment"][function]["GRANT_LEDGER_TABLE"],
            "${aws_dynamodb_table.ledger.name}",
            "{function} is told the table's name"
        );
    }
}

/// An expired operator lease in the ledger proves its Lambda is dead only
/// while no grant or revoke can run as long as the lease lasts.
#[test]
fn no_ledger_operator_outlives_its_lease() {
    let main = terraform("main.tf");
    let lease = break_glass_core::ledger::OPERATOR_LEASE.as_secs();
    for function in ["grant-access", "revoke-access", "reconcile-access"] {
        let timeout = main["locals"]["functions"][function]["timeout"].as_u64().unwrap();
        assert!(
            timeout + 60 <= lease,
            "{function}'s timeout ({timeout} s) plus a minute of clock skew must stay under the ledger's operator lease ({lease} s)"
        );
    }
}

#[test]
fn the_state_machine_template_gets_exactly_its_placeholders() {
    let sfn = terraform("step_functions.tf");
    let definition = sfn["resource"]["aws_sfn_state_machine"]["this"]["definition"]
        .as_str()
        .unwrap()
        .to_string();
    let asl = root("statemachine/break-glass.asl.json");
    let mut placeholders = BTreeSet::new();
    let re = regex_lite::Regex::new(r"\$\{([a-z_]+)\}").unwrap();
    for c in re.captures_iter(&asl) {
        placeholders.insert(c[1].to_string());
    }
    let passed: BTreeSet<String> = regex_lite::Regex::new(r#"([a-z_]+)\s*="#)
        .unwrap()
        .captures_iter(definition.split_once('{').map(|(_, r)| r).unwrap_or_default())
        .map(|c| c[1].to_string())
        .collect();
    assert!(definition.contains("templatefile("), "{definition}");
    assert!(definition.contains("statemachine/break-glass.asl.json"));
    assert_eq!(
        passed, placeholders,
        "templatefile() variables vs the definition's placeholders"
    );
}

#[test]
fn the_image_serves_each_function_by_its_binary() {
    let dockerfile = root("Dockerfile");
    for function in FUNCTIONS {
        // Package = binary: either names it.
        assert!(
            dockerfile.contains(&format!("-p {function}"))
                || dockerfile.contains(&format!("--bin {function}")),
            "Dockerfile does not build {function}"
        );
        assert!(
            dockerfile.contains(&format!("/build/target/release/{function}")),
            "image lacks {function}"
        );
    }
    assert!(dockerfile.contains("FROM public.ecr.aws/lambda/provided:al2023"));
    let lambda = root("infrastructure/lambda.tf");
    assert!(lambda.contains(r#"entry_point = ["/var/task/${try(each.value.binary, each.key)}"]"#));
    // Folder = package = binary = function, except a function that names
    // its binary (notify runs report-on-access's).
    let main = terraform("main.tf");
    for (name, function) in main["locals"]["functions"].as_object().unwrap() {
        let binary = function["binary"].as_str().unwrap_or(name);
        assert!(
            FUNCTIONS.contains(&binary),
            "function {name} runs {binary}, which the image does not have"
        );
        assert!(
            function.get("binary").is_none() || binary != name,
            "{name}: a binary named like its function needs no `binary`"
        );
    }
    let script = root("scripts/check-image-build");
    assert!(
        script.contains("cargo build --release --locked"),
        "CI must run the Dockerfile's build"
    );
}

// ------------------------------------------------------------ issue 11

/// Statements of an `aws_iam_policy_document`, static and dynamic.
fn statements(document: &str) -> Vec<Value> {
    let iam = terraform("iam.tf");
    let doc = &iam["data"]["aws_iam_policy_document"][document];
    let mut out: Vec<Value> = match &doc["statement"] {
        Value::Array(s) => s.clone(),
        Value::Object(_) => vec![doc["statement"].clone()],
        _ => vec![],
    };
    if let Some(dynamic) = doc["dynamic"]["statement"].as_array() {
        out.extend(dynamic.iter().map(|d| d["content"].clone()));
    } else if doc["dynamic"]["statement"].is_object() {
        out.push(doc["dynamic"]["statement"]["content"].clone());
    }
    out
}

/// A statement's condition blocks as (test, variable, values).
fn conditions(statement: &Value) -> Vec<(String, String, Vec<String>)> {
    let blocks = match &statement["condition"] {
        Value::Array(c) => c.clone(),
        Value::Object(_) => vec![statement["condition"].clone()],
        _ => vec![],
    };
    blocks
        .iter()
        .map(|c| {
            (
                c["test"].as_str().unwrap_or_default().to_string(),
                c["variable"].as_str().unwrap_or_default().to_string(),
                c["values"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
            )
        })
        .collect()
}

/// Identity Center answers only in its home region: every function that
/// builds an sso-admin or identitystore client must read `SSO_REGION`, and
/// Terraform passes `var.sso_region` to exactly those.
#[test]
fn identity_center_clients_are_told_its_home_region() {
    let main = terraform("main.tf");
    let mut talking = Vec::new();
    for function in FUNCTIONS {
        let wiring = root(&format!("crates/{function}/src/main.rs"));
        let talks = ["identity_center::", "directory::", "SsoAdmin", "IdentityStore"]
            .iter()
            .any(|client| wiring.contains(client));
        let reads = variables_read(function).contains("SSO_REGION");
        let passed = &main["locals"]["environment"][function]["SSO_REGION"];
        if talks {
            talking.push(function);
            assert!(
                reads,
                "{function} talks to Identity Center but its Config does not read SSO_REGION"
            );
        }
        if reads {
            assert_eq!(passed, "${var.sso_region}", "{function}'s SSO_REGION");
        } else {
            assert!(passed.is_null(), "{function} is given SSO_REGION it never reads");
        }
    }
    for function in ["grant-access", "revoke-access", "reconcile-access"] {
        assert!(
            talking.contains(&function),
            "the scan misses {function}'s clients"
        );
    }
    let variable = &terraform("variables.tf")["variable"]["sso_region"];
    assert_eq!(
        variable.get("default"),
        Some(&Value::Null),
        "null: the functions' own region"
    );
    assert!(
        variable["validation"].to_string().contains("regex("),
        "sso_region is validated as a region name"
    );
    // A delegated administrator's identity store lives in the management
    // account: no ARN may pin it to ours.
    for statement in statements("grant_access") {
        for resource in statement["resources"].as_array().into_iter().flatten() {
            let resource = resource.as_str().unwrap_or_default();
            if resource.contains(":identitystore::") {
                assert!(
                    !resource.contains("${local.account}"),
                    "the identity store is not necessarily in the deploying account: {resource}"
                );
            }
        }
    }
}

/// The state machine's Catch states alert through their own function (the
/// report-on-access binary, with its own reserved concurrency), so an
/// alert never queues behind 15-minute reports; the report keeps its own.
#[test]
fn alerts_do_not_queue_behind_reports() {
    let asl: Value = serde_json::from_str(&root("statemachine/break-glass.asl.json")).unwrap();
    let states = asl["States"].as_object().unwrap();
    let catch_targets: BTreeSet<&str> = states
        .values()
        .flat_map(|s| s["Catch"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["Next"].as_str().map(str::to_string))
        .filter_map(|n| states.get_key_value(&n).map(|(k, _)| k.as_str()))
        .filter(|n| states[*n]["Type"] == "Task")
        // The hold's way out when it cannot be read is the revoke itself
        // (and a failed token store looks at the ledger again): not alerts.
        .filter(|n| !["Revoke", "CheckHold"].contains(n))
        .collect();
    assert_eq!(
        catch_targets,
        [
            "AlertGrantIncomplete",
            "AlertRevokeFailed",
            "NotifyGrantFailed",
            "NotifyReportFailed"
        ]
        .into()
    );
    for (name, state) in states {
        if state["Type"] != "Task" {
            continue;
        }
        let expected = if catch_targets.contains(name.as_str()) {
            "${notify_arn}"
        } else if name == "Report" {
            "${report_on_access_arn}"
        } else {
            continue;
        };
        assert_eq!(state["Resource"], expected, "{name}'s function");
    }

    let main = terraform("main.tf");
    let functions = &main["locals"]["functions"];
    let notify = &functions["notify"];
    assert_eq!(
        notify["binary"], "report-on-access",
        "notify runs the report's binary"
    );
    let report = &functions["report-on-access"];
    assert!(
        notify["concurrency"].as_u64().unwrap() >= 1,
        "notify has reserved concurrency of its own"
    );
    let timeout = notify["timeout"].as_u64().unwrap();
    assert!(
        timeout < report["timeout"].as_u64().unwrap(),
        "a short timeout for alerts"
    );
    for name in &catch_targets {
        let task_timeout = states[*name]["TimeoutSeconds"].as_u64().unwrap();
        assert!(
            timeout <= task_timeout,
            "{name}: the Lambda ({timeout} s) must time out before the task ({task_timeout} s)"
        );
    }

    let sfn = terraform("step_functions.tf");
    let definition = sfn["resource"]["aws_sfn_state_machine"]["this"]["definition"]
        .as_str()
        .unwrap()
        .to_string();
    let compact: String = definition.split_whitespace().collect();
    assert!(
        compact.contains(r#"notify_arn=aws_lambda_function.this["notify"].arn"#),
        "{definition}"
    );
    assert!(
        compact.contains(r#"report_on_access_arn=aws_lambda_function.this["report-on-access"].arn"#),
        "{definition}"
    );
    let invoke = statements("state_machine")
        .into_iter()
        .find(|s| s["sid"] == "InvokeTasks")
        .unwrap();
    assert!(
        invoke["resources"]
            .to_string()
            .contains(r#"aws_lambda_function.this[\"notify\"].arn"#),
        "the state machine may invoke notify: {invoke}"
    );
}

/// notify's environment: what report-on-access's Config needs to start and
/// what alerting uses; nothing to read CloudTrail with.
#[test]
fn notify_is_configured_to_alert_and_nothing_more() {
    let main = terraform("main.tf");
    let set: BTreeSet<String> = main["locals"]["environment"]["notify"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let read = variables_read("report-on-access");
    assert!(
        set.is_subset(&read),
        "notify is given {:?}, which report-on-access never reads",
        set.difference(&read).collect::<Vec<_>>()
    );
    let env = |name: &str| {
        set.contains(name)
            .then(|| sample(name))
            .flatten()
            .map(str::to_string)
    };
    assert!(
        report_on_access::Config::from_env(&env).is_ok(),
        "report-on-access's Config starts with notify's environment alone"
    );
    for needed in ["SLACK_BOT_TOKEN_ARN", "ALERT_TOPIC_ARN", "ALERT_SLACK_CHANNEL"] {
        assert!(set.contains(needed), "notify needs {needed}");
    }
    for reading in [
        "REPORT_SOURCE",
        "CLOUDTRAIL_LOG_GROUP",
        "CLOUDTRAIL_REGIONS",
        "AUDIT_ROLE_NAME",
    ] {
        assert!(!set.contains(reading), "notify never reads CloudTrail: {reading}");
    }
}

/// notify's role allows what the notifying path calls (report-on-access's
/// `notify.rs`, with its binary's wiring), and nothing more.
#[test]
fn notify_role_allows_exactly_what_notifying_calls() {
    let main = root("crates/report-on-access/src/main.rs");
    let code = with_core_calls(root("crates/report-on-access/src/notify.rs"));
    let needed = actions_needed_by(&main, &code);
    assert!(
        needed.contains("sns:Publish") && needed.contains("secretsmanager:GetSecretValue"),
        "the scan sees notify's calls: {needed:?}"
    );
    assert_eq!(actions_allowed("notify"), needed, "notify's role vs its calls");
}

/// The state machine is encrypted with the module's key, so access-requested
/// (StartExecution, DescribeExecution) needs the key for this state machine.
#[test]
fn starting_an_execution_may_use_the_state_machines_key() {
    let sfn = terraform("step_functions.tf");
    let encryption = &sfn["resource"]["aws_sfn_state_machine"]["this"]["encryption_configuration"];
    assert_eq!(encryption["type"], "CUSTOMER_MANAGED_KMS_KEY");
    assert_eq!(encryption["kms_key_id"], "${aws_kms_key.this.arn}");
    let key_statement = statements("access_requested")
        .into_iter()
        .find(|s| {
            let actions = s["actions"].to_string();
            actions.contains("kms:GenerateDataKey") && actions.contains("kms:Decrypt")
        })
        .expect("access-requested may use the state machine's key");
    assert_eq!(
        key_statement["resources"],
        serde_json::json!(["${aws_kms_key.this.arn}"])
    );
    assert!(
        conditions(&key_statement).contains(&(
            "StringEquals".into(),
            "kms:EncryptionContext:aws:states:stateMachineArn".into(),
            vec!["${local.state_machine_arn}".into()],
        )),
        "only for this state machine: {key_statement}"
    );
}

/// An execution stopped or timed out runs no Catch: alarms say so, and the
/// EventBridge rule starts reconcile-access.
#[test]
fn stopped_and_timed_out_executions_raise_an_alarm_and_an_event() {
    let alarms = terraform("alarms.tf");
    let all = alarms["resource"]["aws_cloudwatch_metric_alarm"]
        .as_object()
        .unwrap();
    for metric in ["ExecutionsAborted", "ExecutionsTimedOut", "ExecutionsFailed"] {
        let alarm = all
            .values()
            .find(|a| a["metric_name"] == metric)
            .unwrap_or_else(|| panic!("no alarm on {metric}"));
        assert_eq!(alarm["namespace"], "AWS/States", "{metric}");
        assert_eq!(
            alarm["dimensions"]["StateMachineArn"], "${aws_sfn_state_machine.this.arn}",
            "{metric}"
        );
        assert_eq!(alarm["threshold"], 0, "{metric}: the first one alarms");
        assert_eq!(
            alarm["alarm_actions"],
            serde_json::json!(["${aws_sns_topic.alerts.arn}"]),
            "{metric} goes to the alert topic"
        );
    }
    let rule = root("infrastructure/reconcile.tf");
    for status in ["\"ABORTED\"", "\"TIMED_OUT\"", "\"FAILED\""] {
        assert!(rule.contains(status), "the execution-ended rule misses {status}");
    }
}

/// Deleting the state machine would end running grants without their
/// revoke: Terraform must refuse to.
#[test]
fn the_state_machine_is_never_replaced_silently() {
    let sfn = terraform("step_functions.tf");
    assert_eq!(
        sfn["resource"]["aws_sfn_state_machine"]["this"]["lifecycle"]["prevent_destroy"],
        true
    );
}

/// One variable picks every function's instruction set.
#[test]
fn every_function_runs_on_the_chosen_architecture() {
    let lambda = terraform("lambda.tf");
    assert_eq!(
        lambda["resource"]["aws_lambda_function"]["this"]["architectures"],
        serde_json::json!(["${var.architecture}"])
    );
    let variable = &terraform("variables.tf")["variable"]["architecture"];
    assert_eq!(variable["default"], "x86_64");
    let validation = variable["validation"].to_string();
    assert!(
        validation.contains("x86_64") && validation.contains("arm64"),
        "{validation}"
    );
}

/// The management account is refused unless opted into, and only then do
/// the roles that assign and remove get rights on its aws-reserved SSO roles.
#[test]
fn the_management_account_is_opt_in() {
    let variables = terraform("variables.tf");
    assert_eq!(
        variables["variable"]["management_account_id"].get("default"),
        Some(&Value::Null)
    );
    let opt_in = &variables["variable"]["allow_management_account"];
    assert_eq!(opt_in["default"], false);
    assert!(
        opt_in["validation"]
            .to_string()
            .contains("var.allowed_account_ids"),
        "listing the management account without opting in is refused"
    );
    for document in ["grant_access", "revoke_access", "reconcile_access"] {
        let iam = terraform("iam.tf");
        let dynamic = &iam["data"]["aws_iam_policy_document"][document]["dynamic"]["statement"];
        let gated: Vec<&Value> = dynamic
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| {
                d["content"]["resources"]
                    .to_string()
                    .contains("local.management_sso_")
            })
            .collect();
        assert!(
            !gated.is_empty(),
            "{document}: no statement for the management account"
        );
        for d in gated {
            assert!(
                d["for_each"].to_string().contains("local.management_assignable"),
                "{document}: the management account's roles only when opted in: {d}"
            );
        }
    }
    let iam = root("infrastructure/iam.tf");
    assert!(iam.contains("role/aws-reserved/sso.amazonaws.com/*"));
}

/// The IAM calls revoke-access makes through the audit role are exactly what
/// modules/target-account lets that role do, on the session revocation
/// policy only; the role trusts revoke-access, which may assume it.
#[test]
fn the_audit_role_may_write_the_session_policy_and_nothing_more() {
    let main = root("crates/revoke-access/src/main.rs");
    let code = code_of("revoke-access");
    let through_role: BTreeSet<String> = adapter_actions()
        .into_iter()
        .filter(|(key, _)| key.starts_with("session_policy::"))
        .filter(|(key, _)| {
            let method = key.split_once("::").unwrap().1;
            code.contains(&format!(".{method}("))
        })
        .flat_map(|(_, actions)| actions)
        .filter(|a| a.starts_with("iam:"))
        .collect();
    assert!(
        main.contains("session_policy::IamSessionPolicy"),
        "revoke-access wires the IAM adapter"
    );
    let module: Value = hcl::from_str(&root("infrastructure/modules/target-account/main.tf")).unwrap();
    let doc = &module["data"]["aws_iam_policy_document"]["session_revocations"]["statement"];
    let allowed: BTreeSet<String> = doc["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        through_role, allowed,
        "the audit role's IAM actions vs the adapter's"
    );
    assert_eq!(
        doc["resources"],
        serde_json::json!(["${aws_iam_policy.session_revocations.arn}"]),
        "on the session revocation policy only"
    );
    let trust = root("infrastructure/modules/target-account/main.tf");
    assert!(
        trust.contains("var.revoke_role_arn"),
        "the audit role trusts revoke-access"
    );
    let outputs = root("infrastructure/outputs.tf");
    assert!(outputs.contains(r#"aws_iam_role.function["revoke-access"].arn"#));
    assert!(
        actions_needed("revoke-access").contains("sts:AssumeRole"),
        "revoke-access assumes the audit role"
    );
    let policy = &module["resource"]["aws_iam_policy"]["session_revocations"];
    assert_eq!(
        policy["lifecycle"]["ignore_changes"],
        serde_json::json!(["${policy}"]),
        "break glass writes the policy's versions; Terraform must leave them"
    );
}
