//! Reading YAML files (config, task files) with errors that point at `file:line:column`. A
//! key written twice in one mapping is refused ([`duplicates`]).

pub mod duplicates;

use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};

/// A YAML file that could not be read or did not match the expected shape.
#[derive(Debug, thiserror::Error)]
pub enum YamlError {
    /// The file could not be read.
    #[error("{}: cannot read: {cause}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        cause: std::io::Error,
    },
    /// Syntax error, wrong type, unknown key or bad value.
    #[error("{}:{line}:{column}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// What is wrong.
        message: String,
    },
}

/// Reads `path` into `T`; an empty document gives `None`.
///
/// # Errors
/// [`YamlError`] naming the file, line and column.
pub fn read<T: DeserializeOwned>(path: &Path) -> Result<(Option<T>, String), YamlError> {
    let text = std::fs::read_to_string(path).map_err(|cause| YamlError::Read {
        path: path.to_path_buf(),
        cause,
    })?;
    let value = parse(&text, path)?;
    Ok((value, text))
}

/// Parses `text` (from `path`, for messages); an empty document gives `None`.
///
/// # Errors
/// [`YamlError::Parse`].
pub fn parse<T: DeserializeOwned>(text: &str, path: &Path) -> Result<Option<T>, YamlError> {
    if let Some(d) = duplicates::find(text) {
        return Err(YamlError::Parse {
            path: path.to_path_buf(),
            line: d.at.0,
            column: d.at.1,
            message: format!("duplicate key {:?} (first at line {})", d.key, d.first_line),
        });
    }
    serde_yaml::from_str(text).map_err(|e| {
        let (line, column) = e.location().map_or((1, 1), |l| (l.line(), l.column()));
        YamlError::Parse {
            path: path.to_path_buf(),
            line,
            column,
            message: strip_location(&e.to_string()),
        }
    })
}

/// The message without the ` at line N column M` the YAML library appends (the location is
/// already at the front of ours).
fn strip_location(message: &str) -> String {
    let Some(i) = message.find(" at line ") else {
        return message.to_string();
    };
    let rest = &message[i + " at line ".len()..];
    let mut words = rest.splitn(4, ' ');
    let (_line, col_word, _col) = (words.next(), words.next(), words.next());
    let tail = words.next().unwrap_or("");
    if col_word == Some("column") {
        let tail = tail.trim_start_matches(',').trim();
        if tail.is_empty() {
            message[..i].to_string()
        } else {
            format!("{}, {tail}", &message[..i])
        }
    } else {
        message.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::strip_location;

    #[test]
    fn strips_the_trailing_location() {
        assert_eq!(
            strip_location("unknown field `x` at line 3 column 5"),
            "unknown field `x`"
        );
        assert_eq!(
            strip_location(
                "did not find expected key at line 3 column 5, while parsing a block mapping"
            ),
            "did not find expected key, while parsing a block mapping"
        );
        assert_eq!(strip_location("plain"), "plain");
    }
}
