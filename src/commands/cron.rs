//! `reportd cron next "EXPR" [--tz ZONE] [--count N] [--after RFC3339]`: the next fire times,
//! computed exactly as the scheduler does (croner, in the zone, with Vixie cron's DST rules).

use anyhow::{Context as _, bail};
use chrono::{DateTime, Utc};
use std::process::ExitCode;

use crate::cli::CronCommand;
use crate::config::Settings;
use crate::model::cron::Schedule;
use crate::model::units::TimeZone;

/// Runs a `cron` subcommand.
///
/// # Errors
/// A bad expression, zone or time.
pub fn dispatch(settings: &Settings, command: CronCommand) -> anyhow::Result<ExitCode> {
    let CronCommand::Next {
        expr,
        tz,
        count,
        after,
    } = command;
    let schedule = Schedule::parse(&expr).map_err(anyhow::Error::msg)?;
    let zone = match tz {
        Some(z) => z.parse::<TimeZone>().map_err(anyhow::Error::msg)?,
        None => settings.scheduler.timezone,
    };
    let after: DateTime<Utc> = match after {
        Some(a) => DateTime::parse_from_rfc3339(&a)
            .with_context(|| {
                format!("--after {a:?} is not an RFC 3339 time such as 2026-03-08T00:00:00-05:00")
            })?
            .with_timezone(&Utc),
        None => Utc::now(),
    };
    let fires = schedule.next_fires(zone.0, after, count);
    if fires.is_empty() && count > 0 {
        bail!("{expr:?} never fires after {}", after.to_rfc3339());
    }
    for f in fires {
        println!("{}", f.to_rfc3339());
    }
    Ok(ExitCode::SUCCESS)
}
