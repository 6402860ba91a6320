//! Writing an image object. A small announced image is one PUT; anything else is written as
//! segments, each a PUT streamed as the data arrives, then joined by a manifest (SLO where
//! the cluster has it, else DLO). The data reaches Swift through a queue of a few chunks, so
//! a slow Swift slows the client and memory stays flat whatever the segment size.
//!
//! Nothing is visible under the image's name before `commit`: a single PUT's body ends only
//! there, and a large object exists only once its manifest is written. Both are written with
//! `If-None-Match: *`, so data already there is never replaced.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use glint_store::{Chunk, ImageWriter, Location, StoreError, Stored, WriteOptions};
use http::{Method, StatusCode};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::auth::Auth;
use crate::client::{status_error, Answer, Target};
use crate::config::SwiftConfig;
use crate::{ClusterInfo, Shared};
use glint_store::net::body::{Feed, Piece, StreamBody};

/// Where the segments of uploads live: `glint-segments/<image id>/<attempt>/<n>`.
pub(crate) const SEGMENT_PREFIX: &str = "glint-segments";
/// Where the markers of running segmented uploads live: `glint-uploads/<image id>/<attempt>`.
pub(crate) const MARKER_PREFIX: &str = "glint-uploads";
/// A live upload rewrites its marker this often, so the sweep (which spares markers younger
/// than its age, 15 minutes and more) never takes it for abandoned.
const MARKER_REFRESH: Duration = Duration::from_secs(60);
/// Pieces queued for a PUT's body.
const BODY_DEPTH: usize = 2;
/// Segments whose body has ended and whose answer is awaited while the next one streams.
const FINISHING: usize = 2;
/// Image bytes a writer holds: the queued pieces and the one being sent, each at most a
/// chunk of about 1 MiB.
pub(crate) const BUFFER: u64 = (BODY_DEPTH as u64 + 1) << 20;

/// The names of one upload's segments start with this.
fn segment_prefix(image_id: &str, attempt: &str) -> String {
    format!("{SEGMENT_PREFIX}/{image_id}/{attempt}/")
}

/// How an image is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// One object of the announced size.
    Single { size: u64 },
    /// Segments of `segment_size` (the last one shorter), joined by a static (`slo`) or
    /// dynamic manifest.
    Segmented {
        segment_size: u64,
        announced: Option<u64>,
        slo: bool,
    },
}

impl Plan {
    pub(crate) fn new(
        config: &SwiftConfig,
        info: &ClusterInfo,
        options: &WriteOptions,
    ) -> Result<Plan, StoreError> {
        let single_limit = config.large_object_size.min(info.max_object);
        if let Some(size) = options.size.filter(|s| *s < single_limit) {
            return Ok(Plan::Single { size });
        }
        // Segments of the configured size, larger when a manifest could not list them all
        // (at most what one object may hold).
        let expected = options.size.unwrap_or(options.max_size);
        let needed = expected.div_ceil(info.max_segments.max(1));
        let segment_size = config
            .large_object_chunk_size
            .max(needed)
            .min(info.max_object)
            .max(1);
        if expected.div_ceil(segment_size) > info.max_segments {
            return Err(StoreError::Unsupported {
                store: config.name.clone(),
                what: "images this large (more segments than a manifest may list)",
            });
        }
        Ok(Plan::Segmented {
            segment_size,
            announced: options.size,
            slo: info.slo,
        })
    }
}

/// Swift's answer to a PUT, awaited in the background.
type PendingAnswer = JoinHandle<Result<Answer, StoreError>>;

/// A PUT whose body is being streamed.
struct OpenPut {
    feed: mpsc::Sender<Feed>,
    /// Taken once read (a request that ended early is read where the feeding failed).
    answer: Option<PendingAnswer>,
    /// Bytes fed so far.
    fed: u64,
}

impl OpenPut {
    async fn send(&mut self, piece: Piece, store: &str) -> Result<(), StoreError> {
        let len = (piece.end - piece.start) as u64;
        if self.feed.send(Feed::Data(piece)).await.is_err() {
            // The request ended early: its answer says why.
            return Err(match self.answer.take() {
                Some(answer) => match answer.await {
                    Ok(Ok(answer)) => status_error(store, "an upload", &answer),
                    Ok(Err(e)) => e,
                    Err(join) => StoreError::Backend {
                        store: store.to_owned(),
                        source: Box::new(join),
                    },
                },
                None => StoreError::Backend {
                    store: store.to_owned(),
                    source: "the upload's request had ended".into(),
                },
            });
        }
        self.fed += len;
        Ok(())
    }

    /// Ends the body and waits for Swift's answer.
    async fn finish(self, store: &str) -> Result<Answer, StoreError> {
        // A closed queue means the request already ended; its answer tells how.
        let _ = self.feed.send(Feed::End).await;
        match self.answer {
            Some(answer) => match answer.await {
                Ok(answer) => answer,
                Err(join) => Err(StoreError::Backend {
                    store: store.to_owned(),
                    source: Box::new(join),
                }),
            },
            None => Err(StoreError::Backend {
                store: store.to_owned(),
                source: "the upload's request had ended".into(),
            }),
        }
    }
}

/// A segment stored: its name, Swift's ETag of it, its size.
#[derive(Debug, Clone)]
struct Segment {
    name: String,
    etag: String,
    size: u64,
}

struct Segmented {
    attempt: String,
    segment_size: u64,
    announced: Option<u64>,
    slo: bool,
    marker_written: Instant,
    current: Option<(usize, OpenPut)>,
    next: usize,
    finishing: VecDeque<(usize, u64, Option<PendingAnswer>)>,
    done: Vec<(usize, Segment)>,
}

enum Mode {
    /// One PUT; its last byte is held back until `commit`, since Swift stores an object as
    /// soon as the `Content-Length` it was announced has arrived.
    Single {
        size: u64,
        put: Option<OpenPut>,
        last: Option<Piece>,
    },
    Segmented(Box<Segmented>),
}

pub(crate) struct SwiftWriter {
    shared: Arc<Shared>,
    auth: Arc<Auth>,
    image_id: String,
    container: String,
    /// Where the data will be found once committed.
    location: Location,
    written: u64,
    mode: Mode,
}

impl SwiftWriter {
    pub(crate) async fn start(
        shared: Arc<Shared>,
        auth: Arc<Auth>,
        image_id: &str,
        container: String,
        location: Location,
        plan: Plan,
    ) -> Result<SwiftWriter, StoreError> {
        let mode = match plan {
            Plan::Single { size } => Mode::Single {
                size,
                put: None,
                last: None,
            },
            Plan::Segmented {
                segment_size,
                announced,
                slo,
            } => Mode::Segmented(Box::new(Segmented {
                attempt: uuid::Uuid::new_v4().simple().to_string(),
                segment_size,
                announced,
                slo,
                marker_written: Instant::now(),
                current: None,
                next: 1,
                finishing: VecDeque::new(),
                done: Vec::new(),
            })),
        };
        let writer = SwiftWriter {
            shared,
            auth,
            image_id: image_id.to_owned(),
            container,
            location,
            written: 0,
            mode,
        };
        if let Mode::Segmented(s) = &writer.mode {
            writer.write_marker(&s.attempt).await?;
        }
        Ok(writer)
    }

    fn store(&self) -> &str {
        &self.shared.config.name
    }

    fn marker(&self, attempt: &str) -> String {
        format!("{MARKER_PREFIX}/{}/{attempt}", self.image_id)
    }

    fn segment_prefix(&self, attempt: &str) -> String {
        segment_prefix(&self.image_id, attempt)
    }

    async fn write_marker(&self, attempt: &str) -> Result<(), StoreError> {
        let marker = self.marker(attempt);
        let answer = self
            .shared
            .swift
            .call(
                &self.auth,
                Method::PUT,
                Target::object(&self.container, &marker),
                &[("content-type", "application/json")],
                Bytes::from(serde_json::json!({"image_id": self.image_id}).to_string()),
            )
            .await?;
        if answer.status.is_success() {
            Ok(())
        } else {
            Err(status_error(self.store(), &marker, &answer))
        }
    }

    async fn remove_marker(&self, attempt: &str) {
        match self
            .shared
            .delete_object(&self.auth, &self.container, &self.marker(attempt))
            .await
        {
            Ok(()) | Err(StoreError::NotFound(_)) => {}
            Err(e) => tracing::warn!(store.name = %self.store(), error = %e,
                "cannot remove a finished upload's marker; the sweep will"),
        }
    }

    /// Starts a streamed PUT of `object` (`size` bytes if known), with a token that will not
    /// run out soon: a long upload renews it between segments.
    async fn open_put(
        &self,
        object: &str,
        size: Option<u64>,
        exclusive: bool,
    ) -> Result<OpenPut, StoreError> {
        let token = self.auth.token(&self.shared.swift.unpooled).await?;
        let (feed, body) = StreamBody::new(size, BODY_DEPTH);
        let length = size.map(|s| s.to_string());
        let mut headers = vec![("content-type", "application/octet-stream")];
        if let Some(length) = &length {
            headers.push(("content-length", length.as_str()));
        }
        if exclusive {
            headers.push(("if-none-match", "*"));
        }
        let answer = self.shared.swift.put_stream(
            &token,
            Target::object(&self.container, object),
            &headers,
            body,
        )?;
        Ok(OpenPut {
            feed,
            answer: Some(answer),
            fed: 0,
        })
    }

    /// Writes `chunk` into segments, opening and closing them at their boundaries.
    async fn write_segments(&mut self, chunk: Chunk) -> Result<(), StoreError> {
        let store = self.shared.config.name.clone();
        let mut at = 0;
        while at < chunk.len() {
            let Mode::Segmented(s) = &mut self.mode else {
                return Ok(());
            };
            if s.current.is_none() {
                let index = s.next;
                s.next += 1;
                let offset = (index as u64 - 1) * s.segment_size;
                let size = s
                    .announced
                    .map(|total| total.saturating_sub(offset).min(s.segment_size));
                let name = format!("{}{index:08}", segment_prefix(&self.image_id, &s.attempt));
                let put = self.open_put(&name, size, false).await?;
                let Mode::Segmented(s) = &mut self.mode else {
                    return Ok(());
                };
                s.current = Some((index, put));
            }
            let Mode::Segmented(s) = &mut self.mode else {
                return Ok(());
            };
            let Some((_, put)) = s.current.as_mut() else {
                return Ok(());
            };
            let room = (s.segment_size - put.fed) as usize;
            let take = room.min(chunk.len() - at);
            put.send(
                Piece {
                    chunk: chunk.clone(),
                    start: at,
                    end: at + take,
                },
                &store,
            )
            .await?;
            at += take;
            if put.fed == s.segment_size {
                self.close_segment().await?;
            }
        }
        Ok(())
    }

    /// Ends the body of the segment being written; its answer is collected later, while the
    /// next one streams.
    async fn close_segment(&mut self) -> Result<(), StoreError> {
        let Mode::Segmented(s) = &mut self.mode else {
            return Ok(());
        };
        let Some((index, put)) = s.current.take() else {
            return Ok(());
        };
        // A closed queue means the request already ended: its answer says how.
        let _ = put.feed.send(Feed::End).await;
        s.finishing.push_back((index, put.fed, put.answer));
        while matches!(&self.mode, Mode::Segmented(s) if s.finishing.len() > FINISHING) {
            self.collect_segment().await?;
        }
        Ok(())
    }

    async fn collect_segment(&mut self) -> Result<(), StoreError> {
        let store = self.shared.config.name.clone();
        let Mode::Segmented(s) = &mut self.mode else {
            return Ok(());
        };
        let Some((index, size, answer)) = s.finishing.pop_front() else {
            return Ok(());
        };
        let name = format!("{}{index:08}", segment_prefix(&self.image_id, &s.attempt));
        let answer = match answer {
            Some(answer) => match answer.await {
                Ok(answer) => answer?,
                Err(join) => {
                    return Err(StoreError::Backend {
                        store,
                        source: Box::new(join),
                    })
                }
            },
            None => {
                return Err(StoreError::Backend {
                    store,
                    source: format!("the request of {name} had ended").into(),
                })
            }
        };
        if !answer.status.is_success() {
            return Err(status_error(&store, &name, &answer));
        }
        let etag = answer
            .header("etag")
            .unwrap_or_default()
            .trim_matches('"')
            .to_owned();
        let Mode::Segmented(s) = &mut self.mode else {
            return Ok(());
        };
        s.done.push((index, Segment { name, etag, size }));
        Ok(())
    }

    async fn refresh_marker(&mut self) -> Result<(), StoreError> {
        let Mode::Segmented(s) = &self.mode else {
            return Ok(());
        };
        // A slow client fills segments slowly: the marker is kept fresh by time, not by
        // segments, so the sweep never takes a live upload for abandoned.
        if s.marker_written.elapsed() < MARKER_REFRESH {
            return Ok(());
        }
        let attempt = s.attempt.clone();
        self.write_marker(&attempt).await?;
        if let Mode::Segmented(s) = &mut self.mode {
            s.marker_written = Instant::now();
        }
        Ok(())
    }

    /// Writes the manifest that makes the segments one object; returns Swift's answer.
    async fn write_manifest(&mut self) -> Result<Answer, StoreError> {
        let Mode::Segmented(s) = &mut self.mode else {
            return Err(StoreError::Backend {
                store: self.shared.config.name.clone(),
                source: "a manifest for a single object".into(),
            });
        };
        s.done.sort_by_key(|(index, _)| *index);
        let target = Target::object(&self.container, &self.image_id);
        let answer = if s.done.is_empty() {
            // No data: a plain empty object (SLO wants at least one segment).
            self.shared
                .swift
                .call(
                    &self.auth,
                    Method::PUT,
                    target,
                    &[("if-none-match", "*")],
                    Bytes::new(),
                )
                .await?
        } else if s.slo {
            let manifest: Vec<serde_json::Value> = s
                .done
                .iter()
                .map(|(_, segment)| {
                    serde_json::json!({
                        "path": format!("/{}/{}", self.container, segment.name),
                        "etag": segment.etag,
                        "size_bytes": segment.size,
                    })
                })
                .collect();
            self.shared
                .swift
                .call(
                    &self.auth,
                    Method::PUT,
                    target.with_query("multipart-manifest=put"),
                    &[
                        ("if-none-match", "*"),
                        ("content-type", "application/octet-stream"),
                    ],
                    Bytes::from(serde_json::Value::from(manifest).to_string()),
                )
                .await?
        } else {
            let prefix = format!(
                "{}/{}",
                self.container,
                segment_prefix(&self.image_id, &s.attempt)
            );
            self.shared
                .swift
                .call(
                    &self.auth,
                    Method::PUT,
                    target,
                    &[
                        ("if-none-match", "*"),
                        ("x-object-manifest", prefix.as_str()),
                        ("content-type", "application/octet-stream"),
                    ],
                    Bytes::new(),
                )
                .await?
        };
        if answer.status.is_success() {
            Ok(answer)
        } else {
            let location = self.location.uri();
            Err(status_error(self.store(), &location, &answer))
        }
    }

    /// Whether the object now under the image's name is the one this writer's PUT stored
    /// (its ETag): two uploads of one image that both began before either finished both pass
    /// `If-None-Match`, and Swift keeps the one that began last, whichever finished last.
    async fn check_won(&self, etag: Option<&str>) -> Result<(), StoreError> {
        let head = self
            .shared
            .head(&self.auth, &self.container, &self.image_id)
            .await?;
        let ours = etag.map(|e| e.trim_matches('"'));
        let stored = head.header("etag").map(|e| e.trim_matches('"'));
        if head.status.is_success() && ours.is_some() && ours == stored {
            Ok(())
        } else {
            Err(StoreError::AlreadyExists(self.location.uri()))
        }
    }

    async fn commit_segments(&mut self) -> Result<(), StoreError> {
        self.close_segment().await?;
        while matches!(&self.mode, Mode::Segmented(s) if !s.finishing.is_empty()) {
            self.collect_segment().await?;
        }
        let answer = self.write_manifest().await?;
        // As for a single PUT: the manifest stored must be this upload's. A static one (and
        // an empty object) has the ETag Swift answered; a dynamic one names this upload's
        // segments.
        let Mode::Segmented(s) = &self.mode else {
            return Ok(());
        };
        if s.slo || s.done.is_empty() {
            self.check_won(answer.header("etag")).await?;
        } else {
            let prefix = segment_prefix(&self.image_id, &s.attempt);
            let won = crate::listing::manifest_names(
                &self.shared,
                &self.auth,
                &self.container,
                &self.image_id,
                &prefix,
            )
            .await?;
            if !won {
                return Err(StoreError::AlreadyExists(self.location.uri()));
            }
        }
        if let Mode::Segmented(s) = &self.mode {
            self.remove_marker(&s.attempt.clone()).await;
        }
        Ok(())
    }

    /// Stops every PUT still open and removes the segments stored and the marker; failures
    /// are left to the sweep.
    async fn discard(&mut self) {
        let Mode::Segmented(s) = &mut self.mode else {
            if let Mode::Single { put, .. } = &mut self.mode {
                // Dropping the queue without `End` fails the body: Swift keeps nothing.
                if let Some(put) = put.take() {
                    drop(put.feed);
                    if let Some(answer) = put.answer {
                        let _ = answer.await;
                    }
                }
            }
            return;
        };
        if let Some((_, put)) = s.current.take() {
            drop(put.feed);
            if let Some(answer) = put.answer {
                let _ = answer.await;
            }
        }
        let attempt = s.attempt.clone();
        // Segments whose body had ended may be stored: wait for them, then remove all.
        while let Some((_, _, answer)) = s.finishing.pop_front() {
            if let Some(answer) = answer {
                let _ = answer.await;
            }
        }
        let prefix = self.segment_prefix(&attempt);
        // The marker stays until every segment is gone, for the sweep to find them.
        if let Err(e) = self
            .shared
            .delete_prefix(&self.auth, &self.container, &prefix)
            .await
        {
            tracing::warn!(store.name = %self.store(), error = %e,
                "cannot remove an unfinished upload's segments; the sweep will");
            return;
        }
        self.remove_marker(&attempt).await;
    }
}

#[async_trait]
impl ImageWriter for SwiftWriter {
    async fn write(&mut self, chunk: Chunk) -> Result<(), StoreError> {
        if chunk.is_empty() {
            return Ok(());
        }
        self.written += chunk.len() as u64;
        let store = self.shared.config.name.clone();
        match &mut self.mode {
            Mode::Single { size, put, .. } => {
                if self.written > *size {
                    return Err(StoreError::Backend {
                        store,
                        source: "more data than the announced size".into(),
                    });
                }
                let size = *size;
                if put.is_none() {
                    let opened = self.open_put(&self.image_id, Some(size), true).await?;
                    if let Mode::Single { put, .. } = &mut self.mode {
                        *put = Some(opened);
                    }
                }
                let complete = self.written == size;
                if let Mode::Single {
                    put: Some(put),
                    last,
                    ..
                } = &mut self.mode
                {
                    let end = chunk.len();
                    let held = if complete { end - 1 } else { end };
                    if held > 0 {
                        let piece = Piece {
                            chunk: chunk.clone(),
                            start: 0,
                            end: held,
                        };
                        put.send(piece, &store).await?;
                    }
                    if complete {
                        *last = Some(Piece {
                            chunk,
                            start: held,
                            end,
                        });
                    }
                }
                Ok(())
            }
            Mode::Segmented(_) => {
                self.write_segments(chunk).await?;
                self.refresh_marker().await
            }
        }
    }

    async fn commit(mut self: Box<Self>) -> Result<Stored, StoreError> {
        let store = self.shared.config.name.clone();
        let location = self.location.clone();
        let result = match &mut self.mode {
            Mode::Single { size, put, last } => {
                if self.written != *size {
                    Err(StoreError::Backend {
                        store: store.clone(),
                        source: format!("{} bytes written of {size} announced", self.written)
                            .into(),
                    })
                } else {
                    let (put, last) = (put.take(), last.take());
                    let mut put = match put {
                        Some(put) => put,
                        None => self.open_put(&self.image_id, Some(0), true).await?,
                    };
                    let sent = match last {
                        Some(piece) => put.send(piece, &store).await,
                        None => Ok(()),
                    };
                    match async {
                        sent?;
                        put.finish(&store).await
                    }
                    .await
                    {
                        Ok(answer) if answer.status == StatusCode::CREATED => {
                            self.check_won(answer.header("etag")).await
                        }
                        Ok(answer) => Err(status_error(&store, &location.uri(), &answer)),
                        Err(e) => Err(e),
                    }
                }
            }
            Mode::Segmented(_) => self.commit_segments().await,
        };
        if let Err(e) = result {
            // A failed commit leaves nothing behind.
            self.discard().await;
            return Err(e);
        }
        Ok(Stored {
            location,
            size: self.written,
        })
    }

    async fn abort(mut self: Box<Self>) -> Result<(), StoreError> {
        self.discard().await;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SWIFT_MB;

    fn config() -> SwiftConfig {
        SwiftConfig {
            create_container_on_put: false,
            ..crate::config::defaults_for_tests("glance")
        }
    }

    fn options(size: Option<u64>) -> WriteOptions {
        WriteOptions {
            size,
            max_size: 1 << 40,
            memory: 128 << 20,
        }
    }

    #[test]
    fn plans_follow_the_sizes_and_the_cluster() {
        let slo = ClusterInfo {
            slo: true,
            max_segments: 1000,
            max_object: 5 << 30,
        };
        let config = config();
        assert_eq!(
            Plan::new(&config, &slo, &options(Some(10))).ok(),
            Some(Plan::Single { size: 10 })
        );
        // At the threshold, segments (Glance: "≥").
        assert!(matches!(
            Plan::new(&config, &slo, &options(Some(5120 * SWIFT_MB))),
            Ok(Plan::Segmented { segment_size, .. }) if segment_size == 200 * SWIFT_MB
        ));
        // No size: segments large enough for the cap within 1000 of them.
        assert!(matches!(
            Plan::new(&config, &slo, &options(None)),
            Ok(Plan::Segmented { segment_size, announced: None, slo: true })
                if segment_size == (1u64 << 40).div_ceil(1000)
        ));
        // A cluster whose objects are small keeps single PUTs below its own limit.
        let small = ClusterInfo {
            max_object: 1 << 20,
            ..ClusterInfo::default()
        };
        assert!(matches!(
            Plan::new(&config, &small, &options(Some(2 << 20))),
            Ok(Plan::Segmented { segment_size, slo: false, .. }) if segment_size == 1 << 20
        ));
        assert!(matches!(
            Plan::new(&config, &small, &options(Some(1 << 40))),
            Err(StoreError::Unsupported { .. })
        ));
    }
}
