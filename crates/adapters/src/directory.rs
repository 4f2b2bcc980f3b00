//! [`Directory`] on the Identity Store API.

use async_trait::async_trait;
use aws_sdk_identitystore::Client;
use aws_sdk_identitystore::types::{AlternateIdentifier, MemberId, UniqueAttribute};
use aws_smithy_types::Document;
use break_glass_core::ports::{Directory, DirectoryUser, LookupAttribute, PortError, PortErrorKind};

use crate::error::classify;

const SERVICE: &str = "identitystore";

#[derive(Debug, Clone)]
pub struct IdentityStore {
    client: Client,
    identity_store_id: String,
}

impl IdentityStore {
    pub fn from_sdk(sdk: &aws_config::SdkConfig, identity_store_id: impl Into<String>) -> Self {
        Self::new(Client::new(sdk), identity_store_id)
    }

    pub fn new(client: Client, identity_store_id: impl Into<String>) -> Self {
        Self {
            client,
            identity_store_id: identity_store_id.into(),
        }
    }
}

#[async_trait]
impl Directory for IdentityStore {
    async fn find_user(
        &self,
        attribute: LookupAttribute,
        value: &str,
    ) -> Result<Option<DirectoryUser>, PortError> {
        let path = match attribute {
            LookupAttribute::Email => "emails.value",
            LookupAttribute::UserName => "userName",
        };
        let unique = UniqueAttribute::builder()
            .attribute_path(path)
            .attribute_value(Document::String(value.to_string()))
            .build()
            .map_err(|e| PortError::new(PortErrorKind::Invalid, SERVICE, "GetUserId", e.to_string()))?;
        let found = self
            .client
            .get_user_id()
            .identity_store_id(&self.identity_store_id)
            .alternate_identifier(AlternateIdentifier::UniqueAttribute(unique))
            .send()
            .await;
        let user_id = match found {
            Ok(out) => out.user_id,
            Err(err) => {
                let err = classify(SERVICE, "GetUserId", err);
                return match err.kind {
                    PortErrorKind::NotFound => Ok(None),
                    _ => Err(err),
                };
            }
        };
        let user = self
            .client
            .describe_user()
            .identity_store_id(&self.identity_store_id)
            .user_id(&user_id)
            .send()
            .await
            .map_err(|e| classify(SERVICE, "DescribeUser", e))?;
        Ok(Some(DirectoryUser {
            user_id,
            user_name: user.user_name.unwrap_or_default(),
            display_name: user.display_name,
        }))
    }

    async fn group_ids_of(&self, user_id: &str) -> Result<Vec<String>, PortError> {
        let mut ids = Vec::new();
        let mut next: Option<String> = None;
        loop {
            let page = self
                .client
                .list_group_memberships_for_member()
                .identity_store_id(&self.identity_store_id)
                .member_id(MemberId::UserId(user_id.to_string()))
                .set_next_token(next.take())
                .send()
                .await
                .map_err(|e| classify(SERVICE, "ListGroupMembershipsForMember", e))?;
            ids.extend(page.group_memberships.into_iter().filter_map(|m| m.group_id));
            match page.next_token {
                Some(token) if !token.is_empty() => next = Some(token),
                _ => return Ok(ids),
            }
        }
    }

    async fn find_group(&self, display_name: &str) -> Result<Option<String>, PortError> {
        let unique = UniqueAttribute::builder()
            .attribute_path("displayName")
            .attribute_value(Document::String(display_name.to_string()))
            .build()
            .map_err(|e| PortError::new(PortErrorKind::Invalid, SERVICE, "GetGroupId", e.to_string()))?;
        let found = self
            .client
            .get_group_id()
            .identity_store_id(&self.identity_store_id)
            .alternate_identifier(AlternateIdentifier::UniqueAttribute(unique))
            .send()
            .await;
        match found {
            Ok(out) => Ok(Some(out.group_id)),
            Err(err) => {
                let err = classify(SERVICE, "GetGroupId", err);
                match err.kind {
                    PortErrorKind::NotFound => Ok(None),
                    _ => Err(err),
                }
            }
        }
    }
}
