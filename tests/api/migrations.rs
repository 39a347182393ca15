use filegate_tests::{connect, fresh_database};

#[tokio::test]
async fn migrations_applied_twice_are_a_no_op() {
    // The fresh database is a clone of the migrated template.
    let url = fresh_database().await;
    let again = filegate_db::migrate(&url).await.expect("migrate again");
    assert!(again.is_empty(), "nothing to apply, got {again:?}");
    let client = connect(&url).await;
    let tables: Vec<String> = client
        .query(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for t in ["api_keys", "files", "organizations", "workspaces"] {
        assert!(tables.iter().any(|x| x == t), "{t} in {tables:?}");
    }
}

#[tokio::test]
async fn migrating_an_empty_database_applies_every_migration_once() {
    let b = filegate_tests::backends().await;
    let name = format!(
        "fgt_{}_{}",
        b.run,
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    );
    connect(&b.database_url)
        .await
        .execute(&format!("CREATE DATABASE \"{name}\""), &[])
        .await
        .unwrap();
    let url = filegate_tests::database_url(&b.database_url, &name);
    let first = filegate_db::migrate(&url).await.unwrap();
    assert!(first.iter().any(|m| m.starts_with("V1__")), "{first:?}");
    assert!(filegate_db::migrate(&url).await.unwrap().is_empty());
}

#[tokio::test]
async fn the_quota_check_refuses_counters_beyond_the_quota() {
    let url = fresh_database().await;
    let client = connect(&url).await;
    client
        .execute(
            "INSERT INTO organizations (id, name) VALUES (gen_random_uuid(), 'o')",
            &[],
        )
        .await
        .unwrap();
    let err = client
        .execute(
            "INSERT INTO workspaces (id, organization_id, quota_bytes, max_file_bytes, allowed_content_types, used_bytes) \
             SELECT gen_random_uuid(), id, 10, 5, '{}', 11 FROM organizations",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.as_db_error().and_then(|e| e.constraint()),
        Some("workspaces_within_quota")
    );
}
