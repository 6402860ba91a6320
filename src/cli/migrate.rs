//! `glint image copy` and `glint migrate`: copies of image data between stores through the
//! data path's verified copy (`DataService::copy_image`), several at once, with progress.
//!
//! A migration is a list of the images with a copy in the source store, each copied (or found
//! copied already: a run started again after an interruption copies nothing twice), then, with
//! `--delete-source`, its source copy retired — only once the target copy is verified and
//! recorded. Progress goes to standard error: a block of lines redrawn every second on a
//! terminal, plain lines otherwise.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::datapath::{CopyOutcome, CopyRequest, DataService};
use crate::domain::{ImageStatus, RequestContext, StoredLocation};

/// What one migration is asked to do.
#[derive(Debug, Clone)]
pub struct MigrateOptions {
    pub from: String,
    pub to: String,
    pub delete_source: bool,
    pub parallel: usize,
    pub dry_run: bool,
}

/// One image to move.
#[derive(Debug, Clone)]
struct Planned {
    id: String,
    size: u64,
    deactivated: bool,
}

/// Locations are walked in pages of this many.
const PAGE: u32 = 500;

/// The images with an active copy in store `from`, in location order.
async fn plan(data: &DataService, from: &str) -> Result<Vec<Planned>, String> {
    let stores = data.stores();
    let source = stores
        .entries()
        .iter()
        .find(|e| e.id == from)
        .ok_or_else(|| format!("unknown store {from}"))?;
    let mut ids: Vec<String> = Vec::new();
    let mut after = 0;
    loop {
        let page = data
            .locations_after(after, PAGE)
            .await
            .map_err(|e| e.to_string())?;
        let Some(last) = page.last() else { break };
        after = last.id;
        for location in &page {
            if in_store(location, from, &source.store) && !ids.contains(&location.image_id) {
                ids.push(location.image_id.clone());
            }
        }
    }
    let ctx = RequestContext::unauthenticated_admin("glint-migrate".to_owned());
    let mut planned = Vec::with_capacity(ids.len());
    for id in ids {
        let image = data
            .image(&ctx, &id)
            .await
            .map_err(|e| format!("image {id}: {e}"))?;
        planned.push(Planned {
            size: image.size.and_then(|s| u64::try_from(s).ok()).unwrap_or(0),
            deactivated: image.status == ImageStatus::Deactivated,
            id,
        });
    }
    Ok(planned)
}

/// Whether `location` is a copy in store `id` (by its metadata; rows without a store id by
/// whether the store serves their URL).
fn in_store(location: &StoredLocation, id: &str, store: &Arc<dyn glint_store::Store>) -> bool {
    match location.store_id() {
        Some(named) => named == id,
        None => glint_store::Location::parse(&location.url).is_ok_and(|uri| store.owns(&uri)),
    }
}

/// Copies one image and reports what happened, as `glint image copy` does.
pub async fn copy_one(
    data: &DataService,
    image_id: &str,
    to: &str,
    from: Option<&str>,
) -> Result<(), String> {
    let progress = Progress::new(1, 0);
    let size = {
        let ctx = RequestContext::unauthenticated_admin("glint-copy".to_owned());
        data.image(&ctx, image_id)
            .await
            .map_err(|e| e.to_string())?
            .size
            .and_then(|s| u64::try_from(s).ok())
            .unwrap_or(0)
    };
    progress.add_total(size);
    let printer = progress.start_printer();
    let outcome = copy_with_progress(data, &progress, image_id, size, to, from).await;
    printer.stop().await;
    match outcome {
        Ok(outcome) => {
            println!("{image_id}: {}", describe(outcome, to));
            Ok(())
        }
        Err(e) => Err(format!("{image_id}: {e}")),
    }
}

async fn copy_with_progress(
    data: &DataService,
    progress: &Arc<Progress>,
    id: &str,
    size: u64,
    to: &str,
    from: Option<&str>,
) -> Result<CopyOutcome, String> {
    let slot = progress.begin(id, size);
    let report = {
        let progress = progress.clone();
        move |bytes: u64| progress.advance(slot, bytes)
    };
    let outcome = data
        .copy_image(
            CopyRequest {
                image_id: id,
                to,
                from,
            },
            &report,
        )
        .await
        .map_err(|e| e.to_string());
    progress.end(slot, outcome.is_ok());
    outcome
}

fn describe(outcome: CopyOutcome, to: &str) -> String {
    match outcome {
        CopyOutcome::Copied { bytes } => format!("copied to {to} and verified ({bytes} bytes)"),
        CopyOutcome::AlreadyThere => format!("already in {to}"),
        CopyOutcome::Recovered { bytes } => {
            format!(
                "verified and recorded the copy an interrupted run left in {to} ({bytes} bytes)"
            )
        }
    }
}

/// `glint migrate`: every image with a copy in `from` gets one in `to`; with
/// `delete_source`, the `from` copy is then retired. Returns an error when any image failed.
pub async fn migrate(data: &DataService, options: &MigrateOptions) -> Result<(), String> {
    if options.from == options.to {
        return Err("--from and --to name the same store".to_owned());
    }
    if !data.stores().entries().iter().any(|e| e.id == options.to) {
        return Err(format!("unknown store {}", options.to));
    }
    let planned = plan(data, &options.from).await?;
    let total: u64 = planned.iter().map(|p| p.size).sum();
    eprintln!(
        "{} image(s), {} in store {}, to copy to {}{}",
        planned.len(),
        human(total),
        options.from,
        options.to,
        if options.delete_source {
            " (then removed from the source)"
        } else {
            ""
        }
    );
    if options.dry_run {
        for image in &planned {
            println!(
                "{} {} bytes{}",
                image.id,
                image.size,
                if image.deactivated {
                    " (deactivated: copied, its source copy kept)"
                } else {
                    ""
                }
            );
        }
        return Ok(());
    }
    let progress = Progress::new(planned.len(), total);
    let printer = progress.start_printer();
    let limit = Arc::new(tokio::sync::Semaphore::new(options.parallel.max(1)));
    let mut running = tokio::task::JoinSet::new();
    // Each image's line is printed as it ends, so that a run cut short has reported every
    // image it finished.
    let failed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for image in planned {
        let permit = limit
            .clone()
            .acquire_owned()
            .await
            .map_err(|e| e.to_string())?;
        let (data, progress, options) = (data.clone(), progress.clone(), options.clone());
        let failed = failed.clone();
        running.spawn(async move {
            let _permit = permit;
            let line = match move_one(&data, &progress, &image, &options).await {
                Ok(report) => format!("{}: {report}", image.id),
                Err(e) => {
                    failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    format!("{}: FAILED: {e}", image.id)
                }
            };
            progress.say(&line);
        });
    }
    while let Some(joined) = running.join_next().await {
        joined.map_err(|e| e.to_string())?;
    }
    let failed = failed.load(std::sync::atomic::Ordering::Relaxed);
    printer.stop().await;
    let summary = progress.summary();
    eprintln!("{summary}");
    if failed > 0 {
        return Err(format!(
            "{failed} image(s) failed; run the migration again to retry them"
        ));
    }
    Ok(())
}

async fn move_one(
    data: &DataService,
    progress: &Arc<Progress>,
    image: &Planned,
    options: &MigrateOptions,
) -> Result<String, String> {
    let outcome = copy_with_progress(
        data,
        progress,
        &image.id,
        image.size,
        &options.to,
        Some(&options.from),
    )
    .await?;
    let mut report = describe(outcome, &options.to);
    if options.delete_source {
        if image.deactivated {
            report.push_str("; source copy kept (deactivated images keep their data)");
        } else {
            let ctx = RequestContext::unauthenticated_admin("glint-migrate".to_owned());
            data.delete_from_store(&ctx, &options.from, &image.id)
                .await
                .map_err(|e| format!("{report}, but the source copy stays: {e}"))?;
            report.push_str(&format!("; removed from {}", options.from));
        }
    }
    Ok(report)
}

/// Bytes as people read them.
fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn eta(left: u64, rate: f64) -> String {
    if rate <= 0.0 {
        return "?".to_owned();
    }
    let secs = (left as f64 / rate).round() as u64;
    match secs {
        0..=59 => format!("{secs}s"),
        60..=3599 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs % 3600 / 60),
    }
}

/// One copy in progress.
struct Running {
    id: String,
    size: u64,
    done: u64,
    started: Instant,
}

#[derive(Default)]
struct State {
    running: Vec<Option<Running>>,
    images_done: usize,
    failed: usize,
    bytes_done: u64,
    total: u64,
    /// Lines printed so far by the terminal display (redrawn in place).
    drawn: usize,
}

/// Progress of a copy or a migration, shared by the copies and the printer.
struct Progress {
    images: usize,
    started: Instant,
    terminal: bool,
    state: Mutex<State>,
}

impl Progress {
    fn new(images: usize, total: u64) -> Arc<Progress> {
        Arc::new(Progress {
            images,
            started: Instant::now(),
            terminal: std::io::stderr().is_terminal(),
            state: Mutex::new(State {
                total,
                ..State::default()
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn add_total(&self, bytes: u64) {
        self.lock().total += bytes;
    }

    fn begin(&self, id: &str, size: u64) -> usize {
        let mut state = self.lock();
        let running = Running {
            id: id.to_owned(),
            size,
            done: 0,
            started: Instant::now(),
        };
        match state.running.iter().position(Option::is_none) {
            Some(free) => {
                state.running[free] = Some(running);
                free
            }
            None => {
                state.running.push(Some(running));
                state.running.len() - 1
            }
        }
    }

    fn advance(&self, slot: usize, done: u64) {
        if let Some(Some(running)) = self.lock().running.get_mut(slot) {
            running.done = done;
        }
    }

    fn end(&self, slot: usize, ok: bool) {
        let mut state = self.lock();
        if let Some(running) = state.running.get_mut(slot).and_then(Option::take) {
            state.bytes_done += running.size;
        }
        state.images_done += 1;
        if !ok {
            state.failed += 1;
        }
    }

    /// The overall line: images, bytes, rate since the start, time left.
    fn overall(&self, state: &State) -> String {
        let in_flight: u64 = state.running.iter().flatten().map(|r| r.done).sum();
        let done = state.bytes_done + in_flight;
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        let rate = done as f64 / elapsed;
        format!(
            "overall: {}/{} image(s), {} of {}, {}/s, ETA {}",
            state.images_done,
            self.images,
            human(done),
            human(state.total),
            human(rate as u64),
            eta(state.total.saturating_sub(done), rate)
        )
    }

    fn lines(&self, state: &State) -> Vec<String> {
        let mut lines: Vec<String> = state
            .running
            .iter()
            .flatten()
            .map(|r| {
                let rate = r.done as f64 / r.started.elapsed().as_secs_f64().max(0.001);
                format!(
                    "  {}  {} of {}, {}/s, ETA {}",
                    r.id,
                    human(r.done),
                    human(r.size),
                    human(rate as u64),
                    eta(r.size.saturating_sub(r.done), rate)
                )
            })
            .collect();
        lines.push(self.overall(state));
        lines
    }

    /// Redraws the block (terminal) or prints the overall line (otherwise).
    fn draw(&self) {
        let mut state = self.lock();
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let lines = self.lines(&state);
            if state.drawn > 0 {
                // Up to the block's first line, and clear to the end of the screen.
                let _ = write!(err, "\x1b[{}F\x1b[J", state.drawn);
            }
            for line in &lines {
                let _ = writeln!(err, "{line}");
            }
            state.drawn = lines.len();
        } else {
            let _ = writeln!(err, "{}", self.overall(&state));
        }
    }

    /// A line of its own (an image finished), kept above the redrawn block.
    fn say(&self, line: &str) {
        let mut state = self.lock();
        let mut err = std::io::stderr().lock();
        if self.terminal && state.drawn > 0 {
            let _ = write!(err, "\x1b[{}F\x1b[J", state.drawn);
            state.drawn = 0;
        }
        let _ = writeln!(err, "{line}");
    }

    fn summary(&self) -> String {
        let state = self.lock();
        format!(
            "done in {:.1}s: {} image(s), {} failed, {}",
            self.started.elapsed().as_secs_f64(),
            state.images_done,
            state.failed,
            human(state.bytes_done)
        )
    }

    /// Draws every second on a terminal, every ten seconds otherwise.
    fn start_printer(self: &Arc<Self>) -> Printer {
        let progress = self.clone();
        let every = if self.terminal {
            Duration::from_secs(1)
        } else {
            Duration::from_secs(10)
        };
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
            loop {
                tick.tick().await;
                progress.draw();
            }
        });
        Printer {
            task,
            progress: self.clone(),
        }
    }
}

struct Printer {
    task: tokio::task::JoinHandle<()>,
    progress: Arc<Progress>,
}

impl Printer {
    async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        if self.progress.terminal {
            self.progress.draw();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{eta, human};

    #[test]
    fn sizes_and_times_read_well() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(256 << 20), "256.0 MiB");
        assert_eq!(human(3 << 30 | 1 << 29), "3.5 GiB");
        assert_eq!(eta(100, 10.0), "10s");
        assert_eq!(eta(3000, 10.0), "5m00s");
        assert_eq!(eta(100_000, 10.0), "2h46m");
        assert_eq!(eta(1, 0.0), "?");
    }
}
