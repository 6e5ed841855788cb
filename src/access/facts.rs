//! A matter's policy facts (team, clients, practice area, visibility), read afresh from the read
//! models: for callers that hold no request's loaders, such as the event gate.

use sqlx::AnyPool;

use super::policy::MatterFacts;
use crate::read::matters::matters_by_number;
use crate::read::{Bind, MatterRow, Sql};
use crate::store::StoreError;

/// The facts of matter `number`, or `None` when the read models do not know it.
pub async fn load(pool: &AnyPool, number: &str) -> Result<Option<MatterFacts>, StoreError> {
    let Some(row) = matters_by_number(pool, &[number.to_owned()])
        .await?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    of_row(pool, &row).await.map(Some)
}

/// The facts of the matter `row` describes, with its team and clients read now.
pub async fn of_row(pool: &AnyPool, row: &MatterRow) -> Result<MatterFacts, StoreError> {
    let mut sql = Sql::new(String::new());
    let number = sql.bind(Bind::Text(row.number.clone()));
    sql.text =
        format!("SELECT user_id, capacity FROM rm_matter_team WHERE matter_number = {number}");
    let team: Vec<(String, String)> = sql.fetch_all(pool).await?;
    let mut sql = Sql::new(String::new());
    let number = sql.bind(Bind::Text(row.number.clone()));
    sql.text = format!(
        "SELECT contact_id FROM rm_parties WHERE matter_number = {number} AND role = 'client'"
    );
    let clients: Vec<(String,)> = sql.fetch_all(pool).await?;
    Ok(MatterFacts {
        number: row.number.clone(),
        practice_area: row.practice_area.clone(),
        firm_visible: row.firm_visible != 0,
        team: team.into_iter().collect(),
        clients: clients.into_iter().map(|(id,)| id).collect(),
    })
}
