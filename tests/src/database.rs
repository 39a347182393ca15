//! Postgres for tests: a migrated template database made once per run, and a fresh
//! database cloned from it for each app; plus plain connections for setup statements.

use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;
use uuid::Uuid;

use crate::backends;

/// `postgres://…/NAME` on the same server as `url`.
#[must_use]
pub fn database_url(url: &str, name: &str) -> String {
    let base = url.rsplit_once('/').map_or(url, |(base, _)| base);
    format!("{base}/{name}")
}

/// Connects one plain client (for setup statements).
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .expect("connect to Postgres");
    tokio::spawn(conn);
    client
}

/// A digest of the migrations, so a changed schema gets a new template.
fn migrations_digest() -> String {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../migrations");
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .expect("migrations dir")
        .flatten()
        .map(|e| e.path())
        .collect();
    files.sort();
    let mut hasher = Sha256::new();
    for f in files {
        hasher.update(f.file_name().unwrap_or_default().as_encoded_bytes());
        hasher.update(std::fs::read(&f).expect("read migration"));
    }
    hex_prefix(&hasher.finalize(), 6)
}

fn hex_prefix(bytes: &[u8], n: usize) -> String {
    bytes.iter().take(n).map(|b| format!("{b:02x}")).collect()
}

static TEMPLATE: OnceCell<String> = OnceCell::const_new();

/// The migrated template database, created once per run under an advisory lock.
async fn template() -> &'static str {
    TEMPLATE
        .get_or_init(|| async {
            let b = backends().await;
            let name = format!("fgt_{}_tpl_{}", b.run, migrations_digest());
            let admin = connect(&b.database_url).await;
            admin
                .execute("SELECT pg_advisory_lock(hashtext($1))", &[&name])
                .await
                .expect("template lock");
            let exists = admin
                .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
                .await
                .expect("query pg_database")
                .is_some();
            if !exists {
                admin
                    .execute(&format!("CREATE DATABASE \"{name}\""), &[])
                    .await
                    .expect("create template");
                filegate_db::migrate(&database_url(&b.database_url, &name))
                    .await
                    .expect("migrate template");
            }
            admin
                .execute("SELECT pg_advisory_unlock(hashtext($1))", &[&name])
                .await
                .expect("template unlock");
            name
        })
        .await
}

/// A fresh database cloned from the template; returns its URL.
pub async fn fresh_database() -> String {
    let b = backends().await;
    let template = template().await;
    let name = format!(
        "fgt_{}_{}",
        b.run,
        &Uuid::new_v4().simple().to_string()[..12]
    );
    let admin = connect(&b.database_url).await;
    // Cloning fails while another session is briefly connected to the template.
    for attempt in 0.. {
        match admin
            .execute(
                &format!("CREATE DATABASE \"{name}\" TEMPLATE \"{template}\""),
                &[],
            )
            .await
        {
            Ok(_) => break,
            Err(e) if attempt < 50 => {
                let _ = e;
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) => panic!("clone template: {e}"),
        }
    }
    database_url(&b.database_url, &name)
}
