//! Query cost, reported in every response's `extensions.cost` (as Shopify's API does) and
//! enforced before execution by the schema's complexity limit: a connection costs its page size
//! times its nodes' cost, other fields 1 unless they say otherwise.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextRequest, NextValidation,
};
use async_graphql::{Response, ServerError, ValidationResult, value};
use futures::lock::Mutex;

pub struct Cost {
    pub maximum: usize,
}

impl ExtensionFactory for Cost {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(CostExtension {
            maximum: self.maximum,
            measured: Mutex::new(None),
        })
    }
}

struct CostExtension {
    maximum: usize,
    measured: Mutex<Option<ValidationResult>>,
}

#[async_trait::async_trait]
impl Extension for CostExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let response = next.run(ctx).await;
        match self.measured.lock().await.take() {
            Some(measured) => response.extension(
                "cost",
                value!({
                    "requestedQueryCost": measured.complexity,
                    "maximumAvailable": self.maximum,
                    "depth": measured.depth,
                }),
            ),
            None => response,
        }
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let measured = next.run(ctx).await?;
        *self.measured.lock().await = Some(measured);
        Ok(measured)
    }
}
