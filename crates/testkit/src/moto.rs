//! The moto server, as started by `scripts/with-moto` (which exports
//! `MOTO_ENDPOINT`), and helpers to seed it.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_sfn::config::Credentials;

pub const ENV: &str = "MOTO_ENDPOINT";

/// The moto server's URL. Tests that need it fail loudly without it rather
/// than pass by skipping.
pub fn endpoint() -> String {
    std::env::var(ENV).unwrap_or_else(|_| {
        panic!("{ENV} is not set: run the tests with scripts/test, which starts the moto server")
    })
}

/// SDK configuration pointing every client at moto.
pub async fn sdk() -> SdkConfig {
    sdk_at(&endpoint()).await
}

pub async fn sdk_at(endpoint: &str) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(credentials())
        .load()
        .await
}

/// Fixed test credentials: moto accepts any.
pub fn credentials() -> Credentials {
    Credentials::new("testing", "testing", None, None, "moto")
}

/// A state machine for this test alone. moto does not run executions unless
/// told to, so they stay `RUNNING`, which is what the tests want to observe.
pub async fn state_machine(sdk: &SdkConfig, name: &str) -> String {
    let client = aws_sdk_sfn::Client::new(sdk);
    let definition = r#"{"StartAt":"Hold","States":{"Hold":{"Type":"Wait","Seconds":3600,"End":true}}}"#;
    client
        .create_state_machine()
        .name(name)
        .definition(definition)
        .role_arn("arn:aws:iam::123456789012:role/break-glass-states")
        .send()
        .await
        .unwrap()
        .state_machine_arn
}

/// Every execution of a state machine: (name, status, input).
pub async fn executions(sdk: &SdkConfig, state_machine_arn: &str) -> Vec<(String, String, String)> {
    let client = aws_sdk_sfn::Client::new(sdk);
    let listed = client
        .list_executions()
        .state_machine_arn(state_machine_arn)
        .send()
        .await
        .unwrap();
    let mut out = Vec::new();
    for e in listed.executions {
        let d = client
            .describe_execution()
            .execution_arn(&e.execution_arn)
            .send()
            .await
            .unwrap();
        out.push((e.name, d.status.as_str().to_string(), d.input.unwrap_or_default()));
    }
    out.sort();
    out
}

/// Ends an execution, as the state machine would on finishing.
pub async fn stop_execution(sdk: &SdkConfig, state_machine_arn: &str, name: &str) {
    let arn = format!(
        "{}:{name}",
        state_machine_arn.replacen(":stateMachine:", ":execution:", 1)
    );
    aws_sdk_sfn::Client::new(sdk)
        .stop_execution()
        .execution_arn(arn)
        .send()
        .await
        .unwrap();
}

/// Creates the grant ledger's DynamoDB table as the Terraform module does
/// (`infrastructure/dynamodb.tf`): partition key `pk`, on demand, TTL on
/// `ttl`, and the sparse `open-items` index (`open`, `holds_until`, every
/// attribute projected). Returns once the table is active. An existing
/// table of that name is taken as it is (once active), so concurrent runs
/// can share one.
pub async fn create_ledger_table(sdk: &SdkConfig, name: &str) -> Result<(), String> {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
        ProjectionType, ScalarAttributeType, TableStatus, TimeToLiveSpecification,
    };
    let client = aws_sdk_dynamodb::Client::new(sdk);
    let key = |attribute: &str, kind: KeyType| {
        KeySchemaElement::builder()
            .attribute_name(attribute)
            .key_type(kind)
            .build()
            .map_err(|e| e.to_string())
    };
    let string = |attribute: &str| {
        AttributeDefinition::builder()
            .attribute_name(attribute)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| e.to_string())
    };
    let index = GlobalSecondaryIndex::builder()
        .index_name("open-items")
        .key_schema(key("open", KeyType::Hash)?)
        .key_schema(key("holds_until", KeyType::Range)?)
        .projection(Projection::builder().projection_type(ProjectionType::All).build())
        .build()
        .map_err(|e| e.to_string())?;
    let created = client
        .create_table()
        .table_name(name)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(string("pk")?)
        .attribute_definitions(string("open")?)
        .attribute_definitions(string("holds_until")?)
        .key_schema(key("pk", KeyType::Hash)?)
        .global_secondary_indexes(index)
        .send()
        .await;
    let created = match created {
        Ok(_) => true,
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) =>
        {
            false
        }
        Err(e) => {
            return Err(format!(
                "CreateTable {name}: {}",
                aws_sdk_dynamodb::error::DisplayErrorContext(&e)
            ));
        }
    };
    let mut active = false;
    for _ in 0..100 {
        let status = client
            .describe_table()
            .table_name(name)
            .send()
            .await
            .map_err(|e| format!("DescribeTable {name}: {e}"))?
            .table
            .and_then(|t| t.table_status);
        active = status == Some(TableStatus::Active);
        if active {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    if !active {
        return Err(format!("table {name} did not become active"));
    }
    if created {
        client
            .update_time_to_live()
            .table_name(name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .enabled(true)
                    .attribute_name("ttl")
                    .build()
                    .map_err(|e| e.to_string())?,
            )
            .send()
            .await
            .map_err(|e| format!("UpdateTimeToLive {name}: {e}"))?;
    }
    Ok(())
}

/// A unique suffix for resource names, so tests sharing one moto server
/// never see each other's state.
pub fn unique(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "{prefix}-{}-{nanos:x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// An Identity Center instance of this test's own (moto does not check
/// instance ARNs), an identity store, and one permission set in it.
#[derive(Debug, Clone)]
pub struct IdentityCenterFixture {
    pub instance_arn: String,
    pub identity_store_id: String,
    pub permission_set_arn: String,
}

pub async fn identity_center(
    sdk: &SdkConfig,
    permission_set_name: &str,
    session: &str,
) -> IdentityCenterFixture {
    let id = unique("i").replace('-', "");
    let instance_arn = format!("arn:aws:sso:::instance/ssoins-{id}");
    let permission_set_arn = aws_sdk_ssoadmin::Client::new(sdk)
        .create_permission_set()
        .instance_arn(&instance_arn)
        .name(permission_set_name)
        .session_duration(session)
        .send()
        .await
        .unwrap()
        .permission_set
        .unwrap()
        .permission_set_arn
        .unwrap();
    IdentityCenterFixture {
        instance_arn,
        identity_store_id: format!("d-{id}"),
        permission_set_arn,
    }
}

/// An Identity Store user; returns its user id.
pub async fn create_user(sdk: &SdkConfig, identity_store_id: &str, user_name: &str, email: &str) -> String {
    use aws_sdk_identitystore::types::{Email, Name};
    aws_sdk_identitystore::Client::new(sdk)
        .create_user()
        .identity_store_id(identity_store_id)
        .user_name(user_name)
        .display_name(user_name)
        .name(Name::builder().given_name("Test").family_name(user_name).build())
        .emails(Email::builder().value(email).primary(true).r#type("work").build())
        .send()
        .await
        .unwrap()
        .user_id
}

/// Assigns directly, as an administrator would: standing access.
pub async fn assign(sdk: &SdkConfig, fx: &IdentityCenterFixture, account: &str, user_id: &str) {
    use aws_sdk_ssoadmin::types::{PrincipalType, TargetType};
    aws_sdk_ssoadmin::Client::new(sdk)
        .create_account_assignment()
        .instance_arn(&fx.instance_arn)
        .target_id(account)
        .target_type(TargetType::AwsAccount)
        .permission_set_arn(&fx.permission_set_arn)
        .principal_type(PrincipalType::User)
        .principal_id(user_id)
        .send()
        .await
        .unwrap();
}

/// The user principals assigned the fixture's permission set in `account`.
pub async fn assigned_users(sdk: &SdkConfig, fx: &IdentityCenterFixture, account: &str) -> Vec<String> {
    aws_sdk_ssoadmin::Client::new(sdk)
        .list_account_assignments()
        .instance_arn(&fx.instance_arn)
        .account_id(account)
        .permission_set_arn(&fx.permission_set_arn)
        .send()
        .await
        .unwrap()
        .account_assignments
        .unwrap_or_default()
        .into_iter()
        .filter_map(|a| a.principal_id)
        .collect()
}

/// Lets `address` send mail through moto's SES.
pub async fn verify_sender(sdk: &SdkConfig, address: &str) {
    aws_sdk_sesv2::Client::new(sdk)
        .create_email_identity()
        .email_identity(address)
        .send()
        .await
        .unwrap();
}

/// Every message moto's SES has accepted, as its `/moto-api/data.json`
/// shows a simple one (`source`, `destinations.ToAddresses`, `subject`,
/// `body`): raw MIME messages (the report's, which carry an attachment) are
/// decoded into that shape, `body` being the HTML part.
pub async fn sent_emails(endpoint: &str) -> Vec<serde_json::Value> {
    let data: serde_json::Value = reqwest::get(format!("{endpoint}/moto-api/data.json"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut all = data["ses"]["Message"].as_array().cloned().unwrap_or_default();
    for raw in crate::mail::sent_raw(endpoint).await {
        // moto lists the envelope's recipients and again the To header's.
        let mut to: Vec<String> = Vec::new();
        for d in &raw.destinations {
            if !to.contains(d) {
                to.push(d.clone());
            }
        }
        all.push(serde_json::json!({
            "source": raw.source,
            "destinations": {"ToAddresses": to},
            "subject": raw.subject(),
            "body": raw.part("text/html").map(|p| p.text()).unwrap_or_default(),
        }));
    }
    all
}

/// An Identity Store group; returns its group id.
pub async fn create_group(sdk: &SdkConfig, identity_store_id: &str, display_name: &str) -> String {
    aws_sdk_identitystore::Client::new(sdk)
        .create_group()
        .identity_store_id(identity_store_id)
        .display_name(display_name)
        .send()
        .await
        .unwrap()
        .group_id
}

/// Puts a user in a group; returns the membership id (to remove it again).
pub async fn add_to_group(sdk: &SdkConfig, identity_store_id: &str, group_id: &str, user_id: &str) -> String {
    use aws_sdk_identitystore::types::MemberId;
    aws_sdk_identitystore::Client::new(sdk)
        .create_group_membership()
        .identity_store_id(identity_store_id)
        .group_id(group_id)
        .member_id(MemberId::UserId(user_id.to_string()))
        .send()
        .await
        .unwrap()
        .membership_id
}

pub async fn remove_from_group(sdk: &SdkConfig, identity_store_id: &str, membership_id: &str) {
    aws_sdk_identitystore::Client::new(sdk)
        .delete_group_membership()
        .identity_store_id(identity_store_id)
        .membership_id(membership_id)
        .send()
        .await
        .unwrap();
}
