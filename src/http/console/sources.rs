//! `/data-sources`: the list (never a password), "test connection" for everyone, and for
//! admins the add, edit (password write-only) and delete forms, all posting to
//! `/api/data-sources`; for admins also the storage targets of config.yaml, each with a test
//! button (`POST /api/storage/{name}/test`).

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::{Chrome, Session, failed, html};
use crate::http::AppState;
use crate::http::api::auth::Viewer;
use crate::http::api::datasources::{self, DataSourceView};
use crate::store::catalog::Origin;

#[derive(Template)]
#[template(path = "sources.html")]
struct SourcesPage {
    chrome: Chrome,
    sources: Vec<DataSourceView>,
    kinds: &'static [&'static str],
    /// The storage targets of config.yaml (shown to admins, who may test them):
    /// (name, type, location).
    targets: Vec<(String, &'static str, String)>,
}

impl SourcesPage {
    /// Only the store's entries can be changed through the API.
    fn editable(&self, s: &DataSourceView) -> bool {
        self.chrome.is_admin() && matches!(s.origin, Origin::Store)
    }

    /// `config` or `store`.
    fn origin(&self, s: &DataSourceView) -> &'static str {
        match s.origin {
            Origin::Config => "config",
            Origin::Store => "store",
        }
    }
}

/// `GET /data-sources`.
pub async fn page(State(state): State<AppState>, s: Session) -> Response {
    let chrome = s.chrome("/data-sources", "nav.sources");
    match datasources::list(State(state.clone()), Viewer(s.caller.clone())).await {
        Ok(list) => html(&SourcesPage {
            targets: match chrome.is_admin() {
                true => state
                    .settings
                    .storage
                    .iter()
                    .map(|(n, t)| (n.clone(), t.kind.as_str(), t.location()))
                    .collect(),
                false => Vec::new(),
            },
            chrome,
            sources: list.0.items,
            kinds: &["mysql", "adb", "postgresql", "sqlite"],
        }),
        Err(e) => failed(&chrome, e),
    }
}
