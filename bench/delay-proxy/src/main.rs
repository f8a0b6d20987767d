//! A TCP proxy on loopback that adds latency, to model a distant store.
//!
//!     xcache-delay-proxy LISTEN UPSTREAM RTT_MS
//!
//! LISTEN and UPSTREAM are each a port on 127.0.0.1 or an `ADDRESS:PORT` (bench/exec.sh
//! listens on the farm's end of a veth link, inside a network namespace of its own).
//!
//! Each chunk is forwarded RTT_MS/2 after it arrived, in each direction, in order; the
//! chunks are not serialised behind each other's delays (a chunk that arrives 1 ms after
//! another leaves 1 ms after it), so bandwidth is not limited. A new connection costs
//! one round trip more before its first byte reaches the server, as a TCP handshake
//! does. It listens on 127.0.0.1 unless told an address, and stops on SIGTERM or SIGINT.
//!
//! One thread, large buffers: it must not take the build's cores (the Python proxy it
//! replaces did).
//!
//! With `XCACHE_PROXY_TRACE=DIR`, it appends a line per event to DIR/proxy-LISTEN_PORT.log
//! (one file per proxy, so several can share the variable), in milliseconds
//! since it started: a connection accepted, each request line it forwards (a chunk that
//! starts with an HTTP method), the first byte and the end of each answer. That shows
//! which requests wait for which on the critical path.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::time::Instant;

const CHUNK: usize = 256 << 10;
/// Chunks in flight per direction before reading pauses (back-pressure).
const QUEUE: usize = 256;

/// The trace file and the moment the proxy started, with `XCACHE_PROXY_TRACE`.
static TRACE: OnceLock<(Mutex<std::fs::File>, std::time::Instant)> = OnceLock::new();
static CONNS: AtomicUsize = AtomicUsize::new(0);

fn trace(conn: usize, what: &str) {
    if let Some((f, t0)) = TRACE.get() {
        let ms = t0.elapsed().as_secs_f64() * 1000.0;
        if let Ok(mut f) = f.lock() {
            let _ = writeln!(f, "{ms:10.1} c{conn:<4} {what}");
        }
    }
}

/// The request line a chunk starts with, if it starts one.
fn request_line(buf: &[u8]) -> Option<String> {
    const METHODS: [&[u8]; 7] = [b"GET ", b"PUT ", b"POST ", b"HEAD ", b"DELETE ", b"PROPFIND ", b"MKCOL "];
    METHODS.iter().any(|m| buf.starts_with(m)).then(|| {
        let end = buf.iter().position(|&b| b == b'\r').unwrap_or(buf.len().min(200));
        String::from_utf8_lossy(&buf[..end.min(200)]).into_owned()
    })
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let usage = || -> ! {
        eprintln!("usage: xcache-delay-proxy LISTEN UPSTREAM RTT_MS (each: PORT or ADDRESS:PORT)");
        std::process::exit(2)
    };
    if args.len() != 3 {
        usage();
    }
    let (Some(listen), Some(upstream), Ok(rtt_ms)) = (
        socket_addr(&args[0]),
        socket_addr(&args[1]),
        args[2].parse::<f64>(),
    ) else {
        usage()
    };
    if !(rtt_ms >= 0.0 && rtt_ms.is_finite()) {
        usage();
    }
    let rtt = Duration::from_secs_f64(rtt_ms / 1000.0);
    if let Some(dir) = std::env::var_os("XCACHE_PROXY_TRACE") {
        let path = std::path::Path::new(&dir).join(format!("proxy-{}.log", listen.port()));
        let f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap_or_else(|e| {
                eprintln!("failed to open {} (XCACHE_PROXY_TRACE): {e}", path.display());
                std::process::exit(1)
            });
        let _ = TRACE.set((Mutex::new(f), std::time::Instant::now()));
    }
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("failed to start the runtime");
    rt.block_on(async move {
        let listener = TcpListener::bind(listen).await.unwrap_or_else(|e| {
            eprintln!("failed to listen on {listen}: {e}");
            std::process::exit(1)
        });
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("failed to install the SIGTERM handler");
        loop {
            tokio::select! {
                accepted = listener.accept() => {
                    if let Ok((client, _)) = accepted {
                        tokio::spawn(handle(client, upstream, rtt));
                    }
                }
                _ = term.recv() => break,
                _ = tokio::signal::ctrl_c() => break,
            }
        }
    });
}

/// A port on 127.0.0.1, or an `ADDRESS:PORT`.
fn socket_addr(arg: &str) -> Option<SocketAddr> {
    match arg.parse::<u16>() {
        Ok(port) => Some(SocketAddr::from((Ipv4Addr::LOCALHOST, port))),
        Err(_) => arg.parse().ok(),
    }
}

async fn handle(client: TcpStream, upstream: SocketAddr, rtt: Duration) {
    let accepted = Instant::now();
    let conn = CONNS.fetch_add(1, Ordering::Relaxed);
    trace(conn, "accepted");
    let Ok(server) = TcpStream::connect(upstream).await else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let half = rtt / 2;
    // The handshake: the client's first bytes reach the server one round trip after
    // the connection was opened, plus the one-way delay.
    let up = pump(cr, sw, half, accepted + rtt, conn, true);
    let down = pump(sr, cw, half, accepted, conn, false);
    tokio::join!(up, down);
}

/// Copies `from` to `to`, each chunk `delay` after it arrived (and not before
/// `not_before`), then passes the end of the stream on.
async fn pump(
    mut from: OwnedReadHalf,
    mut to: OwnedWriteHalf,
    delay: Duration,
    not_before: Instant,
    conn: usize,
    up: bool,
) {
    let tracing = TRACE.get().is_some();
    let (tx, mut rx) = mpsc::channel::<(Instant, Vec<u8>)>(QUEUE);
    let reader = async move {
        loop {
            let mut buf = vec![0u8; CHUNK];
            match from.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    buf.truncate(n);
                    let due = Instant::now().max(not_before) + delay;
                    if tx.send((due, buf)).await.is_err() {
                        break;
                    }
                }
            }
        }
        // Dropping `tx` ends the writer after the queued chunks.
    };
    let writer = async move {
        // Bytes of the answer being forwarded (downstream, traced only).
        let mut answer = 0usize;
        while let Some((due, buf)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if tracing {
                if up {
                    if let Some(line) = request_line(&buf) {
                        trace(conn, &format!("-> {line}"));
                    }
                } else {
                    if answer == 0 {
                        trace(conn, "<- first byte");
                    }
                    answer += buf.len();
                }
            }
            if to.write_all(&buf).await.is_err() {
                return;
            }
            if tracing && !up && rx.is_empty() {
                trace(conn, &format!("<- idle after {answer} bytes"));
                answer = 0;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}
