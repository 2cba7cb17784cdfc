//! Reading message templates: a task's inline text, a file in `templates_dir`, or, when the
//! directory has no such file, the built-in template of that name
//! ([`crate::model::template::builtin`]). The placeholder language itself, with no I/O, is
//! in [`crate::model::template`].

use std::path::{Path, PathBuf};

use crate::model::template::{TemplateError, TemplateRef, builtin, template_path};

/// Why a template could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file name leaves the templates directory.
    #[error(transparent)]
    Name(#[from] TemplateError),
    /// The file cannot be read (and is not built in).
    #[error("template {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        error: std::io::Error,
    },
}

/// The template text of `reference`: inline text, or the file read from `dir`, or, when `dir`
/// has no such file, the built-in template of that name.
///
/// # Errors
/// A file name that leaves `dir`, or a file that cannot be read and is not built in.
pub fn load(reference: &TemplateRef, dir: &Path) -> Result<String, LoadError> {
    match reference {
        TemplateRef::Inline(t) => Ok(t.clone()),
        TemplateRef::File(name) => {
            let path = template_path(dir, name)?;
            match std::fs::read_to_string(&path) {
                Ok(text) => Ok(text),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => builtin(name)
                    .map(str::to_string)
                    .ok_or(LoadError::Read { path, error }),
                Err(error) => Err(LoadError::Read { path, error }),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::template::{BUILTIN, MESSAGE_PLACEHOLDERS, check};

    #[test]
    fn built_in_templates_stand_in_for_missing_files_and_files_override_them() {
        let dir = tempfile::tempdir().unwrap();
        let r = TemplateRef::File("dingtalk_report.md".into());
        assert_eq!(
            load(&r, dir.path()).unwrap(),
            builtin("dingtalk_report.md").unwrap()
        );
        std::fs::write(dir.path().join("dingtalk_report.md"), "mine {task_name}").unwrap();
        assert_eq!(load(&r, dir.path()).unwrap(), "mine {task_name}");
        let missing = load(&TemplateRef::File("other.md".into()), dir.path());
        assert!(missing.unwrap_err().to_string().contains("other.md"));
        for (name, text) in BUILTIN {
            check(text, MESSAGE_PLACEHOLDERS).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
        let outside = load(&TemplateRef::File("../x.md".into()), dir.path()).unwrap_err();
        assert!(matches!(outside, LoadError::Name(_)), "{outside}");
    }
}
