//! `_core.AuditQueue`: the bounded queue between the request path and the audit writer's thread
//! (`bastion.audit.writer.AuditLog`). `put` never blocks and never raises: a full or closed queue counts
//! the record as dropped. The writer reads a batch with `peek` and removes it with `pop` once written,
//! so that an empty queue means every record is written (what `flush` waits for).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use parking_lot::Mutex;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::PyList;

use super::args::config_err;

#[pyclass(frozen, module = "bastion._core", name = "AuditQueue")]
pub struct PyAuditQueue {
    items: Mutex<VecDeque<Py<PyAny>>>,
    max: usize,
    dropped: AtomicU64,
    closing: AtomicBool,
    /// The writer sleeps on `wake` (a `threading.Event`): `put` sets it then.
    idle: AtomicBool,
    wake: Py<PyAny>,
}

impl PyAuditQueue {
    /// Queue `item`, or count it dropped; wake the writer if it sleeps.
    pub(crate) fn put(&self, py: Python<'_>, item: Py<PyAny>) -> PyResult<()> {
        {
            let mut items = self.items.lock();
            if self.closing.load(Ordering::Relaxed) || items.len() >= self.max {
                drop(items);
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
            items.push_back(item);
        }
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
            max,
            dropped: AtomicU64::new(0),
            closing: AtomicBool::new(false),
            idle: AtomicBool::new(false),
            wake,
        })
    }

    #[pyo3(name = "put")]
    fn py_put(&self, py: Python<'_>, item: Py<PyAny>) -> PyResult<()> {
        self.put(py, item)
    }

    /// The first `count` records (or fewer), left in the queue.
    fn peek<'py>(&self, py: Python<'py>, count: usize) -> PyResult<Bound<'py, PyList>> {
        let items: Vec<Py<PyAny>> = self.items.lock().iter().take(count).map(|i| i.clone_ref(py)).collect();
        PyList::new(py, items)
    }

    /// Remove the first `count` records (written, or given up on).
    fn pop(&self, count: usize) {
        let removed: Vec<Py<PyAny>> = {
            let mut items = self.items.lock();
            let n = count.min(items.len());
            items.drain(..n).collect()
        };
        drop(removed); // released outside the lock
    }

    /// Forget every record (a forked child starts empty).
    fn clear(&self) {
        let removed: VecDeque<Py<PyAny>> = std::mem::take(&mut *self.items.lock());
        drop(removed);
    }

    /// Refuse every later record (counted as dropped).
    fn close(&self) {
        self.closing.store(true, Ordering::Relaxed);
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

    fn __len__(&self) -> usize {
        self.items.lock().len()
    }
}

pub fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyAuditQueue>()
}
