//! A store that lies: an HTTP server on loopback that answers every S3 request with
//! what the test scripts (a listing that repeats its marker, a ranged read answered
//! with the whole of a huge object), for the checks a real store never fails. Also the
//! source server of the import tests, which counts the requests it gets.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use filegate_storage::{Storage, StorageSettings};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

/// What a [`LiarStore`] answers.
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Body,
}

/// The body of a [`Reply`].
pub enum Body {
    Bytes(Vec<u8>),
    /// This many zero bytes, streamed (a body no one should buffer).
    Zeros(u64),
    /// These bytes in `chunk`-sized writes, `pause` apart (a slow source).
    Trickle {
        bytes: Vec<u8>,
        chunk: usize,
        pause: std::time::Duration,
    },
}

impl Reply {
    /// `200` with an XML document.
    #[must_use]
    pub fn xml(xml: &str) -> Self {
        Self {
            status: 200,
            headers: vec![("content-type", "application/xml".to_owned())],
            body: Body::Bytes(xml.as_bytes().to_vec()),
        }
    }
}

/// What a scripted server answers a request head with.
pub type Answerer = Arc<dyn Fn(&str) -> Reply + Send + Sync>;

/// The server; it stops with the test's runtime.
pub struct LiarStore {
    pub addr: SocketAddr,
    requests: Arc<AtomicUsize>,
}

impl LiarStore {
    /// Serves `answer(request head)` to every request.
    pub async fn start(answer: fn(&str) -> Reply) -> Self {
        Self::serve(Arc::new(answer)).await
    }

    /// Serves `answer(request head)` to every request, counting them.
    pub async fn serve(answer: Answerer) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let requests = Arc::new(AtomicUsize::new(0));
        let counted = requests.clone();
        tokio::spawn(async move {
            while let Ok((conn, _)) = listener.accept().await {
                tokio::spawn(serve(conn, answer.clone(), counted.clone()));
            }
        });
        Self { addr, requests }
    }

    /// Requests served so far.
    #[must_use]
    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }

    /// A client of the bucket `b` on this store, with `timeout` per call.
    pub async fn storage(&self, timeout: Duration) -> Storage {
        Storage::new(&StorageSettings {
            endpoint: Some(format!("http://{}", self.addr)),
            public_endpoint: None,
            region: "us-east-1".into(),
            bucket: "b".into(),
            access_key_id: Some("liar".into()),
            secret_access_key: Some("liar-secret".to_owned().into()),
            path_style: true,
            timeout,
        })
        .await
    }
}

async fn serve(mut conn: TcpStream, answer: Answerer, requests: Arc<AtomicUsize>) {
    let mut buf = Vec::new();
    loop {
        let Some(end) = read_head(&mut conn, &mut buf).await else {
            return;
        };
        let head = String::from_utf8_lossy(&buf[..end]).into_owned();
        let body_len: usize = head
            .lines()
            .find_map(|l| {
                let (name, value) = l.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        // Skip the request's body, if any.
        while buf.len() < end + 4 + body_len {
            let mut chunk = [0u8; 8192];
            match conn.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
        buf.drain(..end + 4 + body_len);
        requests.fetch_add(1, Ordering::SeqCst);
        let reply = answer(&head);
        let len = match &reply.body {
            Body::Bytes(b) => b.len() as u64,
            Body::Zeros(n) => *n,
            Body::Trickle { bytes, .. } => bytes.len() as u64,
        };
        let mut out = format!(
            "HTTP/1.1 {} Liar\r\ncontent-length: {len}\r\n",
            reply.status
        );
        for (name, value) in &reply.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        if conn.write_all(out.as_bytes()).await.is_err() {
            return;
        }
        let sent = match reply.body {
            Body::Bytes(b) => conn.write_all(&b).await,
            Body::Zeros(mut n) => {
                let zeros = vec![0u8; 64 * 1024];
                let mut sent = Ok(());
                while n > 0 && sent.is_ok() {
                    let step = usize::try_from(n.min(zeros.len() as u64)).unwrap_or(zeros.len());
                    sent = conn.write_all(&zeros[..step]).await;
                    n -= step as u64;
                }
                sent
            }
            Body::Trickle {
                bytes,
                chunk,
                pause,
            } => {
                let mut sent = Ok(());
                for piece in bytes.chunks(chunk.max(1)) {
                    sent = conn.write_all(piece).await;
                    if sent.is_err() {
                        break;
                    }
                    let _ = conn.flush().await;
                    tokio::time::sleep(pause).await;
                }
                sent
            }
        };
        if sent.is_err() {
            return;
        }
    }
}

/// Reads until the buffer holds a whole request head; its length (before the blank line).
pub(crate) async fn read_head(conn: &mut TcpStream, buf: &mut Vec<u8>) -> Option<usize> {
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            return Some(end);
        }
        let mut chunk = [0u8; 8192];
        match conn.read(&mut chunk).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}
