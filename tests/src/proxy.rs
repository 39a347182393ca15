//! A TCP proxy that a test can cut and restore, to make a real dependency unreachable
//! from filegate's point of view without stopping it for every other test.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::copy_bidirectional;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Forwards `127.0.0.1:port` to an upstream address while up.
pub struct FaultProxy {
    pub addr: SocketAddr,
    up: Arc<AtomicBool>,
    delay_ms: Arc<AtomicU64>,
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
        let (generation, _) = watch::channel(0u64);
        let upstream = upstream.to_owned();
        let (flag, gen_tx, delay) = (Arc::clone(&up), generation.clone(), Arc::clone(&delay_ms));
        tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                if !flag.load(Ordering::SeqCst) {
                    drop(inbound);
                    continue;
                }
                let upstream = upstream.clone();
                let mut cut = gen_tx.subscribe();
                let pause = Duration::from_millis(delay.load(Ordering::SeqCst));
                tokio::spawn(async move {
                    tokio::time::sleep(pause).await;
                    let Ok(mut outbound) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    tokio::select! {
                        _ = copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Self {
            addr,
            up,
            delay_ms,
            generation,
        }
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

    /// Forwards again.
    pub fn restore(&self) {
        self.up.store(true, Ordering::SeqCst);
    }
}
