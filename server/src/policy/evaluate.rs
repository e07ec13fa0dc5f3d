//! Evaluating a policy for one request, in IAM's order: an explicit deny
//! wins over any allow; with neither, the policy has nothing to say and the
//! caller falls back to ACLs.

use super::document::{Effect, Policy, PrincipalId, Scope, Statement};
use super::pattern::wildcard_match;
use std::collections::HashMap;

/// Who is asking, as policies name principals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Principal<'a> {
    Anonymous,
    /// A user: its canonical id is its account, its name is in its ARN
    /// (`arn:aws:iam::<id>:user/<name>`).
    User {
        id: &'a str,
        name: &'a str,
    },
}

impl Principal<'_> {
    pub fn arn(&self) -> Option<String> {
        match self {
            Principal::Anonymous => None,
            Principal::User { id, name } => Some(format!("arn:aws:iam::{id}:user/{name}")),
        }
    }
}

/// One request as a policy sees it. Condition keys are lower-cased.
pub struct RequestContext<'a> {
    pub principal: Principal<'a>,
    /// `s3:GetObject` and the like.
    pub action: &'a str,
    /// `arn:aws:s3:::bucket` or `arn:aws:s3:::bucket/key`.
    pub resource: &'a str,
    pub keys: &'a HashMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// A matching Deny statement.
    Deny,
    /// A matching Allow statement and no matching Deny.
    Allow,
    /// No statement applies.
    Unmatched,
}

impl Policy {
    pub fn evaluate(&self, request: &RequestContext) -> Decision {
        let mut allowed = false;
        for statement in &self.statements {
            if statement.applies(request) {
                match statement.effect {
                    Effect::Deny => return Decision::Deny,
                    Effect::Allow => allowed = true,
                }
            }
        }
        if allowed {
            Decision::Allow
        } else {
            Decision::Unmatched
        }
    }

    /// Does any condition of the policy read a key starting with `prefix`
    /// (lower-case)? Lets callers skip work for keys no statement uses.
    pub fn reads_key(&self, prefix: &str) -> bool {
        self.statements
            .iter()
            .flat_map(|s| &s.conditions)
            .any(|c| c.key.starts_with(prefix))
    }

    /// AWS's test for a public policy: some Allow statement grants a
    /// wildcard principal without a condition that pins the caller down.
    pub fn is_public(&self) -> bool {
        self.statements.iter().any(Statement::is_public)
    }
}

/// Keys whose fixed value limits a statement to known callers.
const RESTRICTING_KEYS: &[&str] = &[
    "aws:sourceip",
    "aws:sourcearn",
    "aws:sourcevpc",
    "aws:sourcevpce",
    "aws:sourceaccount",
    "aws:sourceowner",
    "aws:principalaccount",
    "aws:principalarn",
    "aws:principalorgid",
    "aws:userid",
    "aws:username",
];

impl Statement {
    fn applies(&self, request: &RequestContext) -> bool {
        in_scope(&self.principals, |p| {
            principal_matches(p, &request.principal)
        }) && in_scope(&self.actions, |a| wildcard_match(a, request.action, true))
            && in_scope(&self.resources, |r| {
                wildcard_match(r, request.resource, false)
            })
            && self
                .conditions
                .iter()
                .all(|c| c.holds(request.keys.get(&c.key).map(Vec::as_slice)))
    }

    fn is_public(&self) -> bool {
        let anyone =
            self.principals.negated || self.principals.items.contains(&PrincipalId::Anyone);
        self.effect == Effect::Allow
            && anyone
            && !self
                .conditions
                .iter()
                .any(|c| RESTRICTING_KEYS.contains(&c.key.as_str()) && c.restricts())
    }
}

fn in_scope<T>(scope: &Scope<T>, matches: impl Fn(&T) -> bool) -> bool {
    scope.items.iter().any(matches) != scope.negated
}

fn principal_matches(id: &PrincipalId, principal: &Principal) -> bool {
    match (id, principal) {
        (PrincipalId::Anyone, _) => true,
        (PrincipalId::Aws(named), Principal::User { id, .. }) => {
            named == id
                || named
                    .strip_prefix("arn:aws:iam::")
                    .is_some_and(|rest| rest == format!("{id}:root"))
                || Some(named.as_str()) == principal.arn().as_deref()
        }
        (PrincipalId::Canonical(named), Principal::User { id, .. }) => named == id,
        _ => false,
    }
}
