//! `Contact`: a person or organisation.

use async_graphql::{Context, ID, Object};

use super::{LIST_ESTIMATE, Party, enum_text, load_one};
use crate::access::policy::Part;
use crate::api::graphql::caller::admit_part;
use crate::api::graphql::ids::{Kind, encode};
use crate::api::graphql::loaders::PartiesOfContactLoader;
use crate::domain::events::ContactDetails;
use crate::read;

#[derive(Clone)]
pub struct Contact(pub read::ContactRow);

impl Contact {
    fn details(&self) -> ContactDetails {
        serde_json::from_str(&self.0.details).unwrap_or_default()
    }
}

#[Object]
impl Contact {
    pub async fn id(&self) -> ID {
        encode(Kind::Contact, &self.0.contact_id)
    }
    async fn contact_id(&self) -> &str {
        &self.0.contact_id
    }
    /// PERSON or ORGANISATION.
    async fn kind(&self) -> String {
        enum_text(&self.0.kind)
    }
    async fn display_name(&self) -> &str {
        &self.0.display_name
    }
    async fn given_name(&self) -> Option<String> {
        self.details().given_name
    }
    async fn family_name(&self) -> Option<String> {
        self.details().family_name
    }
    async fn emails(&self) -> Vec<String> {
        self.details()
            .emails
            .into_iter()
            .map(|email| email.value)
            .collect()
    }
    async fn phones(&self) -> Vec<String> {
        self.details()
            .phones
            .into_iter()
            .map(|phone| phone.value)
            .collect()
    }
    /// Postal addresses, each as its lines followed by locality, region, postal code, country.
    async fn addresses(&self) -> Vec<Vec<String>> {
        self.details()
            .addresses
            .into_iter()
            .map(|address| {
                let mut lines = address.lines;
                lines.extend(
                    [
                        address.locality,
                        address.region,
                        address.postal_code,
                        address.country,
                    ]
                    .into_iter()
                    .flatten(),
                );
                lines
            })
            .collect()
    }
    /// Identifiers as `scheme:value`.
    async fn identifiers(&self) -> Vec<String> {
        self.details()
            .identifiers
            .into_iter()
            .map(|identifier| format!("{}:{}", identifier.scheme, identifier.value))
            .collect()
    }
    async fn version(&self) -> u64 {
        u64::try_from(self.0.version).unwrap_or(0)
    }
    async fn created_at(&self) -> &str {
        &self.0.created_at
    }
    async fn updated_at(&self) -> &str {
        &self.0.updated_at
    }
    /// Every matter role this contact holds.
    #[graphql(complexity = "LIST_ESTIMATE * child_complexity")]
    async fn parties(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Party>> {
        let rows = load_one::<PartiesOfContactLoader>(ctx, &self.0.contact_id)
            .await?
            .unwrap_or_default();
        // Only the roles in matters the caller may see the parties of.
        let mut visible = Vec::with_capacity(rows.len());
        for row in rows {
            if admit_part(ctx, &row.matter_number, Part::Parties).await? {
                visible.push(Party(row));
            }
        }
        Ok(visible)
    }
}
