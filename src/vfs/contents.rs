//! `<name>.contents/`: a disk image in a snapshot opened into its virtual
//! disk, partition table and partitions (`formats::image`). The image is
//! opened when the directory is first listed or entered; an image that
//! cannot be opened makes the directory fail with the reason, while its
//! parent lists normally. A volume whose filesystem has a reader also
//! shows as a directory of its files, `pN/` (or `fs/`), beside `pN.raw`.
//! [`image_dir`] shows a local image's contents the same way as the root of
//! a tree of its own (`mount --image`).

use std::sync::{Arc, OnceLock};
use std::time::SystemTime;

use vaultfs_formats::container::{ContainerError, Siblings};
use vaultfs_formats::fs::{self, FsOptions};
use vaultfs_formats::image::Image;

use super::fsdir::VolumeDir;
use super::{Attr, Broken, Dir, Entry, File, Listing, Source};
use crate::error::{Error, ErrorKind, Result};

/// The suffix of the directory that shows a disk image's contents.
pub const CONTENTS_SUFFIX: &str = ".contents";

/// Files at least this large are probed for a disk image whatever their
/// name; smaller ones only when named like one (a VMDK descriptor is a few
/// hundred bytes).
pub(crate) const PROBE_MIN_SIZE: u64 = 1 << 20;

/// Names that make a small file worth probing.
const IMAGE_EXTENSIONS: &[&str] = &[
    "vmdk", "vhd", "vhdx", "vpc", "img", "raw", "dd", "bin", "disk", "hdd", "qcow", "iso",
];

/// Is a file of this name and size worth probing for a disk image?
pub(crate) fn worth_probing(name: &str, size: u64) -> bool {
    let lower = name.to_ascii_lowercase();
    let named = lower
        .rsplit_once('.')
        .is_some_and(|(_, ext)| IMAGE_EXTENSIONS.contains(&ext));
    // A VMDK descriptor naming one extent can be a few hundred bytes; any
    // other image is at least a sector.
    (named && size > 0 && (size >= 512 || lower.ends_with(".vmdk"))) || size >= PROBE_MIN_SIZE
}

/// The `.contents/` directory of one image file.
pub(crate) struct ContentsDir {
    file: Arc<dyn File>,
    name: String,
    path: String,
    siblings: Box<dyn Siblings>,
    options: FsOptions,
    attr: Attr,
    listing: OnceLock<std::result::Result<Arc<Listing>, Arc<Broken>>>,
}

impl ContentsDir {
    /// The contents of `file`, called `name` and shown at `path` (without
    /// the suffix); `siblings` finds the files it names.
    pub(crate) fn new(
        file: Arc<dyn File>,
        name: String,
        path: String,
        siblings: Box<dyn Siblings>,
        options: FsOptions,
    ) -> ContentsDir {
        let f = file.attr();
        let attr = Attr {
            uid: f.uid,
            gid: f.gid,
            ..Attr::dir(f.mtime)
        };
        ContentsDir {
            file,
            name,
            path: format!("{path}{CONTENTS_SUFFIX}"),
            siblings,
            options,
            attr,
            listing: OnceLock::new(),
        }
    }

    fn build(&self) -> Result<Listing> {
        let src = self.file.open()?;
        let image = Image::open(src, &self.name, &*self.siblings).map_err(|e| {
            let kind = match &e {
                ContainerError::Unsupported { .. } => ErrorKind::Unsupported,
                ContainerError::Sibling { source, .. }
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    ErrorKind::Missing
                }
                _ => ErrorKind::Damaged,
            };
            Error::new(kind, format!("opening disk image {}: {e}", self.path))
        })?;
        Ok(image_listing(&image, &self.attr, &self.path, &self.options))
    }
}

impl Dir for ContentsDir {
    fn attr(&self) -> Attr {
        self.attr.clone()
    }

    fn list(&self) -> Result<Arc<Listing>> {
        self.listing
            .get_or_init(|| {
                self.build()
                    .map(Arc::new)
                    .map_err(|e| Arc::new(Broken::new(self.attr.clone(), &e)))
            })
            .clone()
            .map_err(|b| Error::new(b.kind, b.message.clone()))
    }
}

/// A file backed by a byte source: `disk.raw`, `pN.raw`, `partitions.txt`.
struct RawFile {
    attr: Attr,
    src: Source,
}

impl File for RawFile {
    fn attr(&self) -> Attr {
        self.attr.clone()
    }

    fn open(&self) -> Result<Source> {
        Ok(self.src.clone())
    }
}

/// `disk.raw`, `partitions.txt`, `pN.raw` and `pN/` of an opened image,
/// owned and dated like `dir` (the directory at `path` that shows them); an
/// entry that cannot be opened lists as a broken file.
fn image_listing(image: &Image, dir: &Attr, path: &str, options: &FsOptions) -> Listing {
    let time = dir.mtime;
    let mut out = Vec::new();
    for name in image.entries() {
        let entry = match image.open_entry(&name) {
            Ok(src) => Entry::File(Arc::new(RawFile {
                attr: Attr {
                    uid: dir.uid,
                    gid: dir.gid,
                    ..Attr::file(src.len(), time)
                },
                src,
            })),
            Err(e) => {
                let e = Error::new(ErrorKind::Damaged, format!("{name}: {e}"));
                Entry::Broken(Arc::new(Broken::new(Attr::file(0, time), &e)))
            }
        };
        out.push((name, entry));
    }
    for v in &image.volumes {
        if let Ok(Some(kind)) = v.fs
            && fs::has_reader(kind)
        {
            let shown = format!("{path}/{}", v.name);
            let d = VolumeDir::new(kind, v.data.clone(), options.clone(), dir.clone(), shown);
            out.push((v.name.clone(), Entry::Dir(Arc::new(d))));
        }
    }
    Listing::new(out)
}

/// An opened image's contents as a directory of its own, for serving a
/// local disk image without a repository (`vaultfs mount --image`).
struct ImageDir {
    attr: Attr,
    listing: Arc<Listing>,
}

impl Dir for ImageDir {
    fn attr(&self) -> Attr {
        self.attr.clone()
    }

    fn list(&self) -> Result<Arc<Listing>> {
        Ok(self.listing.clone())
    }
}

/// The contents of `image` (`disk.raw`, `partitions.txt`, `pN.raw`, `pN/`)
/// as a root directory owned by root and dated `time`, laid out exactly
/// like a `<name>.contents/` directory in a snapshot.
pub fn image_dir(image: &Image, time: SystemTime, options: &FsOptions) -> Entry {
    let attr = Attr::dir(time);
    let listing = Arc::new(image_listing(image, &attr, "", options));
    Entry::Dir(Arc::new(ImageDir { attr, listing }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use vaultfs_formats::container::LocalDir;

    #[test]
    fn image_dir_lists_a_local_disk_like_a_contents_directory() {
        let packed = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("images/containers/stamped-mbr.raw.zst"),
        )
        .expect("image");
        let raw = zstd::decode_all(packed.as_slice()).expect("zstd");
        let len = raw.len() as u64;
        let src: Source = Arc::new(vaultfs_formats::io::MemSource::new(raw));
        let image = Image::open(src, "mbr.img", &LocalDir::new(".")).expect("open");
        let time = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_700_000_000);
        let root = image_dir(&image, time, &FsOptions::default());
        assert_eq!(root.attr(), Attr::dir(time));
        let listing = root.as_dir("/").expect("dir").list().expect("list");
        let names: Vec<&str> = listing.entries().iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            names,
            [
                "disk.raw",
                "p1.raw",
                "p2.raw",
                "p5.raw",
                "p6.raw",
                "partitions.txt"
            ]
        );
        let disk = listing.get("disk.raw").expect("disk.raw").attr();
        assert_eq!((disk.size, disk.perm, disk.mtime), (len, 0o444, time));
    }
}
