//! The command line as clap sees it: every subcommand, flag, environment
//! variable and help text. Nothing here is validated beyond what clap does;
//! [`crate::plan`] turns these raw values into a checked plan.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Help text shown after `--help`: the exit status table and the
/// environment, so scripts can rely on them.
const AFTER_LONG_HELP: &str = "\
Exit status:
  0   success (also when stdout is closed early, e.g. piped into `head`)
  1   error: the command failed (wrong password, not a repository, I/O ...);
      for `check`: damage was found; for `repair`: data is lost (packs left
      out of the index, blobs dropped, damaged snapshots listed)
  2   invalid command line; for `check` and `repair`: the command could not
      run (not a repository, no key matches, unreadable config, locked)
  3   backup completed with warnings: some files could not be read,
      the snapshot was written without them; or restore completed with
      warnings: some metadata (owners, extended attributes, devices)
      could not be restored; or check stopped before the end (see
      --max-duration) with no damage found so far

Environment:
  VAULTFS_REPOSITORY        repository location (like -r/--repo)
  VAULTFS_PASSWORD_FILE     file holding the password (like --password-file)
  VAULTFS_PASSWORD_COMMAND  command printing the password (like --password-command)
  VAULTFS_TEST_KDF_N        for testing only: scrypt cost N (a power of two) for
                            keys created by `init` and `key add|passwd`; weak
                            values make passwords easy to brute-force
  VAULTFS_TEST_CHECK_STOP_AFTER
                            for testing only: `check` stops its data pass after
                            starting this many packs, as --max-duration would

Without a password file or command, the password is asked for on the terminal.";

/// vaultfs: encrypted, deduplicated backups in a restic-compatible vault.
#[derive(Debug, Parser)]
#[command(name = "vaultfs", version, about, after_long_help = AFTER_LONG_HELP)]
pub struct Cli {
    /// Options every command accepts.
    #[command(flatten)]
    pub global: GlobalArgs,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Options valid before or after the subcommand.
#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// Repository directory.
    #[arg(
        short = 'r',
        long = "repo",
        env = "VAULTFS_REPOSITORY",
        global = true,
        value_name = "PATH"
    )]
    pub repo: Option<PathBuf>,

    /// Read the repository password from this file (trailing newline removed).
    #[arg(
        long,
        env = "VAULTFS_PASSWORD_FILE",
        global = true,
        value_name = "FILE"
    )]
    pub password_file: Option<PathBuf>,

    /// Run this shell command (`sh -c`) and use its output as the password.
    #[arg(
        long,
        env = "VAULTFS_PASSWORD_COMMAND",
        global = true,
        value_name = "COMMAND"
    )]
    pub password_command: Option<String>,

    /// Print machine-readable JSON on stdout instead of text.
    #[arg(long, global = true)]
    pub json: bool,

    /// Print only errors and warnings; no progress bar.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// Print more detail (repeat for even more).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// Inside disk images, list each NTFS file's alternate data streams
    /// beside it as `name:stream` (readable like files).
    #[arg(long, global = true)]
    pub streams: bool,

    /// Inside disk images, read ext4 and XFS structures whose checksum
    /// does not match (forensics on a damaged volume): each mismatch is
    /// counted and reported as a warning of the volume instead of failing.
    #[arg(long, global = true)]
    pub ignore_checksums: bool,

    /// Inside disk images, show ext3/ext4 volumes as they lie on disk
    /// instead of replaying in memory a journal that needs recovery (the
    /// view is then stale, and a warning says so).
    #[arg(long, global = true)]
    pub no_journal_replay: bool,

    /// For testing only: scrypt N for new keys (see VAULTFS_TEST_KDF_N).
    #[arg(long, env = "VAULTFS_TEST_KDF_N", global = true, hide = true)]
    pub test_kdf_n: Option<u64>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a new repository.
    Init,
    /// Manage the keys (passwords) that unlock the repository.
    #[command(subcommand)]
    Key(KeyCommand),
    /// List snapshots.
    Snapshots(SnapshotsArgs),
    /// Back up files and directories into a new snapshot.
    Backup(BackupArgs),
    /// List the files and directories in a snapshot.
    Ls(LsArgs),
    /// Print the content of a file in a snapshot, or of a disk image's
    /// disk or partition (`--image`).
    Cat(CatArgs),
    /// Find files and directories by name across snapshots.
    Find(FindArgs),
    /// Show a local disk image's container and partition table (no
    /// repository needed).
    Inspect(InspectArgs),
    /// Restore a snapshot, or a path inside it, into a directory, an archive or a pipe.
    Restore(RestoreArgs),
    /// Mount the repository (or a local disk image with `--image`) as a
    /// read-only filesystem (FUSE, Linux); blocks until unmounted.
    Mount(MountArgs),
    /// Remove snapshots: the given ones, or those a keep policy does not
    /// keep (applied to each group of snapshots of the same host and paths).
    Forget(ForgetArgs),
    /// Show sizes: restored, by distinct contents, or as stored (with
    /// compression ratio, blob and pack counts).
    Stats(StatsArgs),
    /// Remove stale locks (or all locks).
    Unlock(UnlockArgs),
    /// Check the repository's structure and, with --read-data, its data.
    Check(CheckArgs),
    /// Repair the repository: rebuild the index from the packs, or find
    /// and forget the snapshots that need lost data.
    #[command(subcommand)]
    Repair(RepairCommand),
    /// Remove the data no snapshot needs (restic's `prune`).
    ///
    /// Walks every snapshot's trees, then deletes packs without a used
    /// blob and repacks partly used packs while more than --max-unused of
    /// the vault would stay unused. Packs no index names are deleted. New
    /// packs and the new index are written before anything is removed, so
    /// an interrupted prune loses nothing. Takes the exclusive lock.
    /// Exit status: 0 done (or planned, with --dry-run), 1 error (nothing
    /// is deleted when a snapshot, tree or needed pack cannot be read).
    Prune(PruneArgs),
    /// Write shell completions or man pages.
    Generate(GenerateArgs),
}

/// `prune` arguments.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Unused space allowed to remain: `P%` of the vault's size after the
    /// prune, a size (`500M`, `2G`) or `unlimited`.
    #[arg(long, default_value = "5%", value_parser = parse_max_unused)]
    pub max_unused: vaultfs::prune::MaxUnused,
    /// Repack at most this much (a size: `500M`, `2G`).
    #[arg(long, value_parser = parse_size)]
    pub max_repack_size: Option<u64>,
    /// Also repack packs holding uncompressed blobs, compressing them
    /// (repository version 2).
    #[arg(long)]
    pub repack_uncompressed: bool,
    /// Also merge packs below 80% of the pack size (by default only packs
    /// below 1/25 of it, when there are at least 10).
    #[arg(long)]
    pub repack_small: bool,
    /// Only show what would be done; change nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// For testing only: stop after a stage (packs, index, old-index).
    #[arg(long, env = "VAULTFS_TEST_PRUNE_STOP_AFTER", hide = true, value_parser = parse_stop_after)]
    pub test_stop_after: Option<vaultfs::prune::StopAfter>,
}

fn parse_max_unused(s: &str) -> Result<vaultfs::prune::MaxUnused, String> {
    vaultfs::prune::MaxUnused::parse(s)
        .ok_or_else(|| format!("{s:?} is not P% (0 <= P < 100), a size (500M, 2G) or unlimited"))
}

fn parse_size(s: &str) -> Result<u64, String> {
    vaultfs::prune::parse_size(s).ok_or_else(|| format!("{s:?} is not a size like 500M or 2G"))
}

fn parse_stop_after(s: &str) -> Result<vaultfs::prune::StopAfter, String> {
    use vaultfs::prune::StopAfter;
    match s {
        "packs" => Ok(StopAfter::Packs),
        "index" => Ok(StopAfter::Index),
        "old-index" => Ok(StopAfter::OldIndex),
        _ => Err(format!("{s:?} is not packs, index or old-index")),
    }
}

/// `key` subcommands.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// List the key files; `*` marks the one in use.
    List,
    /// Add a key for a new password.
    Add(NewPasswordArgs),
    /// Remove a key file (not the one in use).
    Remove {
        /// Key id or unique prefix.
        id: String,
    },
    /// Change the password: add a key for the new one, remove the current one.
    Passwd(NewPasswordArgs),
}

/// Where a new password comes from.
#[derive(Debug, Args)]
pub struct NewPasswordArgs {
    /// Read the new password from this file (else it is asked for twice).
    #[arg(long, value_name = "FILE")]
    pub new_password_file: Option<PathBuf>,
}

/// Snapshot selection by host, tag and path.
#[derive(Debug, Args, Default)]
pub struct SnapshotFilterArgs {
    /// Only snapshots of this host (repeatable).
    #[arg(long = "host", value_name = "HOST")]
    pub hosts: Vec<String>,
    /// Only snapshots with these tags: `a,b` needs both, repeating the flag
    /// accepts either group.
    #[arg(long = "tag", value_name = "TAG[,TAG...]")]
    pub tags: Vec<String>,
    /// Only snapshots of exactly these paths (repeatable).
    #[arg(long = "path", value_name = "PATH")]
    pub paths: Vec<String>,
}

/// `snapshots` arguments.
#[derive(Debug, Args)]
pub struct SnapshotsArgs {
    /// Show only these snapshots (`latest` or id prefixes).
    #[arg(value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
    /// Host, tag and path filters.
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

/// `backup` arguments.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Files and directories to back up.
    #[arg(
        required_unless_present_any = ["disk", "stdin", "stdin_from_command"],
        value_name = "PATH"
    )]
    pub paths: Vec<PathBuf>,

    /// Back up standard input as the file /NAME (see --stdin-filename) of
    /// a new snapshot; it is streamed into the vault, never spooled.
    #[arg(long, conflicts_with_all = ["paths", "disk", "stdin_from_command"])]
    pub stdin: bool,

    /// Run CMD with `sh -c` and back up its standard output as the file
    /// /NAME. Its stderr is passed through and makes the status 3; if it
    /// fails (non-zero exit status, signal), no snapshot is written and the
    /// status is 1.
    #[arg(long, value_name = "CMD", conflicts_with_all = ["paths", "disk"])]
    pub stdin_from_command: Option<String>,

    /// With --stdin or --stdin-from-command: the file's name in the
    /// snapshot (default: stdin).
    #[arg(long, value_name = "NAME")]
    pub stdin_filename: Option<String>,

    /// Back up a whole disk instead: a block device or a raw image file,
    /// stored as a VMDK descriptor NAME.vmdk plus one extent file per
    /// partition and per raw byte range (partition table, gaps).
    #[arg(long, value_name = "DEVICE_OR_IMAGE", conflicts_with = "paths")]
    pub disk: Option<PathBuf>,

    /// With --disk: store only these partitions (numbers as Linux gives
    /// them, e.g. `1,3`); the others read as zeros.
    #[arg(long, value_name = "N[,N...]", requires = "disk")]
    pub partitions: Vec<String>,

    /// With --disk: also store the space filesystems do not use (by
    /// default it is stored as zeros on NTFS, FAT, ext2/3/4 and XFS).
    #[arg(long, requires = "disk")]
    pub include_unused: bool,

    /// With --disk: the name of the descriptor, NAME.vmdk (default: disk).
    #[arg(long, value_name = "NAME", requires = "disk")]
    pub name: Option<String>,

    /// Tag the snapshot (repeatable; `a,b` adds both).
    #[arg(long = "tag", value_name = "TAG[,TAG...]")]
    pub tags: Vec<String>,

    /// Host name recorded in the snapshot (default: this machine's).
    #[arg(long, value_name = "HOST")]
    pub host: Option<String>,

    /// Exclude paths matching this glob (`*`, `**`, `?`, `[...]`; repeatable).
    #[arg(short = 'e', long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,

    /// Exclude paths matching this regular expression (repeatable).
    #[arg(long = "exclude-regex", value_name = "REGEX")]
    pub exclude_regexes: Vec<String>,

    /// Read exclude globs from this file, one per line; `#` starts a comment.
    #[arg(long = "exclude-file", value_name = "FILE")]
    pub exclude_files: Vec<PathBuf>,

    /// Back up only paths matching this glob (repeatable).
    #[arg(short = 'i', long = "include", value_name = "GLOB")]
    pub includes: Vec<String>,

    /// Back up only paths matching this regular expression (repeatable).
    #[arg(long = "include-regex", value_name = "REGEX")]
    pub include_regexes: Vec<String>,

    /// Also back up /proc, /sys, /dev, /selinux and /run when they lie below
    /// a given path (they are skipped unless named explicitly).
    #[arg(long)]
    pub no_system_exclusions: bool,

    /// Do not cross filesystem boundaries below the given paths.
    #[arg(short = 'x', long)]
    pub one_file_system: bool,

    /// Compare with this snapshot to skip unchanged files (`latest` or an id
    /// prefix; default: the latest of this host and these paths).
    #[arg(long, value_name = "SNAPSHOT")]
    pub parent: Option<String>,

    /// Read every file, even those unchanged since the parent snapshot.
    #[arg(short = 'f', long = "force", visible_alias = "rescan-unchanged")]
    pub force: bool,

    /// Compression for new data: auto, off, max or a zstd level 1-22.
    #[arg(long, default_value = "auto", value_name = "MODE")]
    pub compression: String,
}

/// `ls` arguments.
#[derive(Debug, Args)]
pub struct LsArgs {
    /// `latest` or an id prefix, optionally followed by `:PATH` to list only
    /// that path and everything below it.
    #[arg(value_name = "SNAPSHOT[:PATH]", required_unless_present = "image")]
    pub target: Option<String>,

    /// List a local disk image's contents instead of a snapshot: `FILE`
    /// (everything: disk.raw, partitions.txt, pN.raw and the files of each
    /// pN/ whose filesystem vaultfs reads) or `FILE:PATH` (below PATH, e.g.
    /// `FILE:p1/Windows`).
    #[arg(long, value_name = "FILE[:PATH]", conflicts_with = "target")]
    pub image: Option<String>,

    /// Long listing: permissions, owner, group, size, mtime, path and
    /// symlink target.
    #[arg(short = 'l', long)]
    pub long: bool,

    /// In the long listing, print sizes as 1.234 MiB instead of bytes.
    #[arg(long)]
    pub human_readable: bool,

    /// List the deleted files a volume inside a disk image still records
    /// (NTFS MFT records not in use, FAT entries marked deleted), as The
    /// Sleuth Kit's `fls -d` does; PATH names the volume's directory
    /// (`...disk.vmdk.contents/p2`, or `p2` with --image).
    #[arg(long)]
    pub deleted: bool,

    /// Inside disk images, print under each entry what its filesystem
    /// records beyond the listing (inode, creation time, NTFS $FILE_NAME
    /// times, DOS attributes); with --json, a "details" object. Everywhere,
    /// each extended attribute as `xattr.NAME=VALUE` (the value as text when
    /// it is printable UTF-8, else 0x and hex); with --json, an "xattrs"
    /// object.
    #[arg(long)]
    pub details: bool,

    /// List subdirectories recursively (always done; accepted for restic
    /// compatibility).
    #[arg(long)]
    pub recursive: bool,

    /// Host, tag and path filters for `latest`.
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

/// `cat` arguments.
#[derive(Debug, Args)]
pub struct CatArgs {
    /// `latest` or an id prefix, then `:` and the file's path in the snapshot.
    #[arg(value_name = "SNAPSHOT:PATH", required_unless_present = "image")]
    pub target: Option<String>,

    /// Read from a local disk image instead of the repository:
    /// `FILE:disk.raw` (the whole virtual disk), `FILE:p2.raw` (partition 2),
    /// `FILE:fs.raw` (a disk without partition table),
    /// `FILE:partitions.txt`, or a file inside a partition's filesystem,
    /// `FILE:p2/path/to/file`.
    #[arg(long, value_name = "FILE:ENTRY", conflicts_with = "target")]
    pub image: Option<String>,

    /// Host, tag and path filters for `latest`.
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

/// `find` arguments.
#[derive(Debug, Args)]
pub struct FindArgs {
    /// Name patterns (`*`, `?`, `[...]`): a pattern without `/` matches an
    /// entry's name, one with `/` its whole path (`**` crosses
    /// directories).
    #[arg(value_name = "PATTERN", required = true)]
    pub patterns: Vec<String>,

    /// Only these snapshots (`latest` or an id prefix; repeatable). Default:
    /// every snapshot passing the host/tag/path filters.
    #[arg(short = 's', long = "snapshot", value_name = "ID")]
    pub snapshots: Vec<String>,

    /// Ignore case.
    #[arg(short = 'i', long)]
    pub ignore_case: bool,

    /// Also search inside disk images (their `.contents/` directories); each
    /// image in the searched snapshots is opened.
    #[arg(long)]
    pub images: bool,

    /// Long listing (permissions, size, mtime).
    #[arg(short = 'l', long)]
    pub long: bool,

    /// Host, tag and path filters.
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

/// `inspect` arguments.
#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The disk image (VMDK, VHD, VHDX or raw; extent and parent files are
    /// looked up next to it).
    #[arg(long, value_name = "FILE")]
    pub image: PathBuf,
}

/// What `restore` does with entries that exist already.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OverwriteArg {
    /// Always replace them.
    #[default]
    Always,
    /// Replace them unless size and mtime match the snapshot's.
    IfChanged,
    /// Replace them only if the snapshot's version is newer.
    IfNewer,
    /// Never replace them.
    Never,
}

/// `restore` arguments.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// `latest` or an id prefix, optionally followed by `:PATH` to restore
    /// only that path; a directory's contents go straight into the target.
    #[arg(value_name = "SNAPSHOT[:PATH]")]
    pub target_snapshot: String,

    /// Directory to restore into (created if missing); `/` restores to the
    /// original paths.
    #[arg(
        short = 't',
        long = "target",
        required_unless_present_any = ["archive", "pipe_to", "to_original"],
        value_name = "DIR"
    )]
    pub target: Option<PathBuf>,

    /// Restore to where the files were backed up from: the whole snapshot
    /// into `/`, a directory into its own path, a file into its directory
    /// (with --overwrite deciding about files that exist there).
    #[arg(long, conflicts_with_all = ["target", "archive", "pipe_to", "raw"])]
    pub to_original: bool,

    /// Write the selected tree into an archive instead of a directory:
    /// OUT ending in .tar (POSIX pax), .tar.gz or .tgz, or .zip; `-` writes
    /// to standard output (then --archive-format is required).
    #[arg(
        long,
        value_name = "OUT",
        conflicts_with_all = ["target", "raw", "dry_run", "overwrite"]
    )]
    pub archive: Option<PathBuf>,

    /// The archive's format when OUT does not tell: tar, tar.gz or zip.
    #[arg(long, value_name = "FORMAT")]
    pub archive_format: Option<String>,

    /// Run CMD with `sh -c` and write to its standard input: one file's
    /// bytes, or a pax tar of a directory. If CMD fails (non-zero exit
    /// status, signal), the exit status is 1.
    #[arg(
        long,
        value_name = "CMD",
        conflicts_with_all = ["target", "raw", "dry_run", "overwrite", "archive"]
    )]
    pub pipe_to: Option<String>,

    /// Restore only paths matching this glob (repeatable). Paths are
    /// matched below the restored path, starting with `/`.
    #[arg(short = 'i', long = "include", value_name = "GLOB")]
    pub includes: Vec<String>,

    /// Restore only paths matching this regular expression (repeatable).
    #[arg(long = "include-regex", value_name = "REGEX")]
    pub include_regexes: Vec<String>,

    /// Do not restore paths matching this glob (repeatable).
    #[arg(short = 'e', long = "exclude", value_name = "GLOB")]
    pub excludes: Vec<String>,

    /// Do not restore paths matching this regular expression (repeatable).
    #[arg(long = "exclude-regex", value_name = "REGEX")]
    pub exclude_regexes: Vec<String>,

    /// What to do with files that exist already in the target.
    #[arg(long, value_enum, default_value_t = OverwriteArg::Always, value_name = "WHEN")]
    pub overwrite: OverwriteArg,

    /// Read, decrypt and verify everything that would be restored, but
    /// write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Write a disk image as one flat raw image: SNAPSHOT:PATH names a VMDK
    /// descriptor (or another disk image, or `IMAGE.contents/pN.raw`), and
    /// --target a file, a directory (NAME.raw is written in it) or a block
    /// device, which must be at least as large as the image.
    #[arg(long)]
    pub raw: bool,

    /// Host, tag and path filters for `latest`.
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

/// `mount` arguments.
#[derive(Debug, Args)]
pub struct MountArgs {
    /// An existing directory to mount on.
    #[arg(value_name = "MOUNTPOINT")]
    pub mountpoint: PathBuf,

    /// Mount this local disk image's contents (disk.raw, partitions.txt,
    /// pN.raw) instead of a repository.
    #[arg(long, value_name = "FILE")]
    pub image: Option<PathBuf>,

    /// Let other users in too (FUSE `allow_other`; as non-root this needs
    /// `user_allow_other` in /etc/fuse.conf). Permissions are still checked
    /// against the owners and modes stored in the snapshots.
    #[arg(long)]
    pub allow_other: bool,
}

/// `forget` arguments.
#[derive(Debug, Args)]
pub struct ForgetArgs {
    /// Remove these snapshots (id prefixes); without them, the keep policy
    /// decides.
    #[arg(value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
    /// Keep the N newest snapshots.
    #[arg(short = 'l', long, value_name = "N", default_value_t = 0)]
    pub keep_last: u32,
    /// Keep the newest snapshot of each of the N newest hours that have one.
    #[arg(short = 'H', long, value_name = "N", default_value_t = 0)]
    pub keep_hourly: u32,
    /// Keep the newest snapshot of each of the N newest days that have one.
    #[arg(short = 'd', long, value_name = "N", default_value_t = 0)]
    pub keep_daily: u32,
    /// Keep the newest snapshot of each of the N newest ISO weeks.
    #[arg(short = 'w', long, value_name = "N", default_value_t = 0)]
    pub keep_weekly: u32,
    /// Keep the newest snapshot of each of the N newest months.
    #[arg(short = 'm', long, value_name = "N", default_value_t = 0)]
    pub keep_monthly: u32,
    /// Keep the newest snapshot of each of the N newest years.
    #[arg(short = 'y', long, value_name = "N", default_value_t = 0)]
    pub keep_yearly: u32,
    /// Keep every snapshot younger than this (`2y5m7d3h`), counted back
    /// from the newest snapshot of its group.
    #[arg(long, value_name = "DURATION", value_parser = parse_within)]
    pub keep_within: Option<vaultfs::forget::Within>,
    /// Keep every snapshot with these tags (`a,b` needs both; repeatable).
    #[arg(long, value_name = "TAG[,TAG...]")]
    pub keep_tag: Vec<String>,
    /// Apply the policy to each group of snapshots sharing these: a comma
    /// list of `host`, `paths`, `tags`, or '' for one group.
    #[arg(short = 'g', long, value_name = "GROUP", default_value = "host,paths", value_parser = parse_group_by)]
    pub group_by: vaultfs::forget::GroupBy,
    /// Only consider snapshots passing these filters.
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
    /// Show what would be removed, remove nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
    /// Prune afterwards if snapshots were removed (with --dry-run, show
    /// what that prune would do).
    #[arg(long)]
    pub prune: bool,
    /// With --prune: unused space allowed to remain (see `prune`).
    #[arg(long, default_value = "5%", value_parser = parse_max_unused, requires = "prune")]
    pub max_unused: vaultfs::prune::MaxUnused,
    /// With --prune: repack at most this much.
    #[arg(long, value_parser = parse_size, requires = "prune")]
    pub max_repack_size: Option<u64>,
}

fn parse_within(s: &str) -> Result<vaultfs::forget::Within, String> {
    vaultfs::forget::Within::parse(s).ok_or_else(|| {
        format!("{s:?} is not a duration like 2y5m7d3h (years, months, days, hours)")
    })
}

fn parse_group_by(s: &str) -> Result<vaultfs::forget::GroupBy, String> {
    vaultfs::forget::GroupBy::parse(s)
        .ok_or_else(|| format!("{s:?}: group by a comma list of host, paths, tags, or ''"))
}

/// `stats` arguments.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// Count only these snapshots (`latest` or id prefixes; all if none).
    #[arg(value_name = "SNAPSHOT")]
    pub snapshots: Vec<String>,
    /// What to count.
    #[arg(long, value_enum, default_value = "restore-size")]
    pub mode: StatsMode,
    /// Host, tag and path filters.
    #[command(flatten)]
    pub filter: SnapshotFilterArgs,
}

/// `stats --mode`.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum StatsMode {
    /// What a restore writes: every file, directory and link of every
    /// snapshot, duplicates included.
    RestoreSize,
    /// Each distinct file content once.
    FilesByContents,
    /// The distinct blobs as stored: compressed and encrypted size,
    /// size before compression, compression ratio, blob and pack counts.
    RawData,
}

/// `unlock` arguments.
#[derive(Debug, Args)]
pub struct UnlockArgs {
    /// Remove all locks, also those of running processes.
    #[arg(long)]
    pub remove_all: bool,
}

/// `check` arguments.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Also read every pack and verify every blob in it.
    #[arg(long)]
    pub read_data: bool,
    /// Read only a subset of the packs: `n/m` (the n-th of m groups by pack
    /// id, as restic), `P%` (random packs) or a size like `500M` (random
    /// packs up to that many bytes). Implies --read-data.
    #[arg(long, value_name = "SUBSET", value_parser = parse_subset)]
    pub read_data_subset: Option<vaultfs::check::Subset>,
    /// Also open the disk images in the snapshots (as the mount does) and
    /// walk their partitions' filesystems; with --read-data, read every
    /// file inside them too.
    #[arg(long)]
    pub images: bool,
    /// Continue the data pass an earlier run of the same check left
    /// unfinished (killed, or stopped by --max-duration): packs it read are
    /// not read again, and their findings are reported. Implies
    /// --read-data.
    #[arg(long)]
    pub resume: bool,
    /// Stop starting new packs after this long (`90s`, `45m`, `6h`, `1d`);
    /// the packs read are kept for --resume, and the exit status is 3 if
    /// the pass is unfinished and no damage was found so far. Implies
    /// --read-data.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub max_duration: Option<std::time::Duration>,
    /// Where the data pass records the packs it has read (default: under
    /// $XDG_STATE_HOME or ~/.local/state, vaultfs/check/REPOSITORY-ID.jsonl).
    /// Removed when the pass completes.
    #[arg(long, value_name = "FILE")]
    pub progress_file: Option<std::path::PathBuf>,
    /// For testing only: stop after starting this many packs (see
    /// VAULTFS_TEST_CHECK_STOP_AFTER).
    #[arg(long, env = "VAULTFS_TEST_CHECK_STOP_AFTER", hide = true)]
    pub test_stop_after: Option<u64>,
}

/// Parses `90s`, `45m`, `6h`, `1d` (a plain number is seconds).
fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let t = s.trim();
    let (num, unit) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => (&t[..i], c),
        _ => (t, 's'),
    };
    let secs: u64 = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86400,
        _ => return Err(format!("{s:?}: the unit must be s, m, h or d")),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(secs))
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{s:?} is not a duration like 90s, 45m, 6h or 1d"))
}

/// `repair` subcommands.
#[derive(Debug, Subcommand)]
pub enum RepairCommand {
    /// Rebuild the index from the packs in data/ (restic's `rebuild-index`,
    /// `repair index` in restic 0.16+).
    ///
    /// Each pack is taken from the old index when a readable index file
    /// describes it exactly (same size), else its header is read. Packs
    /// whose header cannot be read are left out of the new index and
    /// reported, never deleted. New index files are written first, then the
    /// old ones (damaged ones too) are removed. Takes the exclusive lock.
    /// Exit status: 0 the index describes every pack, 1 a pack was left out
    /// or blobs were dropped (run `vaultfs repair snapshots` next), 2 the
    /// repair could not run.
    Index(RepairIndexArgs),
    /// List the snapshots that need lost data (a tree or data blob not in
    /// the index, or a tree that cannot be read), and with
    /// --forget-damaged remove them.
    ///
    /// Each damaged snapshot is shown with the first paths whose data is
    /// lost. A snapshot whose data is all there is never removed. The index
    /// must load completely: repair it first (`vaultfs repair index`).
    /// Removing takes the exclusive lock. Exit status: 0 no snapshot needs
    /// lost data (or all that did were removed), 1 damaged snapshots are
    /// listed (not removed) or a snapshot file is unreadable, 2 the repair
    /// could not run.
    Snapshots(RepairSnapshotsArgs),
}

/// `repair index` arguments.
#[derive(Debug, Args)]
pub struct RepairIndexArgs {
    /// Ignore the old index and read every pack whole, verifying every
    /// blob (MAC, decryption, decompression, SHA-256); only blobs that
    /// verify are indexed.
    #[arg(long)]
    pub read_all_packs: bool,
}

/// `repair snapshots` arguments.
#[derive(Debug, Args)]
pub struct RepairSnapshotsArgs {
    /// Remove the snapshots that need lost data (their files in
    /// snapshots/; the data they share with other snapshots stays).
    #[arg(long)]
    pub forget_damaged: bool,
    /// Show what --forget-damaged would remove, and remove nothing.
    #[arg(short = 'n', long)]
    pub dry_run: bool,
}

fn parse_subset(s: &str) -> Result<vaultfs::check::Subset, String> {
    vaultfs::check::Subset::parse(s).ok_or_else(|| {
        format!("{s:?} is not n/m (1 <= n <= m <= 256), P% (0 < P <= 100) or a size (500M, 2G)")
    })
}

/// Shells for which completions can be generated.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum CompletionShell {
    /// GNU bash.
    Bash,
    /// Z shell.
    Zsh,
    /// fish.
    Fish,
    /// Elvish.
    Elvish,
    /// PowerShell.
    Powershell,
}

/// `generate` arguments.
#[derive(Debug, Args)]
#[command(arg_required_else_help = true)]
pub struct GenerateArgs {
    /// Print a completion script for this shell on stdout.
    #[arg(long, value_name = "SHELL")]
    pub completion: Option<CompletionShell>,
    /// Write man pages (vaultfs.1, vaultfs-backup.1, ...) into this directory.
    #[arg(long, value_name = "DIR")]
    pub man: Option<PathBuf>,
}
