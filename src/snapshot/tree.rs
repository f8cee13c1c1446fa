//! A tree blob: the sorted nodes of one directory, as `{"nodes":[…]}\n`.

use serde::{Deserialize, Serialize};

use super::node::Node;
use crate::error::{Error, Result};
use crate::id::Id;

/// A directory listing.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// Entries, sorted by name.
    #[serde(default)]
    pub nodes: Vec<Node>,
}

impl Tree {
    /// Encodes the tree as restic does (compact JSON, trailing newline),
    /// sorting the nodes by name first.
    pub fn encode(mut self) -> Vec<u8> {
        self.nodes
            .sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
        let mut out = serde_json::to_vec(&self).unwrap_or_default();
        out.push(b'\n');
        out
    }

    /// Decodes a tree blob.
    pub fn decode(id: &Id, data: &[u8]) -> Result<Tree> {
        serde_json::from_slice(data)
            .map_err(|e| Error::damaged(format!("tree {id}: invalid JSON: {e}")))
    }

    /// The node named `name`.
    pub fn find(&self, name: &str) -> Option<&Node> {
        self.nodes
            .binary_search_by(|n| n.name.as_bytes().cmp(name.as_bytes()))
            .ok()
            .and_then(|i| self.nodes.get(i))
            .or_else(|| self.nodes.iter().find(|n| n.name == name))
    }
}
