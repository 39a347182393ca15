//! TLS to Postgres: `sslmode` from the URL and a CA-file setting, against a private
//! cluster that `scripts/test` starts with a certificate for `localhost` signed by a CA
//! it makes (openssl), and another CA that signed nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use filegate_db::PoolSettings;

struct Cluster {
    port: String,
    ca: String,
    wrong_ca: String,
}

fn cluster() -> Cluster {
    let var = |name: &str| {
        std::env::var(name)
            .unwrap_or_else(|_| panic!("{name} is not set: scripts/test's TLS stage sets it"))
    };
    Cluster {
        port: var("FILEGATE_TEST_TLS_PG_PORT"),
        ca: var("FILEGATE_TEST_TLS_CA"),
        wrong_ca: var("FILEGATE_TEST_TLS_WRONG_CA"),
    }
}

/// Connects through filegate's pool and answers whether the session is encrypted, or
/// the whole chain of the error.
async fn connect(url: &str, ca_file: Option<&str>) -> Result<bool, String> {
    let pool = filegate_db::connect(&PoolSettings {
        url: url.into(),
        ca_file: ca_file.map(str::to_owned),
        max_size: 2,
        connect_timeout: Duration::from_secs(5),
        statement_timeout: Duration::from_secs(5),
    })
    .map_err(|e| chain(&e))?;
    let client = pool.get().await.map_err(|e| chain(&e))?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .map_err(|e| chain(&e))?;
    Ok(row.get(0))
}

fn chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

#[tokio::test]
#[ignore = "needs the TLS cluster: run by scripts/test's TLS stage"]
async fn require_encrypts_without_checking_the_certificate() {
    let c = cluster();
    let url = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=require",
        c.port
    );
    assert_eq!(connect(&url, None).await, Ok(true));
    let plain = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=disable",
        c.port
    );
    assert_eq!(connect(&plain, None).await, Ok(false));
}

#[tokio::test]
#[ignore = "needs the TLS cluster: run by scripts/test's TLS stage"]
async fn verify_full_connects_with_the_right_ca_and_host() {
    let c = cluster();
    let url = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=verify-full",
        c.port
    );
    assert_eq!(connect(&url, Some(&c.ca)).await, Ok(true));
    // The CA may also come from the URL, as libpq's sslrootcert.
    let with_root = format!("{url}&sslrootcert={}", c.ca);
    assert_eq!(connect(&with_root, None).await, Ok(true));
}

#[tokio::test]
#[ignore = "needs the TLS cluster: run by scripts/test's TLS stage"]
async fn verify_full_refuses_a_wrong_ca_or_host_with_a_clear_error() {
    let c = cluster();
    let url = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=verify-full",
        c.port
    );
    let wrong_ca = connect(&url, Some(&c.wrong_ca)).await.unwrap_err();
    assert!(
        wrong_ca.contains("UnknownIssuer") || wrong_ca.contains("certificate"),
        "{wrong_ca}"
    );
    let by_ip = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=verify-full",
        c.port
    );
    let wrong_host = connect(&by_ip, Some(&c.ca)).await.unwrap_err();
    assert!(
        wrong_host.contains("NotValidForName") || wrong_host.contains("not valid for"),
        "{wrong_host}"
    );
    // verify-ca checks the chain but not the name.
    let ca_only = format!(
        "postgres://postgres@127.0.0.1:{}/postgres?sslmode=verify-ca",
        c.port
    );
    assert_eq!(connect(&ca_only, Some(&c.ca)).await, Ok(true));
    let ca_wrong = connect(&ca_only, Some(&c.wrong_ca)).await.unwrap_err();
    assert!(
        ca_wrong.contains("UnknownIssuer") || ca_wrong.contains("certificate"),
        "{ca_wrong}"
    );
}

#[tokio::test]
#[ignore = "needs the TLS cluster: run by scripts/test's TLS stage"]
async fn the_binary_migrates_over_verified_tls_and_says_why_it_cannot() {
    let c = cluster();
    let url = format!(
        "postgres://postgres@localhost:{}/postgres?sslmode=verify-full",
        c.port
    );
    let run = |ca: &str| {
        std::process::Command::new(filegate_tests::filegate_bin())
            .arg("migrate")
            .env_clear()
            .env("FILEGATE_DATABASE_URL", &url)
            .env("FILEGATE_DATABASE_CA_FILE", ca)
            .output()
            .unwrap()
    };
    let ok = run(&c.ca);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let refused = run(&c.wrong_ca);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("certificate") || stderr.contains("UnknownIssuer"),
        "{stderr}"
    );
    let bad_mode = std::process::Command::new(filegate_tests::filegate_bin())
        .arg("migrate")
        .env_clear()
        .env(
            "FILEGATE_DATABASE_URL",
            url.replace("verify-full", "verify-everything"),
        )
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&bad_mode.stderr);
    assert!(
        !bad_mode.status.success() && stderr.contains("sslmode must be"),
        "{stderr}"
    );
}
