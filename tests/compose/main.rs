//! The docker-compose stack, from the host: `scripts/test` brings up
//! `deploy/docker-compose.garage.yml` on local images, waits for filegate's health, and
//! runs this with the stack's URL and demo key; a real client's upload must go through.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use filegate_client::FileStatus;
use filegate_tests::samples;

fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is not set: scripts/test sets it"))
}

#[tokio::test]
#[ignore = "needs the compose stack scripts/test brings up"]
async fn the_compose_stack_takes_an_upload_and_serves_it_back() {
    let url = var("FILEGATE_COMPOSE_URL");
    let key = var("FILEGATE_COMPOSE_API_KEY");
    let health = reqwest::get(format!("{url}/readyz")).await.expect("readyz");
    assert_eq!(health.status(), 200, "the stack's filegate is ready");
    let file = filegate_tests::upload_round_trip(&url, &key, "report.pdf", samples::pdf()).await;
    assert_eq!(file.file.status, FileStatus::Ready);
    assert_eq!(file.file.content_type, "application/pdf");
}
