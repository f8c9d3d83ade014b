//! The listening socket: each connection accepted within the caps (in total
//! and per client), served by hyper with a header-read timeout and an idle
//! timeout, and drained on shutdown. Over a cap, a connection is answered
//! with a short problem+json (503 or 429, Retry-After) and closed, so one
//! client can never take every file descriptor.

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{Instant, Sleep};
use tower::ServiceExt;

use crate::http::limits::{Refusal, Slots};
use crate::http::{self, ConnectionLimits, HttpOptions};
use crate::store::Store;

/// Refusals being written at once; past this a refused connection is just closed.
const MAX_REFUSALS_IN_FLIGHT: usize = 64;
/// How long a refusal may take to write before the connection is dropped.
const REFUSAL_WRITE: Duration = Duration::from_secs(1);

/// A bound, not yet running server; binding to port 0 lets tests run many.
pub struct Server {
    listener: TcpListener,
    router: Router,
    store: Arc<dyn Store>,
    metrics: Arc<http::observe::Metrics>,
    limits: ConnectionLimits,
    trusted_proxies: Vec<IpAddr>,
}

impl Server {
    pub async fn bind(
        address: SocketAddr,
        store: Arc<dyn Store>,
        options: HttpOptions,
    ) -> Result<Self, String> {
        let metrics = Arc::new(http::observe::Metrics::default());
        let limits = options.connections.clone();
        let trusted_proxies = options.rate_limits.trusted_proxies.clone();
        let router = http::router(store.clone(), options, metrics.clone())?;
        let listener = listen(address).map_err(|e| format!("cannot listen on {address}: {e}"))?;
        Ok(Self {
            listener,
            router,
            store,
            metrics,
            limits,
            trusted_proxies,
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` resolves. Then /readyz answers 503, no new
    /// connection is taken, and requests in flight get up to `grace` to
    /// finish; then the store's connections are closed.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
        grace: Duration,
    ) -> io::Result<()> {
        let connections = Slots::new(
            "connections",
            usable_connection_total(self.limits.total),
            self.limits.per_client,
        );
        self.metrics.watch_connections(connections.clone());
        let refusals = Arc::new(tokio::sync::Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
        let graceful = GracefulShutdown::new();
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new());
        if !self.limits.header_timeout.is_zero() {
            builder.header_read_timeout(self.limits.header_timeout);
        }
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (stream, peer) = tokio::select! {
                () = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(error) => {
                        // Out of descriptors, say: wait a little rather than spin.
                        tracing::warn!(%error, "accept error");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
            };
            let client = peer.ip().to_canonical();
            let shared = self
                .trusted_proxies
                .iter()
                .any(|p| p.to_canonical() == client);
            let slot = match connections.take(client, shared) {
                Ok(slot) => slot,
                Err(refusal) => {
                    self.metrics.connection_refused();
                    if let Ok(permit) = refusals.clone().try_acquire_owned() {
                        tokio::spawn(async move {
                            refuse(stream, refusal).await;
                            drop(permit);
                        });
                    }
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            let service =
                self.router
                    .clone()
                    .map_request(move |mut request: axum::extract::Request<_>| {
                        request.extensions_mut().insert(ConnectInfo(peer));
                        request
                    });
            let io = TokioIo::new(ConnectionIo::new(stream, self.limits.idle_timeout));
            let connection = builder.serve_connection(io, TowerToHyperService::new(service));
            let connection = graceful.watch(connection);
            tokio::spawn(async move {
                if let Err(error) = connection.await {
                    tracing::debug!(%error, "connection ended");
                }
                drop(slot);
            });
        }

        self.metrics
            .shutting_down
            .store(true, std::sync::atomic::Ordering::Relaxed);
        drop(self.listener);
        tokio::select! {
            () = graceful.shutdown() => {}
            () = tokio::time::sleep(grace) => {
                tracing::warn!(?grace, "grace period over: closing the connections still open");
            }
        }
        self.store.close().await;
        Ok(())
    }
}

/// Connections the kernel queues before they are accepted. std's default
/// (128) drops SYNs under a burst of new connections, and a client then
/// waits a second to retry: a probe must not.
const LISTEN_BACKLOG: u32 = 1024;

fn listen(address: SocketAddr) -> io::Result<TcpListener> {
    let socket = if address.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(address)?;
    socket.listen(LISTEN_BACKLOG)
}

/// The connection cap, lowered when the process may open fewer files than
/// it plus a reserve for the database, logs and the listener.
fn usable_connection_total(configured: usize) -> usize {
    const RESERVE: usize = 128;
    let Some(soft_limit) = open_files_limit() else {
        return configured;
    };
    let room = soft_limit.saturating_sub(RESERVE).max(16);
    if configured == 0 || configured > room {
        tracing::warn!(
            configured,
            open_files_limit = soft_limit,
            using = room,
            "the connection limit does not fit in the open-files limit; lowering it"
        );
        return room;
    }
    configured
}

/// The soft `RLIMIT_NOFILE`, read from /proc (Linux); None elsewhere.
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Writes a short problem+json refusal and closes the connection.
async fn refuse(mut stream: TcpStream, refusal: Refusal) {
    let (status, reason, body) = match refusal {
        Refusal::Full => (
            503,
            "Service Unavailable",
            r#"{"type":"urn:accords:problem:overloaded","title":"Service Unavailable","status":503,"detail":"too many open connections; retry shortly"}"#,
        ),
        Refusal::ClientFull => (
            429,
            "Too Many Requests",
            r#"{"type":"urn:accords:problem:too-many-requests","title":"Too Many Requests","status":429,"detail":"this client has too many open connections; close some or retry shortly"}"#,
        ),
    };
    let answer = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/problem+json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(REFUSAL_WRITE, async {
        let _ = stream.write_all(answer.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}

/// The socket as hyper sees it. It fails with `TimedOut` once nothing has
/// been read or written for `idle` (a client that stops reading an answer,
/// or stops sending a body, does not hold its connection forever), and it
/// turns the bare answers hyper writes on its own to requests it cannot
/// parse (400, 414, 431: no body, no content type) into problem+json, so
/// every error a client sees is a problem document.
struct ConnectionIo {
    inner: TcpStream,
    idle: Duration,
    deadline: Option<Pin<Box<Sleep>>>,
    /// When a byte was last read or written. The timer is not moved on each
    /// read and write (that costs a timer-wheel update per request); when it
    /// fires early it is set again from here.
    last_active: Instant,
    /// Bytes of a rewritten answer still to be written, before anything else.
    pending: Vec<u8>,
}

impl ConnectionIo {
    fn new(inner: TcpStream, idle: Duration) -> Self {
        let deadline = (!idle.is_zero()).then(|| Box::pin(tokio::time::sleep(idle)));
        Self {
            inner,
            idle,
            deadline,
            last_active: Instant::now(),
            pending: Vec::new(),
        }
    }

    fn active(&mut self) {
        if self.deadline.is_some() {
            self.last_active = Instant::now();
        }
    }

    /// Whether the connection has been idle for `idle`; else the timer is
    /// (re)armed to wake this task when it could be.
    fn expired(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(deadline) = self.deadline.as_mut() else {
            return false;
        };
        loop {
            if deadline.as_mut().poll(cx).is_pending() {
                return false;
            }
            let due = self.last_active + self.idle;
            if Instant::now() >= due {
                return true;
            }
            // Fired early: there was activity since it was set.
            deadline.as_mut().reset(due);
        }
    }

    /// Writes what is pending; Ready(Ok) once nothing is.
    fn poll_pending(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while !self.pending.is_empty() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.pending) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => {
                    self.pending.drain(..n);
                    self.active();
                }
                Poll::Ready(Err(error)) => return Poll::Ready(Err(error)),
                Poll::Pending if self.expired(cx) => return Poll::Ready(Err(timed_out())),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// hyper's own answer to a request it could not parse: a 4xx status line
/// and headers without a content type (every answer of the service's own
/// carries one). Rewritten as the same status with a problem+json body.
fn problem_for_bare_error(buf: &[u8]) -> Option<Vec<u8>> {
    if !buf.starts_with(b"HTTP/1.1 4") {
        return None;
    }
    let end = buf.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&buf[..end]).ok()?;
    if head
        .lines()
        .any(|line| line.to_ascii_lowercase().starts_with("content-type:"))
    {
        return None;
    }
    let status_line = head.lines().next()?;
    let code: u16 = status_line.get(9..12)?.parse().ok()?;
    let reason = status_line.get(13..).unwrap_or("Bad Request");
    let detail = match code {
        414 => "the request target (path and query) is too long",
        431 => "the request's header section is too large",
        _ => "the request could not be parsed as HTTP/1.1",
    };
    let body = serde_json::json!({
        "type": "urn:accords:problem:bad-request",
        "title": reason,
        "status": code,
        "detail": detail,
    })
    .to_string();
    Some(
        format!(
            "HTTP/1.1 {code} {reason}\r\ncontent-type: application/problem+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        )
        .into_bytes(),
    )
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "connection idle too long")
}

impl AsyncRead for ConnectionIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.inner).poll_read(cx, buf) {
            Poll::Ready(result) => {
                if buf.filled().len() > before {
                    self.active();
                }
                Poll::Ready(result)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncWrite for ConnectionIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Err(error) = std::task::ready!(self.poll_pending(cx)) {
            return Poll::Ready(Err(error));
        }
        if let Some(problem) = problem_for_bare_error(buf) {
            // hyper's bytes count as written; ours go out in their place.
            self.pending = problem;
            return Poll::Ready(Ok(buf.len()));
        }
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Ready(result) => {
                if matches!(result, Ok(n) if n > 0) {
                    self.active();
                }
                Poll::Ready(result)
            }
            Poll::Pending if self.expired(cx) => Poll::Ready(Err(timed_out())),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Writes are not vectored, so that hyper hands an answer's head over
    /// in one piece (see `problem_for_bare_error`).
    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Err(error) = std::task::ready!(self.poll_pending(cx)) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Err(error) = std::task::ready!(self.poll_pending(cx)) {
            return Poll::Ready(Err(error));
        }
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_hypers_bare_errors_are_rewritten() {
        let bare = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: x\r\n\r\n";
        let rewritten = String::from_utf8(problem_for_bare_error(bare).unwrap()).unwrap();
        assert!(rewritten.starts_with("HTTP/1.1 414 URI Too Long\r\n"));
        assert!(rewritten.contains("content-type: application/problem+json"));
        assert!(rewritten.contains("\"status\":414"));
        let ours = b"HTTP/1.1 404 Not Found\r\ncontent-type: application/problem+json\r\ncontent-length: 2\r\n\r\n{}";
        assert!(problem_for_bare_error(ours).is_none());
        assert!(problem_for_bare_error(b"HTTP/1.1 200 OK\r\n\r\n").is_none());
    }
}
