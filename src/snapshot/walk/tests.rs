use super::*;
use crate::restore::fixture::{Vault, dir, file, noise, symlink};

/// `/a/x`, `/a/sub/y`, `/b` (a symlink), `/c` (a 3-blob file).
fn sample() -> (Vault, TreeId, Vec<u8>) {
    let v = Vault::new();
    let s = v.saver();
    let c = noise(2500, 7);
    let sub = dir(&s, "sub", vec![file(&s, "y", b"yy", 10)]);
    let a = dir(&s, "a", vec![file(&s, "x", b"x", 10), sub]);
    let children = vec![file(&s, "c", &c, 1000), symlink("b", "a/x"), a];
    let root = v.commit(s, children);
    (v, root, c)
}

#[test]
fn resolves_paths() {
    let (v, root, _) = sample();
    let repo = v.reopen();
    for p in ["", "/", "//", "."] {
        let n = resolve_path(&repo, &root, p).expect("root");
        assert!(n.is_dir());
        assert_eq!(n.subtree, Some(root));
    }
    let y = resolve_path(&repo, &root, "/a/sub/y").expect("y");
    assert_eq!((y.name.as_str(), y.size), ("y", 2));
    let a = resolve_path(&repo, &root, "a/").expect("a");
    assert!(a.is_dir() && a.name == "a");

    let e = resolve_path(&repo, &root, "/a/nope").expect_err("missing");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("/a/nope"), "{e}");
    let e = resolve_path(&repo, &root, "/c/inside").expect_err("through a file");
    assert_eq!(e.kind(), ErrorKind::NotFound);
    assert!(e.to_string().contains("/c is not a directory"), "{e}");
    let e = resolve_path(&repo, &root, "/a/../c").expect_err("dotdot");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[test]
fn damaged_tree_is_damage_not_not_found() {
    let (v, root, _) = sample();
    let a = resolve_path(&v.reopen(), &root, "/a").expect("a");
    let sub = a.subtree.expect("subtree");
    v.corrupt(BlobType::Tree, &sub);
    let repo = v.reopen();
    let a_tree = repo.load_tree(&sub);
    assert!(a_tree.is_err(), "the corruption must be visible");
    let e = resolve_path(&repo, &root, "/a/sub/y").expect_err("damaged");
    assert_eq!(e.kind(), ErrorKind::Damaged, "{e}");
    assert!(e.to_string().contains(&sub.to_hex()), "{e}");
    // Siblings of the damaged tree still resolve.
    assert!(resolve_path(&repo, &root, "/c").is_ok());
}

#[test]
fn walks_depth_first_in_name_order_and_skips() {
    let (v, root, _) = sample();
    let repo = v.reopen();
    let start = root_node(&root);
    let mut seen = Vec::new();
    walk(&repo, &start, "/", &mut |p: &str, _n: &Node| {
        seen.push(p.to_owned());
        Ok(WalkControl::Continue)
    })
    .expect("walk");
    assert_eq!(seen, ["/", "/a", "/a/sub", "/a/sub/y", "/a/x", "/b", "/c"]);

    let mut seen = Vec::new();
    walk(&repo, &start, "", &mut |p: &str, _n: &Node| {
        seen.push(p.to_owned());
        Ok(match p {
            "/a/sub" => WalkControl::SkipSubtree,
            "/b" => WalkControl::Stop,
            _ => WalkControl::Continue,
        })
    })
    .expect("walk");
    assert_eq!(seen, ["/", "/a", "/a/sub", "/a/x", "/b"]);

    // A walk below a subdirectory uses the given prefix.
    let a = resolve_path(&repo, &root, "/a").expect("a");
    let mut seen = Vec::new();
    walk(&repo, &a, "/a", &mut |p: &str, _n: &Node| {
        seen.push(p.to_owned());
        Ok(WalkControl::Continue)
    })
    .expect("walk");
    assert_eq!(seen, ["/a", "/a/sub", "/a/sub/y", "/a/x"]);
}

struct Recorder {
    events: Vec<String>,
}

impl Visitor for Recorder {
    fn visit(&mut self, path: &str, _node: &Node) -> Result<WalkControl> {
        self.events.push(format!("visit {path}"));
        Ok(WalkControl::Continue)
    }
    fn tree_error(&mut self, path: &str, _node: &Node, error: Error) -> Result<()> {
        self.events.push(format!("error {path} {:?}", error.kind()));
        Ok(())
    }
    fn leave_dir(&mut self, path: &str, _node: &Node) -> Result<()> {
        self.events.push(format!("leave {path}"));
        Ok(())
    }
}

#[test]
fn damaged_subtree_is_reported_and_the_walk_goes_on() {
    let (v, root, _) = sample();
    let sub = resolve_path(&v.reopen(), &root, "/a/sub")
        .expect("sub")
        .subtree
        .expect("tree");
    v.corrupt(BlobType::Tree, &sub);
    let repo = v.reopen();
    let mut r = Recorder { events: Vec::new() };
    walk(&repo, &root_node(&root), "/", &mut r).expect("walk");
    let want = [
        "visit /",
        "visit /a",
        "visit /a/sub",
        "error /a/sub Damaged",
        "leave /a/sub",
        "visit /a/x",
        "leave /a",
        "visit /b",
        "visit /c",
        "leave /",
    ];
    assert_eq!(r.events, want);
    // Without a tree_error handler the damage ends the walk as an error.
    let e = walk(&repo, &root_node(&root), "/", &mut |_: &str, _: &Node| {
        Ok(WalkControl::Continue)
    })
    .expect_err("damage");
    assert_eq!(e.kind(), ErrorKind::Damaged);
}

#[test]
fn refuses_hostile_names() {
    for bad in ["..", ".", "", "x/y", "a\0b"] {
        let v = Vault::new();
        let s = v.saver();
        let root = v.commit(s, vec![symlink(bad, "/etc")]);
        let repo = v.reopen();
        let e = walk(&repo, &root_node(&root), "/", &mut |_: &str, _: &Node| {
            Ok(WalkControl::Continue)
        })
        .expect_err("hostile name");
        assert_eq!(e.kind(), ErrorKind::Damaged, "{bad:?}: {e}");
    }
    let v = Vault::new();
    let s = v.saver();
    let root = v.commit(s, vec![symlink("same", "x"), symlink("same", "y")]);
    let e = resolve_path(&v.reopen(), &root, "/same").expect_err("duplicate");
    assert!(e.to_string().contains("duplicate"), "{e}");
}

#[test]
fn streams_file_content() {
    let (v, root, c) = sample();
    let repo = v.reopen();
    let node = resolve_path(&repo, &root, "/c").expect("c");
    assert_eq!(node.content().len(), 3);
    let mut out = Vec::new();
    let n = write_file_content(&repo, &node, &mut out).expect("cat");
    assert_eq!((n, out), (c.len() as u64, c));

    let mut wrong = node.clone();
    wrong.size += 1;
    let mut out = Vec::new();
    let e = write_file_content(&repo, &wrong, &mut out).expect_err("size");
    assert_eq!(e.kind(), ErrorKind::Damaged);
    assert!(e.to_string().contains("file c"), "{e}");
    assert!(out.is_empty(), "nothing written before the size check");

    let dir = resolve_path(&repo, &root, "/a").expect("a");
    let e = write_file_content(&repo, &dir, &mut Vec::new()).expect_err("dir");
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
}

#[test]
fn damaged_blob_fails_naming_it() {
    let (v, root, _) = sample();
    let node = resolve_path(&v.reopen(), &root, "/c").expect("c");
    let bad = node.content()[1];
    v.corrupt(BlobType::Data, &bad);
    let repo = v.reopen();
    let mut out = Vec::new();
    let e = write_file_content(&repo, &node, &mut out).expect_err("damage");
    assert_eq!(e.kind(), ErrorKind::Damaged);
    assert!(e.to_string().contains(&bad.to_hex()), "{e}");
    assert_eq!(out.len(), 1000, "only the verified first blob was written");
}
