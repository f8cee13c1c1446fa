//! Walking a [`Filesystem`] from its root, and the invariants every reader
//! must keep (the trait's conformance check, run on [`MemFs`] here and on
//! each real reader's test images).
//!
//! [`MemFs`]: super::MemFs

use std::collections::HashSet;

use super::{DirEntry, FileKind, Filesystem, FsError, Ino};

/// Calls `visit(path, entry)` for every entry below the root, depth first
/// in directory order; `path` is `/`-separated without a leading slash. A
/// directory met a second time (a loop in damaged metadata) is an error.
pub fn walk(
    fs: &dyn Filesystem,
    visit: &mut dyn FnMut(&str, &DirEntry) -> Result<(), FsError>,
) -> Result<(), FsError> {
    let mut seen = HashSet::from([fs.root()]);
    let mut stack = vec![(String::new(), fs.root())];
    while let Some((prefix, dir)) = stack.pop() {
        let mut subdirs = Vec::new();
        for e in fs.read_dir(dir)? {
            let path = if prefix.is_empty() {
                e.name.clone()
            } else {
                format!("{prefix}/{}", e.name)
            };
            visit(&path, &e)?;
            if e.kind == FileKind::Dir {
                if !seen.insert(e.ino) {
                    return Err(FsError::corrupt(
                        format!("directory {path}"),
                        0,
                        format!("inode {} is reached twice: the directory tree loops", e.ino),
                    ));
                }
                subdirs.push((path, e.ino));
            }
        }
        stack.extend(subdirs.into_iter().rev());
    }
    Ok(())
}

/// Checks what every reader must keep, over the whole tree: each entry's
/// kind and inode agree with its metadata, `lookup` finds each name, names
/// are non-empty without `/` or NUL and unique in their directory
/// (case-insensitively where the filesystem compares so, which `lookup`
/// reveals), files open to exactly their size (or refuse as encrypted),
/// symlinks read to exactly
/// their size, and other kinds refuse the calls not meant for them.
/// Returns how many entries were checked, or the first violation.
pub fn check_invariants(fs: &dyn Filesystem) -> Result<usize, String> {
    let root = fs.metadata(fs.root()).map_err(|e| format!("root: {e}"))?;
    if root.kind != FileKind::Dir {
        return Err(format!("the root is a {:?}", root.kind));
    }
    let mut count = 0;
    let mut names_in: std::collections::HashMap<Ino, HashSet<String>> = Default::default();
    walk(fs, &mut |path, e| {
        count += 1;
        let parent = parent_ino(fs, path)?;
        if e.name.is_empty() || e.name.contains(['/', '\0']) || e.name == "." || e.name == ".." {
            return Err(bad(path, format!("invalid name {:?}", e.name)));
        }
        if !names_in.entry(parent).or_default().insert(e.name.clone()) {
            return Err(bad(path, "the name appears twice in its directory"));
        }
        check_entry(fs, parent, path, e)
    })
    .map_err(|e| e.to_string())?;
    Ok(count)
}

fn bad(path: &str, detail: impl Into<String>) -> FsError {
    FsError::corrupt(format!("conformance: {path}"), 0, detail)
}

fn parent_ino(fs: &dyn Filesystem, path: &str) -> Result<Ino, FsError> {
    let mut ino = fs.root();
    let dirs = path.rsplit_once('/').map_or("", |(d, _)| d);
    for part in dirs.split('/').filter(|p| !p.is_empty()) {
        ino = fs
            .lookup(ino, part)?
            .ok_or_else(|| bad(path, format!("lookup of {part:?} finds nothing")))?
            .ino;
    }
    Ok(ino)
}

fn check_entry(fs: &dyn Filesystem, parent: Ino, path: &str, e: &DirEntry) -> Result<(), FsError> {
    let m = fs.metadata(e.ino)?;
    if m.ino != e.ino || m.kind != e.kind {
        return Err(bad(
            path,
            format!(
                "listed as {:?} inode {}, metadata says {:?} inode {}",
                e.kind, e.ino, m.kind, m.ino
            ),
        ));
    }
    match fs.lookup(parent, &e.name)? {
        Some(found) if found.ino == e.ino => {}
        other => return Err(bad(path, format!("lookup of its name gives {other:?}"))),
    }
    match e.kind {
        FileKind::File => {
            match fs.open(e.ino) {
                Ok(src) if src.len() != m.size => {
                    let len = src.len();
                    return Err(bad(
                        path,
                        format!("opens to {len} bytes, size is {}", m.size),
                    ));
                }
                // Listed but unreadable by design (an EFS file).
                Ok(_) | Err(FsError::Encrypted { .. }) => {}
                Err(e) => return Err(e),
            }
            refuse(path, "read_dir", fs.read_dir(e.ino).map(|_| ()))?;
        }
        FileKind::Symlink => {
            let target = fs.read_link(e.ino)?;
            if target.len() as u64 != m.size {
                return Err(bad(path, format!("target {target:?}, size is {}", m.size)));
            }
        }
        FileKind::Dir => refuse(path, "open", fs.open(e.ino).map(|_| ()))?,
        _ => refuse(path, "open", fs.open(e.ino).map(|_| ()))?,
    }
    Ok(())
}

fn refuse(path: &str, call: &str, r: Result<(), FsError>) -> Result<(), FsError> {
    match r {
        Err(FsError::WrongKind { .. }) => Ok(()),
        Err(e) => Err(bad(path, format!("{call} fails with {e}, not WrongKind"))),
        Ok(()) => Err(bad(
            path,
            format!("{call} succeeds on the wrong kind of inode"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fs::MemFs;
    use crate::io::ReadAt;

    fn sample() -> MemFs {
        let fs = MemFs::new();
        let root = fs.root();
        let docs = fs.add_dir(root, "docs");
        let a = fs.add_file(docs, "a.txt", b"hello");
        fs.add_file(root, "empty", b"");
        fs.add_symlink(root, "link", "docs/a.txt");
        fs.link(root, "hard", a);
        let deep = fs.add_dir(docs, "deep");
        fs.add_file(deep, "z", &[7u8; 5000]);
        fs
    }

    #[test]
    fn walk_visits_every_entry_depth_first_in_order() {
        let fs = sample();
        let mut paths = Vec::new();
        walk(&fs, &mut |p, _| {
            paths.push(p.to_string());
            Ok(())
        })
        .expect("walk");
        assert_eq!(
            paths,
            [
                "docs",
                "empty",
                "link",
                "hard",
                "docs/a.txt",
                "docs/deep",
                "docs/deep/z"
            ]
        );
    }

    #[test]
    fn memfs_keeps_the_invariants() {
        let fs = sample();
        assert_eq!(check_invariants(&fs), Ok(7));
        let a = fs.lookup(Ino(2), "a.txt").expect("lookup").expect("a.txt");
        assert_eq!(fs.metadata(a.ino).expect("meta").nlink, 2);
        let mut buf = [0u8; 5];
        fs.open(a.ino)
            .expect("open")
            .read_exact_at(0, &mut buf)
            .expect("read");
        assert_eq!(&buf, b"hello");
    }

    #[test]
    fn a_duplicate_name_breaks_the_invariants() {
        let fs = sample();
        fs.add_file(fs.root(), "empty", b"x");
        let err = check_invariants(&fs).expect_err("duplicate");
        assert!(err.contains("appears twice"), "{err}");
    }

    #[test]
    fn a_looping_tree_is_an_error_not_a_hang() {
        let fs = sample();
        let docs = fs
            .lookup(fs.root(), "docs")
            .expect("lookup")
            .expect("docs")
            .ino;
        let deep = fs.lookup(docs, "deep").expect("lookup").expect("deep").ino;
        fs.link(deep, "up", docs);
        let err = walk(&fs, &mut |_, _| Ok(())).expect_err("loop");
        assert!(err.to_string().contains("loops"), "{err}");
    }

    #[test]
    fn calls_on_the_wrong_kind_are_refused() {
        let fs = sample();
        assert!(matches!(fs.open(fs.root()), Err(FsError::WrongKind { .. })));
        assert!(matches!(
            fs.read_link(Ino(3)),
            Err(FsError::WrongKind { .. })
        ));
        assert!(matches!(
            fs.metadata(Ino(99)),
            Err(FsError::NoInode(Ino(99)))
        ));
    }
}
