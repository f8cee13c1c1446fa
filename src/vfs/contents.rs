//! `<name>.contents/`: a disk image in a snapshot opened into its virtual
//! disk, partition table and partitions (`formats::image`). The image is
//! opened when the directory is first listed or entered; an image that
//! cannot be opened makes the directory fail with the reason, while its
//! parent lists normally.

use std::sync::{Arc, OnceLock};

use vaultfs_formats::container::{ContainerError, Siblings};
use vaultfs_formats::image::Image;

use super::snapdir::SnapFile;
use super::{Attr, Broken, Dir, Entry, File, Listing, Shared, Source};
use crate::error::{Error, ErrorKind, Result};

/// The suffix of the directory that shows a disk image's contents.
pub const CONTENTS_SUFFIX: &str = ".contents";

/// The `.contents/` directory of one image file.
pub(crate) struct ContentsDir {
    file: SnapFile,
    siblings: Box<dyn Siblings>,
    attr: Attr,
    listing: OnceLock<std::result::Result<Arc<Listing>, Arc<Broken>>>,
}

impl ContentsDir {
    pub(crate) fn new(
        _shared: Arc<Shared>,
        file: SnapFile,
        siblings: Box<dyn Siblings>,
    ) -> ContentsDir {
        let f = file.attr();
        let attr = Attr {
            uid: f.uid,
            gid: f.gid,
            ..Attr::dir(f.mtime)
        };
        ContentsDir {
            file,
            siblings,
            attr,
            listing: OnceLock::new(),
        }
    }

    fn build(&self) -> Result<Listing> {
        let src = self.file.open()?;
        let image = Image::open(src, self.file.name(), &*self.siblings).map_err(|e| {
            let kind = match &e {
                ContainerError::Unsupported { .. } => ErrorKind::Unsupported,
                ContainerError::Sibling { source, .. }
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    ErrorKind::Missing
                }
                _ => ErrorKind::Damaged,
            };
            Error::new(
                kind,
                format!("opening disk image {}: {e}", self.file.name()),
            )
        })?;
        let time = self.attr.mtime;
        let mut out = Vec::new();
        for name in image.entries() {
            let entry = match image.open_entry(&name) {
                Ok(src) => Entry::File(Arc::new(RawFile {
                    attr: Attr {
                        uid: self.attr.uid,
                        gid: self.attr.gid,
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
        Ok(Listing::new(out))
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
