//! The policy's matter rules as a SQL condition, so that lists are filtered (and paged) by the
//! database. [`matter_scope`] must agree with [`super::policy::matter_access`] on which matters
//! are visible at all; a test checks the two against each other on generated directories.

use super::policy::active_role_at;
use crate::domain::identity::{PartnerAccess, Role};
use crate::identity::directory::Directory;
use crate::identity::principal::Principal;
use crate::identity::scopes::MatterReach;
use crate::read::{Bind, Sql};

/// Which matters a principal can see anything of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MatterScope {
    /// Nothing at all (inactive principal, or an admin off every team).
    pub nothing: bool,
    /// Every matter except the walled ones (auditors, partners under a firm-wide policy, API
    /// clients whose scope reaches all matters).
    pub every_matter: bool,
    /// Only these matters (minus the walled ones), whatever the teams say: an API client
    /// whose scope lists its matters.
    pub listed: Option<Vec<String>>,
    /// The id teams name the principal by.
    pub member_id: String,
    pub firm_visible: bool,
    pub practice_areas: Vec<String>,
    pub break_glass: Vec<String>,
    pub walled_matters: Vec<String>,
    pub walled_clients: Vec<String>,
}

/// The principal's scope at `now` (RFC 3339).
pub fn matter_scope(directory: &Directory, who: &Principal, now: &str) -> MatterScope {
    let mut scope = MatterScope {
        member_id: who.member_id().to_owned(),
        ..MatterScope::default()
    };
    let role = match active_role_at(directory, who, now) {
        Ok(role) => role,
        Err(_) => {
            scope.nothing = true;
            return scope;
        }
    };
    for wall in directory.walls_screening(who.member_id()) {
        scope.walled_matters.extend(wall.matters.iter().cloned());
        scope.walled_clients.extend(wall.clients.iter().cloned());
    }
    scope.walled_matters.sort();
    scope.walled_matters.dedup();
    scope.walled_clients.sort();
    scope.walled_clients.dedup();
    if let Some(client) = who.client_id().and_then(|id| directory.api_clients.get(id)) {
        match &client.scopes.matters {
            MatterReach::Team => {}
            MatterReach::All => scope.every_matter = true,
            MatterReach::Listed(numbers) => scope.listed = Some(numbers.iter().cloned().collect()),
        }
        return scope;
    }
    match role {
        None | Some(Role::Admin) => {}
        Some(Role::Auditor) => scope.every_matter = true,
        Some(role) => {
            scope.firm_visible = true;
            if let Some(user_id) = who.user_id() {
                scope.break_glass = directory
                    .break_glass
                    .iter()
                    .filter(|glass| glass.user_id == user_id && glass.expires_at.as_str() > now)
                    .map(|glass| glass.matter_number.clone())
                    .collect();
            }
            if role == Role::Partner {
                match directory.policy.partner_access {
                    PartnerAccess::Team => {}
                    PartnerAccess::Firm => scope.every_matter = true,
                    PartnerAccess::PracticeAreas => {
                        scope.practice_areas = who
                            .user_id()
                            .and_then(|id| directory.user(id))
                            .map(|user| user.practice_areas.clone())
                            .unwrap_or_default();
                    }
                }
            }
        }
    }
    scope
}

impl MatterScope {
    /// Appends ` AND <condition>` on the matter-number expression `column` (which must name a
    /// matter number of the row, e.g. `m.number` or `t.matter_number`).
    pub fn restrict(&self, sql: &mut Sql, column: &str) {
        if self.nothing {
            sql.text.push_str(" AND 1 = 0");
            return;
        }
        if let Some(listed) = self.listed.as_ref().filter(|_| !self.every_matter) {
            if listed.is_empty() {
                sql.text.push_str(" AND 1 = 0");
                return;
            }
            let matters = sql.bind_list(listed);
            sql.text.push_str(&format!(" AND {column} IN ({matters})"));
        } else if !self.every_matter {
            let member = sql.bind(Bind::Text(self.member_id.clone()));
            let mut any = vec![format!(
                "{column} IN (SELECT matter_number FROM rm_matter_team WHERE user_id = {member})"
            )];
            if self.firm_visible {
                any.push(format!(
                    "{column} IN (SELECT number FROM rm_matters WHERE firm_visible = 1)"
                ));
            }
            if !self.practice_areas.is_empty() {
                let areas = sql.bind_list(&self.practice_areas);
                any.push(format!(
                    "{column} IN (SELECT number FROM rm_matters WHERE practice_area IN ({areas}))"
                ));
            }
            if !self.break_glass.is_empty() {
                let matters = sql.bind_list(&self.break_glass);
                any.push(format!("{column} IN ({matters})"));
            }
            sql.text.push_str(&format!(" AND ({})", any.join(" OR ")));
        }
        if !self.walled_matters.is_empty() {
            let matters = sql.bind_list(&self.walled_matters);
            sql.text
                .push_str(&format!(" AND {column} NOT IN ({matters})"));
        }
        if !self.walled_clients.is_empty() {
            let clients = sql.bind_list(&self.walled_clients);
            sql.text.push_str(&format!(
                " AND {column} NOT IN (SELECT matter_number FROM rm_parties \
                 WHERE role = 'client' AND contact_id IN ({clients}))"
            ));
        }
    }
}
