//! The API document as a contract, against the running daemon: `openapi-spec-validator` finds
//! no error in `/api/openapi.json`, and every status the handlers answer to real requests —
//! no credentials, a low role, malformed, mistyped and oversized bodies, bad query values,
//! unknown objects — is one the document lists for that operation, with the error schema.

use reqwest::{Method, StatusCode};
use serde_json::Value;
use std::process::Command;

use crate::api_auth::Api;
use crate::helpers::Backend;

/// The document the daemon serves.
pub(crate) async fn document(api: &Api) -> Value {
    let r = api
        .http
        .get(api.url("/api/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_valid_openapi() {
    let api = Api::start(Backend::Sqlite, "").await;
    let doc = document(&api).await;
    let file = api.w.path().join("openapi.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let script = "import json, sys\n\
        from openapi_spec_validator import OpenAPIV31SpecValidator\n\
        doc = json.load(open(sys.argv[1]))\n\
        errors = list(OpenAPIV31SpecValidator(doc).iter_errors())\n\
        for e in errors[:20]: print(e.message[:300], list(e.absolute_path))\n\
        print(len(errors), 'errors')\n\
        sys.exit(1 if errors else 0)\n";
    let out = match Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&file)
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!("SKIPPED: python3 is not installed (scripts/test.sh installs it)");
            return;
        }
        Err(e) => panic!("python3: {e}"),
    };
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !said.contains("No module named"),
        "openapi-spec-validator is missing: run scripts/test.sh, which pip-installs it\n{said}"
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("0 errors"), "{said}");
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(doc["servers"].as_array().is_some_and(|s| !s.is_empty()));
    let login = &doc["paths"]["/api/auth/login"]["post"];
    assert_eq!(login["security"], serde_json::json!([]));
    assert_eq!(
        doc["paths"]["/api/tasks"]["post"]["x-reportd-role"],
        "editor"
    );
}

/// One real request and the statuses the document lists for its operation.
struct Probe {
    what: String,
    method: Method,
    path: String,
    token: Option<String>,
    content_type: Option<&'static str>,
    body: Option<Vec<u8>>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_is_in_the_document() {
    let api = Api::start(Backend::Sqlite, "").await;
    let doc = document(&api).await;
    let viewer = api.token("vic").await;
    let admin = api.token("ann").await;
    let mut probes = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let has_body = operation.get("requestBody").is_some();
            let has_query = operation["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["in"] == "query"));
            let method: Method = method.to_uppercase().parse().unwrap();
            // Unknown objects: every path parameter names nothing.
            let concrete = path
                .replace("{id}", "987654")
                .replace("{name}", "nobody-here")
                .replace("{index}", "7");
            let mut add = |what: &str, token: Option<&str>, ct, body: Option<&[u8]>, q: &str| {
                probes.push((
                    path.clone(),
                    method.as_str().to_lowercase(),
                    Probe {
                        what: what.to_string(),
                        method: method.clone(),
                        path: format!("{concrete}{q}"),
                        token: token.map(str::to_string),
                        content_type: ct,
                        body: body.map(<[u8]>::to_vec),
                    },
                ))
            };
            let json = Some("application/json");
            add("no credentials", None, json, has_body.then_some(b"{}"), "");
            add("bad token", Some("not-a-token"), None, None, "");
            add("viewer", Some(&viewer), json, has_body.then_some(b"{}"), "");
            add(
                "admin, unknown object",
                Some(&admin),
                json,
                has_body.then_some(b"{}"),
                "",
            );
            if has_body {
                let big = vec![b' '; 1 << 21];
                for (what, ct, body) in [
                    ("malformed JSON", json, b"{\"a\": ".as_slice()),
                    ("wrong JSON type", json, b"[1, 2]".as_slice()),
                    ("a string", json, b"\"text\"".as_slice()),
                    ("unknown field", json, b"{\"zzz_unknown\": 1}".as_slice()),
                    ("not JSON", Some("text/plain"), b"{}".as_slice()),
                    ("too large", json, big.as_slice()),
                ] {
                    add(what, Some(&admin), ct, Some(body), "");
                }
            }
            if has_query {
                add("bad limit", Some(&admin), None, None, "?limit=0");
                add("mistyped limit", Some(&admin), None, None, "?limit=x");
                add("bad status", Some(&admin), None, None, "?status=nope");
            }
        }
    }
    // Logging out ends the tokens the other probes use: last.
    probes.sort_by_key(|(path, _, _)| path == "/api/auth/logout");
    let mut wrong = Vec::new();
    for (path, method, probe) in probes {
        let mut req = api.http.request(probe.method.clone(), api.url(&probe.path));
        if let Some(t) = &probe.token {
            req = req.bearer_auth(t);
        }
        if let Some(ct) = probe.content_type {
            req = req.header("content-type", ct);
        }
        if let Some(b) = probe.body {
            req = req.body(b);
        }
        let Ok(r) = req.send().await else {
            wrong.push(format!(
                "{method} {} ({}): no answer",
                probe.path, probe.what
            ));
            continue;
        };
        let status = r.status();
        let listed = &doc["paths"][&path][&method]["responses"][status.as_str()];
        if listed.is_null() {
            wrong.push(format!(
                "{method} {} ({}): {status} is not in the document",
                probe.path, probe.what
            ));
        } else if status.is_client_error() {
            let body: Value = r.json().await.unwrap_or(Value::Null);
            if !body["error"].is_string() {
                wrong.push(format!(
                    "{method} {} ({}): {status} body {body}",
                    probe.path, probe.what
                ));
            }
        }
        assert_ne!(status, StatusCode::INTERNAL_SERVER_ERROR, "{}", probe.path);
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Runs `program args` (a Python tool); `None` when python3 itself is missing.
fn python_tool(program: &str, args: &[&str], env: &[(&str, &str)]) -> Option<String> {
    let out = match Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .output()
    {
        Ok(out) => out,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && program == "python3" => {
            return None;
        }
        Err(e) => panic!("{program}: {e} (scripts/test.sh pip-installs openapi-python-client)"),
    };
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{program} {args:?}:\n{said}");
    Some(said)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_python_client_round_trips_a_task() {
    if Command::new("python3").arg("--version").output().is_err() {
        eprintln!("SKIPPED: python3 is not installed (scripts/test.sh installs it)");
        return;
    }
    let api = Api::start(Backend::Sqlite, "").await;
    let out = api.w.path().join("client");
    python_tool(
        "openapi-python-client",
        &[
            "generate",
            "--url",
            &api.url("/api/openapi.json"),
            "--meta",
            "none",
            "--output-path",
            out.join("reportd_client").to_str().unwrap(),
        ],
        &[],
    );
    let script = crate::helpers::repo().join("tests/client/roundtrip.py");
    let said = python_tool(
        "python3",
        &[
            script.to_str().unwrap(),
            &api.base,
            "ed",
            crate::api_auth::PASSWORD,
        ],
        &[("PYTHONPATH", out.to_str().unwrap())],
    )
    .unwrap();
    assert!(said.starts_with("ok "), "{said}");
}
