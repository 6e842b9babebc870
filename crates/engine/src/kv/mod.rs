//! The paged KV cache.
//!
//! Keys and values live in fixed-size blocks of a [`KvPool`] with a memory budget. Each sequence
//! ([`KvCache`]) maps its positions to blocks through a block table per layer group; a prefix
//! tree over token ids lets sequences share the blocks of a common prefix, and copy-on-write
//! makes forks and rewinds cheap. See `ARCHITECTURE.md` for the map of the submodules.

pub(crate) mod attention;
pub mod error;
pub mod layout;
pub mod persist;
pub mod pool;
pub mod prefix_tree;
pub mod row_plan;
pub mod sequence;
pub mod step;
pub mod store;

#[doc(hidden)]
pub use attention::bench::AttentionBench;
pub use error::KvError;
pub use layout::{DEFAULT_BLOCK_SIZE, KvLayout, LayerGroup};
pub use persist::{KV_FILE_VERSION, ModelFingerprint};
pub use pool::KvPool;
pub use row_plan::RowPlan;
pub use sequence::KvCache;
pub use step::ForwardStep;
pub use store::PoolStats;
