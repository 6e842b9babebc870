//! The prefix tree shared by every sequence of a pool: a radix tree over token ids whose edges
//! are whole blocks (SGLang's radix cache with the page size equal to the block size). A node
//! holds the blocks of keys and values for its tokens, one per layer group, so a sequence that
//! starts with a cached prefix takes those blocks instead of recomputing them.
//!
//! The tree holds one reference on each of its blocks. A block nobody else references is cached
//! rather than in use: eviction drops such blocks least recently used first, whole leaves for
//! full-attention groups and single blocks for sliding-window groups (an interior node can lose
//! its windowed blocks; that only shortens the prefixes it can serve).

use std::collections::HashMap;

use crate::kv::store::{BlockId, BlockStore};

/// Index of a node.
pub type NodeId = usize;

#[derive(Debug)]
struct Node {
    parent: Option<NodeId>,
    key: Box<[u32]>,
    /// One block per layer group; windowed groups may have dropped theirs.
    blocks: Vec<Option<BlockId>>,
    children: HashMap<Box<[u32]>, NodeId>,
    last_used: u64,
}

/// The tree of cached prefixes.
#[derive(Debug)]
pub struct PrefixTree {
    block_size: usize,
    nodes: Vec<Option<Node>>,
    vacant: Vec<NodeId>,
    roots: HashMap<Box<[u32]>, NodeId>,
    clock: u64,
}

impl PrefixTree {
    /// An empty tree over blocks of `block_size` tokens.
    pub fn new(block_size: usize) -> Self {
        Self { block_size, nodes: Vec::new(), vacant: Vec::new(), roots: HashMap::new(), clock: 0 }
    }

    /// Nodes cached along `tokens`, one per whole block, longest path first to last; marks them
    /// as just used.
    pub fn lookup(&mut self, tokens: &[u32]) -> Vec<NodeId> {
        self.clock += 1;
        let path = self.path(tokens);
        for &id in &path {
            if let Some(n) = self.nodes[id].as_mut() {
                n.last_used = self.clock;
            }
        }
        path
    }

    /// Nodes cached along `tokens`, as [`Self::lookup`] finds them, without marking them used.
    pub fn path(&self, tokens: &[u32]) -> Vec<NodeId> {
        let mut path = Vec::new();
        for chunk in tokens.chunks_exact(self.block_size) {
            let next = match path.last() {
                None => self.roots.get(chunk),
                Some(&p) => self.node(p).and_then(|n| n.children.get(chunk)),
            };
            let Some(&id) = next else { break };
            path.push(id);
        }
        path
    }

    /// Bytes of the blocks only the tree references: what eviction could free at most (a node
    /// whose child some sequence still uses keeps its full-attention blocks).
    pub fn cached_only_bytes(&self, store: &BlockStore) -> usize {
        self.nodes
            .iter()
            .flatten()
            .flat_map(|n| n.blocks.iter().enumerate())
            .filter_map(|(g, b)| b.filter(|&id| store.refs(id) == 1).map(|_| store.block_bytes(g)))
            .sum()
    }

    /// The blocks of `node`, one per layer group.
    pub fn blocks(&self, node: NodeId) -> &[Option<BlockId>] {
        self.node(node).map_or(&[], |n| &n.blocks)
    }

    /// Caches the whole blocks of `tokens`; `blocks[i]` holds block `i`'s ids per group. Blocks
    /// already cached are kept (the tree's copy wins); windowed blocks a node had dropped are
    /// filled in again.
    pub fn insert(&mut self, store: &mut BlockStore, tokens: &[u32], blocks: &[Vec<Option<BlockId>>]) {
        self.clock += 1;
        let mut parent: Option<NodeId> = None;
        for (chunk, ids) in tokens.chunks_exact(self.block_size).zip(blocks) {
            let existing = match parent {
                None => self.roots.get(chunk).copied(),
                Some(p) => self.node(p).and_then(|n| n.children.get(chunk)).copied(),
            };
            let id = match existing {
                Some(id) => {
                    if let Some(n) = self.nodes[id].as_mut() {
                        for (slot, &offered) in n.blocks.iter_mut().zip(ids) {
                            if let (None, Some(b)) = (*slot, offered) {
                                store.retain(b);
                                *slot = Some(b);
                            }
                        }
                        n.last_used = self.clock;
                    }
                    id
                }
                None => {
                    // A node needs its full-attention blocks; without them the prefix ends here.
                    if ids.iter().zip(self.windowed(store, ids.len())).any(|(b, w)| b.is_none() && !w) {
                        return;
                    }
                    ids.iter().flatten().for_each(|&b| store.retain(b));
                    let node = Node {
                        parent,
                        key: chunk.into(),
                        blocks: ids.clone(),
                        children: HashMap::new(),
                        last_used: self.clock,
                    };
                    let id = self.add(node);
                    match parent {
                        None => self.roots.insert(chunk.into(), id),
                        Some(p) => self.nodes[p].as_mut().and_then(|n| n.children.insert(chunk.into(), id)),
                    };
                    id
                }
            };
            parent = Some(id);
        }
    }

    /// Frees the least recently used block that only the tree references. Returns whether one
    /// was freed.
    pub fn evict_one(&mut self, store: &mut BlockStore) -> bool {
        let n_groups = store.layout().groups.len();
        let windowed: Vec<bool> = self.windowed(store, n_groups);
        // (last_used, node, group to drop or None for the whole leaf)
        let mut best: Option<(u64, NodeId, Option<usize>)> = None;
        for (id, node) in self.nodes.iter().enumerate() {
            let Some(n) = node else { continue };
            if best.is_some_and(|b| b.0 <= n.last_used) {
                continue;
            }
            let unshared = |b: &Option<BlockId>| b.is_none_or(|b| store.refs(b) == 1);
            if n.children.is_empty() && n.blocks.iter().all(unshared) {
                best = Some((n.last_used, id, None));
            } else if let Some(g) =
                (0..n.blocks.len()).find(|&g| windowed[g] && n.blocks[g].is_some_and(|b| store.refs(b) == 1))
            {
                best = Some((n.last_used, id, Some(g)));
            }
        }
        let Some((_, id, group)) = best else { return false };
        match group {
            Some(g) => {
                if let Some(b) = self.nodes[id].as_mut().and_then(|n| n.blocks[g].take()) {
                    store.release(b);
                }
            }
            None => self.remove_leaf(store, id),
        }
        true
    }

    /// Number of nodes (cached blocks of tokens).
    pub fn len(&self) -> usize {
        self.nodes.len() - self.vacant.len()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn windowed(&self, store: &BlockStore, n: usize) -> Vec<bool> {
        (0..n).map(|g| store.layout().groups.get(g).is_some_and(|gr| gr.window.is_some())).collect()
    }

    fn node(&self, id: NodeId) -> Option<&Node> {
        self.nodes.get(id).and_then(|n| n.as_ref())
    }

    fn add(&mut self, node: Node) -> NodeId {
        match self.vacant.pop() {
            Some(id) => {
                self.nodes[id] = Some(node);
                id
            }
            None => {
                self.nodes.push(Some(node));
                self.nodes.len() - 1
            }
        }
    }

    fn remove_leaf(&mut self, store: &mut BlockStore, id: NodeId) {
        let Some(node) = self.nodes[id].take() else { return };
        node.blocks.iter().flatten().for_each(|&b| store.release(b));
        match node.parent {
            None => self.roots.remove(&node.key),
            Some(p) => self.nodes[p].as_mut().and_then(|n| n.children.remove(&node.key)),
        };
        self.vacant.push(id);
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::kv::layout::{KvLayout, LayerGroup};

    fn store(blocks: usize, windowed: bool) -> BlockStore {
        let mut groups = vec![LayerGroup { layers: vec![0], window: None }];
        if windowed {
            groups.push(LayerGroup { layers: vec![1], window: Some(4) });
        }
        let layout = KvLayout::new(groups.len(), 1, 2, 2, groups);
        let bytes = layout.block_bytes(0);
        BlockStore::new(layout, blocks * bytes)
    }

    #[test]
    fn lookup_finds_the_longest_cached_prefix_of_whole_blocks() {
        let mut s = store(8, false);
        let mut tree = PrefixTree::new(2);
        let ids: Vec<Vec<Option<BlockId>>> = (0..3).map(|_| vec![s.allocate(0).unwrap()]).collect();
        tree.insert(&mut s, &[1, 2, 3, 4, 5, 6], &ids);
        assert_eq!(tree.len(), 3);
        assert_eq!(tree.lookup(&[1, 2, 3, 4, 9, 9, 9]).len(), 2);
        assert_eq!(tree.lookup(&[1, 2, 3]).len(), 1, "a partial block is not matched");
        assert_eq!(tree.lookup(&[2, 2]).len(), 0);
        let path = tree.lookup(&[1, 2, 3, 4, 5, 6]);
        assert_eq!(tree.blocks(path[2]), &ids[2][..]);
        assert_eq!(s.refs(ids[0][0].unwrap()), 2, "the tree holds a reference");
    }

    #[test]
    fn eviction_takes_unreferenced_leaves_least_recently_used_first() {
        let mut s = store(8, false);
        let mut tree = PrefixTree::new(2);
        let a: Vec<Vec<Option<BlockId>>> = (0..2).map(|_| vec![s.allocate(0).unwrap()]).collect();
        let b: Vec<Vec<Option<BlockId>>> = vec![a[0].clone(), vec![s.allocate(0).unwrap()]];
        tree.insert(&mut s, &[1, 1, 2, 2], &a);
        tree.insert(&mut s, &[1, 1, 3, 3], &b);
        // The sequences let go of their blocks: only the tree references them now.
        a.iter().chain(&b[1..]).flatten().flatten().for_each(|&id| s.release(id));
        tree.lookup(&[1, 1, 2, 2]);
        assert!(tree.evict_one(&mut s));
        assert_eq!(tree.lookup(&[1, 1, 3, 3]).len(), 1, "the older branch went first");
        assert_eq!(tree.lookup(&[1, 1, 2, 2]).len(), 2);
        assert!(tree.evict_one(&mut s));
        assert!(tree.evict_one(&mut s));
        assert!(tree.is_empty());
        assert!(!tree.evict_one(&mut s));
        assert_eq!(s.stats().free_blocks, 3);
    }

    #[test]
    fn referenced_blocks_are_not_evicted() {
        let mut s = store(8, false);
        let mut tree = PrefixTree::new(2);
        let a = vec![vec![s.allocate(0).unwrap()]];
        tree.insert(&mut s, &[1, 1], &a);
        assert!(!tree.evict_one(&mut s), "a sequence still holds the block");
    }

    #[test]
    fn windowed_blocks_are_dropped_before_their_nodes() {
        let mut s = store(8, true);
        let mut tree = PrefixTree::new(2);
        let ids: Vec<Vec<Option<BlockId>>> =
            (0..2).map(|_| vec![s.allocate(0).unwrap(), s.allocate(1).unwrap()]).collect();
        tree.insert(&mut s, &[1, 1, 2, 2], &ids);
        // The sequence keeps its first full-attention block only.
        s.release(ids[0][1].unwrap());
        ids[1].iter().flatten().for_each(|&b| s.release(b));
        assert!(tree.evict_one(&mut s));
        assert!(tree.evict_one(&mut s));
        let path = tree.lookup(&[1, 1, 2, 2]);
        assert_eq!(path.len(), 1);
        assert_eq!(tree.blocks(path[0])[1], None, "the windowed block was dropped");
        assert!(tree.blocks(path[0])[0].is_some());
    }
}
