//! [`Preemption`]: what a scheduler stepping many sequences of one [`KvPool`] together does when
//! the pool runs out of blocks. The most recently admitted sequence is paused and the pass is
//! retried with the rest; paused sequences resume, oldest first, once the pool has room for them
//! again, and no new request is admitted while any waits. Only a sequence that does not fit in
//! the whole pool on its own fails, with [`KvError::BudgetTooSmall`]; a scheduler also checks
//! each new request with [`KvPool::check_fits`], so that one that never fits pauses nobody.
//!
//! Pausing gives back the sequence's KV cache and keeps its tokens (cached and pending) as the
//! tokens to feed. Its whole blocks stay in the prefix tree (a block enters the tree as it fills,
//! and the tree cannot evict a block a sequence holds), so on resuming [`KvCache::reuse_prefix`]
//! takes back whatever was not evicted meanwhile and only the rest is computed again. Sampler,
//! constraint and event channel stay with the sequence, which is why it continues exactly where
//! it stopped: the logits it samples next are those of the same tokens.

use std::collections::VecDeque;

use crate::error::{EngineError, Result};
use crate::kv::{KvCache, KvError, KvPool};

/// A scheduler's sequence that can be paused and resumed.
pub trait Preemptible {
    /// Its KV cache and the tokens it feeds next, after those the cache holds.
    fn kv(&self) -> (&KvCache, &[u32]);

    /// The same, to change.
    fn kv_mut(&mut self) -> (&mut KvCache, &mut Vec<u32>);

    /// Told when the sequence is paused; does nothing by default.
    fn on_pause(&mut self) {}
}

/// The sequences a scheduler paused for lack of KV memory, oldest admitted first.
///
/// The scheduler keeps its running sequences in admission order and appends new ones; then every
/// paused sequence is newer than every running one, so pausing the last running sequence puts it
/// at the front of the queue and resuming the front appends it to the running ones again.
#[derive(Debug)]
pub struct Preemption<T> {
    pool: KvPool,
    paused: VecDeque<T>,
    pauses: u64,
}

impl<T: Preemptible> Preemption<T> {
    /// No paused sequence yet, for sequences of `pool`.
    pub fn new(pool: KvPool) -> Self {
        Self { pool, paused: VecDeque::new(), pauses: 0 }
    }

    /// Whether no sequence waits.
    pub fn is_empty(&self) -> bool {
        self.paused.is_empty()
    }

    /// Sequences waiting.
    pub fn len(&self) -> usize {
        self.paused.len()
    }

    /// Times a sequence was paused, in all.
    pub fn pauses(&self) -> u64 {
        self.pauses
    }

    /// Keeps the paused sequences for which `keep` holds (drops those whose client went away);
    /// returns how many were dropped.
    pub fn retain(&mut self, keep: impl FnMut(&T) -> bool) -> usize {
        let before = self.paused.len();
        self.paused.retain(keep);
        before - self.paused.len()
    }

    /// Runs `pass` (one forward pass over `running`) until it does not fail for lack of KV
    /// blocks, pausing the last of `running` after each such failure. With one sequence left
    /// that alone does not fit, returns [`KvError::BudgetTooSmall`]; the scheduler fails it.
    pub fn run_pass<R>(&mut self, running: &mut Vec<T>, mut pass: impl FnMut(&mut [T]) -> Result<R>) -> Result<R> {
        loop {
            match pass(running) {
                Err(EngineError::Kv(KvError::PoolFull { budget_bytes })) => {
                    if running.len() <= 1 {
                        let tokens = running.first().map_or(0, |s| s.kv().0.len() + s.kv().1.len());
                        let needed_bytes = self.pool.layout().bytes_for(tokens);
                        return Err(KvError::BudgetTooSmall { budget_bytes, tokens, needed_bytes }.into());
                    }
                    if let Some(mut newest) = running.pop() {
                        pause(&mut newest);
                        self.pauses += 1;
                        self.paused.push_front(newest);
                    }
                }
                other => return other,
            }
        }
    }

    /// Moves paused sequences back to `running`, oldest first, while fewer than `max_running`
    /// run and the pool has room for each besides what the running ones still have to feed.
    /// With nothing running, the oldest resumes regardless: alone, it fits or fails.
    pub fn resume(&mut self, running: &mut Vec<T>, max_running: usize) {
        while running.len() < max_running.max(1) {
            let Some(next) = self.paused.front() else { return };
            if !running.is_empty() && !self.has_room(next, running) {
                return;
            }
            if let Some(mut next) = self.paused.pop_front() {
                let (cache, pending) = next.kv_mut();
                let kept = cache.reuse_prefix(pending);
                pending.drain(..kept);
                running.push(next);
            }
        }
    }

    /// Whether `next` and the growth of `running` up to each one's next sampled token fit.
    fn has_room(&self, next: &T, running: &[T]) -> bool {
        let layout = self.pool.layout();
        let block: usize = (0..layout.groups.len()).map(|g| self.pool.block_bytes(g)).sum();
        let growth: usize = running
            .iter()
            .map(|s| {
                let (cache, pending) = s.kv();
                layout.blocks_for(cache.len() + pending.len() + 1) - layout.blocks_for(cache.len())
            })
            .sum();
        // One block more for `next`'s first sampled token.
        self.pool.room_for(next.kv().1, (growth + 1) * block)
    }
}

/// Gives back `s`'s KV cache, keeping all its tokens as the tokens to feed.
fn pause<T: Preemptible>(s: &mut T) {
    let (cache, pending) = s.kv_mut();
    let mut tokens = cache.tokens().to_vec();
    // Marked as just used, its cached blocks outlast those of finished requests and of the
    // sequences paused before it, which are newer and resume later.
    let whole = tokens.len() - tokens.len() % cache.pool().layout().block_size;
    cache.pool().lock().tree.lookup(&tokens[..whole]);
    tokens.append(pending);
    // Replacing the cache drops it, which releases every block it holds, reserved ones too.
    *cache = cache.pool().new_sequence();
    *pending = tokens;
    s.on_pause();
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::kv::layout::{KvLayout, LayerGroup};
    use crate::kv::step::ForwardStep;

    struct Seq {
        name: char,
        cache: KvCache,
        pending: Vec<u32>,
        pauses: usize,
    }

    impl Preemptible for Seq {
        fn kv(&self) -> (&KvCache, &[u32]) {
            (&self.cache, &self.pending)
        }

        fn kv_mut(&mut self) -> (&mut KvCache, &mut Vec<u32>) {
            (&mut self.cache, &mut self.pending)
        }

        fn on_pause(&mut self) {
            self.pauses += 1;
        }
    }

    /// A pool of `blocks` blocks of 4 positions.
    fn pool(blocks: usize) -> KvPool {
        let layout = KvLayout::new(1, 1, 2, 4, vec![LayerGroup { layers: vec![0], window: None }]);
        let bytes = layout.block_bytes(0);
        KvPool::new(layout, blocks * bytes)
    }

    fn seq(pool: &KvPool, name: char, tokens: usize) -> Seq {
        let pending = (0..tokens as u32).map(|i| name as u32 * 100 + i).collect();
        Seq { name, cache: pool.new_sequence(), pending, pauses: 0 }
    }

    /// A pass without a model: reserves blocks for every pending token and records them fed.
    fn pass(pool: &KvPool, running: &mut [Seq]) -> Result<()> {
        let (mut caches, tokens): (Vec<&mut KvCache>, Vec<&[u32]>) =
            running.iter_mut().map(|s| (&mut s.cache, &s.pending[..])).unzip();
        let counts: Vec<usize> = tokens.iter().map(|t| t.len()).collect();
        ForwardStep::begin(pool, &mut caches, &counts)?.finish(&mut caches, &tokens);
        running.iter_mut().for_each(|s| s.pending.clear());
        Ok(())
    }

    fn more(running: &mut [Seq], n: u32) {
        for s in running {
            s.pending.extend((0..n).map(|i| s.name as u32 * 1000 + i));
        }
    }

    fn names(seqs: impl IntoIterator<Item = char>) -> String {
        seqs.into_iter().collect()
    }

    #[test]
    fn the_newest_sequences_pause_until_the_pool_has_room() {
        let pool = pool(6);
        let mut preemption = Preemption::new(pool.clone());
        let mut running = vec![seq(&pool, 'a', 8), seq(&pool, 'b', 8), seq(&pool, 'c', 8)];
        preemption.run_pass(&mut running, |r| pass(&pool, r)).unwrap();
        // Each wants two more blocks: c pauses, then b, and a alone goes on.
        more(&mut running, 8);
        preemption.run_pass(&mut running, |r| pass(&pool, r)).unwrap();
        assert_eq!(names(running.iter().map(|s| s.name)), "a");
        assert_eq!(names(preemption.paused.iter().map(|s| s.name)), "bc", "oldest first");
        assert_eq!(preemption.pauses(), 2);
        let b = &preemption.paused[0];
        assert!(b.cache.is_empty());
        assert_eq!(b.pending.len(), 16, "every token of b is kept to be fed again");
        assert_eq!(b.pauses, 1);
        // a holds 4 of the 6 blocks: b (needing 4) does not fit beside it.
        preemption.resume(&mut running, 4);
        assert_eq!(running.len(), 1);
        // Once a ends, b resumes first, alone, whatever it needs.
        running.clear();
        preemption.resume(&mut running, 4);
        assert_eq!(names(running.iter().map(|s| s.name)), "b");
        preemption.run_pass(&mut running, |r| pass(&pool, r)).unwrap();
        assert_eq!(running[0].cache.len(), 16);
    }

    #[test]
    fn a_resumed_sequence_takes_back_its_cached_blocks() {
        let pool = pool(8);
        let mut preemption = Preemption::new(pool.clone());
        let mut running = vec![seq(&pool, 'a', 8), seq(&pool, 'b', 8), seq(&pool, 'c', 8)];
        preemption.run_pass(&mut running, |r| pass(&pool, r)).unwrap();
        // Three more blocks wanted, two free: c pauses, and its two cached blocks stay.
        more(&mut running, 4);
        preemption.run_pass(&mut running, |r| pass(&pool, r)).unwrap();
        assert_eq!(preemption.len(), 1);
        preemption.resume(&mut running, 4);
        assert_eq!(running.len(), 2, "no room beside a and b");
        // a ends; its blocks are evictable: c's third block and one each for b and c to grow.
        running.remove(0);
        preemption.resume(&mut running, 4);
        assert_eq!(names(running.iter().map(|s| s.name)), "bc");
        let c = &running[1];
        assert_eq!((c.cache.len(), c.pending.len()), (8, 4), "the cached prefix is reused");
        more(&mut running[..1], 1);
        preemption.run_pass(&mut running, |r| pass(&pool, r)).unwrap();
        assert_eq!((running[0].cache.len(), running[1].cache.len()), (13, 12));
        assert_eq!(preemption.pauses(), 1);
    }

    #[test]
    fn a_sequence_too_large_for_the_whole_pool_fails_alone() {
        let pool = pool(2);
        let mut preemption = Preemption::new(pool.clone());
        let mut running = vec![seq(&pool, 'a', 12)];
        match preemption.run_pass(&mut running, |r| pass(&pool, r)) {
            Err(EngineError::Kv(e @ KvError::BudgetTooSmall { tokens: 12, .. })) => {
                assert!(e.to_string().contains("--kv-budget"), "{e}");
            }
            other => panic!("expected a budget error, got {other:?}"),
        }
        assert!(pool.check_fits(8).is_ok());
        assert!(matches!(pool.check_fits(9), Err(KvError::BudgetTooSmall { .. })));
    }
}
