//! A webhook receiver on loopback: it records every request it is sent (headers, body,
//! when, what it answered) and answers as the test says: 2xx, an error status, nothing
//! until the sender gives up, or a closed connection. It can go down (its port refuses
//! connections) and come back on the same port.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `204`.
    Ack,
    /// This status.
    Status(u16),
    /// Nothing, ever (the sender's timeout ends it).
    Hang,
    /// Closes the connection once the request is read.
    Close,
}

/// One request the receiver was sent.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    pub at: Instant,
    /// What it answered (0: nothing, or a closed connection).
    pub answered: u16,
}

impl Received {
    /// The body as JSON.
    #[must_use]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// A header as text.
    #[must_use]
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// Whether the receiver acknowledged it.
    #[must_use]
    pub fn acknowledged(&self) -> bool {
        (200..300).contains(&self.answered)
    }
}

struct Shared {
    mode: Mode,
    received: Vec<Received>,
}

/// The receiver; it stops with the test's runtime.
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Mutex<Shared>>,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl Receiver {
    /// A receiver acknowledging everything, on a port of its own.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let shared = Arc::new(Mutex::new(Shared {
            mode: Mode::Ack,
            received: Vec::new(),
        }));
        let accept = tokio::spawn(accept(listener, shared.clone()));
        Self {
            addr,
            shared,
            accept: Mutex::new(Some(accept)),
        }
    }

    /// The URL deliveries go to.
    #[must_use]
    pub fn url(&self) -> String {
        format!("http://{}/hooks/filegate", self.addr)
    }

    /// From now on, answers this way.
    pub fn set_mode(&self, mode: Mode) {
        self.shared.lock().expect("lock").mode = mode;
    }

    /// Stops listening: connections to its port are refused.
    pub fn down(&self) {
        if let Some(task) = self.accept.lock().expect("lock").take() {
            task.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn up(&self) {
        let mut tries = 0;
        let listener = loop {
            match TcpListener::bind(self.addr).await {
                Ok(l) => break l,
                Err(_) if tries < 50 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                Err(e) => panic!("rebind {}: {e}", self.addr),
            }
        };
        *self.accept.lock().expect("lock") =
            Some(tokio::spawn(accept(listener, self.shared.clone())));
    }

    /// Every request so far.
    #[must_use]
    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().expect("lock").received.clone()
    }

    /// The requests it acknowledged.
    #[must_use]
    pub fn acknowledged(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(Received::acknowledged)
            .collect()
    }

    /// Waits until it has acknowledged `n` requests (within `within`), and returns them.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let end = Instant::now() + within;
        loop {
            let got = self.acknowledged();
            if got.len() >= n {
                return got;
            }
            assert!(
                Instant::now() < end,
                "{} of {n} deliveries acknowledged within {within:?}; requests: {:?}",
                got.len(),
                self.received()
                    .iter()
                    .map(|r| (r.answered, String::from_utf8_lossy(&r.body).into_owned()))
                    .collect::<Vec<_>>()
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

async fn accept(listener: TcpListener, shared: Arc<Mutex<Shared>>) {
    while let Ok((conn, _)) = listener.accept().await {
        tokio::spawn(serve(conn, shared.clone()));
    }
}

async fn serve(mut conn: TcpStream, shared: Arc<Mutex<Shared>>) {
    let mut buf = Vec::new();
    loop {
        let Some(end) = crate::liar::read_head(&mut conn, &mut buf).await else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let mut headers = HeaderMap::new();
        for line in head.lines().skip(1) {
            if let Some((name, value)) = line.split_once(':')
                && let (Ok(n), Ok(v)) = (
                    HeaderName::from_bytes(name.trim().as_bytes()),
                    HeaderValue::from_str(value.trim()),
                )
            {
                headers.append(n, v);
            }
        }
        let len: usize = headers
            .get("content-length")
            .and_then(|v| v.to_str().ok()?.parse().ok())
            .unwrap_or(0);
        while buf.len() < end + 4 + len {
            let mut chunk = [0u8; 8192];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        let body = buf[end + 4..end + 4 + len].to_vec();
        buf.drain(..end + 4 + len);
        let mode = shared.lock().expect("lock").mode;
        let answered = match mode {
            Mode::Ack => 204,
            Mode::Status(s) => s,
            Mode::Hang | Mode::Close => 0,
        };
        shared.lock().expect("lock").received.push(Received {
            headers,
            body,
            at: Instant::now(),
            answered,
        });
        match mode {
            Mode::Hang => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                return;
            }
            Mode::Close => return,
            Mode::Ack | Mode::Status(_) => {
                let reply = format!("HTTP/1.1 {answered} Receiver\r\ncontent-length: 0\r\n\r\n");
                if conn.write_all(reply.as_bytes()).await.is_err() {
                    return;
                }
            }
        }
    }
}
