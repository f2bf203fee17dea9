//! Opaque ("database") tokens: format, digests, records and the in-memory index. No I/O: the Python
//! shell owns the backends and hands records to the index.

pub mod cutoff;
pub mod digest;
pub mod format;
pub mod index;
pub mod negative;
pub mod record;

pub use cutoff::Cutoffs;
pub use digest::{digests_equal, Candidate, Digest, Digester, Scheme};
pub use index::{Admitted, Config, Fast, Index, Miss, Probe, Usage};
pub use negative::NegativeCache;
pub use record::{Entry, Record, Slot};
