//! `reportd export --source NAME --sql SQL -o FILE [--format xlsx|csv] [--split-column COL
//! --readers N --chunk-rows N]`: an ad-hoc export that needs only `data_sources` in the config
//! (a source added to the store is found too); with `--split-column`, read by several readers
//! over key ranges (`{split}` in the SQL).

use anyhow::{Context as _, bail};
use chrono::Utc;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use super::{Progress, interrupted, print_summary};
use crate::cli::ExportArgs;
use crate::config::Settings;
use crate::export::naming::render_sql;
use crate::export::{Destination, SheetQuery, export};
use crate::model::split::PLACEHOLDER;
use crate::model::task::{Format, SplitSpec, default_sheet_name};
use crate::source::Source;
use crate::store::Store;
use crate::store::catalog;

/// Runs the export.
///
/// # Errors
/// Unknown data source, query or write failure, interruption.
pub async fn dispatch(settings: &Settings, args: ExportArgs) -> anyhow::Result<ExitCode> {
    let mut entry = catalog::lookup(settings, None, &args.source).await?;
    if entry.is_none() {
        // Not in the config: a source added to the store, if the store can be opened.
        if let Ok(store) = Store::open(settings).await {
            entry = catalog::lookup(settings, Some(&store), &args.source).await?;
            store.close().await;
        }
    }
    let Some(entry) = entry else {
        bail!(
            "unknown data source {} (see `reportd datasource list`)",
            args.source
        );
    };
    let format = args.format.unwrap_or_else(|| {
        let ext = args
            .output
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        if ext.as_deref() == Some("csv") {
            Format::Csv
        } else {
            Format::Xlsx
        }
    });
    let stem = args
        .output
        .file_stem()
        .map_or_else(|| "Sheet1".into(), |s| s.to_string_lossy().into_owned());
    let now = Utc::now().with_timezone(&settings.scheduler.timezone.0);
    let split = args.split_column.map(|column| SplitSpec {
        column,
        readers: args.readers,
        chunk_rows: args.chunk_rows,
    });
    match &split {
        Some(s) => {
            s.check(&args.sql)
                .map_err(|e| anyhow::anyhow!("--split-column: {e}"))?;
        }
        None if args.sql.contains(PLACEHOLDER) => {
            bail!("--sql holds {PLACEHOLDER}: give --split-column (and --readers, --chunk-rows)")
        }
        None => {}
    }
    let sheets = vec![SheetQuery {
        name: default_sheet_name(&stem),
        sql: render_sql(&args.sql, now).context("--sql")?,
        split,
    }];
    let request = settings.export.request(
        sheets,
        format,
        Destination::File(args.output.clone()),
        Duration::from_secs(settings.export.query_timeout),
        settings.scheduler.timezone.0,
    );
    let accounts = settings.security.read_only_accounts;
    let source = Source::open(&args.source, &entry.connect_spec()?, accounts).await?;
    let rows = Arc::new(AtomicU64::new(0));
    let progress = Progress::start(rows.clone());
    let result = export(&source, &args.source, &request, rows, interrupted()).await;
    progress.finish();
    let outcome = result.with_context(|| format!("exporting to {}", args.output.display()))?;
    print_summary(&outcome);
    Ok(ExitCode::SUCCESS)
}
