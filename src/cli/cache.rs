//! `glint cache list|prune|clean`: this node's image cache (`image_cache_dir`) and its
//! records in the shared database, as the cache API shows and changes them, without a
//! running server (Glance's glance-cache-pruner and glance-cache-cleaner).

use std::sync::Arc;

use crate::cache::ImageCache;
use crate::config::Config;

/// What `glint cache` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheAction {
    List,
    Prune,
    Clean,
}

pub async fn cache(config: &Config, action: CacheAction) -> Result<(), String> {
    let database = super::open(config).await?;
    super::schema::ready_to_scrub(&database).await?;
    let result = run(config, &database, action).await;
    database.close().await;
    result
}

async fn run(
    config: &Config,
    database: &crate::db::Database,
    action: CacheAction,
) -> Result<(), String> {
    let cache: Arc<ImageCache> = ImageCache::new(&config.cache, database.cache_repo())
        .map_err(|e| e.to_string())?
        .ok_or("no image cache here: [DEFAULT] image_cache_dir is not set")?;
    cache.register().await.map_err(|e| e.to_string())?;
    match action {
        CacheAction::List => {
            let state = cache.state().await.map_err(|e| e.to_string())?;
            println!(
                "image cache of {} in {}",
                cache.node(),
                cache.dir().display()
            );
            println!(
                "{:<36}  {:>14}  {:>6}  {:<19}  {:<19}",
                "image", "size", "hits", "last accessed", "last modified"
            );
            for entry in &state.cached {
                println!(
                    "{:<36}  {:>14}  {:>6}  {:<19}  {:<19}",
                    entry.image_id,
                    entry.size,
                    entry.hits,
                    entry.last_accessed.format("%Y-%m-%d %H:%M:%S"),
                    entry.last_modified.format("%Y-%m-%d %H:%M:%S"),
                );
            }
            println!(
                "{} cached image(s), {} queued{}",
                state.cached.len(),
                state.queued.len(),
                if state.queued.is_empty() {
                    String::new()
                } else {
                    format!(": {}", state.queued.join(", "))
                }
            );
        }
        CacheAction::Prune => {
            let pruned = cache.prune().await.map_err(|e| e.to_string())?;
            println!("pruned {} file(s), {} bytes", pruned.files, pruned.bytes);
        }
        CacheAction::Clean => {
            cache.clean().await.map_err(|e| e.to_string())?;
            println!("removed invalid and stalled cache files");
        }
    }
    Ok(())
}
