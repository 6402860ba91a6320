//! How an upload goes into S3: one PUT, or a multipart upload with parts sized from what is
//! known (the announced size, else the most the image may be) and as many in flight as the
//! memory it is given allows.

use glint_store::{StoreError, WriteOptions};

use crate::config::S3Config;

/// S3's limits on multipart uploads.
pub(crate) const MAX_PARTS: u64 = 10_000;
pub(crate) const MIN_PART: u64 = 5 << 20;
pub(crate) const MAX_PART: u64 = 5 << 30;
const MIB: u64 = 1 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// The whole (announced, small) object buffered and sent in one PUT.
    Single { size: u64 },
    /// Parts of `part_size` (the last one shorter), `in_flight` of them uploading while the
    /// next fills. `max_size` is the most these parts can carry.
    Multipart {
        part_size: u64,
        in_flight: usize,
        max_size: u64,
    },
}

impl Plan {
    pub(crate) fn new(config: &S3Config, options: &WriteOptions) -> Result<Plan, StoreError> {
        // One PUT holds the whole image until it is sent: only for small images that fit this
        // upload's usual share of the memory (a quarter, so several run side by side).
        if let Some(size) = options.size {
            if size < config.large_object_size && size <= options.memory / 4 {
                return Ok(Plan::Single { size });
            }
        }
        let chunk = config.large_object_chunk_size.max(MIN_PART);
        let needed = options.size.unwrap_or(options.max_size).div_ceil(MAX_PARTS);
        let mut part_size = round_up_mib(chunk.max(needed)).min(MAX_PART);
        // One part filling, the others uploading, within the same share.
        let share = options.memory / 4;
        let mut in_flight = usize::try_from((share / part_size).saturating_sub(1))
            .unwrap_or(usize::MAX)
            .min(config.thread_pools.max(1));
        if in_flight == 0 {
            // Smaller parts than the size asks for, one in flight, still within the share (or,
            // with a small budget, half the memory): the upload is then capped at what 10,000
            // of them hold, which `check_store_buffers` reports at start-up.
            let room = if share >= 2 * MIN_PART {
                share
            } else {
                options.memory
            };
            if room / 2 >= MIN_PART {
                part_size = part_size.min(room / 2 / MIB * MIB).max(MIN_PART);
                in_flight = 1;
            } else {
                return Err(StoreError::Misconfigured {
                    store: config.name.clone(),
                    why: format!(
                        "upload_memory_budget leaves {} MiB per upload; S3 parts need at least {} MiB",
                        options.memory / MIB,
                        2 * MIN_PART / MIB
                    ),
                });
            }
        }
        let max_size = part_size.saturating_mul(MAX_PARTS);
        if options.size.is_some_and(|size| size > max_size) {
            return Err(StoreError::Unsupported {
                store: config.name.clone(),
                what: "an image this large within upload_memory_budget (raise it: S3 allows 10,000 parts)",
            });
        }
        Ok(Plan::Multipart {
            part_size,
            in_flight,
            max_size,
        })
    }

    /// Image bytes a writer following this plan holds at most.
    pub(crate) fn buffer(&self) -> u64 {
        match *self {
            Plan::Single { size } => size,
            Plan::Multipart {
                part_size,
                in_flight,
                ..
            } => part_size.saturating_mul(in_flight as u64 + 1),
        }
    }
}

fn round_up_mib(bytes: u64) -> u64 {
    bytes.div_ceil(MIB).saturating_mul(MIB)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Secret, UrlFormat};

    fn config() -> S3Config {
        S3Config {
            name: "s3".into(),
            host: "h".into(),
            region: None,
            access_key: "a".into(),
            secret_key: Secret("s".into()),
            bucket: "b".into(),
            create_bucket_on_put: false,
            url_format: UrlFormat::Auto,
            large_object_size: 100 * MIB,
            large_object_chunk_size: 10 * MIB,
            thread_pools: 10,
            cacert: None,
        }
    }

    fn plan(size: Option<u64>, max_size: u64, memory: u64) -> Result<Plan, StoreError> {
        Plan::new(
            &config(),
            &WriteOptions {
                size,
                max_size,
                memory,
            },
        )
    }

    #[test]
    fn small_announced_images_go_in_one_put() {
        assert_eq!(
            plan(Some(1000), 1 << 40, 124 * MIB).ok(),
            Some(Plan::Single { size: 1000 })
        );
        assert_eq!(
            plan(Some(0), 1 << 40, 124 * MIB).ok(),
            Some(Plan::Single { size: 0 })
        );
    }

    #[test]
    fn parts_cover_the_announced_size_within_the_memory() {
        // 1 GiB: Glance's 10 MiB parts, as many in flight as a quarter of the memory holds.
        let Ok(Plan::Multipart {
            part_size,
            in_flight,
            ..
        }) = plan(Some(1 << 30), 1 << 40, 124 * MIB)
        else {
            panic!("multipart")
        };
        assert_eq!((part_size, in_flight), (10 * MIB, 2));
        // 1 TiB announced: parts of at least 1 TiB / 10,000.
        let Ok(Plan::Multipart {
            part_size,
            max_size,
            ..
        }) = plan(Some(1 << 40), 1 << 40, 1 << 30)
        else {
            panic!("multipart")
        };
        assert!(part_size * MAX_PARTS >= 1 << 40 && max_size >= 1 << 40);
    }

    #[test]
    fn unknown_sizes_are_sized_for_the_cap_or_capped_by_the_memory() {
        let Ok(Plan::Multipart {
            part_size,
            max_size,
            in_flight,
        }) = plan(None, 1 << 40, 124 * MIB)
        else {
            panic!("multipart")
        };
        assert_eq!(in_flight, 1);
        assert!(2 * part_size <= 124 * MIB, "fits the memory");
        assert_eq!(max_size, part_size * MAX_PARTS);
        // Too little memory for two minimal parts is a configuration error.
        assert!(matches!(
            plan(None, 1 << 40, 8 * MIB),
            Err(StoreError::Misconfigured { .. })
        ));
    }

    #[test]
    fn the_buffer_never_exceeds_the_memory() {
        for size in [
            None,
            Some(0),
            Some(MIB),
            Some(99 * MIB),
            Some(1 << 30),
            Some(1 << 40),
        ] {
            for memory in [12 * MIB, 64 * MIB, 124 * MIB, 1 << 30, 8 << 30] {
                if let Ok(plan) = plan(size, 1 << 40, memory) {
                    assert!(plan.buffer() <= memory, "{plan:?} in {memory}");
                }
            }
        }
    }
}
