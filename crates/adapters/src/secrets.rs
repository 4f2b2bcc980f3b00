//! Resolves a [`SecretSource`] once per cold start.

use aws_sdk_secretsmanager::Client;
use break_glass_core::config::SecretSource;
use break_glass_core::ports::PortError;

use crate::error::classify;

/// The secret's text. For a JSON secret `{"value": "..."}` (how some teams
/// store every secret) the `value` field is used.
pub async fn resolve(client: &Client, source: &SecretSource) -> Result<String, PortError> {
    match source {
        SecretSource::Plain(value) => Ok(value.clone()),
        SecretSource::SecretsManager { arn } => {
            let out = client
                .get_secret_value()
                .secret_id(arn)
                .send()
                .await
                .map_err(|e| classify("secretsmanager", "GetSecretValue", e))?;
            let raw = out.secret_string.unwrap_or_default();
            let value = serde_json::from_str::<serde_json::Value>(&raw)
                .ok()
                .and_then(|v| v.get("value").and_then(|s| s.as_str()).map(str::to_string))
                .unwrap_or(raw);
            Ok(value.trim().to_string())
        }
    }
}

/// [`resolve`] with a client made from the shared SDK configuration.
pub async fn resolve_with(sdk: &aws_config::SdkConfig, source: &SecretSource) -> Result<String, PortError> {
    match source {
        SecretSource::Plain(value) => Ok(value.clone()),
        SecretSource::SecretsManager { .. } => resolve(&Client::new(sdk), source).await,
    }
}
