//! Opaque ("database") tokens: format, digests, records and the in-memory index. No I/O: the Python
//! shell owns the backends and hands records to the index.

pub mod digest;
pub mod format;
pub mod index;
pub mod record;

pub use digest::{Candidate, Digest, Digester, Scheme};
pub use index::{Admitted, Config, Fast, Index, Miss, Probe, Usage};
pub use record::{Entry, Record, Slot};
