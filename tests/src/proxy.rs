//! A TCP proxy that a test can cut and restore, to make a real dependency unreachable
//! from filegate's point of view without stopping it for every other test.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Which requests a [`FaultProxy`] holds back, and for how long.
#[derive(Clone, Copy)]
struct Hold {
    /// Matches a request's head: its request line and headers, as text.
    matches: fn(&str) -> bool,
    delay: Duration,
}

/// Forwards `127.0.0.1:port` to an upstream address while up.
pub struct FaultProxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    delay_ms: Arc<AtomicU64>,
    hold: Arc<Mutex<Option<Hold>>>,
    /// The request line of every request forwarded.
    requests: Arc<Mutex<Vec<String>>>,
    // Bumped on every cut so live connections drop too.
    generation: watch::Sender<u64>,
}

impl FaultProxy {
    /// Starts forwarding to `upstream` (`host:port`).
    pub async fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let up = Arc::new(AtomicBool::new(true));
        let delay_ms = Arc::new(AtomicU64::new(0));
        let hold = Arc::new(Mutex::new(None));
        let (generation, _) = watch::channel(0u64);
        let upstream = upstream.to_owned();
        let (flag, gen_tx, delay) = (Arc::clone(&up), generation.clone(), Arc::clone(&delay_ms));
        let holds = Arc::clone(&hold);
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                let mut cut = gen_tx.subscribe();
                let pause = Duration::from_millis(delay.load(Ordering::SeqCst));
                let holds = Arc::clone(&holds);
                let seen = Arc::clone(&seen);
                tokio::spawn(async move {
                    tokio::time::sleep(pause).await;
                    let Ok(outbound) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut from_client, mut to_client) = inbound.split();
                    let (mut from_store, mut to_store) = outbound.into_split();
                    let forwarded =
                        forward_requests(&mut from_client, &mut to_store, &holds, &seen);
                    tokio::select! {
                        _ = forwarded => {}
                        _ = tokio::io::copy(&mut from_store, &mut to_client) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self {
            addr,
            up,
            delay_ms,
            hold,
            requests,
            generation,
        }
    }

    /// The request lines (`METHOD /path?query HTTP/1.1`) forwarded so far.
    #[must_use]
    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    /// `http://127.0.0.1:port`.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Refuses new connections and drops live ones.
    pub fn cut(&self) {
        self.up.store(false, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    /// Holds each new connection for `delay` before forwarding it (a slow dependency).
    pub fn set_delay(&self, delay: Duration) {
        self.delay_ms.store(
            u64::try_from(delay.as_millis()).unwrap_or(u64::MAX),
            Ordering::SeqCst,
        );
    }

    /// Holds each request whose head `matches` for `delay` before forwarding
    /// it (a store slow at one kind of call), on new and live connections alike.
    pub fn hold_requests(&self, matches: fn(&str) -> bool, delay: Duration) {
        *self.hold.lock().unwrap() = Some(Hold { matches, delay });
    }

    /// Forwards again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}

/// Copies the client's bytes to the store, pausing before a read that starts a
/// request the hold matches. A client on a kept-alive connection sends a request
/// only after the previous answer, so each request starts a read.
async fn forward_requests(
    from: &mut (impl tokio::io::AsyncRead + Unpin),
    to: &mut (impl tokio::io::AsyncWrite + Unpin),
    hold: &Mutex<Option<Hold>>,
    seen: &Mutex<Vec<String>>,
) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        let start = &buf[..n.min(8192)];
        let end = start
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .unwrap_or(start.len());
        let head = String::from_utf8_lossy(&start[..end]);
        if let Some(line) = head.lines().next().filter(|l| l.ends_with(" HTTP/1.1")) {
            seen.lock().unwrap().push(line.to_owned());
        }
        let held = *hold.lock().unwrap();
        if let Some(hold) = held
            && (hold.matches)(&head)
        {
            tokio::time::sleep(hold.delay).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
