//! The body of a task request: parsed strictly in the task-file schema (422 naming the field),
//! checked by the code `task apply` uses, its `"***"` secrets filled from the stored task; and
//! the masks and audit details of what is shown.

use axum::http::StatusCode;
use serde_json::{Map, Value};

use super::super::error::ApiError;
use crate::http::AppState;
use crate::model::task::TaskSpec;
use crate::store::catalog;
pub(super) use crate::task::validate::zero_based;
use crate::task::validate::{Context, validate};

pub(super) use crate::model::task::MASK;

/// Keys of a task as shown that a body may carry back; they are ignored.
const READ_ONLY: [&str; 5] = ["id", "next_fire", "last_run", "created_at", "updated_at"];

/// The task of a request body: the task-file schema, unknown keys refused (422 naming them),
/// the read-only keys of a shown task ignored.
pub(super) fn parse_spec(body: Value) -> Result<TaskSpec, ApiError> {
    let Value::Object(mut map) = body else {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "the body must be a JSON object: a task in the task-file schema",
        ));
    };
    for key in READ_ONLY {
        map.remove(key);
    }
    serde_path_to_error::deserialize(Value::Object(map)).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner().to_string().replace('\n', " ");
        let prefix = if path == "." {
            String::new()
        } else {
            format!("{path}.")
        };
        let field = match inner
            .strip_prefix("unknown field `")
            .and_then(|r| r.split_once('`'))
        {
            // The path of an unknown key may or may not name it already.
            Some((key, _)) if path == key || path.ends_with(&format!(".{key}")) => path,
            Some((key, _)) => format!("{prefix}{key}"),
            None if path == "." => String::new(),
            None => path,
        };
        if field.is_empty() {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, inner)
        } else {
            ApiError::invalid(field.clone(), format!("{field}: {inner}"))
        }
    })
}

/// Refuses `spec` unless it passes the checks of `task apply` (422 naming the first problem's
/// field, and how many more there are).
pub(super) async fn check(state: &AppState, spec: &TaskSpec) -> Result<(), ApiError> {
    for (field, value) in spec.notify.clone().secrets_mut() {
        if value.expose() == MASK {
            return Err(ApiError::invalid(
                field,
                format!(
                    "{field}: \"{MASK}\" keeps a stored value, and there is none; give the value"
                ),
            ));
        }
    }
    let entries = catalog::entries(&state.settings, Some(&state.store)).await?;
    let names = catalog::names(&entries);
    let ctx = Context::new(&state.settings, &names);
    let problems = validate(spec, &ctx, 0);
    let Some(first) = problems.first() else {
        return Ok(());
    };
    let field = zero_based(&first.field);
    let mut text = format!("{field}: {}", first.message).replace(['\n', '\r'], " ");
    if problems.len() > 1 {
        text.push_str(&format!(" (and {} more)", problems.len() - 1));
    }
    Err(ApiError::invalid(field, text))
}

/// `spec` with each `***` secret replaced by the value `stored` has for that field.
pub(super) fn keep_masked(mut spec: TaskSpec, stored: &TaskSpec) -> TaskSpec {
    let mut old = stored.notify.clone();
    let old = old.secrets_mut();
    for (field, value) in spec.notify.secrets_mut() {
        if value.expose() == MASK
            && let Some((_, kept)) = old.iter().find(|(f, _)| *f == field)
        {
            *value = (**kept).clone();
        }
    }
    spec
}

/// The top-level keys whose values differ between `a` and `b` (for audit details: names only,
/// never values).
pub(super) fn changed_keys(a: &TaskSpec, b: &TaskSpec) -> Vec<String> {
    let as_map = |s: &TaskSpec| match serde_json::to_value(s) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    let (a, b) = (as_map(a), as_map(b));
    let mut keys: Vec<String> = a
        .keys()
        .chain(b.keys())
        .filter(|k| a.get(*k) != b.get(*k))
        .cloned()
        .collect();
    keys.sort();
    keys.dedup();
    keys
}
