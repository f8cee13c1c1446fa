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
      for `check`: damage was found
  2   invalid command line; for `check`: the check could not run (not a
      repository, no key matches, unreadable config)
  3   backup completed with warnings: some files could not be read,
      the snapshot was written without them; or restore completed with
      warnings: some metadata (owners, extended attributes, devices)
      could not be restored

Environment:
  VAULTFS_REPOSITORY        repository location (like -r/--repo)
  VAULTFS_PASSWORD_FILE     file holding the password (like --password-file)
  VAULTFS_PASSWORD_COMMAND  command printing the password (like --password-command)
  VAULTFS_TEST_KDF_N        for testing only: scrypt cost N (a power of two) for
                            keys created by `init` and `key add|passwd`; weak
                            values make passwords easy to brute-force

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
    /// Restore a snapshot, or a path inside it, into a directory.
    Restore(RestoreArgs),
    /// Mount the repository (or a local disk image with `--image`) as a
    /// read-only filesystem (FUSE, Linux); blocks until unmounted.
    Mount(MountArgs),
    /// Remove stale locks (or all locks).
    Unlock(UnlockArgs),
    /// Check the repository's structure and, with --read-data, its data.
    Check(CheckArgs),
    /// Write shell completions or man pages.
    Generate(GenerateArgs),
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
    #[arg(required_unless_present = "disk", value_name = "PATH")]
    pub paths: Vec<PathBuf>,

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
    #[arg(short = 't', long = "target", required = true, value_name = "DIR")]
    pub target: PathBuf,

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
