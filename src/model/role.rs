//! Account roles and what each may do. `viewer` reads (tasks, data sources without secrets,
//! logs, status) and downloads; `editor` also creates, edits, enables, disables and runs tasks,
//! previews queries and tests data sources; `admin` also manages data sources, users and reads
//! the audit log. Each role holds the rights of the ones below it.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// An account's role, ordered by rights: `Viewer < Editor < Admin`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads and downloads.
    Viewer,
    /// Also changes and runs tasks.
    Editor,
    /// Also data sources, users and the audit log.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Editor, Role::Admin];

    /// The name used in the store, the CLI and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Editor => "editor",
            Role::Admin => "admin",
        }
    }

    /// True when this role has the rights of `needed`.
    pub fn allows(self, needed: Role) -> bool {
        self >= needed
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is none of `viewer`, `editor`, `admin`.
#[derive(Debug, Clone, thiserror::Error)]
#[error("unknown role {0:?}: expected viewer, editor or admin")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_string()))
    }
}

/// Why an account name is refused.
#[derive(Debug, Clone, thiserror::Error)]
pub enum BadUserName {
    /// Empty or too long.
    #[error("user name {0:?} must have 1 to 64 characters")]
    Length(String),
    /// A character that does not belong in a name.
    #[error(
        "user name {0:?} may hold only letters, digits, '.', '_', '-' and '@', and not start with '.' or '-'"
    )]
    Characters(String),
    /// A control or invisible character.
    #[error("user name \"{0}\" {1}")]
    Hidden(String, super::plain::HiddenCharacter),
    /// The name the audit log gives the config's `http.token`.
    #[error("user name {0:?} is reserved")]
    Reserved(String),
}

/// Checks an account name: 1-64 characters of letters, digits, `.`, `_`, `-` or `@`, not
/// starting with `.` or `-` (it appears in URLs, the audit log and file listings), and not
/// `http.token`.
///
/// # Errors
/// What is wrong with it.
pub fn check_user_name(name: &str) -> Result<(), BadUserName> {
    let ok_char = |c: char| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@');
    if name.is_empty() || name.chars().count() > 64 {
        return Err(BadUserName::Length(name.to_string()));
    }
    if let Err(e) = super::plain::check(name) {
        return Err(BadUserName::Hidden(name.escape_debug().to_string(), e));
    }
    if name.starts_with(['.', '-']) || !name.chars().all(ok_char) {
        return Err(BadUserName::Characters(name.to_string()));
    }
    if name == "http.token" {
        return Err(BadUserName::Reserved(name.to_string()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parse() {
        assert!(Role::Admin.allows(Role::Editor));
        assert!(Role::Editor.allows(Role::Viewer));
        assert!(!Role::Viewer.allows(Role::Editor));
        assert_eq!("editor".parse::<Role>().unwrap(), Role::Editor);
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn user_names() {
        assert!(check_user_name("li.wei@ops").is_ok());
        assert!(check_user_name("张伟").is_ok());
        for bad in ["", "../x", "a/b", ".hidden", "-x", "a b", &"x".repeat(65)] {
            assert!(check_user_name(bad).is_err(), "{bad}");
        }
    }
}
