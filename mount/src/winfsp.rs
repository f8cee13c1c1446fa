//! The WinFsp adapter (Windows): the same read-only tree as the FUSE
//! server, through the `winfsp` crate's `FileSystemContext`.
//!
//! **Untested and never compiled**: the project builds and tests on Linux
//! only, and this file is written against the documented API of winfsp
//! 0.13 (`FileSystemContext`, `FileSystemHost`, `VolumeParams`,
//! `DirBuffer`). Before it can link, the crate needs a `build.rs` calling
//! `winfsp::build::winfsp_link_delayload()` (with winfsp's `delayload`
//! feature as a Windows build dependency): WinFsp's DLL is only
//! delay-loaded. It is not wired into the CLI.
//!
//! Semantics follow the FUSE server: a read-only volume; damage is
//! `STATUS_IO_DEVICE_ERROR`, never "not found"; a path is resolved from the
//! root on every open (case-sensitively, as the tree is). Symbolic links,
//! devices, fifos and sockets are listed but cannot be opened
//! (`STATUS_NOT_SUPPORTED`), since WinFsp would need reparse points for
//! them. File index numbers are not provided.

use std::ffi::c_void;
use std::time::SystemTime;

use vaultfs::error::{Error, ErrorKind};
use vaultfs::vfs::{Attr, Entry, Kind, Source, Vfs};
use winfsp::filesystem::{
    DirBuffer, DirInfo, DirMarker, FileInfo, FileSecurity, FileSystemContext, OpenFileInfo,
    VolumeInfo, WideNameInfo,
};
use winfsp::host::{FileSystemHost, VolumeParams};
use winfsp::{FspError, U16CStr};

use crate::MountError;

const STATUS_OBJECT_NAME_NOT_FOUND: i32 = 0xC000_0034_u32 as i32;
const STATUS_NOT_A_DIRECTORY: i32 = 0xC000_0103_u32 as i32;
const STATUS_FILE_IS_A_DIRECTORY: i32 = 0xC000_00BA_u32 as i32;
const STATUS_MEDIA_WRITE_PROTECTED: i32 = 0xC000_00A2_u32 as i32;
const STATUS_IO_DEVICE_ERROR: i32 = 0xC000_0185_u32 as i32;
const STATUS_NOT_SUPPORTED: i32 = 0xC000_00BB_u32 as i32;
const STATUS_END_OF_FILE: i32 = 0xC000_0011_u32 as i32;

const FILE_ATTRIBUTE_READONLY: u32 = 0x1;
const FILE_ATTRIBUTE_DIRECTORY: u32 = 0x10;
const FILE_DIRECTORY_FILE: u32 = 0x1;

/// 100-ns intervals from 1601-01-01 to 1970-01-01.
const FILETIME_UNIX_EPOCH: u64 = 116_444_736_000_000_000;

fn status(code: i32) -> FspError {
    FspError::NTSTATUS(code)
}

fn fail(e: &Error) -> FspError {
    status(match e.kind() {
        ErrorKind::NotFound => STATUS_OBJECT_NAME_NOT_FOUND,
        ErrorKind::InvalidInput => STATUS_NOT_A_DIRECTORY,
        ErrorKind::Unsupported => STATUS_NOT_SUPPORTED,
        _ => STATUS_IO_DEVICE_ERROR,
    })
}

fn filetime(t: SystemTime) -> u64 {
    let since = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos() / 100).unwrap_or(u64::MAX));
    FILETIME_UNIX_EPOCH.saturating_add(since)
}

fn attributes(a: &Attr) -> u32 {
    match a.kind {
        Kind::Dir => FILE_ATTRIBUTE_DIRECTORY | FILE_ATTRIBUTE_READONLY,
        _ => FILE_ATTRIBUTE_READONLY,
    }
}

fn fill(info: &mut FileInfo, a: &Attr) {
    let size = if a.kind == Kind::File { a.size } else { 0 };
    info.file_attributes = attributes(a);
    info.reparse_tag = 0;
    info.file_size = size;
    info.allocation_size = size.div_ceil(4096) * 4096;
    info.creation_time = filetime(a.mtime);
    info.last_access_time = filetime(a.atime);
    info.last_write_time = filetime(a.mtime);
    info.change_time = filetime(a.ctime);
    info.index_number = 0;
    info.hard_links = 0;
    info.ea_size = 0;
}

/// One open file or directory.
pub struct Handle {
    entry: Entry,
    /// A regular file's bytes.
    source: Option<Source>,
    /// A directory's entries as last listed (WinFsp pages through them).
    dir: DirBuffer,
    is_root: bool,
}

/// The tree, served to WinFsp.
pub struct VaultWinFs {
    root: Entry,
}

impl VaultWinFs {
    fn resolve(&self, file_name: &U16CStr) -> winfsp::Result<Entry> {
        let path = file_name.to_string_lossy().replace('\\', "/");
        Vfs::resolve_from(&self.root, &path).map_err(|e| fail(&e))
    }
}

impl FileSystemContext for VaultWinFs {
    type FileContext = Handle;

    fn get_security_by_name(
        &self,
        file_name: &U16CStr,
        _security_descriptor: Option<&mut [c_void]>,
        _reparse_point_resolver: impl FnOnce(&U16CStr) -> Option<FileSecurity>,
    ) -> winfsp::Result<FileSecurity> {
        let entry = self.resolve(file_name)?;
        Ok(FileSecurity {
            reparse: false,
            sz_security_descriptor: 0,
            attributes: attributes(&entry.attr()),
        })
    }

    fn open(
        &self,
        file_name: &U16CStr,
        create_options: u32,
        _granted_access: winfsp_sys::FILE_ACCESS_RIGHTS,
        file_info: &mut OpenFileInfo,
    ) -> winfsp::Result<Handle> {
        let entry = self.resolve(file_name)?;
        let attr = entry.attr();
        if create_options & FILE_DIRECTORY_FILE != 0 && attr.kind != Kind::Dir {
            return Err(status(STATUS_NOT_A_DIRECTORY));
        }
        let source = match &entry {
            Entry::File(_) | Entry::Broken(_) if attr.kind != Kind::Dir => {
                Some(entry.open("").map_err(|e| fail(&e))?)
            }
            Entry::Dir(_) | Entry::Broken(_) => None,
            _ => return Err(status(STATUS_NOT_SUPPORTED)),
        };
        if let Entry::Broken(_) = &entry {
            // A broken directory fails when entered, like `opendir`.
            entry.as_dir("").map_err(|e| fail(&e))?;
        }
        fill(file_info.as_mut(), &attr);
        Ok(Handle {
            is_root: file_name.len() <= 1,
            entry,
            source,
            dir: DirBuffer::new(),
        })
    }

    fn close(&self, _context: Handle) {}

    fn get_file_info(&self, context: &Handle, file_info: &mut FileInfo) -> winfsp::Result<()> {
        fill(file_info, &context.entry.attr());
        Ok(())
    }

    fn read(&self, context: &Handle, buffer: &mut [u8], offset: u64) -> winfsp::Result<u32> {
        let Some(src) = &context.source else {
            return Err(status(STATUS_FILE_IS_A_DIRECTORY));
        };
        if offset >= src.len() {
            return Err(status(STATUS_END_OF_FILE));
        }
        let mut done = 0;
        while done < buffer.len() {
            match src.read_at(offset + done as u64, &mut buffer[done..]) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => return Err(status(STATUS_IO_DEVICE_ERROR)),
            }
        }
        Ok(u32::try_from(done).unwrap_or(u32::MAX))
    }

    fn read_directory(
        &self,
        context: &Handle,
        _pattern: Option<&U16CStr>,
        marker: DirMarker,
        buffer: &mut [u8],
    ) -> winfsp::Result<u32> {
        let dir = context.entry.as_dir("").map_err(|e| fail(&e))?;
        // A listing from the start refills the buffer; continuing reads
        // page through what was filled.
        if marker.is_none() {
            let listing = dir.list().map_err(|e| fail(&e))?;
            let lock = context.dir.acquire(true, None)?;
            let mut put = |name: &str, attr: &Attr| -> winfsp::Result<()> {
                let mut info: DirInfo<255> = DirInfo::new();
                fill(info.file_info_mut(), attr);
                info.set_name(name)?;
                lock.write(&mut info)
            };
            if !context.is_root {
                let here = dir.attr();
                put(".", &here)?;
                put("..", &here)?;
            }
            for (name, entry) in listing.entries() {
                put(name, &entry.attr())?;
            }
        }
        Ok(context.dir.read(marker, buffer))
    }

    fn get_volume_info(&self, out_volume_info: &mut VolumeInfo) -> winfsp::Result<()> {
        out_volume_info.total_size = 0;
        out_volume_info.free_size = 0;
        out_volume_info.set_volume_label("vaultfs");
        Ok(())
    }
}

/// A tree mounted through WinFsp; unmounted when dropped.
pub struct WinMount {
    host: FileSystemHost<VaultWinFs>,
}

impl WinMount {
    /// Mounts `root` at `mountpoint` (a drive letter such as `X:` or an
    /// empty directory) and starts serving it.
    pub fn spawn(root: Entry, mountpoint: &str) -> Result<WinMount, MountError> {
        let err = |e: FspError| MountError::Mount {
            path: mountpoint.into(),
            source: std::io::Error::other(format!("{e:?}")),
        };
        winfsp::winfsp_init().map_err(err)?;
        let mut params = VolumeParams::new();
        params
            .filesystem_name("vaultfs")
            .read_only_volume(true)
            .case_sensitive_search(true)
            .case_preserved_names(true)
            .unicode_on_disk(true)
            .sector_size(512)
            .sectors_per_allocation_unit(8)
            .max_component_length(255)
            .file_info_timeout(1000);
        let mut host = FileSystemHost::new(params, VaultWinFs { root }).map_err(err)?;
        host.mount(mountpoint).map_err(err)?;
        host.start().map_err(err)?;
        Ok(WinMount { host })
    }
}

impl Drop for WinMount {
    fn drop(&mut self) {
        self.host.stop();
        self.host.unmount();
    }
}
