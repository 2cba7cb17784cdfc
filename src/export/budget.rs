//! `export.max_total_bytes`: the bytes one run may write across all its files, counted where
//! they are written. The CSV writer counts every byte it writes (exact). The xlsx writer
//! knows a part's real size only once it is saved (compressed): it counts the saved parts'
//! real sizes plus the current part's gauge ([`super::gauge`], the same figure that splits
//! parts at `max_file_size`, with room for the workbook's other parts), so a run stops a
//! little early rather than late. Past the limit the sink
//! fails with [`exceeded`] and, like any failed export, keeps no file.

use super::sink::WriteError;
use crate::model::units::ByteSize;

/// The bytes a run's files may still take.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    limit: u64,
    spent: u64,
}

/// The error of a run whose files reached `limit` bytes.
pub fn exceeded(limit: u64) -> WriteError {
    WriteError::msg(format!(
        "export stopped: files reached export.max_total_bytes ({})",
        ByteSize(limit)
    ))
}

impl Budget {
    /// A budget of `limit` bytes, none spent.
    pub fn new(limit: u64) -> Budget {
        Budget { limit, spent: 0 }
    }

    /// Bytes counted so far.
    pub fn spent(&self) -> u64 {
        self.spent
    }

    /// Counts `n` bytes about to be written.
    ///
    /// # Errors
    /// [`exceeded`] when they would take the run past its limit (nothing is counted then).
    pub fn spend(&mut self, n: u64) -> Result<(), WriteError> {
        self.check(n)?;
        self.spent += n;
        Ok(())
    }

    /// Checks that `pending` bytes beyond those counted (an estimate of what is being
    /// written) still fit.
    ///
    /// # Errors
    /// [`exceeded`] when they do not.
    pub fn check(&self, pending: u64) -> Result<(), WriteError> {
        if self.spent.saturating_add(pending) > self.limit {
            return Err(exceeded(self.limit));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Budget;

    #[test]
    fn bytes_past_the_limit_are_refused_and_not_counted() {
        let mut b = Budget::new(100);
        b.spend(60).unwrap();
        b.check(40).unwrap();
        let e = b.spend(41).unwrap_err();
        assert_eq!(
            e.to_string(),
            "export stopped: files reached export.max_total_bytes (100B)"
        );
        assert_eq!(b.spent(), 60);
        assert!(b.check(u64::MAX).is_err());
    }
}
