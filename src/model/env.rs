//! `${ENV_VAR}` and `${ENV_VAR:-default}` expansion, and the serde helpers that apply it to
//! config fields while they are parsed, so a missing variable is reported at its line.

use serde::Deserialize;
use serde::de::{self, Deserializer};
use std::str::FromStr;

use crate::model::secret::Secret;

/// Why `${ENV}` expansion failed. The messages never repeat the text being expanded: it may
/// be a password or a webhook with its token; they give the `${`'s position instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvError {
    /// A `${` without its `}`.
    #[error("unclosed `${{` at character {at} (write `$${{` for a literal `${{`)")]
    Unclosed {
        /// 1-based character position of the `${`.
        at: usize,
    },
    /// A name that is not letters, digits and `_`.
    #[error(
        "bad variable name in the `${{...}}` at character {at}: names are letters, digits and `_` (write `$${{` for a literal `${{`)"
    )]
    BadName {
        /// 1-based character position of the `${`.
        at: usize,
    },
    /// A variable that is not set and has no default.
    #[error("environment variable {0} is not set")]
    NotSet(String),
    /// A task's reference to a variable outside `security.task_env_prefix`, or to one that
    /// is not set: the same words for both, so that a task cannot tell them apart.
    #[error("${{{name}}} is not set or not allowed in tasks (task variables start with {prefix})")]
    NotForTasks {
        /// The variable's name (at most 64 characters of it).
        name: String,
        /// `security.task_env_prefix`.
        prefix: String,
    },
    /// A reference inside a longer value, where only a whole-value reference is taken.
    #[error(
        "the `${{...}}` at character {at} is part of a longer value: a task's setting may be one whole `${{NAME}}` reference, not contain one (write `$${{` for a literal `${{`)"
    )]
    Embedded {
        /// 1-based character position of the `${`.
        at: usize,
    },
}

/// Expands `${NAME}` and `${NAME:-default}` in `input`; `$${` is a literal `${`.
///
/// # Examples
///
/// ```
/// use reportd::model::env::expand;
/// assert_eq!(expand("port ${REPORTD_DOC_UNSET_PORT:-3306}").unwrap(), "port 3306");
/// assert_eq!(expand("cost $${x}").unwrap(), "cost ${x}");
/// assert!(expand("${REPORTD_DOC_UNSET}").is_err());
/// ```
///
/// # Errors
/// A variable that is not set and has no default, or a `${` without its `}`.
pub fn expand(input: &str) -> Result<String, EnvError> {
    expand_with(input, |name| std::env::var(name).ok())
}

/// The prefix of the variables a task may name unless `security.task_env_prefix` says
/// otherwise.
pub const TASK_ENV_PREFIX: &str = "REPORTD_TASK_";

/// THE expansion of a task's setting (webhook, robot secret, e-mail address; tasks are
/// written by editors through the API): `input` when it is exactly one `${NAME}` or
/// `${NAME:-default}` reference whose name starts with `prefix`, expanded; any other value
/// as it is (`$${` written as `${`). A reference inside a longer value would let whoever
/// writes it read any of the daemon's variables (`https://elsewhere/?leak=${DB_PASSWORD}`),
/// and any name outside the prefix would let them confirm guesses of one from a signature,
/// so both are refused; an unset variable is refused with the same words as a forbidden
/// one. `config.yaml` keeps full [`expand`].
///
/// # Errors
/// A reference inside a longer value; a name outside `prefix` or not set (without a
/// default): [`EnvError::NotForTasks`] either way.
pub fn expand_task(input: &str, prefix: &str) -> Result<String, EnvError> {
    expand_task_with(input, prefix, |name| std::env::var(name).ok())
}

/// Checks, without expanding, what [`expand_task`] would refuse (`task apply` and the API
/// refuse it before the task is stored).
///
/// # Errors
/// As [`expand_task`].
pub fn check_task(input: &str, prefix: &str) -> Result<(), EnvError> {
    expand_task(input, prefix).map(drop)
}

/// [`expand_task`] with a chosen variable lookup (tests use a map).
pub fn expand_task_with(
    input: &str,
    prefix: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, EnvError> {
    if !is_whole_reference(input) {
        check_whole(input)?;
        return expand_with(input, |_| None);
    }
    let t = input.trim();
    let body = &t[2..t.len() - 1];
    let (name, default) = match body.split_once(":-") {
        Some((n, d)) => (n, Some(d)),
        None => (body, None),
    };
    let at = input.len() - input.trim_start().len() + 1;
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err(EnvError::BadName { at });
    }
    let refused = || EnvError::NotForTasks {
        name: shown_name(name),
        prefix: prefix.to_string(),
    };
    if prefix.is_empty() || !name.starts_with(prefix) {
        return Err(refused());
    }
    let value = lookup(name);
    if value.is_none() && default.is_none() {
        return Err(refused());
    }
    expand_with(t, |n| if n == name { value.clone() } else { None })
}

/// A variable name as an error shows it: at most 64 characters.
fn shown_name(name: &str) -> String {
    match name.char_indices().nth(64) {
        Some((i, _)) => format!("{}…", &name[..i]),
        None => name.to_string(),
    }
}

/// Checks, without expanding, that `input` is one whole `${...}` reference or holds none
/// (what [`expand_task`] takes).
///
/// # Errors
/// A reference inside a longer value.
fn check_whole(input: &str) -> Result<(), EnvError> {
    if is_whole_reference(input) {
        return Ok(());
    }
    let mut previous = None;
    let mut chars = input.chars().enumerate().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '$' && previous != Some('$') && chars.peek().is_some_and(|(_, n)| *n == '{') {
            return Err(EnvError::Embedded { at: i + 1 });
        }
        // `$$` is an escaped `$`: the `{` after it starts no reference.
        previous = if c == '$' && previous == Some('$') {
            None
        } else {
            Some(c)
        };
    }
    Ok(())
}

/// `${...}` and nothing else around it (spaces aside).
fn is_whole_reference(input: &str) -> bool {
    let t = input.trim();
    t.starts_with("${") && t.ends_with('}') && t[2..].find('}') == Some(t.len() - 3)
}

/// [`expand`] with a chosen variable lookup (tests use a map).
pub fn expand_with(
    input: &str,
    lookup: impl Fn(&str) -> Option<String>,
) -> Result<String, EnvError> {
    let mut out = String::with_capacity(input.len());
    let mut rest = input;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos..];
        if let Some(tail) = after.strip_prefix("$${") {
            out.push_str("${");
            rest = tail;
        } else if let Some(tail) = after.strip_prefix("${") {
            let at = input[..input.len() - after.len()].chars().count() + 1;
            let end = tail.find('}').ok_or(EnvError::Unclosed { at })?;
            let body = &tail[..end];
            let (name, default) = match body.split_once(":-") {
                Some((n, d)) => (n, Some(d)),
                None => (body, None),
            };
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                return Err(EnvError::BadName { at });
            }
            match (lookup(name), default) {
                (Some(v), _) if !v.is_empty() || default.is_none() => out.push_str(&v),
                (_, Some(d)) => out.push_str(d),
                (None, None) => {
                    return Err(EnvError::NotSet(name.to_string()));
                }
                (Some(_), None) => unreachable!("guarded above"),
            }
            rest = &tail[end + 1..];
        } else {
            out.push('$');
            rest = &after[1..];
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The inverse of [`expand`] for literal text: `${` becomes `$${`, so that expanding the
/// result gives `text` back unchanged.
pub fn escape(text: &str) -> String {
    text.replace("${", "$${")
}

/// Applies [`escape`] to every string inside a JSON value.
pub fn escape_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => *s = escape(s),
        serde_json::Value::Array(items) => items.iter_mut().for_each(escape_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(escape_json),
        _ => {}
    }
}

/// serde `deserialize_with`: a string with `${ENV}` expanded.
pub fn string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let raw = String::deserialize(d)?;
    expand(&raw).map_err(de::Error::custom)
}

/// serde `deserialize_with`: an optional string with `${ENV}` expanded; empty becomes `None`.
pub fn opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    match Option::<String>::deserialize(d)? {
        None => Ok(None),
        Some(raw) => {
            let v = expand(&raw).map_err(de::Error::custom)?;
            Ok((!v.is_empty()).then_some(v))
        }
    }
}

/// serde `deserialize_with`: a [`Secret`] with `${ENV}` expanded; null is empty.
pub fn secret<'de, D: Deserializer<'de>>(d: D) -> Result<Secret, D::Error> {
    Ok(Secret::new(opt_string(d)?.unwrap_or_default()))
}

/// serde `deserialize_with`: a number, given as a number or as a string with `${ENV}`.
pub fn opt_num<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr + Deserialize<'de>,
    T::Err: std::fmt::Display,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumOrStr<T> {
        Num(T),
        Str(String),
    }
    match Option::<NumOrStr<T>>::deserialize(d)? {
        None => Ok(None),
        Some(NumOrStr::Num(n)) => Ok(Some(n)),
        Some(NumOrStr::Str(s)) => {
            let v = expand(&s).map_err(de::Error::custom)?;
            v.trim()
                .parse()
                .map(Some)
                .map_err(|e| de::Error::custom(format!("{v:?} is not a number: {e}")))
        }
    }
}

/// serde `deserialize_with` for a section: an empty section (`dingtalk:` with nothing under
/// it, which YAML reads as null) is the section's default.
pub fn section<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// serde `deserialize_with`: a path with `${ENV}` expanded.
pub fn path<'de, D: Deserializer<'de>>(d: D) -> Result<std::path::PathBuf, D::Error> {
    string(d).map(std::path::PathBuf::from)
}

/// serde `deserialize_with`: an optional path with `${ENV}` expanded; empty becomes `None`.
pub fn opt_path<'de, D: Deserializer<'de>>(d: D) -> Result<Option<std::path::PathBuf>, D::Error> {
    opt_string(d).map(|o| o.map(std::path::PathBuf::from))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(name: &str) -> Option<String> {
        match name {
            "PW" => Some("s3cr:t #x".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn task_settings_take_only_a_whole_reference() {
        let task = |input: &str| expand_task_with(input, "T_", env_task);
        assert_eq!(task(" ${T_PW} ").unwrap(), "s3cr");
        assert_eq!(task("${T_UNSET:-dflt}").unwrap(), "dflt");
        assert_eq!(task("https://h/x?k=v").unwrap(), "https://h/x?k=v");
        assert_eq!(task("a$${b}").unwrap(), "a${b}");
        for leak in [
            "https://evil/?x=${T_PW}",
            "${T_PW}${T_PW}",
            "x ${A:-b}",
            "$$${T_PW}",
        ] {
            let e = task(leak).unwrap_err();
            assert!(matches!(e, EnvError::Embedded { .. }), "{leak}: {e}");
            assert!(!e.to_string().contains("s3cr"));
        }
    }

    fn env_task(name: &str) -> Option<String> {
        match name {
            "T_PW" => Some("s3cr".into()),
            "HOME" => Some("/root".into()),
            _ => None,
        }
    }

    #[test]
    fn task_variables_outside_the_prefix_read_as_unset() {
        let task = |input: &str| expand_task_with(input, "T_", env_task);
        let unset = task("${T_NOPE}").unwrap_err().to_string();
        assert_eq!(
            unset,
            "${T_NOPE} is not set or not allowed in tasks (task variables start with T_)"
        );
        // Set or not, a name outside the prefix gets the unset variable's words.
        for forbidden in ["HOME", "NOPE", "t_PW"] {
            let e = task(&format!("${{{forbidden}}}")).unwrap_err().to_string();
            assert_eq!(e, unset.replace("T_NOPE", forbidden));
            let e = task(&format!("${{{forbidden}:-x}}"))
                .unwrap_err()
                .to_string();
            assert_eq!(e, unset.replace("T_NOPE", forbidden));
        }
        assert!(expand_task_with("${HOME}", "", env_task).is_err());
        let long = format!("${{{}}}", "A".repeat(1000));
        assert!(task(&long).unwrap_err().to_string().len() < 200);
    }

    #[test]
    fn expands_set_default_and_escape() {
        assert_eq!(expand_with("a${PW}b", env).unwrap(), "as3cr:t #xb");
        assert_eq!(expand_with("${NOPE:-3306}", env).unwrap(), "3306");
        assert_eq!(expand_with("${EMPTY:-d}", env).unwrap(), "d");
        assert_eq!(expand_with("${EMPTY}", env).unwrap(), "");
        assert_eq!(expand_with("$${PW} $5", env).unwrap(), "${PW} $5");
        assert_eq!(expand_with("plain", env).unwrap(), "plain");
    }

    #[test]
    fn escape_round_trips_through_expand() {
        for text in ["${PW}", "a$${PW}b", "$$${PW}", "$5 ${", "plain"] {
            assert_eq!(expand_with(&escape(text), env).unwrap(), text, "{text}");
        }
    }

    #[test]
    fn refuses_missing_and_malformed() {
        assert_eq!(
            expand_with("${NOPE}", env).unwrap_err().to_string(),
            "environment variable NOPE is not set"
        );
        assert!(
            expand_with("${PW", env)
                .unwrap_err()
                .to_string()
                .contains("unclosed")
        );
        // A password with a stray `${` is not repeated in the error.
        for pw in ["s3cr3t${oops", "s3cr3t${not a name}x"] {
            let e = expand_with(pw, env).unwrap_err().to_string();
            assert!(
                !e.contains("s3cr3t") && !e.contains("oops") && !e.contains("not a"),
                "{e}"
            );
            assert!(e.contains("at character 7"), "{e}");
        }
        assert!(
            expand_with("${a b}", env)
                .unwrap_err()
                .to_string()
                .contains("bad variable")
        );
    }
}
