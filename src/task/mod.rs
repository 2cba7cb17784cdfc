//! Task files (`task apply -f`) and the validation a task passes before it is stored: the
//! checks need the data sources, the SQL classifier, the file-name macros and the templates,
//! so they live above those modules. The task types themselves are in [`crate::model::task`].

pub mod delivery;
pub mod file;
pub mod validate;
