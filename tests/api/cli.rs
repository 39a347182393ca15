//! The `filegate` binary: secrets stay out of `--help`, and the admin CLI creates
//! tenants whose keys work against a running app.

use std::path::PathBuf;
use std::process::Command;

use filegate_tests::{Answer, spawn_app};
use reqwest::Method;
use serde_json::Value;

/// `target/<profile>/filegate`, built by `scripts/test` before the suites run.
fn filegate_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let bin = dir.join("filegate");
    assert!(
        bin.exists(),
        "{} is missing: run `cargo build -p filegate` (scripts/test does)",
        bin.display()
    );
    bin
}

fn admin(database_url: &str, args: &[&str]) -> (bool, Value, String) {
    let out = Command::new(filegate_bin())
        .env_clear()
        .env("FILEGATE_DATABASE_URL", database_url)
        .env("FILEGATE_LOG", "warn")
        .arg("admin")
        .arg("--json")
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let json = serde_json::from_str(stdout.trim()).unwrap_or(Value::Null);
    (
        out.status.success(),
        json,
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn help_never_shows_secret_values_from_the_environment() {
    let out = Command::new(filegate_bin())
        .args(["serve", "--help"])
        .env("FILEGATE_S3_SECRET_ACCESS_KEY", "topsecret-value")
        .env("FILEGATE_S3_ACCESS_KEY_ID", "AKIDVALUE")
        .env("FILEGATE_DATABASE_URL", "postgres://u:pw-value@db/x")
        .env("FILEGATE_S3_BUCKET", "visible-bucket")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    assert!(help.contains("FILEGATE_S3_SECRET_ACCESS_KEY"), "{help}");
    for secret in ["topsecret-value", "AKIDVALUE", "pw-value"] {
        assert!(!help.contains(secret), "{secret} leaked into --help");
    }
    // Non-secret values are shown, which proves the environment was read.
    assert!(help.contains("visible-bucket"));
}

#[tokio::test]
async fn the_admin_cli_creates_a_tenant_whose_key_works_and_revokes_it() {
    let app = spawn_app().await;
    let url = app.database_url.clone();
    let (ok, org, err) = admin(&url, &["create-org", "acme"]);
    assert!(ok, "{err}");
    let org = org["id"].as_str().unwrap().to_owned();
    let (ok, ws, err) = admin(
        &url,
        &[
            "create-workspace",
            "--org",
            &org,
            "--quota-bytes",
            "1000",
            "--allowed-types",
            "application/pdf",
        ],
    );
    assert!(ok, "{err}");
    assert_eq!(ws["quota_bytes"], 1000);
    assert_eq!(
        ws["allowed_content_types"],
        serde_json::json!(["application/pdf"])
    );
    let ws = ws["id"].as_str().unwrap().to_owned();
    let (ok, key, err) = admin(&url, &["create-key", "--org", &org, "--workspace", &ws]);
    assert!(ok, "{err}");
    assert_eq!(
        key["default_workspace"],
        ws.as_str(),
        "a one-workspace key defaults to it"
    );
    let secret = key["key"].as_str().unwrap().to_owned();
    let key_id = key["id"].as_str().unwrap().to_owned();

    let usage = format!("/v2/workspaces/{ws}/usage");
    let res = Answer::of(
        app.request_as(&secret, Method::GET, &usage)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body["quota_bytes"], 1000);

    // The secret is not stored: only its digest is.
    let client = filegate_tests::connect(&url).await;
    let row = client
        .query_one(
            "SELECT secret_sha256 FROM api_keys WHERE id = $1::text::uuid",
            &[&key_id],
        )
        .await;
    let stored: Vec<u8> = row.unwrap().get(0);
    assert_eq!(stored.len(), 32);
    assert!(!String::from_utf8_lossy(&stored).contains(&secret));

    let (ok, revoked, err) = admin(&url, &["revoke-key", &key_id]);
    assert!(ok, "{err}");
    assert_eq!(revoked["revoked"], true);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let res = Answer::of(
        app.request_as(&secret, Method::GET, &usage)
            .send()
            .await
            .unwrap(),
    )
    .await;
    res.assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn the_admin_cli_refuses_a_workspace_of_another_organization() {
    let app = spawn_app().await;
    let other = app.create_tenant(&filegate_domain::Limits::default()).await;
    let (ok, _, err) = admin(
        &app.database_url,
        &[
            "create-key",
            "--org",
            &app.tenant.org.to_string(),
            "--workspace",
            &other.workspace.to_string(),
        ],
    );
    assert!(!ok);
    assert!(err.contains("does not belong"), "{err}");
    let (ok, _, _) = admin(
        &app.database_url,
        &["revoke-key", &uuid::Uuid::new_v4().to_string()],
    );
    assert!(!ok, "revoking an unknown key fails");
}
