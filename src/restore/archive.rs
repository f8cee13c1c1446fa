//! Restore into an archive instead of a directory: a snapshot's tree (or a
//! path in it) written to any [`Write`] as a POSIX pax tar, a gzip-compressed
//! pax tar, or a zip, for `restore --archive` and for piping to a program.
//!
//! Tar entries are ustar headers (built with the `tar` crate), preceded by
//! a pax extended header (`x`) whenever ustar cannot hold a value exactly:
//! a path or link target longer than 100 bytes or not ASCII, an mtime with
//! a fraction of a second or outside ustar's range, a size of 8 GiB or
//! more, large ids, long or non-ASCII owner names. Hard links the snapshot
//! records (same device and inode) become link entries to the first name.
//!
//! Zip entries are deflated, carry Unix modes, a DOS time (local time, as
//! zip tools expect) plus the extended timestamp field (UTC seconds), use
//! zip64 when a file is near 4 GiB, and store symlinks as Unix symlinks.
//! The zip is written streaming (sizes in data descriptors), so it needs no
//! seekable output. Zip has no hard links (the content is stored again) and
//! no fifos or devices (skipped with a warning).
//!
//! File content goes out blob by blob, each verified: memory holds one blob
//! (at most one maximal chunk), never a whole file. A file whose blobs are
//! missing from the index is left out with an error; a blob that turns out
//! damaged while its file is being written is replaced by zeros (the
//! archive must stay readable) and reported as an error. Filters work as
//! for a restore into a directory: paths below the restored node with a
//! leading `/`, excluded directories are not entered, and directories are
//! written only when they or something below them is included.

use std::collections::HashMap;
use std::io::{self, Write};
use std::time::Instant;

use chrono::{DateTime, Datelike, FixedOffset, Local, Timelike};

use super::report::{Count, Report};
use super::{RestoreProgress, RestoreSummary};
use crate::error::{Error, ErrorKind, Result};
use crate::filter::Filter;
use crate::repo::{BlobType, Repository};
use crate::snapshot::walk::{self, Visitor, WalkControl};
use crate::snapshot::{Node, NodeType};

/// The kind of archive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArchiveFormat {
    /// POSIX pax tar.
    Tar,
    /// POSIX pax tar, gzip-compressed.
    TarGz,
    /// Zip (deflate, zip64 where needed).
    Zip,
}

impl ArchiveFormat {
    /// The format named `tar`, `tar.gz` (or `tgz`), `zip`.
    pub fn parse(s: &str) -> Option<ArchiveFormat> {
        match s.to_ascii_lowercase().as_str() {
            "tar" => Some(ArchiveFormat::Tar),
            "tar.gz" | "tgz" => Some(ArchiveFormat::TarGz),
            "zip" => Some(ArchiveFormat::Zip),
            _ => None,
        }
    }

    /// The format a file name's extension calls for.
    pub fn from_file_name(name: &str) -> Option<ArchiveFormat> {
        let n = name.to_ascii_lowercase();
        if n.ends_with(".tar.gz") || n.ends_with(".tgz") {
            Some(ArchiveFormat::TarGz)
        } else if n.ends_with(".tar") {
            Some(ArchiveFormat::Tar)
        } else if n.ends_with(".zip") {
            Some(ArchiveFormat::Zip)
        } else {
            None
        }
    }
}

/// Writes `root` (found in the snapshot; a directory's contents, or one
/// node under its own name) as an archive to `out`. Entries that cannot be
/// written are errors in the summary; an `Err` means the archive itself
/// could not be written (an output error, an unreadable root tree) and is
/// incomplete.
pub fn write_archive<W: Write>(
    repo: &Repository,
    root: &Node,
    format: ArchiveFormat,
    filter: &Filter,
    out: W,
    progress: &dyn RestoreProgress,
) -> Result<RestoreSummary> {
    let start = Instant::now();
    let report = Report::new(progress, false);
    let out_err =
        |e: io::Error| Error::with_source(ErrorKind::Io, format!("writing the archive: {e}"), e);
    match format {
        ArchiveFormat::Tar => {
            let mut sink = TarSink { out, n: 0 };
            walk_into(repo, root, filter, &report, &mut sink)?;
            sink.finish().map_err(out_err)?;
        }
        ArchiveFormat::TarGz => {
            let gz = flate2::write::GzEncoder::new(out, flate2::Compression::default());
            let mut sink = TarSink { out: gz, n: 0 };
            walk_into(repo, root, filter, &report, &mut sink)?;
            sink.finish().map_err(out_err)?;
            sink.out.finish().map_err(out_err)?;
        }
        ArchiveFormat::Zip => {
            let mut sink = ZipSink {
                zip: zip::ZipWriter::new_stream(out),
            };
            walk_into(repo, root, filter, &report, &mut sink)?;
            sink.zip
                .finish()
                .map_err(|e| Error::new(ErrorKind::Io, format!("writing the archive: {e}")))?
                .into_inner()
                .flush()
                .map_err(out_err)?;
        }
    }
    Ok(report.into_summary(start.elapsed().as_secs_f64()))
}

/// What an archive entry is.
enum What<'a> {
    Dir,
    File,
    /// A hard link to the entry of this name.
    HardLink(&'a str),
    Symlink(Vec<u8>),
    Fifo,
    CharDev,
    BlockDev,
}

/// Writes entries of one archive format.
trait Sink {
    /// Writes an entry's header (for a file, before its content).
    fn entry(&mut self, name: &str, node: &Node, what: What<'_>) -> io::Result<bool>;
    /// Writes file content.
    fn data(&mut self, bytes: &[u8]) -> io::Result<()>;
    /// The file's content is complete (`n` bytes written).
    fn end_file(&mut self, n: u64) -> io::Result<()>;
}

/// A directory seen but not written yet: written as soon as something in
/// it is (or at once if it is included itself).
struct Pending {
    name: String,
    node: Node,
    written: bool,
    included: bool,
}

struct Walker<'a, 'r, S: Sink> {
    repo: &'a Repository,
    filter: &'a Filter,
    report: &'a Report<'r>,
    sink: &'a mut S,
    dirs: Vec<Pending>,
    started: bool,
    /// Archive name of the first entry of each (device, inode) linked more
    /// than once.
    inodes: HashMap<(u64, u64), String>,
    /// The first output error: it ends the walk.
    failed: Option<io::Error>,
}

fn walk_into<S: Sink>(
    repo: &Repository,
    root: &Node,
    filter: &Filter,
    report: &Report<'_>,
    sink: &mut S,
) -> Result<()> {
    let mut w = Walker {
        repo,
        filter,
        report,
        sink,
        dirs: Vec::new(),
        started: false,
        inodes: HashMap::new(),
        failed: None,
    };
    let result = walk::walk(repo, root, "/", &mut w);
    if let Some(e) = w.failed.take() {
        return Err(Error::with_source(
            ErrorKind::Io,
            format!("writing the archive: {e}"),
            e,
        ));
    }
    result
}

impl<S: Sink> Visitor for Walker<'_, '_, S> {
    fn visit(&mut self, path: &str, node: &Node) -> Result<WalkControl> {
        if !self.started {
            self.started = true;
            if node.is_dir() {
                return Ok(WalkControl::Continue);
            }
            if !walk::valid_name(&node.name) {
                return Err(Error::damaged(format!(
                    "cannot archive a node named {:?}",
                    node.name
                )));
            }
            let path = walk::join_path("/", &node.name);
            return Ok(self.entry(&path, node));
        }
        Ok(self.entry(path, node))
    }

    fn tree_error(&mut self, path: &str, _node: &Node, error: Error) -> Result<()> {
        if path == "/" {
            return Err(error);
        }
        self.report.error(format!(
            "{error}; the directory's contents are not in the archive"
        ));
        Ok(())
    }

    fn leave_dir(&mut self, path: &str, _node: &Node) -> Result<()> {
        if path != "/" {
            self.dirs.pop();
        }
        Ok(())
    }
}

impl<S: Sink> Walker<'_, '_, S> {
    fn entry(&mut self, path: &str, node: &Node) -> WalkControl {
        if self.failed.is_some() {
            return WalkControl::Stop;
        }
        if self.filter.excluded(path) {
            return WalkControl::SkipSubtree;
        }
        let name = path.trim_start_matches('/').to_owned();
        let included = self.dirs.last().is_some_and(|d| d.included) || self.filter.included(path);
        if node.is_dir() {
            self.dirs.push(Pending {
                name,
                node: node.clone(),
                written: false,
                included,
            });
            if included {
                self.flush_dirs();
            }
            return self.go_on();
        }
        if !included {
            return WalkControl::Continue;
        }
        self.flush_dirs();
        let result = match node.node_type {
            NodeType::File => self.file(path, &name, node),
            NodeType::Symlink => self
                .sink
                .entry(&name, node, What::Symlink(node.link_target_bytes()))
                .map(|ok| {
                    if ok {
                        self.report.count(Count::Symlink);
                    }
                }),
            NodeType::Fifo | NodeType::Dev | NodeType::Chardev => {
                let what = match node.node_type {
                    NodeType::Fifo => What::Fifo,
                    NodeType::Dev => What::BlockDev,
                    _ => What::CharDev,
                };
                match self.sink.entry(&name, node, what) {
                    Ok(true) => {
                        self.report.count(Count::Special);
                        Ok(())
                    }
                    Ok(false) => {
                        self.report
                            .warning(format!("{path}: a fifo or device cannot go into a zip"));
                        Ok(())
                    }
                    Err(e) => Err(e),
                }
            }
            // Sockets belong to a running program; restic skips them too.
            NodeType::Socket => Ok(()),
            NodeType::Irregular | NodeType::Dir => {
                self.report
                    .warning(format!("{path}: irregular file not archived"));
                Ok(())
            }
        };
        if let Err(e) = result {
            self.failed = Some(e);
        }
        self.go_on()
    }

    fn go_on(&self) -> WalkControl {
        if self.failed.is_some() {
            WalkControl::Stop
        } else {
            WalkControl::Continue
        }
    }

    /// Writes the directories above the current entry not written yet.
    fn flush_dirs(&mut self) {
        for i in 0..self.dirs.len() {
            if self.dirs[i].written || self.failed.is_some() {
                continue;
            }
            self.dirs[i].written = true;
            let (name, node) = (self.dirs[i].name.clone(), self.dirs[i].node.clone());
            match self.sink.entry(&name, &node, What::Dir) {
                Ok(_) => self.report.count(Count::Dir),
                Err(e) => self.failed = Some(e),
            }
        }
    }

    /// A regular file: a hard link to an earlier name, or its content.
    fn file(&mut self, path: &str, name: &str, node: &Node) -> io::Result<()> {
        let key = (node.device_id, node.inode);
        let linked = node.links > 1 && node.inode != 0;
        if linked && let Some(first) = self.inodes.get(&key) {
            let first = first.clone();
            if self.sink.entry(name, node, What::HardLink(&first))? {
                self.report.count(Count::HardLink);
                return Ok(());
            }
            // Zip: no hard links; the content goes in again.
        }
        // Missing blobs are found before the header is written, so such a
        // file is simply left out.
        if let Err(e) = walk::blob_sizes(self.repo, path, node) {
            self.report
                .error(format!("{e}; the file is not in the archive"));
            return Ok(());
        }
        self.sink.entry(name, node, What::File)?;
        let mut written = 0u64;
        let mut damaged = None;
        for id in node.content() {
            let data = match self.repo.load_blob(BlobType::Data, id) {
                Ok(d) => d,
                Err(e) => {
                    damaged = Some(e.context(format!("file {path}")));
                    break;
                }
            };
            let take = (data.len() as u64).min(node.size - written) as usize;
            self.sink.data(&data[..take])?;
            written += take as u64;
            self.report.progress().bytes_done(take as u64);
        }
        if written < node.size {
            // The header promised `size` bytes: zeros keep the archive
            // readable, the error says the file is wrong.
            let zeros = [0u8; 64 * 1024];
            let mut left = node.size - written;
            while left > 0 {
                let n = left.min(zeros.len() as u64) as usize;
                self.sink.data(&zeros[..n])?;
                left -= n as u64;
            }
            let why =
                damaged.map_or_else(|| "its blobs ended early".to_string(), |e| e.to_string());
            self.report.error(format!(
                "{why}; in the archive, {path} holds zeros from byte {written} on"
            ));
        }
        self.sink.end_file(node.size)?;
        if linked {
            self.inodes.insert(key, name.to_owned());
        }
        self.report.file_done(path, node.size);
        Ok(())
    }
}

// ---------------------------------------------------------------- tar

const BLOCK: usize = 512;
/// The largest value of an 11-digit octal field (size, mtime).
const MAX_OCTAL_11: u64 = 0o777_7777_7777;
/// The largest value of a 7-digit octal field (uid, gid).
const MAX_OCTAL_7: u64 = 0o777_7777;

struct TarSink<W: Write> {
    out: W,
    /// Content bytes written of the current file (for the padding).
    n: u64,
}

/// A pax record: `LEN KEY=VALUE\n`, LEN counting itself.
fn pax_record(out: &mut Vec<u8>, key: &str, value: &[u8]) {
    let rest = 3 + key.len() + value.len();
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(format!("{len} {key}=").as_bytes());
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// A pax time: seconds, and the fraction without trailing zeros.
fn pax_time(t: &DateTime<FixedOffset>) -> String {
    let (secs, nanos) = (t.timestamp(), t.timestamp_subsec_nanos());
    if nanos == 0 {
        return secs.to_string();
    }
    // -2 s + 0.75 s is -1.25 s.
    let (sign, whole, frac) = if secs < 0 {
        ("-", -(secs + 1), 1_000_000_000 - nanos)
    } else {
        ("", secs, nanos)
    };
    let frac = format!("{frac:09}");
    format!("{sign}{whole}.{}", frac.trim_end_matches('0'))
}

/// Fits in a ustar text field of `len` bytes as it is?
fn fits(s: &[u8], len: usize) -> bool {
    s.len() <= len && s.is_ascii() && !s.contains(&0)
}

/// A stand-in for a value a pax record carries: ASCII, cut to `len`.
fn ascii_cut(s: &[u8], len: usize) -> Vec<u8> {
    s.iter()
        .map(|&b| if b.is_ascii() && b != 0 { b } else { b'_' })
        .take(len)
        .collect()
}

/// Linux `dev_t` to (major, minor).
fn major_minor(dev: u64) -> (u32, u32) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & !0xfff);
    let minor = (dev & 0xff) | ((dev >> 12) & !0xff);
    (major as u32, minor as u32)
}

impl<W: Write> TarSink<W> {
    fn pad(&mut self, len: u64) -> io::Result<()> {
        let rem = (len % BLOCK as u64) as usize;
        if rem != 0 {
            self.out.write_all(&[0u8; BLOCK][..BLOCK - rem])?;
        }
        Ok(())
    }

    fn finish(&mut self) -> io::Result<()> {
        self.out.write_all(&[0u8; 2 * BLOCK])?;
        self.out.flush()
    }
}

impl<W: Write> Sink for TarSink<W> {
    fn entry(&mut self, name: &str, node: &Node, what: What<'_>) -> io::Result<bool> {
        use tar::EntryType;
        let mut pax = Vec::new();
        let mut h = tar::Header::new_ustar();
        let (kind, size) = match &what {
            What::Dir => (EntryType::Directory, 0),
            What::File => (EntryType::Regular, node.size),
            What::HardLink(_) => (EntryType::Link, 0),
            What::Symlink(_) => (EntryType::Symlink, 0),
            What::Fifo => (EntryType::Fifo, 0),
            What::CharDev => (EntryType::Char, 0),
            What::BlockDev => (EntryType::Block, 0),
        };
        h.set_entry_type(kind);
        let mut path = name.as_bytes().to_vec();
        if matches!(what, What::Dir) {
            path.push(b'/');
        }
        if !fits(&path, 100) {
            pax_record(&mut pax, "path", &path);
        }
        h.as_old_mut().name = [0; 100];
        let cut = ascii_cut(&path, 100);
        h.as_old_mut().name[..cut.len()].copy_from_slice(&cut);
        let link: Option<Vec<u8>> = match &what {
            What::HardLink(first) => Some(first.as_bytes().to_vec()),
            What::Symlink(target) => Some(target.clone()),
            _ => None,
        };
        if let Some(link) = link {
            if !fits(&link, 100) {
                pax_record(&mut pax, "linkpath", &link);
            }
            let cut = ascii_cut(&link, 100);
            h.as_old_mut().linkname[..cut.len()].copy_from_slice(&cut);
        }
        h.set_mode(node.unix_perm() & 0o7777);
        let (uid, gid) = (u64::from(node.uid), u64::from(node.gid));
        if uid > MAX_OCTAL_7 {
            pax_record(&mut pax, "uid", uid.to_string().as_bytes());
        }
        if gid > MAX_OCTAL_7 {
            pax_record(&mut pax, "gid", gid.to_string().as_bytes());
        }
        h.set_uid(if uid > MAX_OCTAL_7 { 0 } else { uid });
        h.set_gid(if gid > MAX_OCTAL_7 { 0 } else { gid });
        for (key, owner) in [("uname", &node.user), ("gname", &node.group)] {
            let ok = fits(owner.as_bytes(), 32);
            if !ok {
                pax_record(&mut pax, key, owner.as_bytes());
            }
            let cut = String::from_utf8_lossy(&ascii_cut(owner.as_bytes(), 32)).into_owned();
            let _ = match key {
                "uname" => h.set_username(&cut),
                _ => h.set_groupname(&cut),
            };
        }
        let secs = node.mtime.timestamp();
        if node.mtime.timestamp_subsec_nanos() != 0 || !(0..=MAX_OCTAL_11 as i64).contains(&secs) {
            pax_record(&mut pax, "mtime", pax_time(&node.mtime).as_bytes());
        }
        h.set_mtime(secs.clamp(0, MAX_OCTAL_11 as i64) as u64);
        if size > MAX_OCTAL_11 {
            pax_record(&mut pax, "size", size.to_string().as_bytes());
        }
        h.set_size(size);
        if matches!(what, What::CharDev | What::BlockDev) {
            let (major, minor) = major_minor(node.device);
            h.set_device_major(major)?;
            h.set_device_minor(minor)?;
        }
        h.set_cksum();
        if !pax.is_empty() {
            // The extended header's own name, as GNU tar forms it.
            let mut x = tar::Header::new_ustar();
            x.set_entry_type(EntryType::XHeader);
            let base = name.rsplit('/').next().unwrap_or(name);
            let xname = ascii_cut(format!("PaxHeaders/{base}").as_bytes(), 99);
            x.as_old_mut().name[..xname.len()].copy_from_slice(&xname);
            x.set_mode(0o644);
            x.set_mtime(h.mtime().unwrap_or(0));
            x.set_size(pax.len() as u64);
            x.set_cksum();
            self.out.write_all(x.as_bytes())?;
            self.out.write_all(&pax)?;
            self.pad(pax.len() as u64)?;
        }
        self.out.write_all(h.as_bytes())?;
        self.n = 0;
        Ok(true)
    }

    fn data(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.n += bytes.len() as u64;
        self.out.write_all(bytes)
    }

    fn end_file(&mut self, n: u64) -> io::Result<()> {
        debug_assert_eq!(n, self.n);
        self.pad(n)
    }
}

// ---------------------------------------------------------------- zip

struct ZipSink<W: Write> {
    zip: zip::ZipWriter<zip::write::StreamWriter<W>>,
}

/// Files at least this large are written with zip64 sizes (deflate may
/// grow incompressible data a little past 4 GiB).
const ZIP64_FROM: u64 = 0xF000_0000;

/// The entry's DOS time: local time, as zip tools read it; out of the DOS
/// range (1980–2107) it becomes 1980-01-01.
fn dos_time(t: &DateTime<FixedOffset>) -> zip::DateTime {
    let l = t.with_timezone(&Local);
    let year = u16::try_from(l.year()).unwrap_or(0);
    zip::DateTime::from_date_and_time(
        year,
        l.month() as u8,
        l.day() as u8,
        l.hour() as u8,
        l.minute() as u8,
        l.second().min(59) as u8,
    )
    .unwrap_or_default()
}

fn zip_err(e: zip::result::ZipError) -> io::Error {
    match e {
        zip::result::ZipError::Io(e) => e,
        e => io::Error::other(e.to_string()),
    }
}

impl<W: Write> Sink for ZipSink<W> {
    fn entry(&mut self, name: &str, node: &Node, what: What<'_>) -> io::Result<bool> {
        let mut opts = zip::write::FullFileOptions::default()
            .last_modified_time(dos_time(&node.mtime))
            .unix_permissions(node.unix_perm());
        // The extended timestamp (0x5455): UTC seconds, which unzip uses
        // to set the mtime; only for times a signed 32-bit field holds.
        if let Ok(secs) = i32::try_from(node.mtime.timestamp()) {
            let mut ut = vec![1u8];
            ut.extend_from_slice(&secs.to_le_bytes());
            opts.add_extra_data(0x5455, ut, false).map_err(zip_err)?;
        }
        match what {
            What::Dir => {
                self.zip
                    .add_directory(format!("{name}/"), opts)
                    .map_err(zip_err)?;
            }
            What::File => {
                let opts = opts
                    .compression_method(zip::CompressionMethod::Deflated)
                    .large_file(node.size >= ZIP64_FROM);
                self.zip.start_file(name, opts).map_err(zip_err)?;
            }
            What::Symlink(target) => {
                self.zip
                    .add_symlink(name, String::from_utf8_lossy(&target), opts)
                    .map_err(zip_err)?;
            }
            What::HardLink(_) | What::Fifo | What::CharDev | What::BlockDev => return Ok(false),
        }
        Ok(true)
    }

    fn data(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.zip.write_all(bytes)
    }

    fn end_file(&mut self, _n: u64) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_records_count_their_own_length() {
        // Around the points where the length gains a digit.
        for n in [
            0usize, 1, 2, 3, 4, 5, 85, 86, 87, 88, 89, 90, 91, 990, 991, 992, 993, 994,
        ] {
            let mut out = Vec::new();
            let value = vec![b'a'; n];
            pax_record(&mut out, "path", &value);
            let text = String::from_utf8(out.clone()).expect("utf-8");
            let (len, _) = text.split_once(' ').expect("space");
            assert_eq!(len.parse::<usize>().expect("number"), out.len(), "{text:?}");
            assert!(text.ends_with('\n'));
        }
    }

    #[test]
    fn pax_times_keep_the_fraction_and_the_sign() {
        let t = |s: i64, ns: u32| {
            DateTime::from_timestamp(s, ns)
                .expect("time")
                .fixed_offset()
        };
        assert_eq!(pax_time(&t(1_700_000_000, 0)), "1700000000");
        assert_eq!(pax_time(&t(1_700_000_000, 500_000_000)), "1700000000.5");
        assert_eq!(pax_time(&t(1, 123_456_789)), "1.123456789");
        // 0.25 s before the epoch: seconds -1, nanoseconds 750000000.
        assert_eq!(pax_time(&t(-1, 750_000_000)), "-0.25");
        assert_eq!(pax_time(&t(-2, 0)), "-2");
    }

    #[test]
    fn device_numbers_split_like_glibc() {
        // makedev(8, 17) and makedev(259, 70000) as glibc encodes them.
        assert_eq!(major_minor(0x811), (8, 17));
        let dev = (259u64 & 0xfff) << 8 | (70000u64 & 0xff) | ((70000u64 & !0xff) << 12);
        assert_eq!(major_minor(dev), (259, 70000));
    }

    #[test]
    fn formats_from_names() {
        assert_eq!(
            ArchiveFormat::from_file_name("a.TAR.gz"),
            Some(ArchiveFormat::TarGz)
        );
        assert_eq!(
            ArchiveFormat::from_file_name("a.tgz"),
            Some(ArchiveFormat::TarGz)
        );
        assert_eq!(
            ArchiveFormat::from_file_name("a.tar"),
            Some(ArchiveFormat::Tar)
        );
        assert_eq!(
            ArchiveFormat::from_file_name("a.zip"),
            Some(ArchiveFormat::Zip)
        );
        assert_eq!(ArchiveFormat::from_file_name("a.rar"), None);
        assert_eq!(ArchiveFormat::parse("tgz"), Some(ArchiveFormat::TarGz));
    }
}
