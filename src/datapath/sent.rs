//! `image.send`: Glance's notice that a download ran to its end, with the bytes sent, INFO
//! when they are the whole answer and ERROR when the data ended short. A download that fails or whose client
//! hangs up before the end sends none, as in Glance (its generator never reaches the notice).

use std::pin::Pin;
use std::task::{Context, Poll};

use futures_util::Stream;
use serde_json::Map;

use super::download::DataStream;
use crate::domain::events::Priority;
use crate::domain::image::Image;
use crate::domain::{ImageService, RequestContext};

/// `body`, sending `image.send` once it has been read to its end.
pub(super) fn notify_when_sent(
    body: DataStream,
    images: &ImageService,
    ctx: &RequestContext,
    image: &Image,
    expected: u64,
) -> DataStream {
    if !images.events().enabled("image.send") {
        return body;
    }
    Box::pin(Sent {
        body,
        sent: 0,
        expected,
        notice: Some(Notice {
            images: images.clone(),
            ctx: ctx.clone(),
            image_id: image.id.to_string(),
            owner: image.owner.clone(),
        }),
    })
}

struct Notice {
    images: ImageService,
    ctx: RequestContext,
    image_id: String,
    owner: Option<String>,
}

struct Sent {
    body: DataStream,
    sent: u64,
    expected: u64,
    /// Taken when sent.
    notice: Option<Notice>,
}

impl Stream for Sent {
    type Item = std::io::Result<bytes::Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let polled = self.body.as_mut().poll_next(cx);
        let ended = match &polled {
            // The server stops reading once `Content-Length` bytes are out, so the last byte,
            // not the stream's end, is when a whole download is done.
            Poll::Ready(Some(Ok(bytes))) => {
                self.sent += bytes.len() as u64;
                self.sent >= self.expected
            }
            // A failed read ends the download without a notice.
            Poll::Ready(Some(Err(_))) => {
                self.notice = None;
                false
            }
            Poll::Ready(None) => true,
            Poll::Pending => false,
        };
        if ended {
            if let Some(notice) = self.notice.take() {
                let priority = if self.sent == self.expected {
                    Priority::Info
                } else {
                    Priority::Error
                };
                let sent = self.sent;
                notice
                    .images
                    .notify(&notice.ctx, "image.send", priority, || {
                        let mut payload = Map::new();
                        payload.insert("bytes_sent".into(), sent.into());
                        payload.insert("image_id".into(), notice.image_id.clone().into());
                        payload.insert("owner_id".into(), notice.owner.clone().into());
                        payload.insert(
                            "receiver_tenant_id".into(),
                            notice.ctx.project_id.clone().into(),
                        );
                        payload
                            .insert("receiver_user_id".into(), notice.ctx.user_id.clone().into());
                        payload
                    });
            }
        }
        polled
    }
}
