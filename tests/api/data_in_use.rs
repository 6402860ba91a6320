//! Data a store will not remove because it is in use (an RBD snapshot with clones): the image
//! delete answers 409 and keeps the image as it was; the scrubber puts the removal off, trying
//! less and less often. The refusal comes from a layer over the real file store, since only
//! RBD (part 5) reports it; the RBD tests cover the store's side against a real cluster.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use glint_store::{
    ByteRange, Capabilities, ImageReader, ImageWriter, Location, Store, StoreError, StoredData,
    WriteOptions,
};

use crate::all_databases;
use crate::helpers::TestApp;

/// A file store whose deletes are refused as in use while `in_use` is set.
#[derive(Debug)]
struct Clones {
    inner: Arc<dyn Store>,
    in_use: Arc<AtomicBool>,
}

#[async_trait]
impl Store for Clones {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }
    fn owns(&self, location: &Location) -> bool {
        self.inner.owns(location)
    }
    async fn writer(
        &self,
        image_id: &str,
        options: &WriteOptions,
    ) -> Result<Box<dyn ImageWriter>, StoreError> {
        self.inner.writer(image_id, options).await
    }
    async fn reader(
        &self,
        location: &Location,
        range: Option<ByteRange>,
    ) -> Result<ImageReader, StoreError> {
        self.inner.reader(location, range).await
    }
    async fn size(&self, location: &Location) -> Result<u64, StoreError> {
        self.inner.size(location).await
    }
    async fn delete(&self, location: &Location) -> Result<(), StoreError> {
        if self.in_use.load(Ordering::SeqCst) {
            return Err(StoreError::InUse {
                location: location.to_string(),
                why: "the snapshot has 1 clone".to_owned(),
            });
        }
        self.inner.delete(location).await
    }
    async fn sweep_abandoned(&self, older_than: Duration) -> Result<usize, StoreError> {
        self.inner.sweep_abandoned(older_than).await
    }
    async fn committed_data(&self) -> Result<Vec<StoredData>, StoreError> {
        self.inner.committed_data().await
    }
}

/// The app with every store's data in use until the returned flag is cleared.
fn with_clones(app: TestApp) -> (TestApp, Arc<AtomicBool>) {
    let in_use = Arc::new(AtomicBool::new(true));
    let flag = in_use.clone();
    let app = app.wrap_stores(move |inner| {
        Arc::new(Clones {
            inner,
            in_use: flag.clone(),
        })
    });
    (app, in_use)
}

async fn active_image(app: &TestApp, data: &[u8]) -> String {
    let id = app.create_raw_image().await;
    app.upload(&id, data.to_vec()).await.assert_status(204);
    id
}

all_databases!(fn an_image_whose_data_is_in_use_is_not_deleted(app) {
    let (app, in_use) = with_clones(app);
    let id = active_image(&app, b"cloned by nova").await;
    let path = format!("/v2/images/{id}");

    let refused = app.delete(&path).await;
    refused.assert_status(409);
    assert_eq!(
        refused.error_message(),
        format!("Image {id} could not be deleted because it is in use: the snapshot has 1 clone")
    );
    // As it was: listed, active, its data served, its location active.
    let image = app.get(&path).await;
    image.assert_status(200);
    assert_eq!(image.json()["status"], "active");
    assert_eq!(app.get(&format!("{path}/file")).await.body, b"cloned by nova");
    assert_eq!(app.get("/v2/images").await.json()["images"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        app.scalar(&format!("SELECT status FROM image_locations WHERE image_id = '{id}'")).await,
        "active"
    );
    assert_eq!(app.stored_files(), [id.as_str()]);
    let report = app.services.data.scrub().await.expect("scrubs");
    assert_eq!((report.removed, report.failed, report.deferred), (0, 0, 0), "nothing waits");

    // Once the clones are gone, the delete goes through.
    in_use.store(false, Ordering::SeqCst);
    app.delete(&path).await.assert_status(204);
    app.get(&path).await.assert_status(404);
    assert!(app.stored_files().is_empty());
});

all_databases!(fn a_deactivated_image_in_use_stays_deactivated(app) {
    let (app, _in_use) = with_clones(app);
    let id = active_image(&app, b"x").await;
    let path = format!("/v2/images/{id}");
    app.post(&format!("{path}/actions/deactivate"), &serde_json::json!(null)).await.assert_status(204);
    app.delete(&path).await.assert_status(409);
    assert_eq!(app.get(&path).await.json()["status"], "deactivated");
});

all_databases!(fn the_scrubber_puts_off_data_in_use_and_tries_less_often(app, "[DEFAULT]\ndelayed_delete = true\n") {
    let (app, in_use) = with_clones(app);
    let id = active_image(&app, b"still cloned").await;
    app.delete(&format!("/v2/images/{id}")).await.assert_status(204);
    let location = app.scalar(&format!("SELECT CAST(id AS TEXT) FROM image_locations WHERE image_id = '{id}'")).await;
    let deferral = |column: &str| format!("SELECT CAST({column} AS TEXT) FROM glint_scrub_deferrals WHERE location_id = {location}");

    let first = app.services.data.scrub().await.expect("scrubs");
    assert_eq!((first.removed, first.failed, first.deferred), (0, 0, 1));
    assert_eq!(app.scalar(&deferral("attempts")).await, "1");
    assert!(app.scalar(&deferral("reason")).await.contains("1 clone"));
    // Not due yet: the next pass leaves it alone.
    let second = app.services.data.scrub().await.expect("scrubs");
    assert_eq!((second.removed, second.failed, second.deferred), (0, 0, 0));

    // Due again (as if the wait had passed): refused again, and the wait grows.
    app.execute(&format!("UPDATE glint_scrub_deferrals SET retry_at = '2000-01-01 00:00:00' WHERE location_id = {location}")).await;
    let third = app.services.data.scrub().await.expect("scrubs");
    assert_eq!(third.deferred, 1);
    assert_eq!(app.scalar(&deferral("attempts")).await, "2");
    let retry_at = app.scalar(&deferral("retry_at")).await;
    let retry_at = chrono::NaiveDateTime::parse_from_str(&retry_at[..19], "%Y-%m-%d %H:%M:%S").expect("timestamp");
    let wait = retry_at - chrono::Utc::now().naive_utc();
    assert!(wait > chrono::Duration::minutes(9) && wait <= chrono::Duration::minutes(10), "second wait is 10 min: {wait}");
    assert_eq!(app.stored_files(), [id.as_str()], "the data stays while in use");

    // Clones gone and the retry due: the data goes, and so does the bookkeeping.
    in_use.store(false, Ordering::SeqCst);
    app.execute(&format!("UPDATE glint_scrub_deferrals SET retry_at = '2000-01-01 00:00:00' WHERE location_id = {location}")).await;
    let last = app.services.data.scrub().await.expect("scrubs");
    assert_eq!((last.removed, last.failed, last.deferred), (1, 0, 0));
    assert!(app.stored_files().is_empty());
    assert_eq!(app.scalar("SELECT CAST(COUNT(*) AS TEXT) FROM glint_scrub_deferrals").await, "0");
    assert_eq!(app.scalar(&format!("SELECT status FROM images WHERE id = '{id}'")).await, "deleted");
});

all_databases!(fn a_refused_delete_keeps_the_copies_not_yet_removed(app, "[DEFAULT]\nenabled_backends = fast:file, cheap:file\n[glance_store]\ndefault_backend = fast\n") {
    // Only the `cheap` store's copy is in use.
    let in_use = Arc::new(AtomicBool::new(true));
    let flag = in_use.clone();
    let app = app.wrap_stores(move |inner| {
        if inner.name() == "cheap" {
            Arc::new(Clones { inner, in_use: flag.clone() })
        } else {
            inner
        }
    });
    let id = active_image(&app, b"two copies").await;
    let cheap_dir = app.data_dir().join("cheap");
    std::fs::create_dir_all(&cheap_dir).expect("dir");
    let cheap_dir = std::fs::canonicalize(cheap_dir).expect("dir");
    std::fs::write(cheap_dir.join(&id), b"two copies").expect("writes");
    app.execute(&format!(
        "INSERT INTO image_locations (image_id, value, meta_data, status, created_at, updated_at, deleted) \
         VALUES ('{id}', 'file://{}/{id}', '{{\"store\": \"cheap\"}}', 'active', '2026-01-01 00:00:00', '2026-01-01 00:00:00', false)",
        cheap_dir.display()
    ))
    .await;

    let path = format!("/v2/images/{id}");
    app.delete(&path).await.assert_status(409);
    // The `fast` copy went before `cheap` refused; the image stays with what is left.
    let image = app.get(&path).await.json();
    assert_eq!((image["status"].as_str(), image["stores"].as_str()), (Some("active"), Some("cheap")));
    assert_eq!(app.get(&format!("{path}/file")).await.body, b"two copies");
    assert!(crate::helpers::files_in(&app.data_dir().join("fast")).is_empty());

    in_use.store(false, Ordering::SeqCst);
    app.delete(&path).await.assert_status(204);
    assert!(crate::helpers::files_in(&cheap_dir).is_empty());
});
