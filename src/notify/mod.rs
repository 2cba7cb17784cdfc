//! Notifications. [`template`] holds the placeholder language shared by message templates
//! and file names.

pub mod template;
