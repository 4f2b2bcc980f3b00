//! [`Alerts`] on SNS.

use async_trait::async_trait;
use aws_sdk_sns::Client;
use break_glass_core::ports::{Alerts, PortError};

use crate::error::classify;

#[derive(Debug, Clone)]
pub struct Sns {
    client: Client,
    topic_arn: String,
}

impl Sns {
    pub fn from_sdk(sdk: &aws_config::SdkConfig, topic_arn: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), topic_arn)
    }

    pub fn new(client: Client, topic_arn: impl Into<String>) -> Self {
        Self {
            client,
            topic_arn: topic_arn.into(),
        }
    }
}

#[async_trait]
impl Alerts for Sns {
    async fn publish(&self, subject: &str, message: &str) -> Result<(), PortError> {
        // SNS subjects: at most 100 printable ASCII characters.
        let subject: String = subject
            .chars()
            .filter(|c| c.is_ascii() && !c.is_ascii_control())
            .take(100)
            .collect();
        self.client
            .publish()
            .topic_arn(&self.topic_arn)
            .subject(subject)
            .message(message)
            .send()
            .await
            .map_err(|e| classify("sns", "Publish", e))?;
        Ok(())
    }
}
