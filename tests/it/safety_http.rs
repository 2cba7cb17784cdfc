//! The daemon's HTTP server under a careless or hostile client (issue 11, class 7): connections
//! that never finish their request headers (or send nothing, or idle after a request) are
//! closed within `http.header_timeout`; with more of them than `http.max_connections`,
//! `/health` still answers; a request body over `http.max_body_size` gets 413; the limits are
//! checked at load. The daemon still stops cleanly with such connections open.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::daemon::{start, stop};
use crate::helpers::{Backend, DEMO_SOURCE, Workdir, free_port};

/// Sends `request` on a new connection and reads the answer until the server closes it (or
/// `wait` passes); "" when the server cannot be reached.
fn exchange(port: u16, request: &[u8], wait: Duration) -> String {
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return String::new();
    };
    s.set_read_timeout(Some(wait)).unwrap();
    let _ = s.write_all(request);
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

fn get(port: u16, path: &str, wait: Duration) -> String {
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    exchange(port, req.as_bytes(), wait)
}

/// Waits until `/health` answers 200.
fn wait_healthy(port: u16) {
    let started = Instant::now();
    while !get(port, "/health", Duration::from_secs(5)).starts_with("HTTP/1.1 200") {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the daemon never became healthy"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// True when the server closes `s` (EOF or reset) within `within`.
fn closed_within(s: &mut TcpStream, within: Duration) -> bool {
    s.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 512];
    loop {
        match s.read(&mut buf) {
            Ok(0) => return true,
            // An answer such as 408 before closing is fine.
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                return false;
            }
            Err(_) => return true,
        }
    }
}

fn daemon_dir(port: u16, http: &str) -> Workdir {
    Workdir::new(
        Backend::Sqlite,
        &format!(
            "{DEMO_SOURCE}http:\n  bind: 127.0.0.1:{port}\n  token: t0ken\n{http}daemon:\n  shutdown_timeout: 2\n"
        ),
    )
}

#[test]
fn unfinished_requests_are_closed_and_health_answers_past_the_connection_cap() {
    let port = free_port();
    let w = daemon_dir(port, "  header_timeout: 1\n  max_connections: 4\n");
    let daemon = start(&w);
    wait_healthy(port);

    // Three times the cap: half a request line, half the headers, nothing at all.
    let mut slow: Vec<TcpStream> = (0..12)
        .map(|i| {
            let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let partial: &[u8] = match i % 3 {
                0 => b"GET /hea",
                1 => b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n",
                _ => b"",
            };
            s.write_all(partial).unwrap();
            s
        })
        .collect();
    // An idle keep-alive connection after a finished request is closed too.
    let mut idle = TcpStream::connect(("127.0.0.1", port)).unwrap();
    idle.write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();

    let asked = Instant::now();
    let health = get(port, "/health", Duration::from_secs(10));
    assert!(
        health.starts_with("HTTP/1.1 200") && health.contains("\"healthy\":true"),
        "/health with {} unfinished connections open: {health:?}",
        slow.len()
    );
    assert!(
        asked.elapsed() < Duration::from_secs(8),
        "/health took {:?}",
        asked.elapsed()
    );
    for (i, s) in slow.iter_mut().enumerate() {
        assert!(
            closed_within(s, Duration::from_secs(6)),
            "slow connection {i} is still open"
        );
    }
    assert!(
        closed_within(&mut idle, Duration::from_secs(3)),
        "idle keep-alive connection is still open"
    );

    // A slow client holding a connection does not delay the shutdown.
    let mut lingering = TcpStream::connect(("127.0.0.1", port)).unwrap();
    lingering.write_all(b"GET /sta").unwrap();
    stop(daemon, Duration::from_secs(10));
}

#[test]
fn a_body_over_the_limit_gets_413() {
    let port = free_port();
    let w = daemon_dir(port, "  max_body_size: 1KB\n");
    w.write("t.yaml", "tasks:\n  - name: orders\n    data_source: demo\n    cron: \"0 0 1 1 *\"\n    sql: SELECT id FROM orders LIMIT 1\n");
    w.ok(&["task", "apply", "-f", "t.yaml"]);
    let daemon = start(&w);
    wait_healthy(port);

    let body = "x".repeat(4096);
    let req = format!(
        "POST /tasks/orders/run HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer t0ken\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let answer = exchange(port, req.as_bytes(), Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer:?}");
    // Within the limit the run is accepted.
    let req = "POST /tasks/orders/run HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer t0ken\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
    let answer = exchange(port, req.as_bytes(), Duration::from_secs(10));
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer:?}");
    stop(daemon, Duration::from_secs(10));
}

#[test]
fn http_limits_are_checked_at_load() {
    for (line, key) in [
        (
            "header_timeout: 0",
            "http.header_timeout: 0 is out of range; give 1 to 30",
        ),
        (
            "header_timeout: 600",
            "http.header_timeout: 600 is out of range",
        ),
        (
            "request_timeout: 0",
            "http.request_timeout: 0 is out of range",
        ),
        (
            "max_connections: 0",
            "http.max_connections: 0 is out of range; give 1 to 65536",
        ),
        (
            "max_body_size: 1GB",
            "http.max_body_size: 1073741824 is out of range",
        ),
    ] {
        let w = Workdir::new(Backend::Sqlite, &format!("{DEMO_SOURCE}http:\n  {line}\n"));
        let err = w.fails(&["check", "--no-connect"], 1);
        assert!(err.contains(key), "{line}: {err}");
    }
}
