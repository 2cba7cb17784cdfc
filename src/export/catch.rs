//! Panics of the export writer turned into errors. rust_xlsxwriter panics when a write to its
//! constant-memory scratch file fails (a full temp disk, say). The writer thread runs its sink
//! under [`quietly`]: the panic is caught, the process's panic hook does not print it (no
//! message or backtrace on stderr), and its text comes back as a [`WriteError`] — with the
//! I/O error rebuilt when the text names one — so "No space left on device" reaches the
//! execution record and the log like any other write error.

use super::sink::{WriteError, WriteFailure};

/// Runs `f`, turning a panic into [`WriteFailure::Error`] (`what: <panic text>`), without the
/// panic printed ([`crate::panics::quietly`]).
///
/// # Errors
/// `f`'s own, or the panic's.
pub fn quietly<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, WriteFailure>,
) -> Result<T, WriteFailure> {
    crate::panics::quietly(f)
        .unwrap_or_else(|text| Err(WriteFailure::Error(from_panic(what, &text.0))))
}

/// A write error from a panic's text. `expect` on an I/O result prints the error's `Debug`
/// (`Couldn't write to xml file: Os { code: 28, kind: StorageFull, message: "No space left
/// on device" }`): the OS error is rebuilt from its code, so the message reads like any other
/// I/O failure and the kind can be told.
pub fn from_panic(what: &str, text: &str) -> WriteError {
    let text = text.replace('\n', " ");
    if let Some(start) = text.find("Os { code: ") {
        let digits: String = text[start + 11..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        if let Ok(code) = digits.parse::<i32>() {
            let before = text[..start].trim_end_matches([' ', ':']);
            let what = if before.is_empty() {
                what.to_string()
            } else {
                format!("{what}: {before}")
            };
            return WriteError::io(what, std::io::Error::from_raw_os_error(code));
        }
    }
    WriteError::msg(format!("{what}: {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_becomes_the_io_error_it_reports() {
        let r: Result<(), WriteFailure> = quietly("writing xlsx", || {
            // What rust_xlsxwriter does on a full disk: `expect` on a failed write.
            use std::io::Write;
            let mut full = std::fs::OpenOptions::new()
                .write(true)
                .open("/dev/full")
                .unwrap();
            full.write_all(b"x")
                .and_then(|()| full.flush())
                .expect("Couldn't write to xml file");
            Ok(())
        });
        let Err(WriteFailure::Error(e)) = r else {
            panic!("the panic was not caught: {r:?}")
        };
        let cause = e.cause.as_ref().expect("the I/O error is kept");
        assert_eq!(cause.kind(), std::io::ErrorKind::StorageFull);
        let text = e.to_string();
        assert!(
            text.starts_with("writing xlsx: Couldn't write to xml file: No space left on device"),
            "{text}"
        );
        assert!(!text.contains('\n'));
    }

    #[test]
    fn other_panics_keep_their_text() {
        let r: Result<(), WriteFailure> = quietly("writing csv", || panic!("boom"));
        let Err(WriteFailure::Error(e)) = r else {
            panic!("not caught")
        };
        assert_eq!(e.to_string(), "writing csv: boom");
        assert!(e.cause.is_none());
    }
}
