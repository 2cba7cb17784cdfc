//! The connection loop under the daemon's HTTP server. `axum::serve` neither times out a
//! client that never finishes its request headers nor caps connections, so one client could
//! hold every file descriptor of the daemon. Here each connection is served by hyper's HTTP/1
//! server with a header read timeout (it also closes idle keep-alive connections), at most
//! `max_connections` are served at once (the next ones wait in the listen backlog until a
//! place frees up, and the timeout frees one within `header_timeout`), a client that stops
//! reading its answer is dropped after `request_timeout` without progress, and shutdown is
//! graceful: no new connection, requests in flight finish, idle connections close.
//!
//! One client address (an IPv6 /64) holds at most `max_connections_per_address` of the
//! places: a connection beyond that is closed as soon as it is accepted, so one client's idle
//! connections cannot keep the others (and `/health`) waiting. Trusted proxies are not capped
//! (they carry many clients). Each request carries its client's address ([`ClientIp`], with
//! `X-Forwarded-For` believed from trusted proxies only).

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use ipnet::IpNet;
use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::task::AbortOnDropHandle;

use super::client::{ClientIp, cap_key, client_ip};
use super::stall::WriteStall;

/// How long to pause accepting after an accept error such as "too many open files".
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_secs(1);

/// How often "connection limit reached" may be logged.
const FULL_LOG_EVERY: Duration = Duration::from_secs(60);

/// Limits of the connection loop.
#[derive(Debug, Clone)]
pub struct ConnectionLimits {
    /// Time a client has to send a request's headers (idle keep-alive time included).
    pub header_timeout: Duration,
    /// Connections served at once.
    pub max_connections: usize,
    /// Time a write may wait for the client to read before the connection is closed.
    pub write_stall: Duration,
    /// Connections from one client address (IPv6 /64) at once.
    pub per_address: usize,
    /// Peers whose `X-Forwarded-For` is believed, and who are not capped per address.
    pub trusted_proxies: Arc<[IpNet]>,
}

/// Connections open per client address.
#[derive(Debug, Default)]
struct PerAddress {
    open: Mutex<HashMap<IpAddr, usize>>,
}

/// One connection's place in [`PerAddress`], given back when dropped.
#[derive(Debug)]
struct AddressPlace {
    table: Arc<PerAddress>,
    key: IpAddr,
}

impl PerAddress {
    /// A place for a connection from `peer`, unless it already has `cap`.
    fn take(table: &Arc<PerAddress>, peer: IpAddr, cap: usize) -> Option<AddressPlace> {
        let key = cap_key(peer);
        let mut open = table.open.lock().unwrap_or_else(|p| p.into_inner());
        let count = open.entry(key).or_insert(0);
        if *count >= cap {
            return None;
        }
        *count += 1;
        Some(AddressPlace {
            table: Arc::clone(table),
            key,
        })
    }
}

impl Drop for AddressPlace {
    fn drop(&mut self) {
        let mut open = self.table.open.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(count) = open.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                open.remove(&self.key);
            }
        }
    }
}

/// `max_connections`, or half the process's open-file limit when that is lower (logged): the
/// other half stays for the store, the data sources, exports and logs, so that connections
/// can never take the descriptors `/health` and the runs need.
pub fn within_file_limit(max_connections: usize) -> usize {
    use nix::sys::resource::{Resource, getrlimit};
    let Ok((soft, _)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return max_connections;
    };
    let half = usize::try_from(soft / 2).unwrap_or(usize::MAX).max(1);
    if half < max_connections {
        tracing::warn!(
            max_connections,
            open_file_limit = soft,
            serving = half,
            "http.max_connections is above half the open-file limit; serving fewer at once"
        );
        half
    } else {
        max_connections
    }
}

/// Serves `app` on `listener` under `limits` until `shutdown` resolves, then waits for the
/// requests in flight.
///
/// # Errors
/// None so far: accept errors are logged and retried; kept as a `Result` for the caller.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let places = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout);
    let mut last_full_log: Option<Instant> = None;
    let per_address = Arc::new(PerAddress::default());
    let mut last_capped_log: Option<Instant> = None;
    // Requests served: freed memory is given back once they stop (see `crate::memory`).
    let served = Arc::new(AtomicU64::new(0));
    let trimmer = AbortOnDropHandle::new(tokio::spawn(crate::memory::trim_when_quiet(
        Arc::clone(&served),
        TRIM_TICK,
    )));
    tokio::pin!(shutdown);
    loop {
        let place = match Arc::clone(&places).try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                if last_full_log.is_none_or(|t| t.elapsed() >= FULL_LOG_EVERY) {
                    last_full_log = Some(Instant::now());
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "HTTP connection limit reached; new connections wait until one closes"
                    );
                }
                tokio::select! {
                    p = Arc::clone(&places).acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                    () = &mut shutdown => break,
                }
            }
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    if !is_connection_error(&e) {
                        tracing::warn!(error = %e, "HTTP server cannot accept a connection; pausing 1s");
                        tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    }
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let trusted = Arc::clone(&limits.trusted_proxies);
        let from_proxy = trusted
            .iter()
            .any(|n| n.contains(&peer.ip().to_canonical()));
        let address_place = if from_proxy {
            None
        } else if let Some(p) = PerAddress::take(&per_address, peer.ip(), limits.per_address) {
            Some(p)
        } else {
            if last_capped_log.is_none_or(|t| t.elapsed() >= FULL_LOG_EVERY) {
                last_capped_log = Some(Instant::now());
                tracing::warn!(
                    peer = %peer.ip(),
                    max_connections_per_address = limits.per_address,
                    "HTTP connections from one address over the cap are closed"
                );
            }
            drop(stream);
            continue;
        };
        // The client's address travels with each request (the API logs and audits it).
        let app = app.clone();
        let served = Arc::clone(&served);
        let service = TowerToHyperService::new(tower::ServiceExt::map_request(
            app,
            move |mut req: axum::extract::Request<_>| {
                served.fetch_add(1, Ordering::Relaxed);
                let client = client_ip(peer.ip(), req.headers(), &trusted);
                req.extensions_mut()
                    .insert(axum::extract::ConnectInfo(peer));
                req.extensions_mut().insert(ClientIp(client));
                req
            },
        ));
        let io = TokioIo::new(WriteStall::new(stream, limits.write_stall));
        let connection = graceful.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(peer = %peer, error = %e, "HTTP connection ended with an error");
            }
            drop(address_place);
            drop(place);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    drop(trimmer);
    Ok(())
}

/// How often the server checks whether requests stopped, to give memory back.
const TRIM_TICK: Duration = Duration::from_secs(2);

/// Errors of one connection (the client went away) rather than of the listener.
fn is_connection_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}
