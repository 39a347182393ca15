//! filegate as a separate process: the built binary, a free port, SIGTERM, and waiting
//! for `/healthz` (the commands themselves come from [`TestApp::command`]).
//!
//! [`TestApp::command`]: crate::TestApp::command

/// `target/<profile>/filegate`, which `scripts/test` builds before the suites run.
///
/// # Panics
/// When the binary has not been built.
#[must_use]
pub fn filegate_bin() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("test executable");
    let dir = exe
        .parent()
        .and_then(std::path::Path::parent)
        .expect("target dir");
    let bin = dir.join("filegate");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p filegate` (scripts/test does)",
        bin.display()
    );
    bin
}

/// A loopback port nothing listens on right now.
#[must_use]
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// Sends SIGTERM to a process (graceful shutdown).
pub fn sigterm(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status();
    assert!(status.is_ok_and(|s| s.success()), "kill -TERM {pid}");
}

/// Waits (up to 20 s) until a filegate on `port` answers `/healthz`.
pub async fn wait_healthy(port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while reqwest::get(format!("http://127.0.0.1:{port}/healthz"))
        .await
        .is_err()
    {
        assert!(
            std::time::Instant::now() < deadline,
            "filegate did not start on port {port}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}
