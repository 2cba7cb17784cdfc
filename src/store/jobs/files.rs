//! The files of done jobs: one by (job, index) or by path (through its `path_hash`), and
//! their download counts.

use super::lifecycle::path_hash;
use super::{FileRow, select_files};
use crate::model::job::JobFile;
use crate::store::{StoreError, db, dispatch, now};

impl crate::store::Store {
    /// File `index` of job `id`, if it has one.
    ///
    /// # Errors
    /// Database errors.
    pub async fn job_file(&self, id: i64, index: u32) -> Result<Option<JobFile>, StoreError> {
        let row: Option<FileRow> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(select_files!(" WHERE f.job_id = ? AND f.idx = ?")))
                .bind(id)
                .bind(i64::from(index))
                .fetch_optional(pool)
                .await
        })
        .map_err(db("reading an export job's file"))?;
        Ok(row.map(FileRow::into_file))
    }

    /// Counts one download of file `index` of job `id` (one atomic `UPDATE`, now as its
    /// last download), unless it already had `max` downloads (`export.max_downloads`).
    /// Returns false when the limit is reached (or there is no such file).
    ///
    /// # Errors
    /// Database errors.
    pub async fn count_job_download(
        &self,
        id: i64,
        index: u32,
        max: Option<u64>,
    ) -> Result<bool, StoreError> {
        let t = now();
        let max = max.map(|m| i64::try_from(m).unwrap_or(i64::MAX));
        dispatch!(self, |pool, sql| match max {
            Some(max) => sqlx::query(sql(
                "UPDATE export_job_files SET downloads = downloads + 1, last_download_at = ? WHERE job_id = ? AND idx = ? AND downloads < ?",
            ))
            .bind(t)
            .bind(id)
            .bind(i64::from(index))
            .bind(max)
            .execute(pool)
            .await
            .map(|r| r.rows_affected() > 0),
            None => sqlx::query(sql(
                "UPDATE export_job_files SET downloads = downloads + 1, last_download_at = ? WHERE job_id = ? AND idx = ?",
            ))
            .bind(t)
            .bind(id)
            .bind(i64::from(index))
            .execute(pool)
            .await
            .map(|r| r.rows_affected() > 0),
        })
        .map_err(db("counting a download"))
    }

    /// The job file at `path` (as recorded when the job finished), with its job's id.
    ///
    /// # Errors
    /// Database errors.
    pub async fn job_file_by_path(&self, path: &str) -> Result<Option<(i64, JobFile)>, StoreError> {
        let row: Option<FileRow> = dispatch!(self, |pool, sql| {
            sqlx::query_as(sql(select_files!(
                " WHERE f.path_hash = ? AND f.path = ? ORDER BY f.job_id DESC LIMIT 1"
            )))
            .bind(path_hash(path))
            .bind(path)
            .fetch_optional(pool)
            .await
        })
        .map_err(db("finding an export job's file"))?;
        Ok(row.map(|r| (r.job_id, r.into_file())))
    }
}
