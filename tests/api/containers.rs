//! The downstream helper, end to end. Needs a Docker engine and the images
//! (`scripts/images` builds them with no registry; see `containers`' module docs for
//! the variables that name them), so it is ignored by default; `scripts/test` runs it.

use filegate_client::FileStatus;
use filegate_tests::containers::FilegateStack;
use filegate_tests::samples;

#[tokio::test]
#[ignore = "needs a Docker engine and the images (scripts/test runs it)"]
async fn a_containerized_stack_takes_an_upload_end_to_end() {
    let stack = FilegateStack::start().await.expect("start the stack");
    let file =
        filegate_tests::upload_round_trip(&stack.url, &stack.api_key, "report.pdf", samples::pdf())
            .await;
    assert_eq!(file.file.status, FileStatus::Ready);
    assert_eq!(file.file.workspace_uuid, stack.workspace);
}
