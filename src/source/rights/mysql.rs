//! MySQL, MariaDB and ADB: the account's `SHOW GRANTS`, and its roles' grants, parsed into
//! the privileges beyond reading.

use sqlx::{AssertSqlSafe, MySqlConnection, Row};

use crate::model::datasource::Dialect;
use crate::source::sqllex::{self, Kind};

/// MySQL privileges that only read.
const MYSQL_READS: [&str; 3] = ["SELECT", "SHOW VIEW", "USAGE"];
/// Most roles followed through `SHOW GRANTS FOR role`.
const MAX_ROLES: usize = 32;

/// MySQL/MariaDB: `SHOW GRANTS`, then `SHOW GRANTS FOR` each role it names.
///
/// # Errors
/// The server's error for the first `SHOW GRANTS`.
pub async fn mysql(conn: &mut MySqlConnection) -> Result<Vec<String>, sqlx::Error> {
    let mut grants = Grants::default();
    for line in grant_lines(conn, "SHOW GRANTS".into()).await? {
        grants.read(&line);
    }
    let mut followed = 0;
    while let Some(role) = grants.pending.pop() {
        followed += 1;
        let lines = if followed <= MAX_ROLES {
            grant_lines(conn, format!("SHOW GRANTS FOR {}", role.quoted())).await
        } else {
            Err(sqlx::Error::RowNotFound)
        };
        match lines {
            Ok(lines) => lines.iter().for_each(|l| grants.read(l)),
            Err(_) => grants.unread_roles.push(role.shown()),
        }
    }
    Ok(grants.rights())
}

/// The lines of a `SHOW GRANTS` (text protocol: not every server prepares it).
async fn grant_lines(conn: &mut MySqlConnection, sql: String) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::raw_sql(AssertSqlSafe(sql)).fetch_all(conn).await?;
    rows.iter()
        .map(|row| {
            row.try_get::<String, _>(0).or_else(|_| {
                row.try_get::<Vec<u8>, _>(0)
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
            })
        })
        .collect()
}

/// An account or role named in a grant: `name` or `name@host`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Account {
    name: String,
    host: Option<String>,
}

impl Account {
    /// As SQL: backquoted, with any backquote doubled.
    fn quoted(&self) -> String {
        let q = |s: &str| format!("`{}`", s.replace('`', "``"));
        match &self.host {
            Some(h) => format!("{}@{}", q(&self.name), q(h)),
            None => q(&self.name),
        }
    }

    /// As shown in a report.
    fn shown(&self) -> String {
        format!("role {}", self.name)
    }
}

/// What the grant lines read so far give.
#[derive(Debug, Default)]
struct Grants {
    privileges: Vec<String>,
    grant_option: bool,
    admin_option: bool,
    unreadable: bool,
    /// Roles seen, and those still to follow.
    roles: Vec<Account>,
    pending: Vec<Account>,
    unread_roles: Vec<String>,
}

impl Grants {
    /// Reads one line of `SHOW GRANTS`: `GRANT privs ON what TO who [WITH GRANT OPTION]` or
    /// `GRANT role, ... TO who [WITH ADMIN OPTION]`; other lines (`SET DEFAULT ROLE`,
    /// MySQL's partial `REVOKE`) add nothing.
    fn read(&mut self, line: &str) {
        let Ok(t) = sqllex::tokens(line, Dialect::MySql, false) else {
            self.unreadable = true;
            return;
        };
        let word = |i: usize| {
            t.get(i)
                .filter(|k| k.kind == Kind::Word)
                .map(|k| line[k.start..k.end].to_ascii_uppercase())
                .unwrap_or_default()
        };
        if word(0) != "GRANT" {
            return;
        }
        let (mut depth, mut on, mut to) = (0usize, None, None);
        for (i, tok) in t.iter().enumerate().skip(1) {
            match tok.kind {
                Kind::Punct(b'(') => depth += 1,
                Kind::Punct(b')') => depth = depth.saturating_sub(1),
                Kind::Word if depth == 0 => match word(i).as_str() {
                    "ON" if on.is_none() => on = Some(i),
                    "TO" => {
                        to = Some(i);
                        break;
                    }
                    _ => {}
                },
                _ => {}
            }
        }
        let Some(to) = to else {
            self.unreadable = true;
            return;
        };
        let items = split_list(&t[1..on.unwrap_or(to)]);
        for item in items {
            match on {
                Some(_) => {
                    // `SELECT (col, ...)`: the column list is not part of the name.
                    let words: Vec<String> = item
                        .iter()
                        .take_while(|k| k.kind != Kind::Punct(b'('))
                        .map(|k| line[k.start..k.end].to_ascii_uppercase())
                        .collect();
                    let privilege = words.join(" ");
                    if !privilege.is_empty()
                        && !MYSQL_READS.contains(&privilege.as_str())
                        && !self.privileges.contains(&privilege)
                    {
                        self.privileges.push(privilege);
                    }
                }
                None => {
                    if let Some(role) = account(line, item)
                        && !self.roles.contains(&role)
                    {
                        self.roles.push(role.clone());
                        self.pending.push(role);
                    }
                }
            }
        }
        for i in to..t.len() {
            if word(i) == "WITH" && word(i + 2) == "OPTION" {
                match word(i + 1).as_str() {
                    "GRANT" => self.grant_option = true,
                    "ADMIN" => self.admin_option = true,
                    _ => {}
                }
            }
        }
    }

    /// The rights in report order: `ALL PRIVILEGES` first, the other privileges sorted,
    /// `GRANT OPTION`, `ADMIN OPTION`, roles whose grants could not be read.
    fn rights(mut self) -> Vec<String> {
        self.privileges
            .sort_by_key(|p| (!p.starts_with("ALL"), p.clone()));
        let mut out = self.privileges;
        if self.grant_option {
            out.push("GRANT OPTION".into());
        }
        if self.admin_option {
            out.push("ADMIN OPTION".into());
        }
        self.unread_roles.sort();
        out.extend(self.unread_roles);
        if self.unreadable {
            out.push("grants that could not be read".into());
        }
        out
    }
}

/// Splits tokens at the commas outside parentheses.
fn split_list(t: &[sqllex::Token]) -> Vec<&[sqllex::Token]> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0usize, 0);
    for (i, tok) in t.iter().enumerate() {
        match tok.kind {
            Kind::Punct(b'(') => depth += 1,
            Kind::Punct(b')') => depth = depth.saturating_sub(1),
            Kind::Punct(b',') if depth == 0 => {
                out.push(&t[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&t[start..]);
    out
}

/// `` `name` `` or `` `name`@`host` `` (quoted or not).
fn account(line: &str, t: &[sqllex::Token]) -> Option<Account> {
    let part = |tok: &sqllex::Token| {
        let text = &line[tok.start..tok.end];
        match tok.kind {
            Kind::Quoted => {
                let q = &text[..1];
                Some(text[1..text.len() - 1].replace(&q.repeat(2), q))
            }
            Kind::Word => Some(text.to_string()),
            _ => None,
        }
    };
    match t {
        [name] => Some(Account {
            name: part(name)?,
            host: None,
        }),
        [name, at, host] if at.kind == Kind::Punct(b'@') => Some(Account {
            name: part(name)?,
            host: Some(part(host)?),
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rights(lines: &[&str]) -> Vec<String> {
        let mut g = Grants::default();
        for l in lines {
            g.read(l);
        }
        g.pending.clear();
        g.rights()
    }

    #[test]
    fn mariadb_root_and_a_reader() {
        assert_eq!(
            rights(&[
                "GRANT ALL PRIVILEGES ON *.* TO `root`@`localhost` IDENTIFIED VIA mysql_native_password USING '*81F5E21E35407D884A6CD4A731AEBFB6AF209E1B' OR unix_socket WITH GRANT OPTION",
                "GRANT PROXY ON ''@'%' TO 'root'@'localhost' WITH GRANT OPTION",
            ]),
            ["ALL PRIVILEGES", "PROXY", "GRANT OPTION"]
        );
        assert!(
            rights(&[
                "GRANT USAGE ON *.* TO `ro`@`%` IDENTIFIED BY PASSWORD '*2470C0C06DEE42FD1618BB99005ADCA2EC9D1E19'",
                "GRANT SELECT, SHOW VIEW ON `shop`.* TO `ro`@`%`",
                "GRANT SELECT (`id`, `name`) ON `shop`.`users` TO `ro`@`%`",
            ])
            .is_empty()
        );
    }

    #[test]
    fn writes_file_and_dynamic_privileges_are_named_once() {
        assert_eq!(
            rights(&[
                "GRANT FILE, PROCESS, SUPER ON *.* TO `u`@`%`",
                "GRANT SELECT, INSERT, UPDATE (`note`), DELETE, CREATE TEMPORARY TABLES, LOCK TABLES ON `shop`.* TO `u`@`%`",
                "GRANT INSERT ON `other`.* TO `u`@`%`",
                "GRANT BACKUP_ADMIN,BINLOG_ADMIN ON *.* TO `u`@`%`",
                "REVOKE INSERT ON `mysql`.* FROM `u`@`%`",
                "SET DEFAULT ROLE `r` FOR `u`@`%`",
            ]),
            [
                "BACKUP_ADMIN",
                "BINLOG_ADMIN",
                "CREATE TEMPORARY TABLES",
                "DELETE",
                "FILE",
                "INSERT",
                "LOCK TABLES",
                "PROCESS",
                "SUPER",
                "UPDATE"
            ]
        );
    }

    #[test]
    fn roles_are_followed_or_named() {
        let mut g = Grants::default();
        g.read("GRANT `reporting`, `ops`@`%` TO `u`@`%` WITH ADMIN OPTION");
        assert_eq!(
            g.pending,
            [
                Account {
                    name: "reporting".into(),
                    host: None
                },
                Account {
                    name: "ops".into(),
                    host: Some("%".into())
                }
            ]
        );
        assert_eq!(g.pending[1].quoted(), "`ops`@`%`");
        let odd = Account {
            name: "a`b".into(),
            host: None,
        };
        assert_eq!(odd.quoted(), "`a``b`");
        g.pending.clear();
        g.unread_roles.push("role ops".into());
        g.read("GRANT SELECT ON `shop`.* TO `reporting`");
        assert_eq!(g.rights(), ["ADMIN OPTION", "role ops"]);
        assert_eq!(
            rights(&["GRANT nonsense"]),
            ["grants that could not be read"]
        );
    }
}
