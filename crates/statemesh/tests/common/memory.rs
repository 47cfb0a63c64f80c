//! Nodes in one process over one in-memory network, each in its own
//! directory under a test's scratch root.

use statemesh::{MemoryNetwork, Network, Node, NodeOptions};
use std::path::Path;
use std::sync::Arc;

/// Node `id`, its data in `root/n{id}`.
pub(crate) fn open_node(
    net: &Arc<MemoryNetwork>,
    root: &Path,
    id: u64,
    options: NodeOptions,
) -> Node {
    let n: Arc<dyn Network> = net.clone();
    Node::open(id, root.join(format!("n{id}")), n, options).unwrap()
}

/// Nodes `ids` with default options.
pub(crate) fn open_nodes(net: &Arc<MemoryNetwork>, root: &Path, ids: &[u64]) -> Vec<Node> {
    ids.iter()
        .map(|&id| open_node(net, root, id, NodeOptions::default()))
        .collect()
}
