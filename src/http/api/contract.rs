//! The API document as a contract: one row per operation ([`OPERATIONS`]: its readable
//! `operationId`, the role it needs and the statuses only its handler knows), from which
//! [`finish`] completes what utoipa generates from the handlers — unique `operationId`s, the
//! two security schemes (bearer; the session cookie with its `X-CSRF-Token` on changes),
//! `x-reportd-role` and the role in the description, `servers`, and every status the
//! operation can answer, each with a description and the error schema.
//!
//! The statuses every operation shares follow from its shape, as the server enforces them:
//! 421 (the Host guard) and 503 (store unavailable, request timeout) everywhere; 401 behind a
//! login; 403 where a role above viewer is needed or the method changes something (CSRF,
//! foreign origin); 400, 413, 415 and 422 with a JSON body; 400 with query parameters; 404
//! with a path parameter.

use serde_json::{Map, Value, json};

use crate::model::role::Role;

/// Who may call an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// No credentials needed (login).
    Public,
    /// A logged-in caller with at least this role.
    Role(Role),
}

impl Access {
    /// The `x-reportd-role` value.
    pub fn name(self) -> &'static str {
        match self {
            Access::Public => "public",
            Access::Role(r) => r.as_str(),
        }
    }
}

/// One operation of the API.
#[derive(Debug, Clone, Copy)]
pub struct Operation {
    /// Lower-case HTTP method.
    pub method: &'static str,
    /// The path as in the document.
    pub path: &'static str,
    /// The `operationId`.
    pub id: &'static str,
    /// Who may call it.
    pub access: Access,
    /// Statuses beside the success ones and those its shape implies (see the module doc).
    pub own: &'static [u16],
}

const fn op(
    method: &'static str,
    path: &'static str,
    id: &'static str,
    access: Access,
    own: &'static [u16],
) -> Operation {
    Operation {
        method,
        path,
        id,
        access,
        own,
    }
}

const PUBLIC: Access = Access::Public;
const VIEWER: Access = Access::Role(Role::Viewer);
const EDITOR: Access = Access::Role(Role::Editor);
const ADMIN: Access = Access::Role(Role::Admin);

/// Every operation of the API.
pub const OPERATIONS: &[Operation] = &[
    op("post", "/api/auth/login", "login", PUBLIC, &[401, 429]),
    op("post", "/api/auth/logout", "logout", VIEWER, &[]),
    op("get", "/api/auth/me", "getMe", VIEWER, &[]),
    op("get", "/api/status", "getStatus", VIEWER, &[]),
    op("get", "/api/tasks", "listTasks", VIEWER, &[]),
    op("post", "/api/tasks", "createTask", EDITOR, &[409]),
    op("get", "/api/tasks/{id}", "getTask", VIEWER, &[]),
    op("put", "/api/tasks/{id}", "replaceTask", EDITOR, &[409]),
    op("delete", "/api/tasks/{id}", "deleteTask", EDITOR, &[]),
    op("post", "/api/tasks/{id}/enable", "enableTask", EDITOR, &[]),
    op(
        "post",
        "/api/tasks/{id}/disable",
        "disableTask",
        EDITOR,
        &[],
    ),
    op("post", "/api/tasks/{id}/run", "runTask", EDITOR, &[409]),
    op("get", "/api/data-sources", "listDataSources", VIEWER, &[]),
    op(
        "post",
        "/api/data-sources",
        "createDataSource",
        ADMIN,
        &[409],
    ),
    op(
        "get",
        "/api/data-sources/{name}",
        "getDataSource",
        VIEWER,
        &[],
    ),
    op(
        "put",
        "/api/data-sources/{name}",
        "updateDataSource",
        ADMIN,
        &[409],
    ),
    op(
        "delete",
        "/api/data-sources/{name}",
        "deleteDataSource",
        ADMIN,
        &[409],
    ),
    op(
        "post",
        "/api/data-sources/{name}/test",
        "testDataSource",
        EDITOR,
        &[],
    ),
    op(
        "post",
        "/api/storage/{name}/test",
        "testStorage",
        ADMIN,
        &[],
    ),
    op("get", "/api/logs", "listExecutions", VIEWER, &[]),
    op("get", "/api/logs/{id}", "getExecution", VIEWER, &[]),
    op(
        "post",
        "/api/logs/{id}/cancel",
        "cancelExecution",
        EDITOR,
        &[409],
    ),
    op("post", "/api/preview", "previewQuery", EDITOR, &[429, 502]),
    op("post", "/api/cron/next", "nextCronFires", VIEWER, &[]),
    op(
        "post",
        "/api/filename/example",
        "exampleFilename",
        EDITOR,
        &[],
    ),
    op(
        "post",
        "/api/notify/test",
        "testNotification",
        EDITOR,
        &[404],
    ),
    op("get", "/api/users", "listUsers", ADMIN, &[]),
    op("post", "/api/users", "createUser", ADMIN, &[409]),
    op("put", "/api/users/{name}", "updateUser", ADMIN, &[409]),
    op("delete", "/api/users/{name}", "deleteUser", ADMIN, &[409]),
    op("get", "/api/audit", "listAudit", ADMIN, &[]),
    op("get", "/api/exports", "listExports", VIEWER, &[]),
    op("post", "/api/exports", "createExport", EDITOR, &[429]),
    op("get", "/api/exports/{id}", "getExport", VIEWER, &[]),
    op(
        "post",
        "/api/exports/{id}/cancel",
        "cancelExport",
        EDITOR,
        &[409],
    ),
    op(
        "get",
        "/api/exports/{id}/files/{index}",
        "downloadExportFile",
        VIEWER,
        &[403, 409, 410],
    ),
];

/// The error statuses `op` can answer, given whether it takes a JSON body and query
/// parameters (its success statuses come from its handler's annotation).
pub fn error_statuses(op: &Operation, has_body: bool, has_query: bool) -> Vec<u16> {
    let mut out = vec![421, 503];
    if op.access != Access::Public {
        out.push(401);
    }
    if op.access == EDITOR || op.access == ADMIN || op.method != "get" {
        out.push(403);
    }
    if has_body {
        out.extend([400, 413, 415, 422]);
    }
    if has_query {
        out.push(400);
    }
    if op.path.contains('{') {
        out.push(404);
    }
    out.extend_from_slice(op.own);
    out.sort_unstable();
    out.dedup();
    out
}

/// The description of an error status, for an operation whose handler gives none.
pub fn error_description(status: u16) -> &'static str {
    match status {
        400 => {
            "Malformed request: JSON that does not parse, or a query parameter that is not valid (`field` names it)"
        }
        401 => {
            "No credentials, or credentials that are not valid (unknown, expired or logged-out token or session)"
        }
        403 => {
            "Refused: the caller's role is too low, a change carried by the session cookie lacks its X-CSRF-Token, or the request comes from another site"
        }
        404 => "No such object",
        409 => {
            "Conflicts with the current state (the name exists, the object is defined in the config file, the last admin, the job or run has finished)"
        }
        410 => "The file has expired and was removed",
        413 => "The request body is larger than 1 MiB",
        415 => "The request body is not JSON (Content-Type: application/json)",
        421 => "The Host header names a server other than this one (DNS rebinding)",
        422 => {
            "A field is missing, unknown, of the wrong type or not valid (`field` names it); the body is not a JSON object"
        }
        429 => "Too many requests now; retry after the Retry-After header's seconds",
        502 => "The data source failed to answer",
        503 => "The system store is unavailable, the request timed out, or the daemon is stopping",
        _ => "Error",
    }
}

fn success_description(status: &str) -> &'static str {
    match status {
        "201" => "Created",
        "202" => "Accepted",
        "204" => "Done; no content",
        _ => "OK",
    }
}

/// The operation of the table for `method path`.
pub fn find(method: &str, path: &str) -> Option<&'static Operation> {
    OPERATIONS
        .iter()
        .find(|o| o.method == method && o.path == path)
}

/// True when the operation object takes a request body / query parameters.
fn shape(operation: &Value) -> (bool, bool) {
    let has_body = operation.get("requestBody").is_some();
    let has_query = operation["parameters"]
        .as_array()
        .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
    (has_body, has_query)
}

/// The document utoipa generated, completed as the module doc says.
///
/// # Panics
/// When an operation of the document has no row in [`OPERATIONS`] (a test catches it first).
pub fn finish(doc: utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(&doc).expect("the OpenAPI document serializes");
    let info = doc["info"].as_object_mut().expect("info");
    // utoipa copies Cargo.toml's license, which is not set: an empty name is not valid.
    info.remove("license");
    doc["servers"] = json!([{
        "url": "/",
        "description": "This daemon (the address the document was fetched from, http.bind)"
    }]);
    doc.as_object_mut().expect("document").remove("security");
    doc["components"]["securitySchemes"] = json!({
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "description": "A login token (POST /api/auth/login), an API token (`reportd user token NAME`) or http.token (acts as admin); the scheme name in any case"
        },
        "session": {
            "type": "apiKey",
            "in": "cookie",
            "name": super::auth::SESSION_COOKIE,
            "description": "The session cookie set at login"
        },
        "csrf": {
            "type": "apiKey",
            "in": "header",
            "name": "X-CSRF-Token",
            "description": "The csrf_token given at login; required with the session cookie on every request that changes something"
        }
    });
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        merge_flattened(schemas);
    }
    let paths = doc["paths"].as_object_mut().expect("paths");
    for (path, item) in paths.iter_mut() {
        let item = item.as_object_mut().expect("path item");
        for (method, operation) in item.iter_mut() {
            let Some(row) = find(method, path) else {
                panic!("{method} {path} has no row in contract::OPERATIONS");
            };
            complete(row, operation);
        }
    }
    doc
}

/// Each schema utoipa writes for a `#[serde(flatten)]` struct (`allOf` of the flattened
/// type's `$ref` and the outer fields) as one object holding both's properties: the flattened
/// type refuses unknown keys (`additionalProperties: false`), which in an `allOf` would refuse
/// the outer fields too.
fn merge_flattened(schemas: &mut Map<String, Value>) {
    let names: Vec<String> = schemas.keys().cloned().collect();
    for name in names {
        let Some(parts) = schemas[&name]["allOf"].as_array().cloned() else {
            continue;
        };
        let mut properties = Map::new();
        let mut required: Vec<Value> = Vec::new();
        for part in &parts {
            let part = match part["$ref"].as_str() {
                Some(r) => {
                    let target = r.trim_start_matches("#/components/schemas/");
                    schemas.get(target).cloned().unwrap_or(Value::Null)
                }
                None => part.clone(),
            };
            if let Some(p) = part["properties"].as_object() {
                properties.extend(p.clone());
            }
            for r in part["required"].as_array().into_iter().flatten() {
                if !required.contains(r) {
                    required.push(r.clone());
                }
            }
        }
        let description = schemas[&name]["description"].clone();
        schemas.insert(
            name,
            json!({
                "type": "object",
                "description": description,
                "properties": properties,
                "required": required,
            }),
        );
    }
}

/// Completes one operation object from its row.
fn complete(row: &Operation, operation: &mut Value) {
    let (has_body, has_query) = shape(operation);
    let o = operation.as_object_mut().expect("operation");
    o.insert("operationId".into(), row.id.into());
    o.insert("x-reportd-role".into(), row.access.name().into());
    let who = match row.access {
        Access::Public => "Public: needs no credentials.".to_string(),
        Access::Role(Role::Viewer) => "Role: viewer (any logged-in account).".to_string(),
        Access::Role(r) => format!("Role: {r} or higher."),
    };
    let description = match o.get("description").and_then(Value::as_str) {
        Some(d) if !d.is_empty() => format!("{d}\n\n{who}"),
        _ => who,
    };
    o.insert("description".into(), description.into());
    let security = match row.access {
        Access::Public => json!([]),
        _ if row.method == "get" => json!([{"bearer": []}, {"session": []}]),
        _ => json!([{"bearer": []}, {"session": [], "csrf": []}]),
    };
    o.insert("security".into(), security);
    let responses = o
        .entry("responses")
        .or_insert_with(|| Value::Object(Map::new()))
        .as_object_mut()
        .expect("responses");
    for status in error_statuses(row, has_body, has_query) {
        responses.entry(status.to_string()).or_insert_with(|| {
            json!({
                "description": "",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
            })
        });
    }
    for (status, response) in responses.iter_mut() {
        let r = response.as_object_mut().expect("response");
        let empty = r
            .get("description")
            .and_then(Value::as_str)
            .is_none_or(str::is_empty);
        if empty {
            let text = match status.parse::<u16>() {
                Ok(s) if s >= 400 => error_description(s),
                _ => success_description(status),
            };
            r.insert("description".into(), text.into());
        }
        if status == "429" {
            r.insert(
                "headers".into(),
                json!({"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer", "minimum": 1}}}),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every operation of the router's document has its row, every row an operation, and the
    /// document lists exactly the statuses the row and the handler's annotation give.
    #[test]
    fn the_document_and_the_table_agree() {
        let (_, doc) = super::super::router();
        let mut seen = Vec::new();
        let mut ids = std::collections::HashSet::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let row = find(method, path).unwrap();
                seen.push((row.method, row.path));
                assert!(ids.insert(operation["operationId"].as_str().unwrap()));
                let (has_body, has_query) = shape(operation);
                let mut errors: Vec<u16> = operation["responses"]
                    .as_object()
                    .unwrap()
                    .keys()
                    .map(|k| k.parse::<u16>().unwrap())
                    .filter(|s| *s >= 400)
                    .collect();
                errors.sort_unstable();
                assert_eq!(
                    errors,
                    error_statuses(row, has_body, has_query),
                    "{method} {path}: the handler's annotation lists an error status its row does not"
                );
                for (status, response) in operation["responses"].as_object().unwrap() {
                    assert!(
                        !response["description"].as_str().unwrap().is_empty(),
                        "{method} {path} {status}"
                    );
                    // `/api/status` answers 503 with the status body, as `/status` does.
                    let status_body = path == "/api/status";
                    if (status.starts_with('4') || status.starts_with('5')) && !status_body {
                        let schema = &response["content"]["application/json"]["schema"]["$ref"];
                        assert_eq!(
                            schema, "#/components/schemas/ErrorBody",
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
        for row in OPERATIONS {
            assert!(
                seen.contains(&(row.method, row.path)),
                "{} {} is in the table, not in the router",
                row.method,
                row.path
            );
        }
        assert_eq!(seen.len(), OPERATIONS.len());
    }

    /// The names' length bounds in the document are the ones the server checks.
    #[test]
    fn name_bounds_are_the_servers() {
        let (_, doc) = super::super::router();
        let schemas = &doc["components"]["schemas"];
        for (schema, max) in [
            ("TaskSpec", crate::task::validate::TASK_NAME_MAX),
            ("SheetSpec", crate::model::task::SHEET_NAME_MAX),
            ("DataSourceBody", super::super::datasources::NAME_MAX),
        ] {
            let name = &schemas[schema]["properties"]["name"];
            assert_eq!(name["maxLength"], max, "{schema}: {name}");
            assert_eq!(name["minLength"], 1, "{schema}: {name}");
        }
    }
}
