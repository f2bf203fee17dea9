//! `_core.AuditQueue`: the bounded queue between the request path and the audit writer's thread
//! (`bastion.audit.writer.AuditLog`). A put never blocks and never raises: a full or closed queue counts
//! the record as dropped.
//!
//! A request's record is queued as an owned [`Entry`] (the middlewares' glue builds it; a request tuple
//! given to `put_request` is read into one), so the writer formats it with the interpreter released; a
//! record built by hand (`AuditLog.emit`) is queued as the object. A path's writer thread `serve`s the
//! queue from the core (`file.rs`); a stream writer takes a batch with `lines` (formatted, counted as in
//! flight until `done`); a logger writer reads with `peek` and removes with `pop` once written. Either way
//! the queue's length counts what is not written yet, so an empty queue means every record is written
//! (what `flush` waits for).

mod file;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use pyo3::exceptions::PyException;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyList, PyTuple};

use self::file::FileWriter;
use super::args::config_err;
use super::audit::{entry_of, line_of, values};
use crate::audit::{Entry, Line};

/// A queued record.
#[allow(clippy::large_enum_variant)] // held inline on purpose (see Entry)
enum Item {
    /// A request's record, formatted without the interpreter (held inline: the queue's buffer is reused,
    /// so queueing a request allocates nothing).
    Entry(Entry),
    /// A record built by hand (an `AuditRecord`), read with the interpreter.
    Object(Py<PyAny>),
}

#[pyclass(frozen, module = "bastion._core", name = "AuditQueue")]
pub struct PyAuditQueue {
    items: Mutex<VecDeque<Item>>,
    /// Taken by `lines` and not yet `done`.
    in_flight: AtomicUsize,
    max: usize,
    dropped: AtomicU64,
    closing: AtomicBool,
    /// The writer sleeps on `wake` (a `threading.Event`): a put sets it then.
    idle: AtomicBool,
    wake: Py<PyAny>,
    /// The file sink's writer: the file `open` opened, and the signals of the thread that `serve`s it.
    writer: FileWriter,
}

/// Records taken from the queue, counted in flight until this is dropped (written, or given up on).
struct InFlight<'a>(&'a PyAuditQueue, usize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.done(self.1);
    }
}

/// Lines written per `write` call on the file.
const CHUNK: usize = 512;

impl PyAuditQueue {
    /// Take up to `count` records from the front while `wanted` says so, counted in flight until `done`.
    fn take_front(&self, count: usize, wanted: impl Fn(&Item) -> bool) -> Vec<Item> {
        let mut items = self.items.lock();
        let n = items.iter().take(count).take_while(|i| wanted(i)).count();
        self.in_flight.fetch_add(n, Ordering::Relaxed);
        items.drain(..n).collect()
    }

    /// Taken records as lines, and how many could not be read (skipped). Hand-built records are read here,
    /// with the interpreter; requests' entries need none.
    fn read(py: Python<'_>, taken: Vec<Item>) -> (Vec<Line>, usize) {
        let mut failed = 0;
        let mut lines = Vec::with_capacity(taken.len());
        for item in taken {
            match item {
                Item::Entry(entry) => lines.push(Line::Entry(entry)),
                Item::Object(obj) => match line_of(obj.bind(py)) {
                    Ok(line) => lines.push(line),
                    Err(_) => failed += 1, // a record the core cannot write (odd values): skip just it
                },
            }
        }
        (lines, failed)
    }

    /// Take up to `count` requests' records from the front (stopping at a hand-built one) as lines. Needs no
    /// interpreter.
    fn take_entries(&self, count: usize) -> Vec<Line> {
        let taken = self.take_front(count, |i| matches!(i, Item::Entry(_)));
        taken
            .into_iter()
            .filter_map(|item| match item {
                Item::Entry(entry) => Some(Line::Entry(entry)),
                Item::Object(_) => None,
            })
            .collect()
    }

    /// Queue a request's record, or count it dropped; wake the writer if it sleeps.
    pub(crate) fn put_entry(&self, py: Python<'_>, entry: Entry) -> PyResult<()> {
        self.push(py, Item::Entry(entry))
    }

    fn push(&self, py: Python<'_>, item: Item) -> PyResult<()> {
        {
            let mut items = self.items.lock();
            if self.closing.load(Ordering::Relaxed) || items.len() >= self.max {
                drop(items);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return Ok(()); // `item` is released outside the lock
            }
            items.push_back(item);
        }
        self.writer.queued();
        self.writer.drop_some_returned();
        if self.idle.load(Ordering::Relaxed) {
            self.wake.bind(py).call_method0(intern!(py, "set"))?;
        }
        Ok(())
    }
}

#[pymethods]
impl PyAuditQueue {
    /// `AuditQueue(max, wake)`: at most `max` records; `wake` is set when a record arrives while the writer
    /// is idle.
    #[new]
    fn new(max: usize, wake: Py<PyAny>) -> PyResult<Self> {
        if max == 0 {
            return Err(config_err("queue_size must be a positive integer"));
        }
        Ok(PyAuditQueue {
            items: Mutex::new(VecDeque::new()),
            in_flight: AtomicUsize::new(0),
            max,
            dropped: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            idle: AtomicBool::new(false),
            wake,
            writer: FileWriter::default(),
        })
    }

    /// Queue a record built by hand (an `AuditRecord`).
    fn put(&self, py: Python<'_>, record: Py<PyAny>) -> PyResult<()> {
        self.push(py, Item::Object(record))
    }

    /// Queue the record of one request, given as the tuple `AuditLog.request` takes. Values the core cannot
    /// read (a hand-made call: an `Exception`) are counted in `failed`, never raised: an atomic count, as
    /// request threads call this concurrently. Anything else (`KeyboardInterrupt`, `SystemExit`) propagates.
    fn put_request(&self, py: Python<'_>, request: &Bound<'_, PyTuple>) -> PyResult<()> {
        match entry_of(request) {
            Ok(entry) => self.put_entry(py, entry),
            Err(e) if e.is_instance_of::<PyException>(py) => {
                self.writer.count_failed(1);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    /// The first `count` records (or fewer), left in the queue: a request's as `(timestamp, *values)`, a
    /// record built by hand as itself.
    fn peek<'py>(&self, py: Python<'py>, count: usize) -> PyResult<Bound<'py, PyList>> {
        // copied under the lock, turned into Python objects after it: building them may run the collector,
        // whose finalisers may queue a record (this lock again) or release the GIL
        let front: Vec<Item> = {
            let items = self.items.lock();
            items
                .iter()
                .take(count)
                .map(|item| match item {
                    Item::Entry(entry) => Item::Entry(entry.clone()),
                    Item::Object(obj) => Item::Object(obj.clone_ref(py)),
                })
                .collect()
        };
        let out = PyList::empty(py);
        for item in front {
            match item {
                Item::Entry(entry) => out.append(values(py, &entry, true)?)?,
                Item::Object(obj) => out.append(obj)?,
            }
        }
        Ok(out)
    }

    /// Remove the first `count` records (written, or given up on).
    fn pop(&self, count: usize) {
        let removed: Vec<Item> = {
            let mut items = self.items.lock();
            let n = count.min(items.len());
            items.drain(..n).collect()
        };
        drop(removed); // released outside the lock
    }

    /// Take the first `count` records (or fewer) and return their JSON lines, each ending in a newline, and
    /// how many could not be read (skipped). The records count as queued until `done(taken)`: what the
    /// writer calls once it wrote the text. Requests' records are formatted with the interpreter released.
    fn lines(&self, py: Python<'_>, count: usize, level: &str, logger: &str) -> (String, usize, usize) {
        let taken = self.take_front(count, |_| true);
        let n = taken.len();
        let (mut lines, failed) = Self::read(py, taken);
        let text = py.detach(|| {
            let mut out = String::with_capacity(lines.len() * 400);
            for line in &mut lines {
                line.write(level, logger, &mut out);
            }
            out
        });
        (text, n, failed)
    }

    /// Append every queued record to the file `open` opened, until the queue is empty: `(records written,
    /// records that could not be read or written)`. Requests' records are formatted and written with the
    /// interpreter released; each counts as queued until it is written. What a flush runs when no thread
    /// `serve`s the file.
    fn write(&self, py: Python<'_>, level: &str, logger: &str) -> (usize, usize) {
        self.write_all(py, level, logger)
    }

    /// The file writer thread's loop (returns once the queue is closed and empty): sleep while the queue is
    /// empty, let a batch gather for `linger` seconds once a record arrives (a flush or a close cuts it
    /// short), append it; all with the interpreter released, but for records built by hand.
    fn serve(&self, py: Python<'_>, level: &str, logger: &str, linger: f64) -> PyResult<()> {
        let linger = Duration::try_from_secs_f64(linger).map_err(|_| config_err("linger must be seconds >= 0"))?;
        self.serve_file(py, level, logger, linger);
        Ok(())
    }

    /// Wait until every record is written by the thread that `serve`s the file, at most `timeout` seconds
    /// (None: no bound), with the interpreter released (a signal still interrupts it): true when none is
    /// left.
    #[pyo3(signature = (timeout))]
    fn flush(&self, py: Python<'_>, timeout: Option<f64>) -> PyResult<bool> {
        const SLICE: Duration = Duration::from_millis(50);
        let timeout = timeout
            .map(|t| Duration::try_from_secs_f64(t.max(0.0)).unwrap_or(Duration::MAX))
            .map(|t| Instant::now().checked_add(t));
        loop {
            let left = match timeout {
                Some(Some(deadline)) => deadline.saturating_duration_since(Instant::now()),
                _ => SLICE, // no bound (or one past the clock's end)
            };
            let slice = left.min(SLICE);
            if py.detach(|| self.wait_written(Some(slice))) {
                return Ok(true);
            }
            if self.served_out() {
                return Ok(false); // no thread serves the queue any more: what is left stays
            }
            py.check_signals()?;
            if slice == left && matches!(timeout, Some(Some(_))) {
                return Ok(false);
            }
        }
    }

    /// Open `path` (a str, bytes or path-like, in the file system's encoding) for appending, created if
    /// missing: what `write` and `serve` write to.
    #[allow(clippy::needless_pass_by_value)] // PyO3 extracts the path into an owned buffer
    fn open(&self, path: PathBuf) -> PyResult<()> {
        self.open_file(&path)
    }

    /// Close the file `open` opened (later writes fail).
    #[pyo3(name = "close_file")]
    fn close_file_py(&self, py: Python<'_>) {
        self.close_file(py);
    }

    /// Records the core could not read (a request's values) or the file writer could not write.
    #[getter]
    fn failed(&self) -> u64 {
        self.writer.failed()
    }

    /// `taken` records of `lines` are written (or given up on).
    fn done(&self, taken: usize) {
        let _ = self
            .in_flight
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| Some(n.saturating_sub(taken)));
    }

    /// Forget every record (a forked child starts empty).
    fn clear(&self) {
        let removed: VecDeque<Item> = std::mem::take(&mut *self.items.lock());
        self.in_flight.store(0, Ordering::Relaxed);
        drop(removed);
    }

    /// Refuse every later record (counted as dropped).
    fn close(&self) {
        self.closing.store(true, Ordering::Relaxed);
        self.hurry_writer();
    }

    #[getter]
    fn closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    #[getter]
    fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    #[getter]
    fn idle(&self) -> bool {
        self.idle.load(Ordering::Relaxed)
    }

    #[setter]
    fn set_idle(&self, idle: bool) {
        self.idle.store(idle, Ordering::Relaxed);
    }

    /// Records not written yet: queued, or taken by `lines` and not `done`.
    fn __len__(&self) -> usize {
        self.items.lock().len() + self.in_flight.load(Ordering::Relaxed)
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyAuditQueue>()
}
