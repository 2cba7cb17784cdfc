//! Download links served by the daemon's HTTP server: a signed link gives the file (with its
//! Chinese name), a tampered or expired one is refused, and paths that leave the export
//! directory (`..`, a symlink) are not served.

use chrono::{Duration as Span, Utc};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use reportd::config::Settings;
use reportd::http::{AppState, serve};
use reportd::notify::links::LinkSigner;
use reportd::schedule::control::Control;
use reportd::store::Store;

use crate::helpers::{Backend, ScratchStore};

async fn server(
    settings: &Settings,
    store: &Store,
    links: LinkSigner,
) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let settings = Arc::new(settings.clone());
    let links = Arc::new(links);
    let state = AppState {
        jobs: Arc::new(reportd::jobs::Jobs::new(
            settings.clone(),
            store.clone(),
            "test".into(),
            Some(links.clone()),
        )),
        settings,
        store: store.clone(),
        control: Control::channel().0,
        links: Some(links),
        started_at: Utc::now(),
        accounts: reportd::accounts::Accounts::new(
            store.clone(),
            std::time::Duration::from_secs(3600),
        ),
        console: Default::default(),
        previews: Default::default(),
    };
    tokio::spawn(serve(listener, state, async move {
        let _ = rx.await;
    }));
    (format!("http://{addr}"), tx)
}

#[tokio::test]
async fn signed_links_serve_the_file_and_nothing_else() {
    let db = ScratchStore::new(Backend::Sqlite);
    // The link key is sealed in the store: the store needs its secret key.
    let store = Store::connect(&db.settings())
        .await
        .unwrap()
        .with_key(reportd::model::sealed::SecretKey::generate());
    let root: PathBuf = db.dir.path().join("exports");
    let day = root.join("2026-11-23");
    std::fs::create_dir_all(&day).unwrap();
    let file = day.join("订单 日报.xlsx");
    std::fs::write(&file, b"PK\x03\x04 workbook bytes").unwrap();
    std::fs::write(db.dir.path().join("secret.txt"), b"not yours").unwrap();
    std::os::unix::fs::symlink(db.dir.path().join("secret.txt"), day.join("link.xlsx")).unwrap();

    // The key comes from the store: a second signer on the same store makes the same links.
    let mut settings = Settings::default();
    settings.export.output_dir = root.clone();
    settings.http.file_server_url = Some("http://placeholder".into());
    let a = LinkSigner::load(&settings, &store).await.unwrap();
    let b = LinkSigner::load(&settings, &store).await.unwrap();
    let now = Utc::now();
    assert_eq!(a.url(&file, now), b.url(&file, now));

    let (base, stop) = server(&settings, &store, a).await;
    let links = LinkSigner::load(
        &{
            let mut s = settings.clone();
            s.http.file_server_url = Some(base.clone());
            s
        },
        &store,
    )
    .await
    .unwrap();
    let client = reqwest::Client::new();
    let get = |url: String| {
        let client = client.clone();
        async move { client.get(url).send().await.unwrap() }
    };

    let ok = get(links.url(&file, now).unwrap()).await;
    assert_eq!(ok.status(), 200);
    let disposition = ok.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        disposition.contains("filename*=UTF-8''%E8%AE%A2%E5%8D%95%20%E6%97%A5%E6%8A%A5%2Exlsx"),
        "{disposition}"
    );
    assert_eq!(
        ok.headers()["content-type"],
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    );
    assert_eq!(
        ok.bytes().await.unwrap().as_ref(),
        b"PK\x03\x04 workbook bytes"
    );

    let url = links.url(&file, now).unwrap();
    let tampered = url.replace("expires=", "expires=9");
    assert_eq!(get(tampered).await.status(), 403);
    let no_sig = url.split('?').next().unwrap().to_string();
    assert_eq!(get(no_sig).await.status(), 403);
    let expired = links.url(&file, now - Span::days(8)).unwrap();
    assert_eq!(get(expired).await.status(), 410);
    let climb = format!("{base}/files/..%2Fsecret.txt?expires=9999999999&sig=x");
    assert_eq!(get(climb).await.status(), 400);
    // A symlink inside the directory that points out of it: signed, still not served.
    let link = links.url(&day.join("link.xlsx"), now).unwrap();
    assert_eq!(get(link).await.status(), 404);
    assert_eq!(links.url(Path::new("/etc/passwd"), now), None);
    let _ = stop.send(());
}

#[tokio::test]
async fn reportd_run_serves_links_on_http_bind() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let w = crate::helpers::Workdir::new(
        Backend::Sqlite,
        &format!(
            "{}http:\n  bind: 127.0.0.1:{port}\n  file_server_url: http://127.0.0.1:{port}\n",
            crate::helpers::DEMO_SOURCE
        ),
    );
    let daemon = crate::daemon::start(&w);
    let url = format!("http://127.0.0.1:{port}/files/2026-11-23/x.xlsx?expires=1&sig=AAAA");
    let started = std::time::Instant::now();
    let status = loop {
        match reqwest::get(&url).await {
            Ok(r) => break r.status(),
            Err(_) if started.elapsed() < std::time::Duration::from_secs(15) => {
                tokio::time::sleep(std::time::Duration::from_millis(100)).await
            }
            Err(e) => panic!("the daemon's HTTP server did not answer: {e}"),
        }
    };
    assert_eq!(status, 403, "a link with a wrong signature is refused");

    // A second daemon on the same PID file is refused: it says so and exits 1.
    let out = w.cmd(&["run"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("another reportd is running (PID {})", daemon.id())),
        "{err}"
    );
    // With a PID file of its own, it cannot bind the same address.
    w.write(
        "second.yaml",
        &format!(
            "{}daemon:\n  pid_file: second.pid\n",
            std::fs::read_to_string(w.path().join("config.yaml")).unwrap()
        ),
    );
    let out = crate::helpers::reportd_cmd()
        .current_dir(w.path())
        .args(["--config", "second.yaml", "run"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains(&format!("http.bind 127.0.0.1:{port}: cannot listen")),
        "{err}"
    );
    crate::daemon::stop(daemon, std::time::Duration::from_secs(5));
}
