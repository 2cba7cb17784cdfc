//! `reportd run`: the daemon in the foreground, with its HTTP server when download links are
//! configured (`http.file_server_url`).

use anyhow::Context as _;
use std::process::ExitCode;
use std::sync::Arc;

use super::{interrupted, open_store};
use crate::config::Settings;
use crate::http::{AppState, serve};
use crate::notify::links::LinkSigner;

/// Runs the scheduler until SIGTERM/SIGINT.
///
/// # Errors
/// The store cannot be opened, or `http.bind` cannot be bound.
pub async fn run(settings: &Settings) -> anyhow::Result<ExitCode> {
    let shutdown = interrupted();
    let store = open_store(settings).await?;
    let (stop_http, http_stopped) = tokio::sync::oneshot::channel::<()>();
    let server = match settings.http.file_server_url {
        Some(_) => {
            let links = LinkSigner::load(settings, &store)
                .await
                .context("loading the download link key")?;
            let bind = settings.http.bind;
            let listener = tokio::net::TcpListener::bind(bind)
                .await
                .with_context(|| format!("http.bind {bind}: cannot listen"))?;
            tracing::info!(bind = %bind, "HTTP server listening");
            let state = AppState {
                links: Arc::new(links),
            };
            Some(tokio::spawn(serve(listener, state, async move {
                let _ = http_stopped.await;
            })))
        }
        None => None,
    };
    let result = crate::schedule::daemon::run(settings.clone(), store, shutdown).await;
    let _ = stop_http.send(());
    if let Some(server) = server {
        match server.await {
            Ok(Err(e)) => tracing::error!(error = %e, "HTTP server failed"),
            Err(e) => tracing::error!(error = %e, "HTTP server task failed"),
            Ok(Ok(())) => {}
        }
    }
    result?;
    Ok(ExitCode::SUCCESS)
}
