//! Task files: `tasks:` followed by a list of [`TaskSpec`]s. `reportd task apply -f` reads
//! them; `reportd task export` writes them, in a form `apply` takes back unchanged.

use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::model::task::TaskSpec;
use crate::yaml::YamlError;

/// The top level of a task file.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TaskFile {
    /// The tasks, in file order.
    #[serde(default)]
    pub tasks: Vec<TaskSpec>,
}

impl TaskFile {
    /// Reads a task file.
    ///
    /// # Errors
    /// [`YamlError`] with file, line and column.
    pub fn read(path: &Path) -> Result<TaskFile, YamlError> {
        Ok(crate::yaml::read::<TaskFile>(path)?.0.unwrap_or_default())
    }

    /// The file as YAML.
    pub fn to_yaml(&self) -> String {
        serde_yaml::to_string(self).expect("task specs serialize to YAML")
    }
}
