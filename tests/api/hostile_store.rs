//! A store that lies is bounded: listings that repeat or go back on their markers are
//! refused instead of spinning, and a ranged read the store answers with the whole of
//! a huge object keeps only the range.

use std::time::Duration;

use filegate::jobs::Job as _;
use filegate_storage::StorageError;
use filegate_tests::liar::{Body, LiarStore, Reply};

const XMLNS: &str = "http://s3.amazonaws.com/doc/2006-03-01/";

/// Long enough for any one answer here; a listing that spun would never end.
const BOUND: Duration = Duration::from_secs(20);

#[tokio::test]
async fn a_ranged_read_keeps_only_the_range_when_the_store_sends_the_whole_object() {
    let store = LiarStore::start(|_| Reply {
        status: 200,
        headers: vec![("etag", "\"v1\"".to_owned())],
        // 64 GiB: buffering it would never finish within the call's timeout.
        body: Body::Zeros(64 << 30),
    })
    .await;
    let storage = store.storage(Duration::from_secs(5)).await;
    let read = tokio::time::timeout(BOUND, storage.read_prefix("k", 8192))
        .await
        .expect("the read ends");
    let read = read.expect("read").expect("an object");
    assert_eq!(read.bytes.len(), 8192);
    assert_eq!(read.etag.as_deref(), Some("\"v1\""));
}

#[tokio::test]
async fn a_part_listing_that_repeats_its_marker_is_refused() {
    let store = LiarStore::start(|_| {
        Reply::xml(&format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListPartsResult xmlns=\"{XMLNS}\">\
             <Bucket>b</Bucket><Key>k</Key><UploadId>u</UploadId><PartNumberMarker>0</PartNumberMarker>\
             <NextPartNumberMarker>1</NextPartNumberMarker><MaxParts>1000</MaxParts>\
             <IsTruncated>true</IsTruncated><Part><PartNumber>1</PartNumber>\
             <LastModified>2026-01-01T00:00:00.000Z</LastModified><ETag>\"e\"</ETag><Size>5</Size></Part>\
             </ListPartsResult>"
        ))
    })
    .await;
    let storage = store.storage(Duration::from_secs(5)).await;
    let listed = tokio::time::timeout(BOUND, storage.list_parts("k", "u"))
        .await
        .expect("the listing ends");
    assert!(
        matches!(listed, Err(StorageError::Unavailable(_))),
        "{listed:?}"
    );
}

#[tokio::test]
async fn an_upload_listing_that_repeats_its_marker_stops_the_sweep() {
    let app = filegate_tests::spawn_app().await;
    let store = LiarStore::start(|_| {
        Reply::xml(&format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListMultipartUploadsResult xmlns=\"{XMLNS}\">\
             <Bucket>b</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker>\
             <NextKeyMarker>uploads/x</NextKeyMarker><NextUploadIdMarker>u1</NextUploadIdMarker>\
             <MaxUploads>1000</MaxUploads><IsTruncated>true</IsTruncated>\
             <Upload><Key>uploads/x</Key><UploadId>u1</UploadId>\
             <Initiated>2026-01-01T00:00:00.000Z</Initiated></Upload></ListMultipartUploadsResult>"
        ))
    })
    .await;
    let storage = store.storage(Duration::from_secs(5)).await;
    let swept = tokio::time::timeout(
        BOUND,
        filegate::service::uploads::sweep_uploads(&app.pool, &storage, chrono::Utc::now(), true),
    )
    .await
    .expect("the sweep ends");
    assert!(
        matches!(
            swept,
            Err(filegate::service::uploads::SweepError::Storage(
                StorageError::Unavailable(_)
            ))
        ),
        "{swept:?}"
    );
}

#[tokio::test]
async fn an_object_listing_that_repeats_its_page_stops_reconciliation() {
    let app = filegate_tests::spawn_app().await;
    let store = LiarStore::start(|_| {
        Reply::xml(&format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult xmlns=\"{XMLNS}\">\
             <Name>b</Name><Prefix></Prefix><KeyCount>1</KeyCount><MaxKeys>1000</MaxKeys>\
             <IsTruncated>true</IsTruncated><NextContinuationToken>t</NextContinuationToken>\
             <Contents><Key>a</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>\
             <ETag>\"e\"</ETag><Size>1</Size><StorageClass>STANDARD</StorageClass></Contents>\
             </ListBucketResult>"
        ))
    })
    .await;
    let storage = store.storage(Duration::from_secs(5)).await;
    let reconcile = filegate::jobs::Reconciler::new(
        app.pool.clone(),
        storage,
        Duration::from_secs(900),
        Duration::from_secs(900),
        true,
    );
    let passed = tokio::time::timeout(BOUND, reconcile.run_once())
        .await
        .expect("the pass ends");
    assert!(
        matches!(
            passed,
            Err(filegate::jobs::ReconcileError::Storage(
                StorageError::Unavailable(_)
            ))
        ),
        "{passed:?}"
    );
}
