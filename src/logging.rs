//! Logging: `tracing` to stderr (colour only on a terminal) and, when asked, to
//! `logging.file` with size-based rotation (`max_size`, `backup_count`). `RUST_LOG` overrides
//! the configured level.
//!
//! Under systemd (stderr is the journal, `$JOURNAL_STREAM` names it) stderr lines carry no
//! timestamp (the journal adds its own) and start with the syslog priority (`<3>` error,
//! `<4>` warning, `<6>` info, `<7>` debug), so `journalctl -p warning` works.

use file_rotate::compression::Compression;
use file_rotate::suffix::AppendCount;
use file_rotate::{ContentLimit, FileRotate};
use std::io::IsTerminal;
use tracing::{Event, Level, Subscriber};
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::filter::{EnvFilter, LevelFilter};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

use crate::config::LoggingSettings;

/// Keeps the file writer flushing; drop it last (at exit).
#[must_use = "dropping the guard stops file logging"]
pub struct LogGuard {
    _worker: Option<WorkerGuard>,
}

/// sqlx's connect-option parser warns about unknown URL parameters and malformed `.pgpass`
/// lines with their values (`?Password=…`, a password line): those warnings never reach a
/// log (secrets never leave).
const QUIET_SECRETS: &str = "sqlx_postgres::options=error";

/// Sets up the global subscriber. `stderr_level` is the level on stderr (`None`: nothing on
/// stderr); the file (when `to_file` and `logging.file` is set) gets `logging.level`.
///
/// # Errors
/// The log file's directory cannot be created or the file cannot be opened for appending.
pub fn init(
    settings: &LoggingSettings,
    stderr_level: Option<Level>,
    to_file: bool,
) -> anyhow::Result<LogGuard> {
    let env_or = |level: Level| {
        let filter = EnvFilter::builder()
            .with_default_directive(LevelFilter::from_level(level).into())
            .from_env_lossy();
        match QUIET_SECRETS.parse() {
            Ok(quiet) => filter.add_directive(quiet),
            Err(_) => filter,
        }
    };
    let stderr = stderr_level.map(|level| {
        let layer = fmt::layer().with_writer(std::io::stderr).with_target(false);
        if journald_stderr() {
            let format = Journald(fmt::format().without_time().with_target(false));
            layer
                .with_ansi(false)
                .event_format(format)
                .with_filter(env_or(level))
                .boxed()
        } else {
            layer
                .with_ansi(std::io::stderr().is_terminal())
                .with_filter(env_or(level))
                .boxed()
        }
    });

    let (file_layer, guard) = match (&settings.file, to_file) {
        (Some(path), true) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                crate::private::create_dir_all(dir).map_err(|e| {
                    anyhow::anyhow!("log file {}: cannot create directory: {e}", path.display())
                })?;
            }
            // 0600 (it holds the one-time setup URL), also when an older version made it.
            crate::private::options()
                .create(true)
                .append(true)
                .open(path)
                .map_err(|e| anyhow::anyhow!("log file {}: cannot open: {e}", path.display()))?;
            crate::private::restrict(path).map_err(|e| {
                anyhow::anyhow!("log file {}: cannot make it private: {e}", path.display())
            })?;
            let rotating = FileRotate::new(
                path,
                AppendCount::new(settings.backup_count),
                ContentLimit::BytesSurpassed(settings.max_size.0 as usize),
                Compression::None,
                None,
            );
            let (writer, guard) = tracing_appender::non_blocking(rotating);
            let layer = fmt::layer()
                .with_writer(writer)
                .with_ansi(false)
                .with_filter(env_or(settings.level.0));
            (Some(layer), Some(guard))
        }
        _ => (None, None),
    };
    tracing_subscriber::registry()
        .with(stderr)
        .with(file_layer)
        .try_init()
        .map_err(|e| anyhow::anyhow!("logging: {e}"))?;
    Ok(LogGuard { _worker: guard })
}

/// True when stderr is the systemd journal (`$JOURNAL_STREAM` is `device:inode` of stderr).
fn journald_stderr() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let stream = stream.to_string_lossy();
    let Some((dev, ino)) = stream.split_once(':') else {
        return false;
    };
    // fstat(2) of fd 2, through /proc (no unsafe needed).
    match std::fs::metadata("/proc/self/fd/2") {
        Ok(m) => dev.parse() == Ok(m.dev()) && ino.parse() == Ok(m.ino()),
        Err(_) => false,
    }
}

/// Prefixes each line with its syslog priority, as the journal reads it.
struct Journald<F>(F);

impl<S, N, F> FormatEvent<S, N> for Journald<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let priority = match *event.metadata().level() {
            Level::ERROR => 3,
            Level::WARN => 4,
            Level::INFO => 6,
            _ => 7,
        };
        write!(writer, "<{priority}>")?;
        self.0.format_event(ctx, writer, event)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_secret_quieting_directive_parses() {
        assert!(
            super::QUIET_SECRETS
                .parse::<tracing_subscriber::filter::Directive>()
                .is_ok()
        );
    }
}
