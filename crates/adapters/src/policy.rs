//! [`PolicySource`] on an SSM parameter (String or SecureString).

use async_trait::async_trait;
use aws_sdk_ssm::Client;
use break_glass_core::ports::{PolicySource, PortError, PortErrorKind};

use crate::error::classify;

const SERVICE: &str = "ssm";

#[derive(Debug, Clone)]
pub struct SsmParameter {
    client: Client,
    name: String,
}

impl SsmParameter {
    pub fn from_sdk(sdk: &aws_config::SdkConfig, name: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), name)
    }

    pub fn new(client: Client, name: impl Into<String>) -> Self {
        Self {
            client,
            name: name.into(),
        }
    }
}

#[async_trait]
impl PolicySource for SsmParameter {
    async fn read_policy(&self) -> Result<String, PortError> {
        // Decrypted with the caller's kms:Decrypt when it is a SecureString;
        // a String parameter ignores the flag.
        let out = self
            .client
            .get_parameter()
            .name(&self.name)
            .with_decryption(true)
            .send()
            .await
            .map_err(|e| classify(SERVICE, "GetParameter", e))?;
        out.parameter.and_then(|p| p.value).ok_or_else(|| {
            PortError::new(
                PortErrorKind::Other,
                SERVICE,
                "GetParameter",
                "the parameter has no value",
            )
        })
    }
}
