//! The delivery keys of a task (`deliver`, `deliver_failure`, `links`) against the storage
//! targets of config.yaml: every target named exists, none twice, a task without a file
//! delivers nothing, and `links` is one of `deliver` that makes presigned links.

use std::collections::BTreeMap;

use crate::config::StorageTarget;
use crate::model::task::TaskSpec;

/// Reports each problem of `spec`'s delivery keys through `fail(field, message)`.
pub fn check(
    spec: &TaskSpec,
    storage: &BTreeMap<String, StorageTarget>,
    fail: &mut impl FnMut(&str, String),
) {
    for (i, name) in spec.deliver.iter().enumerate() {
        if !storage.contains_key(name) {
            fail(
                &format!("deliver[{}]", i + 1),
                format!(
                    "no storage target named {:?} in config.yaml (known: {})",
                    plain_quote(name),
                    known(storage.keys())
                ),
            );
        } else if spec.deliver[..i].contains(name) {
            fail(
                &format!("deliver[{}]", i + 1),
                format!("{name:?} is named twice"),
            );
        }
    }
    if !spec.deliver.is_empty() && spec.output.format == crate::model::task::Format::None {
        fail(
            "deliver",
            "a task without a file (output.format: none) has nothing to deliver".into(),
        );
    }
    if let Some(link) = &spec.links {
        match storage.get(link) {
            None => fail(
                "links",
                format!(
                    "no storage target named {:?} in config.yaml",
                    plain_quote(link)
                ),
            ),
            Some(_) if !spec.deliver.contains(link) => fail(
                "links",
                format!(
                    "{link:?} must also be one of `deliver` (the link points at the delivered file)"
                ),
            ),
            Some(t) if !t.kind.is_object_store() => fail(
                "links",
                format!(
                    "{link:?} is a {} target; only s3, oss and cos make presigned links",
                    t.kind.as_str()
                ),
            ),
            Some(_) => {}
        }
    }
}

/// At most 100 characters of a name from the input, for messages.
fn plain_quote(name: &str) -> String {
    name.chars().take(100).collect()
}

/// The known names, comma-separated (`none` when there are none).
fn known<'k>(names: impl Iterator<Item = &'k String>) -> String {
    let all: Vec<&str> = names.map(String::as_str).collect();
    if all.is_empty() {
        "none".into()
    } else {
        all.join(", ")
    }
}
