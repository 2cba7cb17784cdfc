//! Alert conditions (DESIGN.md, Alerts and channels): `value OP N`, `rows OP N`, `value is
//! null`, `value is not null`, with OP one of `> >= < <= == !=`; what a run saw
//! ([`Observed`]); and the state each execution records ([`AlertState`]).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// The state an execution records for its task's alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// The condition does not hold.
    Ok,
    /// The condition holds.
    Triggered,
    /// The condition could not be evaluated (the query failed, or the value is not a number).
    Error,
}

super::execution::text_enum!(AlertState {
    Ok = "ok",
    Triggered = "triggered",
    Error = "error",
});

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Gt => ">",
            Op::Ge => ">=",
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Eq => "==",
            Op::Ne => "!=",
        }
    }

    fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Op::Gt => left > right,
            Op::Ge => left >= right,
            Op::Lt => left < right,
            Op::Le => left <= right,
            Op::Eq => left == right,
            Op::Ne => left != right,
        }
    }
}

/// A parsed `alert.condition`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Condition {
    /// The first cell of the first row compared with a number.
    Value(Op, f64),
    /// The row count compared with a number.
    Rows(Op, f64),
    /// The first cell is NULL (or there is no row).
    ValueIsNull,
    /// The first cell is not NULL.
    ValueIsNotNull,
}

/// What the condition looks at: the query's row count and its first cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    /// Rows the query returned.
    pub rows: u64,
    /// The first cell of the first row: `None` for NULL or no row; else its text as shown.
    pub value: Option<String>,
}

/// Why a condition cannot be parsed or evaluated. One line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    /// Not one of the accepted forms.
    #[error(
        "{0:?} is not a condition: write `value OP N`, `rows OP N`, `value is null` or `value is not null` (OP: > >= < <= == !=)"
    )]
    Syntax(String),
    /// The number after the operator is not a number.
    #[error("{0:?} is not a number")]
    Number(String),
    /// The first cell is not a number but the condition compares it with one.
    #[error("the first cell {0:?} is not a number")]
    NotANumber(String),
}

impl FromStr for Condition {
    type Err = ConditionError;

    fn from_str(text: &str) -> Result<Self, ConditionError> {
        let syntax = || ConditionError::Syntax(text.to_string());
        let words: Vec<String> = text
            .split_whitespace()
            .map(str::to_ascii_lowercase)
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        match words.as_slice() {
            ["value", "is", "null"] => return Ok(Condition::ValueIsNull),
            ["value", "is", "not", "null"] => return Ok(Condition::ValueIsNotNull),
            _ => {}
        }
        // `value>100` and `value > 100` alike: split at the operator.
        let trimmed = text.trim();
        let start = trimmed.find(['>', '<', '=', '!']).ok_or_else(syntax)?;
        let subject = trimmed[..start].trim().to_ascii_lowercase();
        let rest = &trimmed[start..];
        let (op, number) = [
            (">=", Op::Ge),
            ("<=", Op::Le),
            ("==", Op::Eq),
            ("!=", Op::Ne),
            (">", Op::Gt),
            ("<", Op::Lt),
        ]
        .into_iter()
        .find_map(|(s, op)| rest.strip_prefix(s).map(|n| (op, n.trim())))
        .ok_or_else(syntax)?;
        let n: f64 = number
            .parse()
            .ok()
            .filter(|n: &f64| n.is_finite())
            .ok_or_else(|| ConditionError::Number(number.to_string()))?;
        match subject.as_str() {
            "value" => Ok(Condition::Value(op, n)),
            "rows" => Ok(Condition::Rows(op, n)),
            _ => Err(syntax()),
        }
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Condition::Value(op, n) => write!(f, "value {} {n}", op.as_str()),
            Condition::Rows(op, n) => write!(f, "rows {} {n}", op.as_str()),
            Condition::ValueIsNull => f.write_str("value is null"),
            Condition::ValueIsNotNull => f.write_str("value is not null"),
        }
    }
}

impl Condition {
    /// Whether the condition holds for what the query returned.
    ///
    /// # Errors
    /// A `value OP N` condition on a first cell that is not a number. A NULL first cell (or
    /// no row) makes every `value OP N` false.
    pub fn holds(&self, seen: &Observed) -> Result<bool, ConditionError> {
        match self {
            Condition::ValueIsNull => Ok(seen.value.is_none()),
            Condition::ValueIsNotNull => Ok(seen.value.is_some()),
            Condition::Rows(op, n) => Ok(op.holds(seen.rows as f64, *n)),
            Condition::Value(op, n) => match &seen.value {
                None => Ok(false),
                Some(v) => {
                    let number: f64 = v
                        .trim()
                        .replace(',', "")
                        .parse()
                        .map_err(|_| ConditionError::NotANumber(v.clone()))?;
                    Ok(op.holds(number, *n))
                }
            },
        }
    }

    /// True when the condition looks at the first cell (so the query needs one row).
    pub fn needs_value(&self) -> bool {
        !matches!(self, Condition::Rows(..))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(rows: u64, value: Option<&str>) -> Observed {
        Observed {
            rows,
            value: value.map(str::to_string),
        }
    }

    #[test]
    fn parses_every_form_and_refuses_the_rest() {
        let c = |s: &str| s.parse::<Condition>();
        assert_eq!(c("value > 100"), Ok(Condition::Value(Op::Gt, 100.0)));
        assert_eq!(c("VALUE>=1.5"), Ok(Condition::Value(Op::Ge, 1.5)));
        assert_eq!(c("rows == 0"), Ok(Condition::Rows(Op::Eq, 0.0)));
        assert_eq!(c("rows != -3"), Ok(Condition::Rows(Op::Ne, -3.0)));
        assert_eq!(c(" value  is  NULL "), Ok(Condition::ValueIsNull));
        assert_eq!(c("value is not null"), Ok(Condition::ValueIsNotNull));
        assert_eq!(c("value <= 2").unwrap().to_string(), "value <= 2");
        for bad in [
            "",
            "value",
            "value = 1",
            "value => 1",
            "cells > 1",
            "value > x",
            "value > inf",
            "rows >",
        ] {
            assert!(c(bad).is_err(), "{bad:?}");
        }
        assert!(
            c("value > x")
                .unwrap_err()
                .to_string()
                .contains("\"x\" is not a number")
        );
    }

    #[test]
    fn evaluates_against_what_the_query_returned() {
        let gt = Condition::Value(Op::Gt, 100.0);
        assert_eq!(gt.holds(&seen(1, Some("101"))), Ok(true));
        assert_eq!(gt.holds(&seen(1, Some("1,000.5"))), Ok(true));
        assert_eq!(gt.holds(&seen(1, Some("100"))), Ok(false));
        assert_eq!(gt.holds(&seen(0, None)), Ok(false));
        assert!(gt.holds(&seen(1, Some("abc"))).is_err());
        assert_eq!(Condition::Rows(Op::Eq, 0.0).holds(&seen(0, None)), Ok(true));
        assert_eq!(Condition::ValueIsNull.holds(&seen(1, None)), Ok(true));
        assert_eq!(
            Condition::ValueIsNotNull.holds(&seen(1, Some("x"))),
            Ok(true)
        );
        assert_eq!("triggered".parse::<AlertState>(), Ok(AlertState::Triggered));
    }
}
