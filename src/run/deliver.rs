//! Delivery to storage within an attempt ([`crate::deliver`]): once the files are placed,
//! their checksums, then their upload to the task's targets (an export job's: only those open
//! to jobs), the presigned link of `links:`, and what goes onto the execution record.

use super::attempt::Attempt;
use crate::export::ExportOutcome;
use crate::model::delivery::{DeliverFailure, DeliveryOutcome, FileChecksum};
use crate::model::execution::{ExecutionStatus, Finish, SheetRows};

impl Attempt<'_> {
    /// The checksums of the placed files, then their upload to the task's storage targets
    /// (`deliver`), stopped when `stop` resolves. A failed upload fails the run unless the
    /// task says `deliver_failure: warn`; either way the local files stay.
    pub(super) async fn deliver(
        &self,
        outcome: &ExportOutcome,
        stop: impl Future<Output = String>,
    ) -> Result<Delivered, (Delivered, String)> {
        let spec = &self.task.spec;
        let mut delivered = Delivered::default();
        for f in &outcome.files {
            match crate::deliver::checksum::of_file(&f.path).await {
                Ok(c) => delivered.checksums.push(c),
                Err(e) => {
                    tracing::warn!(file = %f.path.display(), error = %e, "cannot checksum a placed file")
                }
            }
        }
        let targets = self.deliver_targets();
        if targets.is_empty() || outcome.files.is_empty() {
            return Ok(delivered);
        }
        let files: Vec<&std::path::Path> = outcome.files.iter().map(|f| f.path.as_path()).collect();
        let plan = crate::deliver::Plan {
            storage: &self.settings.storage,
            output_dir: &self.settings.export.output_dir,
            retry: crate::deliver::UPLOAD_RETRY,
            clock: &self.executor.clock,
            stop: &self.ctx.stop,
        };
        tokio::select! {
            outcomes = crate::deliver::deliver(&plan, &targets, &files) => {
                delivered.outcomes = outcomes;
            }
            reason = stop => {
                return Err((delivered, format!("delivery to storage stopped: {reason}")));
            }
        }
        if let Some(link_target) = &spec.links {
            delivered.link = self.presign(link_target, &delivered.outcomes).await;
        }
        let failed: Vec<&str> = delivered
            .outcomes
            .iter()
            .filter_map(|o| o.error.as_deref())
            .collect();
        match failed.first() {
            Some(first) if spec.deliver_failure == DeliverFailure::Fail => {
                let more = match failed.len() {
                    1 => String::new(),
                    n => format!(" (and {} more failed uploads)", n - 1),
                };
                let message = format!("{first}{more}; the local files stay");
                Err((delivered, message))
            }
            _ => Ok(delivered),
        }
    }

    /// The storage targets this run uploads to: the task's `deliver`; an export job's only
    /// those the admin opened to jobs (`jobs: true`).
    fn deliver_targets(&self) -> Vec<String> {
        let spec = &self.task.spec;
        match self.ctx.job {
            None => spec.deliver.clone(),
            Some(_) => spec
                .deliver
                .iter()
                .filter(|n| self.settings.storage.get(*n).is_some_and(|t| t.jobs))
                .cloned()
                .collect(),
        }
    }

    /// A presigned link to the first file delivered to `target` (`links:`), or none (logged).
    async fn presign(
        &self,
        target: &str,
        outcomes: &[crate::model::delivery::DeliveryOutcome],
    ) -> Option<String> {
        let key = outcomes
            .iter()
            .find(|o| o.ok && o.target == target)
            .and_then(|o| o.key.clone())?;
        let settings = self.settings.storage.get(target)?;
        let signed = match crate::deliver::Target::build(settings) {
            Ok(t) => t.presign(&key, settings.link_expiry()).await,
            Err(e) => Err(e),
        };
        match signed {
            Ok(url) => Some(url),
            Err(e) => {
                tracing::warn!(task = %self.task.spec.name, storage = target, error = %e, "cannot presign a link; messages carry the daemon's own link");
                None
            }
        }
    }
}

/// The record of a run whose files were placed: counts, files, uploads and checksums.
pub(super) fn placed(
    status: ExecutionStatus,
    outcome: &ExportOutcome,
    delivered: &Delivered,
) -> Finish {
    Finish {
        status: Some(status),
        rows: Some(outcome.rows),
        sheets: SheetRows::list(&outcome.sheets),
        bytes: Some(outcome.bytes()),
        files: outcome
            .files
            .iter()
            .map(|f| f.path.display().to_string())
            .collect(),
        deliveries: delivered.outcomes.clone(),
        checksums: delivered.checksums.clone(),
        split: outcome.splits.clone(),
        ..Finish::default()
    }
}

/// What delivery to storage left for the record.
#[derive(Debug, Default)]
pub(super) struct Delivered {
    /// Each file's checksums.
    pub(super) checksums: Vec<FileChecksum>,
    /// Each (target, file) upload.
    pub(super) outcomes: Vec<DeliveryOutcome>,
    /// The presigned link of `links:`.
    pub(super) link: Option<String>,
}

/// A run whose export succeeded and whose delivery failed.
#[derive(Debug)]
pub(super) struct DeliverFailed {
    /// The export (its files stay).
    pub(super) outcome: ExportOutcome,
    /// What was delivered and checksummed.
    pub(super) delivered: Delivered,
    /// Names the target and the error.
    pub(super) message: String,
}
