//! Raw HTTP/1.1 on a socket of its own: bodies sent the way hostile clients send them
//! (chunked, slow, cut off), and the answer read while the body is still open.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// Connects to `host:port` and sends `method target` with `Host` and `headers`: the
/// body is the caller's to send.
pub async fn open(
    host: &str,
    port: u16,
    method: &str,
    target: &str,
    headers: &[(&str, String)],
) -> TcpStream {
    let mut socket = TcpStream::connect((host, port)).await.expect("connect");
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {host}:{port}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    socket
        .write_all(head.as_bytes())
        .await
        .expect("send the head");
    socket
}

/// Sends one chunk of a chunked body.
///
/// # Errors
/// The socket's, once the server has hung up.
pub async fn send_chunk(socket: &mut TcpStream, bytes: &[u8]) -> std::io::Result<()> {
    socket
        .write_all(format!("{:x}\r\n", bytes.len()).as_bytes())
        .await?;
    socket.write_all(bytes).await?;
    socket.write_all(b"\r\n").await
}

/// The status code of what the server sent within `within`, if anything.
pub async fn answer_within(socket: &mut TcpStream, within: Duration) -> Option<u16> {
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(within, socket.read(&mut buf))
        .await
        .ok()?
        .ok()?;
    let text = String::from_utf8_lossy(&buf[..n]);
    text.split_whitespace().nth(1)?.parse().ok()
}
