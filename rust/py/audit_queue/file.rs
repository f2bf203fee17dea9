//! The file sink's writer (`AuditLog(file=path)`): the queue's records appended to a file by a thread that
//! lives in the core with the interpreter released. It sleeps on a condition variable while the queue is
//! empty, lets a batch gather for the linger once a record arrives, then takes, formats and appends the
//! batch; it needs the GIL only for a record built by hand. Flushers wait on a second condition variable.
//!
//! Waiting in the core, not on a `threading.Event`, is what keeps the writer off the GIL: a Python thread
//! that wakes needs the GIL back first, and a request thread that never blocks hands it over only at the
//! switch interval, every step of the way — the writer then fell a whole batch behind and the request
//! thread waited for it at the end. A writer that chased every record as it came would instead take the
//! queue's lock and the records' memory from the request threads once per request; it drains in batches.

use std::fs::File;
use std::io::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, MutexGuard};
use pyo3::prelude::*;

use super::{InFlight, Item, PyAuditQueue, CHUNK};
use crate::audit::Line;
use crate::py::args::config_err;

/// How long the writer sleeps at most on an empty queue (a bound on a lost wake-up, nothing more).
const IDLE: Duration = Duration::from_secs(1);

/// The file and the writer's signals. The condition variables pair with the queue's lock.
#[derive(Default)]
pub(super) struct FileWriter {
    file: Mutex<Option<File>>,
    /// The serving writer sleeps on it (no records), or lingers on it (a batch gathering).
    wake: Condvar,
    /// Flushers wait on it until nothing is left to write.
    drained: Condvar,
    /// The serving writer sleeps on an empty queue: a put wakes it.
    sleeping: AtomicBool,
    /// A flush or a close waits: drain now, until empty.
    hurry: AtomicBool,
    /// Records the core could not read (a request's values) or the file writer could not write.
    failed: AtomicU64,
    /// The thread that served the queue has ended: flushers stop waiting for it.
    gone: AtomicBool,
    /// Written entries, handed back to be dropped by the threads that queue the next records, a few per
    /// record (`has_returned` says there are some): what a request allocated is freed by a request thread,
    /// not by this one.
    returned: Mutex<Vec<Vec<Line>>>,
    has_returned: AtomicBool,
}

impl FileWriter {
    /// A record was queued: wake the writer if it sleeps (an atomic load otherwise).
    pub(super) fn queued(&self) {
        if self.sleeping.load(Ordering::Relaxed) {
            self.wake.notify_one();
        }
    }

    pub(super) fn count_failed(&self, n: usize) {
        self.failed.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub(super) fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Hand written entries back to the request threads: with glibc's allocator, memory freed on another
    /// thread than the one that allocated it goes back through its arena's lock, which the request thread's
    /// own allocations then wait on; a JWT's principal is several allocations (measured, request thread CPU
    /// with − without the audit: an uncached HS256 request 1.9–2.6 µs while the writer freed them, 1.3–1.4 µs
    /// once it did not).
    fn give_back(&self, lines: Vec<Line>) {
        self.returned.lock().push(lines);
        self.has_returned.store(true, Ordering::Release);
    }

    /// Drop a few of the entries the writer handed back: what a request thread does after it queues a
    /// record. A few per record keep pace with the writer (it hands back one entry per record) while no one
    /// request pays for a whole batch.
    pub(super) fn drop_some_returned(&self) {
        if self.has_returned.load(Ordering::Acquire) {
            let mut returned = self.returned.lock();
            for _ in 0..RETURNED_PER_RECORD {
                let Some(batch) = returned.last_mut() else { break };
                if batch.pop().is_none() {
                    returned.pop();
                }
            }
            if returned.is_empty() {
                self.has_returned.store(false, Ordering::Relaxed);
            }
        }
    }

    /// Drop every entry handed back: the writer once no request came for a while, or as it ends.
    fn drop_returned(&self) {
        let returned = {
            let mut returned = self.returned.lock();
            self.has_returned.store(false, Ordering::Relaxed);
            std::mem::take(&mut *returned)
        };
        drop(returned);
    }
}

/// Entries a request thread drops per record it queues.
const RETURNED_PER_RECORD: usize = 4;

impl PyAuditQueue {
    /// The queue closed, or a flush waits: the writer drains at once, until the queue is empty. Under the
    /// queue's lock, so that a writer between its look and its wait does not miss it.
    pub(super) fn hurry_writer(&self) {
        let _items = self.items.lock();
        self.writer.hurry.store(true, Ordering::Relaxed);
        self.writer.wake.notify_one();
    }

    /// Open `path` for appending, created if missing: what the writer writes to.
    pub(super) fn open_file(&self, path: &Path) -> PyResult<()> {
        let file = File::options().append(true).create(true).open(path).map_err(|e| {
            let text = e.to_string();
            let reason = text.split(" (os error").next().unwrap_or(&text).to_owned();
            config_err(format!("the audit file cannot be opened for appending: {reason}"))
        })?;
        *self.writer.file.lock() = Some(file);
        Ok(())
    }

    /// Close the file (later writes fail), with the GIL released: a writer stuck in a write holds the lock.
    pub(super) fn close_file(&self, py: Python<'_>) {
        py.detach(|| self.writer.file.lock().take());
    }

    /// Format `lines` and append them to the file, `CHUNK` lines per write: how many could not be written.
    fn append(&self, lines: &mut [Line], level: &str, logger: &str) -> usize {
        let mut file = self.writer.file.lock();
        let mut failed = 0;
        let mut out = String::with_capacity(CHUNK.min(lines.len()) * 400);
        for chunk in lines.chunks_mut(CHUNK) {
            out.clear();
            for line in chunk.iter_mut() {
                line.write(level, logger, &mut out);
            }
            let written = match file.as_mut() {
                Some(f) => f.write_all(out.as_bytes()).is_ok(),
                None => false,
            };
            if !written {
                failed += chunk.len();
            }
        }
        failed
    }

    /// Take requests' records from the front (stopping at a hand-built one), format and append them, with no
    /// interpreter: until the queue is empty when `chase`, else until a take comes back short (the writer has
    /// caught up, and what arrives next gathers into the next batch). `(taken, could not be written)`; those
    /// are counted in `failed` before they stop counting as in flight, so a flush never reads a low count.
    fn drain_entries(&self, chase: bool, level: &str, logger: &str) -> (usize, usize) {
        let (mut taken, mut bad) = (0, 0);
        loop {
            let mut lines = self.take_entries(CHUNK);
            if lines.is_empty() {
                return (taken, bad);
            }
            let written = InFlight(self, lines.len()); // given back even if formatting panicked
            let failed = self.append(&mut lines, level, logger);
            self.writer.count_failed(failed);
            bad += failed;
            let n = lines.len();
            taken += n;
            self.writer.give_back(lines);
            drop(written);
            if !chase && n < CHUNK {
                return (taken, bad);
            }
        }
    }

    /// Take the hand-built records at the front, read them with the GIL and append them without it:
    /// `(taken, could not be read or written)`, counted as `drain_entries` counts.
    fn drain_objects(&self, py: Python<'_>, level: &str, logger: &str) -> (usize, usize) {
        let objects = self.take_front(usize::MAX, |i| matches!(i, Item::Object(_)));
        if objects.is_empty() {
            return (0, 0);
        }
        let _written = InFlight(self, objects.len());
        let taken = objects.len();
        let (mut lines, unreadable) = Self::read(py, objects);
        let failed = unreadable + py.detach(|| self.append(&mut lines, level, logger));
        self.writer.count_failed(failed);
        (taken, failed)
    }

    /// Every queued record appended, until the queue is empty: `(written, failed)` (the failures are counted
    /// in `failed` too). What a flush with no serving writer (its thread gone) runs on the caller's thread.
    pub(super) fn write_all(&self, py: Python<'_>, level: &str, logger: &str) -> (usize, usize) {
        let (mut written, mut failed) = (0, 0);
        loop {
            let (n, bad) = py.detach(|| self.drain_entries(true, level, logger));
            let (m, unwritten) = self.drain_objects(py, level, logger);
            written += n + m - bad - unwritten;
            failed += bad + unwritten;
            if n == 0 && m == 0 {
                self.notify_drained();
                py.detach(|| self.writer.drop_returned()); // no writer thread runs to hand them to
                return (written, failed);
            }
        }
    }

    /// The writer thread's whole life: serve the queue until it is closed and empty, then close the file.
    pub(super) fn serve_file(&self, py: Python<'_>, level: &str, logger: &str, linger: Duration) {
        let _serving = Serving(self);
        let mut gather = true;
        loop {
            let closed = py.detach(|| self.serve_entries(level, logger, linger, gather));
            let (taken, _) = self.drain_objects(py, level, logger);
            if taken > 0 {
                self.notify_drained();
                gather = false; // requests' records behind them are written at once, not after a linger
            } else if closed {
                return;
            } else {
                gather = true;
            }
        }
    }

    /// Serve requests' records without the interpreter until the front holds a hand-built record (false) or
    /// the queue is closed and empty (true). A batch gathers for `linger` once the writer woke on an empty
    /// queue or caught up (`gather`: not when it comes back from hand-built records); a hurry (flush, close)
    /// cuts the linger short and lasts until the queue is found empty.
    fn serve_entries(&self, level: &str, logger: &str, linger: Duration, mut gather: bool) -> bool {
        let w = &self.writer;
        loop {
            {
                let mut items = self.items.lock();
                if items.is_empty() {
                    w.hurry.store(false, Ordering::Relaxed); // caught up: what a flush waits for
                    while items.is_empty() && !self.closing.load(Ordering::Relaxed) {
                        w.sleeping.store(true, Ordering::Relaxed);
                        let idle = w.wake.wait_for(&mut items, IDLE).timed_out();
                        w.sleeping.store(false, Ordering::Relaxed);
                        if idle {
                            // no request for a while: what was handed back is dropped here, not kept
                            MutexGuard::unlocked(&mut items, || w.drop_returned());
                        }
                    }
                    if items.is_empty() {
                        return true; // closed: nothing can arrive any more
                    }
                    gather = true;
                }
                if gather {
                    if let Some(deadline) = Instant::now().checked_add(linger) {
                        while !w.hurry.load(Ordering::Relaxed) && !self.closing.load(Ordering::Relaxed) {
                            if w.wake.wait_until(&mut items, deadline).timed_out() {
                                break;
                            }
                        }
                    }
                }
            }
            let chase = w.hurry.load(Ordering::Relaxed) || self.closing.load(Ordering::Relaxed);
            self.drain_entries(chase, level, logger);
            self.notify_drained();
            if matches!(self.items.lock().front(), Some(Item::Object(_))) {
                return false;
            }
            gather = true;
        }
    }

    /// Whether the thread that served the queue has ended.
    pub(super) fn served_out(&self) -> bool {
        self.writer.gone.load(Ordering::Relaxed)
    }

    /// Tell flushers to look again (under the queue's lock, so that none misses it between its look and its
    /// wait).
    fn notify_drained(&self) {
        let _items = self.items.lock();
        self.writer.drained.notify_all();
    }

    /// Wait until every record is written, at most `timeout` (`None`: no bound): true when none is left.
    /// Returns at once when no thread serves the queue any more (it ended, or panicked).
    pub(super) fn wait_written(&self, timeout: Option<Duration>) -> bool {
        self.hurry_writer();
        let w = &self.writer;
        let deadline = timeout.and_then(|t| Instant::now().checked_add(t));
        let mut items = self.items.lock();
        loop {
            let written = items.is_empty() && self.in_flight.load(Ordering::Relaxed) == 0;
            if written || w.gone.load(Ordering::Relaxed) {
                return written;
            }
            match deadline {
                Some(d) => {
                    if w.drained.wait_until(&mut items, d).timed_out() {
                        return items.is_empty() && self.in_flight.load(Ordering::Relaxed) == 0;
                    }
                }
                None => w.drained.wait(&mut items),
            }
        }
    }
}

/// Held by the serving thread: when it ends (closed, or unwinding from a panic), the file is closed and
/// flushers are told that no thread serves the queue any more.
struct Serving<'a>(&'a PyAuditQueue);

impl Drop for Serving<'_> {
    fn drop(&mut self) {
        let queue = self.0;
        queue.writer.file.lock().take();
        queue.writer.drop_returned();
        let _items = queue.items.lock();
        queue.writer.gone.store(true, Ordering::Relaxed);
        queue.writer.drained.notify_all();
    }
}
