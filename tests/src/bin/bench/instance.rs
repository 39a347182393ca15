//! filegate processes a scenario starts for itself: the release `filegate serve`
//! (`BENCH_FILEGATE_BIN`) on a database of the scenario's own, with the settings the
//! scenario compares (grouping on or off, the finalizer on or off). The rest of its
//! settings come from the environment `scripts/bench` exported.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::env;

/// A running `filegate serve`; stopped when dropped.
pub struct Instance {
    child: Child,
    pub url: String,
    pub pid: String,
}

impl Instance {
    /// Starts `filegate serve` on `db` with `settings` (environment variables) over the
    /// inherited ones, and waits until it is ready.
    pub async fn start(db: &str, settings: &[(&str, String)]) -> Self {
        Self::start_under(&[], db, settings).await
    }

    /// [`Self::start`], run by `wrapper` (a command and its arguments, e.g. valgrind's)
    /// when it is not empty; the pid is the wrapper's process, which becomes filegate.
    pub async fn start_under(wrapper: &[&str], db: &str, settings: &[(&str, String)]) -> Self {
        let bin = env("BENCH_FILEGATE_BIN");
        let mut command = match wrapper {
            [] => Command::new(&bin),
            [program, args @ ..] => {
                let mut c = Command::new(program);
                c.args(args).arg(&bin);
                c
            }
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = command
            .arg("serve")
            .env("FILEGATE_DATABASE_URL", db)
            .env("FILEGATE_LISTEN", format!("127.0.0.1:{port}"))
            .envs(settings.iter().map(|(k, v)| (*k, v.as_str())))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start filegate");
        let instance = Self {
            pid: child.id().to_string(),
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let http = reqwest::Client::new();
        let started = Instant::now();
        loop {
            let ready = http
                .get(format!("{}/readyz", instance.url))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                return instance;
            }
            assert!(
                // Under valgrind, starting takes much longer.
                started.elapsed() < Duration::from_secs(if wrapper.is_empty() { 30 } else { 300 }),
                "filegate did not become ready"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A new database `<db>_<suffix>` beside the bench's, migrated; its URL.
pub async fn fresh_database(db: &str, suffix: &str) -> String {
    let (server, name) = db.rsplit_once('/').unwrap();
    let name = format!("{name}_{suffix}");
    let admin = filegate_tests::connect(db).await;
    // One statement each: neither may run inside a transaction block.
    for sql in [
        format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
        format!("CREATE DATABASE {name}"),
    ] {
        admin.batch_execute(&sql).await.unwrap();
    }
    let url = format!("{server}/{name}");
    let status = Command::new(env("BENCH_FILEGATE_BIN"))
        .arg("migrate")
        .env("FILEGATE_DATABASE_URL", &url)
        .stdout(Stdio::null())
        .status()
        .expect("filegate migrate");
    assert!(status.success(), "filegate migrate failed");
    url
}

/// Drops the database [`fresh_database`] made.
pub async fn drop_database(db: &str, suffix: &str) {
    let name = db.rsplit_once('/').unwrap().1;
    let admin = filegate_tests::connect(db).await;
    let _ = admin
        .batch_execute(&format!(
            "DROP DATABASE IF EXISTS {name}_{suffix} WITH (FORCE)"
        ))
        .await;
}
