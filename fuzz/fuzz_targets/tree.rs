//! A tree blob's JSON: `Tree::decode`, `walk::check_tree`, and `encode`.
//!
//! A decoded tree must encode to JSON that decodes to the same tree and
//! encodes to the same bytes; a tree that passes `check_tree` must be
//! sorted, with unique valid names that `Tree::find` finds.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vaultfs::Id;
use vaultfs::snapshot::Tree;
use vaultfs::snapshot::walk::{check_tree, valid_name};

fuzz_target!(|data: &[u8]| {
    let id = Id::default();
    let Ok(mut tree) = Tree::decode(&id, data) else {
        return;
    };

    let encoded = tree.clone().encode();
    let back = Tree::decode(&id, &encoded).expect("encoded tree decodes");
    assert_eq!(back.clone().encode(), encoded, "tree does not round-trip");
    assert_eq!(back.nodes.len(), tree.nodes.len());

    if check_tree(&id, &mut tree).is_ok() {
        assert_eq!(back, tree, "encode and check_tree sort differently");
        for w in tree.nodes.windows(2) {
            assert!(w[0].name.as_bytes() < w[1].name.as_bytes(), "not sorted");
        }
        for n in &tree.nodes {
            assert!(valid_name(&n.name));
            assert_eq!(tree.find(&n.name).map(|f| &f.name), Some(&n.name));
        }
    }
});
