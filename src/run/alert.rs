//! A task's alert within a run (DESIGN.md, Alerts and channels): what its condition looks at
//! (the report's first query, or its own `alert.sql` run through the same read-only source),
//! the state the execution records, and whether that state is worth a message.
//!
//! `repeat: on_change` sends when the condition starts to hold and once when it stops;
//! `always` sends every run while it holds, and once when it stops. The state compared
//! with is the task's last `ok` or `triggered` one: a run whose alert could not be
//! evaluated (`error`, notified as a failure) does not count as a change.

use crate::export::ExportOutcome;
use crate::model::alert::{AlertState, Condition, ConditionError, Observed};
use crate::model::task::{AlertSpec, Repeat};
use crate::notify::message::AlertFacts;

/// What the condition looks at, from an export of its query (the report's, or `alert.sql`'s):
/// the first sheet's rows and first cell.
pub fn observed(outcome: &ExportOutcome) -> Observed {
    Observed {
        rows: outcome.sheets.first().map_or(0, |s| s.1),
        value: outcome.preview.first_value(),
    }
}

/// The alert's state for what its query returned, with the facts messages tell.
///
/// # Errors
/// A condition that does not parse (a task stored before it was checked), or a first cell
/// that is not a number where the condition compares one.
pub fn evaluate(spec: &AlertSpec, seen: &Observed) -> Result<AlertFacts, ConditionError> {
    let condition: Condition = spec.condition.parse()?;
    let holds = condition.holds(seen)?;
    let value = if condition.needs_value() {
        seen.value.clone().unwrap_or_else(|| "NULL".into())
    } else {
        seen.rows.to_string()
    };
    Ok(AlertFacts {
        state: if holds {
            AlertState::Triggered
        } else {
            AlertState::Ok
        },
        condition: condition.to_string(),
        value,
    })
}

/// Whether a run whose alert is in `now` sends a message, after `previous` (the task's last
/// `ok` or `triggered` state; none for its first evaluation).
pub fn due(repeat: Repeat, now: AlertState, previous: Option<AlertState>) -> bool {
    match now {
        AlertState::Triggered => {
            repeat == Repeat::Always || previous != Some(AlertState::Triggered)
        }
        AlertState::Ok => previous == Some(AlertState::Triggered),
        // Sent as a failure, like any failed run.
        AlertState::Error => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn on_change_sends_the_trigger_and_the_recovery_only() {
        use AlertState::{Ok, Triggered};
        let mut previous = None;
        let mut sent = Vec::new();
        for now in [Ok, Triggered, Triggered, Ok, Ok, Triggered] {
            sent.push(due(Repeat::OnChange, now, previous));
            previous = Some(now);
        }
        assert_eq!(sent, [false, true, false, true, false, true]);
        assert!(due(Repeat::Always, Triggered, Some(Triggered)));
        assert!(!due(Repeat::Always, Ok, Some(Ok)));
    }

    #[test]
    fn the_value_shown_is_what_the_condition_looked_at() {
        let spec = |c: &str| AlertSpec {
            condition: c.into(),
            sql: None,
            repeat: Repeat::OnChange,
        };
        let seen = Observed {
            rows: 3,
            value: Some("120".into()),
        };
        let a = evaluate(&spec("value > 100"), &seen).unwrap();
        assert_eq!((a.state, a.value.as_str()), (AlertState::Triggered, "120"));
        let r = evaluate(&spec("rows == 0"), &seen).unwrap();
        assert_eq!((r.state, r.value.as_str()), (AlertState::Ok, "3"));
        assert!(evaluate(&spec("value >"), &seen).is_err());
    }
}
