//! [`Mailer`] on SES v2.

use async_trait::async_trait;
use aws_sdk_sesv2::Client;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message};
use break_glass_core::ports::{Email, Mailer, PortError, PortErrorKind};

use crate::error::classify;

#[derive(Debug, Clone)]
pub struct Ses {
    client: Client,
}

impl Ses {
    pub fn from_sdk(sdk: &aws_config::SdkConfig) -> Self {
        Self::new(Client::new(sdk))
    }

    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

fn content(data: &str) -> Result<Content, PortError> {
    Content::builder()
        .data(data)
        .charset("UTF-8")
        .build()
        .map_err(|e| PortError::new(PortErrorKind::Invalid, "ses", "SendEmail", e.to_string()))
}

#[async_trait]
impl Mailer for Ses {
    async fn send(&self, email: &Email) -> Result<String, PortError> {
        let message = Message::builder()
            .subject(content(&email.subject)?)
            .body(
                Body::builder()
                    .text(content(&email.text)?)
                    .html(content(&email.html)?)
                    .build(),
            )
            .build();
        let out = self
            .client
            .send_email()
            .from_email_address(&email.from)
            .destination(
                Destination::builder()
                    .set_to_addresses(Some(email.to.clone()))
                    .build(),
            )
            .content(EmailContent::builder().simple(message).build())
            .send()
            .await
            .map_err(|e| classify("ses", "SendEmail", e))?;
        Ok(out.message_id.unwrap_or_default())
    }
}
