//! The command line (clap derive): [`Cli`], [`Command`] and the sub-command enums.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

use crate::model::datasource::SourceKind;
use crate::model::job::JobStatus;
use crate::model::task::Format;

/// reportd — scheduled SQL reports to Excel, DingTalk and e-mail.
#[derive(Debug, Parser)]
#[command(name = "reportd", version, about, long_about = None)]
pub struct Cli {
    /// Config file.
    #[arg(
        long,
        short = 'c',
        global = true,
        env = "REPORTD_CONFIG",
        default_value = "config.yaml"
    )]
    pub config: PathBuf,
    /// More log output on stderr (-v info, -vv debug).
    #[arg(long, short = 'v', global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the daemon in the foreground: fire every enabled task on time (systemd uses this).
    Run,
    /// Start the daemon in the background and wait until it is healthy.
    Start,
    /// Stop the daemon: SIGTERM, then SIGKILL after daemon.shutdown_timeout + 5 s.
    Stop,
    /// Stop the daemon (if it runs), then start it.
    Restart,
    /// Is the daemon running and healthy? Exit 0 yes, 1 running but unhealthy, 3 not running.
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Keep the daemon running (foreground): restart it when it dies or fails 3 health checks.
    Monitor {
        /// Seconds between checks (1 to 86400).
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=86_400))]
        interval: u64,
    },
    /// Validate the config, templates and stored tasks; connect to the store and every data source.
    Check {
        /// Contact no server: validate files, and the tasks of a local SQLite store if it exists.
        #[arg(long)]
        no_connect: bool,
    },
    /// Manage data sources.
    #[command(subcommand)]
    Datasource(DatasourceCommand),
    /// Export the result of one query to a file (needs only `data_sources` in the config).
    Export(ExportArgs),
    /// Cron expressions: show when one fires.
    #[command(subcommand)]
    Cron(CronCommand),
    /// Execution history, newest first.
    Logs {
        /// Only this task (id or name).
        #[arg(long)]
        task: Option<String>,
        /// How many executions.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Manage tasks.
    #[command(subcommand)]
    Task(TaskCommand),
    /// Notification channels.
    #[command(subcommand)]
    Notify(NotifyCommand),
    /// Console and API accounts.
    #[command(subcommand)]
    User(UserCommand),
    /// Secrets at rest (passwords, webhooks, signing secrets in the store).
    #[command(subcommand)]
    Secrets(SecretsCommand),
    /// Export jobs (the download center): list, show, cancel.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// Storage targets (`storage:` in config.yaml).
    #[command(subcommand)]
    Storage(StorageCommand),
    /// Stop a running execution, whichever instance runs it (its query is stopped on the
    /// server, no file is kept).
    Cancel {
        /// Execution id (see `reportd logs`).
        execution: i64,
    },
    /// Remove old exported files and execution history.
    Cleanup {
        /// Age in days for both files and history (default: export.retention_days for
        /// files, scheduler.log_retention_days for history).
        #[arg(long)]
        days: Option<u32>,
        /// Only count the files that would go.
        #[arg(long)]
        dry_run: bool,
    },
}

/// `reportd storage ...`
#[derive(Debug, Subcommand)]
pub enum StorageCommand {
    /// List the targets (type and where; never a credential).
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Write a small object to a target, read it back and remove it.
    Test {
        /// Target name (a key of `storage:`).
        name: String,
    },
}

/// `reportd jobs ...`
#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List export jobs, newest first.
    List {
        /// Only jobs in this state.
        #[arg(long, value_parser = job_status())]
        status: Option<JobStatus>,
        /// How many jobs.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one job: its state, what it exports, its files and their downloads (never the
    /// callback's URL or secret).
    Show {
        /// Job id (see `reportd jobs list`).
        id: i64,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Cancel a job: a queued one at once; a running one is stopped by the instance that
    /// runs it (waits up to 10 s and prints how it ended).
    Cancel {
        /// Job id (see `reportd jobs list`).
        id: i64,
    },
}

/// `--status`: one of the job states, listed in `--help`.
fn job_status() -> impl clap::builder::TypedValueParser<Value = JobStatus> {
    use clap::builder::TypedValueParser as _;
    clap::builder::PossibleValuesParser::new(JobStatus::ALL.iter().map(|s| s.as_str()))
        .try_map(|s| s.parse::<JobStatus>())
}

/// `reportd user ...`
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add an account (the password is asked for, or read from stdin).
    Add {
        /// Account name.
        name: String,
        /// What the account may do.
        #[arg(long, value_parser = ["viewer", "editor", "admin"])]
        role: String,
        /// Read the password from the first line of stdin (for scripts).
        #[arg(long)]
        password_stdin: bool,
    },
    /// List the accounts.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Set an account's password (its logins and API token end).
    Passwd {
        /// Account name.
        name: String,
        /// Read the password from the first line of stdin.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Remove an account (its logins and API token end).
    Remove {
        /// Account name.
        name: String,
    },
    /// Print a new API token for an account (replaces its previous one; shown once).
    Token {
        /// Account name.
        name: String,
    },
}

/// `reportd notify ...`
#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// Send a test message through a channel and print the service's answer.
    Test {
        /// The channel.
        #[arg(value_enum)]
        channel: Channel,
        /// Use this task's robot, @-list or recipients (id or name).
        #[arg(long)]
        task: Option<String>,
        /// E-mail recipient (repeatable); default: the task's, else email.from_address.
        #[arg(long)]
        to: Vec<String>,
    },
}

/// `reportd secrets ...`
#[derive(Debug, Subcommand)]
pub enum SecretsCommand {
    /// Re-encrypt every stored secret under a new key (one transaction), then replace
    /// security.secret_key_file (the old key is kept as secret.key.old). With
    /// security.secret_key set, give the new key with --new-key-stdin or --new-key-file and
    /// then put it in the config or environment yourself.
    Rotate {
        /// Take the new key (base64 of 32 bytes) from this file instead of generating one.
        #[arg(long, conflicts_with = "new_key_stdin")]
        new_key_file: Option<PathBuf>,
        /// Read the new key (base64 of 32 bytes) from standard input.
        #[arg(long)]
        new_key_stdin: bool,
    },
}

/// A notification channel (defined with the test messages it names).
pub use crate::notify::test::Channel;

impl Command {
    /// Whether the command logs to `logging.file`: the daemon, and the commands that change
    /// state (an audit trail).
    pub fn writes_log_file(&self) -> bool {
        match self {
            Command::Run => true,
            Command::Start
            | Command::Stop
            | Command::Restart
            | Command::Status { .. }
            | Command::Monitor { .. }
            | Command::Check { .. }
            | Command::Export(_)
            | Command::Cron(_)
            | Command::Logs { .. }
            | Command::Notify(_)
            | Command::Storage(_) => false,
            Command::Cleanup { dry_run, .. } => !dry_run,
            Command::Cancel { .. } => true,
            Command::Jobs(j) => matches!(j, JobsCommand::Cancel { .. }),
            Command::User(u) => !matches!(u, UserCommand::List { .. }),
            Command::Secrets(_) => true,
            Command::Datasource(d) => matches!(
                d,
                DatasourceCommand::Add(_) | DatasourceCommand::Remove { .. }
            ),
            Command::Task(t) => matches!(
                t,
                TaskCommand::Apply { dry_run: false, .. }
                    | TaskCommand::Run { .. }
                    | TaskCommand::Enable { .. }
                    | TaskCommand::Disable { .. }
                    | TaskCommand::Remove { .. }
            ),
        }
    }
}

/// `reportd export --source NAME --sql SQL -o FILE`
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Data source name.
    #[arg(long, short = 's')]
    pub source: String,
    /// The query; `{today}`, `{yesterday}` and the other date macros are rendered now.
    #[arg(long)]
    pub sql: String,
    /// Output file; `_part2` files go beside it if it grows past `export.max_file_size`.
    #[arg(long, short = 'o')]
    pub output: PathBuf,
    /// xlsx or csv (default: from the file extension, else xlsx).
    #[arg(long, value_parser = parse_format)]
    pub format: Option<Format>,
    /// Read with several readers over ranges of this key column (`{split}` in --sql).
    #[arg(long)]
    pub split_column: Option<String>,
    /// Readers of a split read (1-32).
    #[arg(long, default_value_t = 4, requires = "split_column")]
    pub readers: u32,
    /// Rows per range of a split read, about.
    #[arg(long, default_value_t = 100_000, requires = "split_column")]
    pub chunk_rows: u64,
}

/// An `--format` other than xlsx or csv.
#[derive(Debug, thiserror::Error)]
#[error("unknown format {0:?} (use xlsx or csv)")]
pub struct UnknownFormat(String);

fn parse_format(s: &str) -> Result<Format, UnknownFormat> {
    match s.to_ascii_lowercase().as_str() {
        "xlsx" => Ok(Format::Xlsx),
        "csv" => Ok(Format::Csv),
        _ => Err(UnknownFormat(s.to_string())),
    }
}

/// `reportd cron ...`
#[derive(Debug, Subcommand)]
pub enum CronCommand {
    /// The next fire times of an expression, one per line, RFC 3339 with the zone's offset.
    Next {
        /// 5 fields (minute hour day month weekday), or 6 with leading seconds; `@daily` etc.
        expr: String,
        /// IANA time zone (default: scheduler.timezone).
        #[arg(long)]
        tz: Option<String>,
        /// How many fire times.
        #[arg(long, default_value_t = 5)]
        count: usize,
        /// Fire times strictly after this RFC 3339 time (default: now).
        #[arg(long)]
        after: Option<String>,
    },
}

/// `reportd datasource ...`
#[derive(Debug, Subcommand)]
pub enum DatasourceCommand {
    /// List data sources from the config and the store.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Add a data source to the store.
    Add(DatasourceAdd),
    /// Connect, run SELECT 1 and print the latency.
    Test {
        /// Data source name.
        name: String,
    },
    /// Remove a data source from the store.
    Remove {
        /// Data source name.
        name: String,
        /// Remove even if tasks use it.
        #[arg(long)]
        force: bool,
    },
}

/// `reportd datasource add NAME --type ...`
#[derive(Debug, Args)]
pub struct DatasourceAdd {
    /// Unique name.
    pub name: String,
    /// mysql, adb, postgresql or sqlite.
    #[arg(long = "type", short = 't', value_parser = parse_kind)]
    pub kind: SourceKind,
    /// Server host.
    #[arg(long)]
    pub host: Option<String>,
    /// Server port.
    #[arg(long)]
    pub port: Option<u16>,
    /// Database name; for sqlite the file path.
    #[arg(long)]
    pub database: Option<String>,
    /// Login user.
    #[arg(long)]
    pub username: Option<String>,
    /// Password; prefer a reference such as '${WAREHOUSE_PASSWORD}', expanded at connect time.
    #[arg(long)]
    pub password: Option<String>,
    /// Character set (MySQL family).
    #[arg(long)]
    pub charset: Option<String>,
    /// Full connection URL instead of host/port/... (may be '${ENV}').
    #[arg(long)]
    pub url: Option<String>,
    /// Pool size.
    #[arg(long)]
    pub max_connections: Option<u32>,
}

fn parse_kind(s: &str) -> Result<SourceKind, crate::model::datasource::UnknownSourceKind> {
    s.parse()
}

/// `reportd task ...`
#[derive(Debug, Subcommand)]
pub enum TaskCommand {
    /// List tasks with their next fire time.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Show one task (secrets masked) and its next fire times.
    Show {
        /// Task id or name.
        task: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Create or update the tasks of a file, by name; all or nothing.
    Apply {
        /// Task file (YAML with `tasks:`).
        #[arg(long, short = 'f')]
        file: PathBuf,
        /// Validate only; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Run a task once now through the same runner as the daemon, recording an execution.
    Run {
        /// Task id or name.
        task: String,
        /// Send no notifications.
        #[arg(long)]
        no_notify: bool,
    },
    /// Enable a task.
    Enable {
        /// Task id or name.
        task: String,
    },
    /// Disable a task (it stays stored but does not fire).
    Disable {
        /// Task id or name.
        task: String,
    },
    /// Remove a task (its execution history stays).
    Remove {
        /// Task id or name.
        task: String,
    },
    /// Print tasks as a task file that `apply` takes back unchanged.
    Export {
        /// Task ids or names (default: all).
        tasks: Vec<String>,
        /// Write to this file instead of stdout.
        #[arg(long, short = 'o')]
        output: Option<PathBuf>,
    },
}
