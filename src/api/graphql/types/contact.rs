//! `Contact`: a person or organisation. Everything but its kind, id, version and times is client
//! data, opened from the row's sealed `private` column when a field asks for it.

use async_graphql::{Context, ID, Object};

use super::{ERASED, LIST_ESTIMATE, Party, enum_text, load_one, opened};
use crate::access::policy::Part;
use crate::api::graphql::caller::admit_part;
use crate::api::graphql::ids::{Kind, encode};
use crate::api::graphql::loaders::PartiesOfContactLoader;
use crate::domain::events::ContactDetails;
use crate::read::{self, Private};

/// The fields of `Contact` that show client data (a list opens its rows when any is selected).
pub const CONTACT_DATA: &[&str] = &[
    "erased",
    "displayName",
    "givenName",
    "familyName",
    "emails",
    "phones",
    "addresses",
    "identifiers",
];

#[derive(Clone)]
pub struct Contact(pub read::ContactRow);

impl Contact {
    /// The contact's details, opened; `None` once erased.
    async fn details(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<ContactDetails>> {
        if self.0.erased != 0 {
            return Ok(None);
        }
        Ok(
            match opened(ctx, &self.0.opened, Some(&self.0.private)).await? {
                Private::Erased => None,
                private => Some(private.decode()),
            },
        )
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
    /// Whether the contact's data was erased (its key destroyed): its details are then gone.
    async fn erased(&self, ctx: &Context<'_>) -> async_graphql::Result<bool> {
        Ok(self.details(ctx).await?.is_none())
    }
    /// The name shown; "[erased]" once erased.
    async fn display_name(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        Ok(self
            .details(ctx)
            .await?
            .map_or_else(|| ERASED.to_owned(), |details| details.display_name))
    }
    async fn given_name(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(self.details(ctx).await?.and_then(|d| d.given_name))
    }
    async fn family_name(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        Ok(self.details(ctx).await?.and_then(|d| d.family_name))
    }
    async fn emails(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        Ok(self
            .details(ctx)
            .await?
            .unwrap_or_default()
            .emails
            .into_iter()
            .map(|email| email.value)
            .collect())
    }
    async fn phones(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        Ok(self
            .details(ctx)
            .await?
            .unwrap_or_default()
            .phones
            .into_iter()
            .map(|phone| phone.value)
            .collect())
    }
    /// Postal addresses, each as its lines followed by locality, region, postal code, country.
    async fn addresses(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<Vec<String>>> {
        Ok(self
            .details(ctx)
            .await?
            .unwrap_or_default()
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
            .collect())
    }
    /// Identifiers as `scheme:value`.
    async fn identifiers(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        Ok(self
            .details(ctx)
            .await?
            .unwrap_or_default()
            .identifiers
            .into_iter()
            .map(|identifier| format!("{}:{}", identifier.scheme, identifier.value))
            .collect())
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
