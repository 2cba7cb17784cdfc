//! The daemon in this process, built as `reportd run` builds it ([`App`]) on a clock the test
//! moves: it listens on its real port at once, serves HTTP while the scheduler runs, refuses a
//! second daemon on the same PID file, and on one shutdown stops HTTP and the scheduler and
//! releases the PID file last.

use chrono::Utc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use reportd::app::App;
use reportd::clock::{Clock, ManualClock};
use reportd::config::Settings;
use reportd::shutdown::Shutdown;

use crate::helpers::Workdir;

/// `GET path` over plain HTTP/1.1; the whole answer.
async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shutdown_stops_http_and_the_scheduler_and_the_pid_file_goes_last() {
    let w = Workdir::sqlite_with_demo();
    let config = w.path().join("config.yaml");
    let settings = Settings::load(&config).unwrap();
    let pid_file = settings.daemon.pid_file.clone();
    let clock = Clock::Manual(ManualClock::new(Utc::now()));
    let app = App::build_with(settings, clock).await.unwrap();
    let addr = app.local_addr();
    assert_ne!(addr.port(), 0, "the real port of 127.0.0.1:0");
    assert!(pid_file.exists());

    let second = App::build(Settings::load(&config).unwrap()).await;
    let err = format!("{:#}", second.err().expect("a second daemon is refused"));
    assert!(err.contains("daemon.pid_file"), "{err}");

    let shutdown = Shutdown::new();
    let running = tokio::spawn(app.run_until_stopped(shutdown.clone()));
    let health = get(addr, "/health").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(pid_file.exists());

    shutdown.trigger("test");
    tokio::time::timeout(Duration::from_secs(20), running)
        .await
        .expect("the app stops")
        .unwrap()
        .unwrap();
    assert!(!pid_file.exists(), "the PID file is released");
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "HTTP stopped listening"
    );
}
