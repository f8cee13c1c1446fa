//! The validated plan: the raw command line turned into checked values that
//! the commands can use without further parsing (compiled filters, parsed
//! compression, split tags, absolute paths, the password source).
//!
//! Everything a user can get wrong in the arguments is reported here, before
//! a repository is opened or a password is asked for.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use vaultfs::archiver::{BackupOptions, ParentChoice};
use vaultfs::filter::{Filter, Matcher};
use vaultfs::repo::{Compression, KdfParams};
use vaultfs::restore::{Overwrite, RestoreOptions};
use vaultfs::snapshot::select::SnapshotFilter;

use crate::cli::{self, Cli, CompletionShell, OverwriteArg};
use crate::password::PasswordSource;

/// What to run.
pub struct Plan {
    /// Settings shared by every command.
    pub global: Global,
    /// The command and its checked arguments.
    pub command: Command,
}

/// Settings shared by every command.
pub struct Global {
    /// The repository directory, if one was given.
    pub repo: Option<PathBuf>,
    /// Where the repository password comes from.
    pub password: PasswordSource,
    /// How to print.
    pub output: Output,
    /// scrypt parameters for new keys.
    pub kdf: KdfParams,
    /// How filesystems inside disk images are shown.
    pub fs: vaultfs_formats::fs::FsOptions,
}

/// How results and progress are printed.
#[derive(Clone, Copy, Debug)]
pub struct Output {
    /// JSON on stdout instead of text.
    pub json: bool,
    /// Only errors and warnings.
    pub quiet: bool,
    /// Extra detail level.
    pub verbose: u8,
    /// Show a progress bar (stderr is a terminal, not quiet, not JSON).
    pub progress: bool,
}

impl Output {
    /// Should human-readable text go to stdout?
    pub fn text(&self) -> bool {
        !self.json && !self.quiet
    }

    /// A step of the work, on stderr with `-v` (never with `-q`).
    pub fn info(&self, message: impl std::fmt::Display) {
        if self.verbose > 0 && !self.quiet {
            eprintln!("{message}");
        }
    }
}

/// A command with checked arguments.
pub enum Command {
    /// `init`.
    Init,
    /// `key ...`.
    Key(KeyPlan),
    /// `snapshots`.
    Snapshots(SnapshotsPlan),
    /// `backup`.
    Backup(Box<BackupPlan>),
    /// `ls`.
    Ls(LsPlan),
    /// `cat`.
    Cat(CatPlan),
    /// `find`.
    Find(FindPlan),
    /// `cat --image FILE:ENTRY`.
    CatImage(ImageEntry),
    /// `ls --image FILE[:PATH]`.
    LsImage(LsImagePlan),
    /// `inspect --image FILE`.
    Inspect(PathBuf),
    /// `restore`.
    Restore(Box<RestorePlan>),
    /// `mount`.
    Mount(MountPlan),
    /// `unlock`.
    Unlock {
        /// Also remove live locks.
        remove_all: bool,
    },
    /// `forget`.
    Forget(ForgetPlan),
    /// `stats`.
    Stats(StatsPlan),
    /// `check`.
    Check(CheckPlan),
    /// `repair index`.
    RepairIndex(vaultfs::repair::IndexOptions),
    /// `repair snapshots`.
    RepairSnapshots(vaultfs::repair::SnapshotOptions),
    /// `prune`.
    Prune(vaultfs::prune::PruneOptions),
    /// `generate`.
    Generate(GeneratePlan),
}

/// `key` subcommands.
pub enum KeyPlan {
    /// `key list`.
    List,
    /// `key add`.
    Add(PasswordSource),
    /// `key remove ID`.
    Remove(String),
    /// `key passwd`.
    Passwd(PasswordSource),
}

/// Snapshot selection: the library's host/path filter plus tag groups, any
/// one of which must be fully present (restic's `--tag a,b --tag c`).
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Hosts and paths (its `tags` stay empty; see `tag_groups`).
    pub filter: SnapshotFilter,
    /// Alternatives; a snapshot must carry every tag of at least one group.
    pub tag_groups: Vec<Vec<String>>,
}

impl Selection {
    /// Does the snapshot pass?
    pub fn matches(&self, s: &vaultfs::snapshot::Snapshot) -> bool {
        self.filter.matches(s)
            && (self.tag_groups.is_empty()
                || self
                    .tag_groups
                    .iter()
                    .any(|g| g.iter().all(|t| s.tags.contains(t))))
    }
}

/// `snapshots` arguments.
pub struct SnapshotsPlan {
    /// Only these selectors (all, if empty).
    pub selectors: Vec<String>,
    /// Filters.
    pub selection: Selection,
}

/// `backup` arguments.
pub struct BackupPlan {
    /// Options handed to the archiver.
    pub options: BackupOptions,
    /// Compression for new data.
    pub compression: Compression,
    /// `--disk`: back up this disk instead of `options.paths`.
    pub disk: Option<vaultfs::archiver::disk::DiskOptions>,
    /// `--stdin`, `--stdin-from-command`: back up a program's output.
    pub stream: Option<vaultfs::archiver::stream::StreamOptions>,
}

/// `SNAPSHOT[:PATH]`: a snapshot selector and a path inside the snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SnapshotPath {
    /// `latest` or a hex id prefix.
    pub snapshot: String,
    /// The path, absolute inside the snapshot and without empty or `.`
    /// components; `/` for the snapshot's root.
    pub path: String,
    /// Was a path given at all (`SNAPSHOT:PATH` rather than `SNAPSHOT`)?
    pub explicit_path: bool,
}

impl SnapshotPath {
    /// Splits `SNAPSHOT[:PATH]` at the first `:` and checks both halves.
    pub fn parse(arg: &str) -> Result<SnapshotPath> {
        let (snapshot, path) = match arg.split_once(':') {
            Some((s, p)) => (s, Some(p)),
            None => (arg, None),
        };
        if snapshot != "latest"
            && (snapshot.is_empty() || !snapshot.chars().all(|c| c.is_ascii_hexdigit()))
        {
            bail!("invalid snapshot {snapshot:?} in {arg:?}: use `latest` or a hex id prefix");
        }
        let mut parts = Vec::new();
        for comp in path.unwrap_or("").split('/') {
            match comp {
                "" | "." => {}
                ".." => bail!("invalid path in {arg:?}: `..` is not allowed in a snapshot path"),
                c => parts.push(c),
            }
        }
        Ok(SnapshotPath {
            snapshot: snapshot.to_owned(),
            path: format!("/{}", parts.join("/")),
            explicit_path: path.is_some(),
        })
    }
}

/// `ls` arguments.
pub struct LsPlan {
    /// What to list.
    pub target: SnapshotPath,
    /// Filters for `latest`.
    pub selection: Selection,
    /// Long listing.
    pub long: bool,
    /// Sizes as `1.234 MiB` in the long listing.
    pub human_readable: bool,
    /// List the volume's deleted files instead.
    pub deleted: bool,
    /// Print each tree entry's forensic details.
    pub details: bool,
}

/// `ls --image` arguments.
pub struct LsImagePlan {
    /// The image and the path in its contents (empty: everything).
    pub entry: ImageEntry,
    /// Long listing.
    pub long: bool,
    /// Sizes as `1.234 MiB` in the long listing.
    pub human_readable: bool,
    /// List the volume's deleted files instead.
    pub deleted: bool,
    /// Print each tree entry's forensic details.
    pub details: bool,
}

/// `find` arguments.
pub struct FindPlan {
    /// Compiled name and path patterns.
    pub patterns: globset::GlobSet,
    /// Snapshot selectors (empty: all passing `selection`).
    pub snapshots: Vec<String>,
    /// Host/tag/path filters.
    pub selection: Selection,
    /// Search inside disk images.
    pub images: bool,
    /// Long listing.
    pub long: bool,
}

/// `cat` arguments.
pub struct CatPlan {
    /// The file.
    pub target: SnapshotPath,
    /// Filters for `latest`.
    pub selection: Selection,
}

/// An entry of a local disk image's contents: `FILE:ENTRY`.
pub struct ImageEntry {
    /// The image file.
    pub file: PathBuf,
    /// The path in its contents: `disk.raw`, `pN.raw`, `fs.raw`,
    /// `partitions.txt`, `pN/dir/file` (empty: the contents' root).
    pub entry: String,
}

impl ImageEntry {
    /// Splits `FILE:PATH` after the longest prefix that names an existing
    /// file (both an image's file name and a path inside it, an NTFS
    /// stream `file:stream`, may hold colons), else at the first colon; no
    /// colon is the whole image.
    pub fn parse_path(s: &str) -> ImageEntry {
        let split = |at: usize| ImageEntry {
            file: PathBuf::from(&s[..at]),
            entry: s[at + 1..].trim_matches('/').to_string(),
        };
        if std::path::Path::new(s).is_file() {
            return ImageEntry {
                file: PathBuf::from(s),
                entry: String::new(),
            };
        }
        let colons: Vec<usize> = s.match_indices(':').map(|(i, _)| i).collect();
        colons
            .iter()
            .rev()
            .find(|&&i| i > 0 && std::path::Path::new(&s[..i]).is_file())
            .or(colons.first())
            .map_or_else(
                || ImageEntry {
                    file: PathBuf::from(s),
                    entry: String::new(),
                },
                |&i| split(i),
            )
    }

    /// Like [`ImageEntry::parse_path`], but a path is required.
    pub fn parse(s: &str) -> Result<ImageEntry> {
        match ImageEntry::parse_path(s) {
            e if !e.file.as_os_str().is_empty() && !e.entry.is_empty() => Ok(e),
            _ => bail!(
                "--image needs FILE:ENTRY, e.g. {s}:disk.raw or {s}:p1.raw (see `vaultfs inspect --image {s}`)"
            ),
        }
    }
}

/// `restore` arguments.
pub struct RestorePlan {
    /// What to restore.
    pub source: SnapshotPath,
    /// Filters for `latest`.
    pub selection: Selection,
    /// Target, filter, overwrite policy, dry run.
    pub options: RestoreOptions,
    /// `--raw`: write the disk image as one flat image.
    pub raw: bool,
    /// `--archive`: write an archive instead of a directory.
    pub archive: Option<ArchivePlan>,
    /// `--pipe-to`: write to a command's standard input.
    pub pipe_to: Option<String>,
    /// `--to-original`: the target is where the restored path came from.
    pub to_original: bool,
}

/// `restore --archive OUT`.
pub struct ArchivePlan {
    /// The file to write; `None` for standard output.
    pub out: Option<PathBuf>,
    /// Its format.
    pub format: vaultfs::restore::archive::ArchiveFormat,
}

/// `mount` arguments.
pub struct MountPlan {
    /// Where to mount (absolute).
    pub mountpoint: PathBuf,
    /// A local disk image to mount instead of the repository.
    pub image: Option<PathBuf>,
    /// FUSE `allow_other`.
    pub allow_other: bool,
}

/// `stats` arguments.
pub struct StatsPlan {
    /// Only these selectors (all, if empty).
    pub selectors: Vec<String>,
    /// Filters.
    pub selection: Selection,
    /// What to count.
    pub mode: vaultfs::stats::Mode,
}

/// `forget` arguments.
pub struct ForgetPlan {
    /// Snapshots to remove by id (then no policy applies).
    pub ids: Vec<String>,
    /// The keep policy.
    pub policy: vaultfs::forget::Policy,
    /// How snapshots are grouped.
    pub group_by: vaultfs::forget::GroupBy,
    /// Which snapshots are considered.
    pub selection: Selection,
    /// Remove nothing.
    pub dry_run: bool,
    /// Prune afterwards with these options.
    pub prune: Option<vaultfs::prune::PruneOptions>,
}

/// `check` arguments.
pub struct CheckPlan {
    /// What to check (its progress file is opened when the command runs).
    pub options: vaultfs::check::Options,
    /// Continue an unfinished data pass.
    pub resume: bool,
    /// Stop starting packs after this long.
    pub max_duration: Option<std::time::Duration>,
    /// The progress file, if not the default.
    pub progress_file: Option<std::path::PathBuf>,
    /// For tests: stop after starting this many packs.
    pub test_stop_after: Option<u64>,
}

/// `generate` arguments.
pub struct GeneratePlan {
    /// Print completions for this shell.
    pub completion: Option<CompletionShell>,
    /// Write man pages here.
    pub man: Option<PathBuf>,
}

impl Plan {
    /// Checks the command line and builds the plan.
    pub fn from_cli(cli: Cli) -> Result<Plan> {
        let global = global(cli.global)?;
        let command = match cli.command {
            cli::Command::Init => Command::Init,
            cli::Command::Key(k) => Command::Key(key(k)?),
            cli::Command::Snapshots(a) => Command::Snapshots(SnapshotsPlan {
                selectors: a.snapshots,
                selection: selection(a.filter),
            }),
            cli::Command::Backup(a) => Command::Backup(Box::new(backup(a)?)),
            cli::Command::Ls(a) => match (&a.image, &a.target) {
                (Some(image), _) => Command::LsImage(LsImagePlan {
                    entry: ImageEntry::parse_path(image),
                    long: a.long,
                    human_readable: a.human_readable,
                    deleted: a.deleted,
                    details: a.details,
                }),
                (None, Some(target)) => Command::Ls(LsPlan {
                    target: SnapshotPath::parse(target)?,
                    selection: selection(a.filter),
                    long: a.long,
                    human_readable: a.human_readable,
                    deleted: a.deleted,
                    details: a.details,
                }),
                (None, None) => bail!("ls needs SNAPSHOT[:PATH] or --image FILE[:PATH]"),
            },
            cli::Command::Cat(a) => match &a.image {
                Some(image) => Command::CatImage(ImageEntry::parse(image)?),
                None => Command::Cat(cat(a)?),
            },
            cli::Command::Inspect(a) => Command::Inspect(a.image),
            cli::Command::Find(a) => Command::Find(find(a)?),
            cli::Command::Restore(a) => Command::Restore(Box::new(restore(a)?)),
            cli::Command::Mount(a) => Command::Mount(mount(a)?),
            cli::Command::Unlock(a) => Command::Unlock {
                remove_all: a.remove_all,
            },
            cli::Command::Forget(a) => Command::Forget(forget(a)?),
            cli::Command::Stats(a) => Command::Stats(StatsPlan {
                selectors: a.snapshots,
                selection: selection(a.filter),
                mode: match a.mode {
                    cli::StatsMode::RestoreSize => vaultfs::stats::Mode::RestoreSize,
                    cli::StatsMode::FilesByContents => vaultfs::stats::Mode::FilesByContents,
                    cli::StatsMode::RawData => vaultfs::stats::Mode::RawData,
                },
            }),
            cli::Command::Check(a) => Command::Check(CheckPlan {
                options: vaultfs::check::Options {
                    read_data: a.read_data
                        || a.read_data_subset.is_some()
                        || a.resume
                        || a.max_duration.is_some()
                        || a.test_stop_after.is_some(),
                    subset: a.read_data_subset.unwrap_or(vaultfs::check::Subset::All),
                    progress_file: None,
                    images: a.images,
                },
                resume: a.resume,
                max_duration: a.max_duration,
                progress_file: a.progress_file,
                test_stop_after: a.test_stop_after,
            }),
            cli::Command::Repair(cli::RepairCommand::Index(a)) => {
                Command::RepairIndex(vaultfs::repair::IndexOptions {
                    read_all_packs: a.read_all_packs,
                })
            }
            cli::Command::Repair(cli::RepairCommand::Snapshots(a)) => {
                Command::RepairSnapshots(vaultfs::repair::SnapshotOptions {
                    forget_damaged: a.forget_damaged,
                    dry_run: a.dry_run,
                })
            }
            cli::Command::Prune(a) => Command::Prune(vaultfs::prune::PruneOptions {
                max_unused: a.max_unused,
                max_repack_size: a.max_repack_size,
                repack_uncompressed: a.repack_uncompressed,
                repack_small: a.repack_small,
                dry_run: a.dry_run,
                stop_after: a.test_stop_after,
            }),
            cli::Command::Generate(a) => Command::Generate(GeneratePlan {
                completion: a.completion,
                man: a.man,
            }),
        };
        Ok(Plan { global, command })
    }
}

impl Global {
    /// The repository directory, or an error saying how to give one.
    pub fn repo_path(&self) -> Result<&Path> {
        match &self.repo {
            Some(p) if !p.as_os_str().is_empty() => Ok(p),
            _ => bail!("no repository given: use -r/--repo PATH or set VAULTFS_REPOSITORY"),
        }
    }
}

fn global(g: cli::GlobalArgs) -> Result<Global> {
    let password = match (g.password_file, g.password_command) {
        (Some(_), Some(_)) => bail!(
            "a password file and a password command were both given \
             (check VAULTFS_PASSWORD_FILE and VAULTFS_PASSWORD_COMMAND); use one"
        ),
        (Some(f), None) => PasswordSource::File(f),
        (None, Some(c)) => PasswordSource::Command(c),
        (None, None) => PasswordSource::Prompt,
    };
    let mut kdf = KdfParams::default();
    if let Some(n) = g.test_kdf_n {
        if !n.is_power_of_two() || n < 2 {
            bail!("VAULTFS_TEST_KDF_N must be a power of two >= 2, not {n}");
        }
        kdf.n = n;
    }
    let output = Output {
        json: g.json,
        quiet: g.quiet,
        verbose: g.verbose,
        progress: !g.quiet && !g.json && std::io::stderr().is_terminal(),
    };
    let fs = vaultfs_formats::fs::FsOptions {
        streams: g.streams,
        ignore_checksums: g.ignore_checksums,
        no_journal_replay: g.no_journal_replay,
        ..Default::default()
    };
    Ok(Global {
        repo: g.repo,
        password,
        output,
        kdf,
        fs,
    })
}

fn new_password(a: cli::NewPasswordArgs) -> PasswordSource {
    match a.new_password_file {
        Some(f) => PasswordSource::File(f),
        None => PasswordSource::Prompt,
    }
}

fn key(k: cli::KeyCommand) -> Result<KeyPlan> {
    Ok(match k {
        cli::KeyCommand::List => KeyPlan::List,
        cli::KeyCommand::Add(a) => KeyPlan::Add(new_password(a)),
        cli::KeyCommand::Remove { id } => {
            if id.is_empty() || !id.chars().all(|c| c.is_ascii_hexdigit()) {
                bail!("invalid key id {id:?}: expected a hex id or prefix");
            }
            KeyPlan::Remove(id)
        }
        cli::KeyCommand::Passwd(a) => KeyPlan::Passwd(new_password(a)),
    })
}

/// Splits `a,b` lists and drops empty items.
fn split_commas(values: &[String]) -> Vec<String> {
    values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect()
}

fn forget(a: cli::ForgetArgs) -> Result<ForgetPlan> {
    let policy = vaultfs::forget::Policy {
        last: a.keep_last,
        hourly: a.keep_hourly,
        daily: a.keep_daily,
        weekly: a.keep_weekly,
        monthly: a.keep_monthly,
        yearly: a.keep_yearly,
        within: a.keep_within,
        tags: a
            .keep_tag
            .iter()
            .map(|t| split_commas(std::slice::from_ref(t)))
            .filter(|g| !g.is_empty())
            .collect(),
    };
    if !a.snapshots.is_empty() && !policy.is_empty() {
        bail!("forget takes snapshot ids or a keep policy (--keep-*), not both");
    }
    Ok(ForgetPlan {
        ids: a.snapshots,
        policy,
        group_by: a.group_by,
        selection: selection(a.filter),
        dry_run: a.dry_run,
        prune: a.prune.then(|| vaultfs::prune::PruneOptions {
            max_unused: a.max_unused,
            max_repack_size: a.max_repack_size,
            dry_run: a.dry_run,
            ..vaultfs::prune::PruneOptions::default()
        }),
    })
}

fn selection(a: cli::SnapshotFilterArgs) -> Selection {
    let tag_groups = a
        .tags
        .iter()
        .map(|t| split_commas(std::slice::from_ref(t)))
        .filter(|g| !g.is_empty())
        .collect();
    // Stored paths never end in a slash; accept `/home/` for `/home`.
    let paths = a
        .paths
        .iter()
        .map(|p| match p.trim_end_matches('/') {
            "" => "/".to_owned(),
            t => t.to_owned(),
        })
        .collect();
    Selection {
        filter: SnapshotFilter {
            hosts: a.hosts,
            tags: Vec::new(),
            paths,
        },
        tag_groups,
    }
}

/// Exclude globs from a file: one per line, blank lines and `#` comments
/// skipped, surrounding whitespace removed.
fn read_exclude_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading exclude file {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect())
}

fn backup(a: cli::BackupArgs) -> Result<BackupPlan> {
    let compression = Compression::parse(&a.compression).with_context(|| {
        format!(
            "invalid --compression {:?}: use auto, off, max or a level 1-22",
            a.compression
        )
    })?;
    let mut excludes = a.excludes;
    for f in &a.exclude_files {
        excludes.extend(read_exclude_file(f)?);
    }
    let include = Matcher::new(&a.includes, &a.include_regexes).context("--include")?;
    let exclude = Matcher::new(&excludes, &a.exclude_regexes).context("--exclude")?;
    let mut paths = Vec::with_capacity(a.paths.len());
    for p in &a.paths {
        // Snapshots record absolute paths, as restic does.
        paths.push(std::path::absolute(p).with_context(|| format!("path {}", p.display()))?);
    }
    let mut options = BackupOptions::new(paths);
    options.host = a.host.filter(|h| !h.is_empty());
    options.tags = split_commas(&a.tags);
    options.filter = Filter::new(include, exclude);
    options.excludes = excludes;
    options.parent = match a.parent {
        Some(p) => ParentChoice::Snapshot(p),
        None => ParentChoice::Auto,
    };
    options.rescan_unchanged = a.force;
    options.system_excludes = !a.no_system_exclusions;
    options.one_file_system = a.one_file_system;
    let disk = match &a.disk {
        None if !a.partitions.is_empty() || a.include_unused || a.name.is_some() => {
            bail!("--partitions, --include-unused and --name go with --disk DEVICE_OR_IMAGE")
        }
        None => None,
        Some(source) => {
            let mut d = vaultfs::archiver::disk::DiskOptions::new(
                std::path::absolute(source)
                    .with_context(|| format!("--disk {}", source.display()))?,
            );
            if let Some(name) = &a.name {
                let name = name.strip_suffix(".vmdk").unwrap_or(name);
                if name.is_empty() || name.contains('/') || name.starts_with('.') {
                    bail!("invalid --name {name:?}: use a plain file name such as `disk`");
                }
                d.name = name.to_owned();
            }
            if !a.partitions.is_empty() {
                let mut list = Vec::new();
                for p in split_commas(&a.partitions) {
                    list.push(p.parse::<u32>().ok().filter(|&n| n > 0).with_context(|| {
                        format!(
                            "invalid --partitions item {p:?}: use partition numbers such as 1,3"
                        )
                    })?);
                }
                d.partitions = Some(list);
            }
            d.include_unused = a.include_unused;
            d.host = options.host.clone();
            d.tags = options.tags.clone();
            Some(d)
        }
    };
    let stream = match (&a.stdin_from_command, a.stdin) {
        (None, false) if a.stdin_filename.is_some() => {
            bail!("--stdin-filename goes with --stdin or --stdin-from-command")
        }
        (None, false) => None,
        (cmd, _) => {
            use vaultfs::archiver::stream::{StreamOptions, StreamSource, valid_filename};
            let source = match cmd {
                Some(c) if c.trim().is_empty() => bail!("--stdin-from-command needs a command"),
                Some(c) => StreamSource::Command(c.clone()),
                None => StreamSource::Stdin,
            };
            let mut s = StreamOptions::new(source);
            if let Some(name) = &a.stdin_filename {
                if !valid_filename(name) {
                    bail!(
                        "invalid --stdin-filename {name:?}: use a plain file name such as `dump.sql`"
                    );
                }
                s.filename = name.clone();
            }
            s.host = options.host.clone();
            s.tags = options.tags.clone();
            s.parent = options.parent.clone();
            Some(s)
        }
    };
    Ok(BackupPlan {
        options,
        compression,
        disk,
        stream,
    })
}

fn find(a: cli::FindArgs) -> Result<FindPlan> {
    let mut b = globset::GlobSetBuilder::new();
    for p in &a.patterns {
        // A bare name matches at any depth; a path pattern is anchored.
        let pat = if p.contains('/') {
            format!("/{}", p.trim_start_matches('/'))
        } else {
            format!("**/{p}")
        };
        let glob = globset::GlobBuilder::new(&pat)
            .literal_separator(true)
            .case_insensitive(a.ignore_case)
            .build()
            .with_context(|| format!("invalid pattern {p:?}"))?;
        b.add(glob);
    }
    Ok(FindPlan {
        patterns: b.build().context("compiling the patterns")?,
        snapshots: a.snapshots,
        selection: selection(a.filter),
        images: a.images,
        long: a.long,
    })
}

fn cat(a: cli::CatArgs) -> Result<CatPlan> {
    let target = SnapshotPath::parse(a.target.as_deref().unwrap_or_default())?;
    if !target.explicit_path {
        bail!(
            "cat needs the path of a file: SNAPSHOT:PATH, e.g. {}:/etc/hosts",
            target.snapshot
        );
    }
    Ok(CatPlan {
        target,
        selection: selection(a.filter),
    })
}

fn mount(a: cli::MountArgs) -> Result<MountPlan> {
    let mountpoint = std::path::absolute(&a.mountpoint)
        .with_context(|| format!("mount point {}", a.mountpoint.display()))?;
    if !mountpoint.is_dir() {
        bail!(
            "mount point {} is not an existing directory",
            mountpoint.display()
        );
    }
    if let Some(image) = &a.image
        && !image.is_file()
    {
        bail!("--image {}: no such file", image.display());
    }
    Ok(MountPlan {
        mountpoint,
        image: a.image,
        allow_other: a.allow_other,
    })
}

fn overwrite(o: OverwriteArg) -> Overwrite {
    match o {
        OverwriteArg::Always => Overwrite::Always,
        OverwriteArg::IfChanged => Overwrite::IfChanged,
        OverwriteArg::IfNewer => Overwrite::IfNewer,
        OverwriteArg::Never => Overwrite::Never,
    }
}

fn restore(a: cli::RestoreArgs) -> Result<RestorePlan> {
    use vaultfs::restore::archive::ArchiveFormat;
    let source = SnapshotPath::parse(&a.target_snapshot)?;
    let archive = match &a.archive {
        None if a.archive_format.is_some() => bail!("--archive-format goes with --archive"),
        None => None,
        Some(out) => {
            let named = match &a.archive_format {
                Some(f) => Some(ArchiveFormat::parse(f).with_context(|| {
                    format!("invalid --archive-format {f:?}: use tar, tar.gz or zip")
                })?),
                None => None,
            };
            let stdout = out.as_os_str() == "-";
            let format = match (named, stdout) {
                (Some(f), _) => f,
                (None, true) => bail!("--archive - needs --archive-format tar, tar.gz or zip"),
                (None, false) => ArchiveFormat::from_file_name(&out.to_string_lossy())
                    .with_context(|| {
                        format!(
                            "--archive {}: the name must end in .tar, .tar.gz, .tgz or .zip \
                             (or give --archive-format)",
                            out.display()
                        )
                    })?,
            };
            let out = match stdout {
                true => None,
                false => Some(
                    std::path::absolute(out)
                        .with_context(|| format!("--archive {}", out.display()))?,
                ),
            };
            Some(ArchivePlan { out, format })
        }
    };
    if let Some(cmd) = &a.pipe_to
        && cmd.trim().is_empty()
    {
        bail!("--pipe-to needs a command");
    }
    // --to-original: the real target is known once the path is resolved.
    let target = match a.to_original {
        true => std::path::PathBuf::from("/"),
        false => a.target.clone().unwrap_or_default(),
    };
    if archive.is_none() && a.pipe_to.is_none() && target.as_os_str().is_empty() {
        bail!("--target must not be empty");
    }

    let include = Matcher::new(&a.includes, &a.include_regexes).context("--include")?;
    let exclude = Matcher::new(&a.excludes, &a.exclude_regexes).context("--exclude")?;
    // An archive or a pipe has no target directory.
    let target = match target.as_os_str().is_empty() {
        true => target,
        false => {
            std::path::absolute(&target).with_context(|| format!("target {}", target.display()))?
        }
    };
    let mut options = RestoreOptions::new(target);
    options.filter = Filter::new(include, exclude);
    options.overwrite = overwrite(a.overwrite);
    options.dry_run = a.dry_run;
    if a.raw && a.dry_run {
        bail!("--raw writes an image; it has no --dry-run");
    }
    if a.raw && !source.explicit_path {
        bail!("--raw needs the disk image's path: SNAPSHOT:/disk.vmdk");
    }
    Ok(RestorePlan {
        source,
        selection: selection(a.filter),
        options,
        raw: a.raw,
        archive,
        pipe_to: a.pipe_to,
        to_original: a.to_original,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn plan(args: &[&str]) -> Result<Plan> {
        Plan::from_cli(Cli::try_parse_from(args)?)
    }

    #[test]
    fn tags_split_and_group() {
        let p = plan(&["vaultfs", "backup", "/x", "--tag", "a,b", "--tag", "c,"]).expect("plan");
        let Command::Backup(b) = p.command else {
            panic!("not backup")
        };
        assert_eq!(b.options.tags, ["a", "b", "c"]);
        let p = plan(&["vaultfs", "snapshots", "--tag", "a,b", "--tag", "c"]).expect("plan");
        let Command::Snapshots(s) = p.command else {
            panic!("not snapshots")
        };
        assert_eq!(s.selection.tag_groups, vec![vec!["a", "b"], vec!["c"]]);
    }

    #[test]
    fn bad_arguments_fail_early() {
        assert!(plan(&["vaultfs", "backup", "/x", "--compression", "23"]).is_err());
        assert!(plan(&["vaultfs", "backup", "/x", "--exclude", "["]).is_err());
        assert!(plan(&["vaultfs", "backup", "/x", "--include-regex", "("]).is_err());
        assert!(plan(&["vaultfs", "key", "remove", "xyz"]).is_err());
        assert!(plan(&["vaultfs", "--test-kdf-n", "1000", "init"]).is_err());
    }

    #[test]
    fn force_alias_and_parent() {
        let p = plan(&[
            "vaultfs",
            "backup",
            "rel",
            "--rescan-unchanged",
            "--parent",
            "ab",
        ])
        .expect("plan");
        let Command::Backup(b) = p.command else {
            panic!("not backup")
        };
        assert!(b.options.rescan_unchanged);
        assert_eq!(b.options.parent, ParentChoice::Snapshot("ab".into()));
        assert!(b.options.paths[0].is_absolute());
    }

    #[test]
    fn snapshot_paths_split_at_the_first_colon() {
        let p = SnapshotPath::parse("latest").expect("parse");
        assert_eq!((p.snapshot.as_str(), p.path.as_str()), ("latest", "/"));
        assert!(!p.explicit_path);
        let p = SnapshotPath::parse("ab12:home//u/./a:b/").expect("parse");
        assert_eq!(
            (p.snapshot.as_str(), p.path.as_str()),
            ("ab12", "/home/u/a:b")
        );
        assert!(p.explicit_path);
        assert_eq!(SnapshotPath::parse("latest:").expect("parse").path, "/");
        assert!(SnapshotPath::parse("latest:/a/../b").is_err());
        assert!(SnapshotPath::parse("xyz:/a").is_err());
        assert!(SnapshotPath::parse(":/a").is_err());
    }

    #[test]
    fn cat_needs_a_path_and_restore_checks_filters() {
        assert!(plan(&["vaultfs", "cat", "latest"]).is_err());
        assert!(plan(&["vaultfs", "cat", "latest:/etc/hosts"]).is_ok());
        assert!(plan(&["vaultfs", "restore", "latest", "-t", "x", "-e", "["]).is_err());
        assert!(
            plan(&["vaultfs", "restore", "latest"]).is_err(),
            "--target is required"
        );
        let p = plan(&[
            "vaultfs",
            "restore",
            "latest:/home",
            "--target",
            "out",
            "--overwrite",
            "if-newer",
            "--dry-run",
        ])
        .expect("plan");
        let Command::Restore(r) = p.command else {
            panic!("not restore")
        };
        assert_eq!(r.options.overwrite, Overwrite::IfNewer);
        assert!(r.options.dry_run && r.options.target.is_absolute());
        assert_eq!(r.source.path, "/home");
    }

    #[test]
    fn image_paths_split_after_the_longest_existing_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let img = dir.path().join("a:b.img");
        std::fs::write(&img, b"x").expect("write");
        let img = img.to_str().expect("utf-8");
        let e = ImageEntry::parse_path(&format!("{img}:p1/dir/file.txt:stream"));
        assert_eq!(e.file.to_str(), Some(img));
        assert_eq!(e.entry, "p1/dir/file.txt:stream");
        let e = ImageEntry::parse_path(img);
        assert_eq!((e.file.to_str(), e.entry.as_str()), (Some(img), ""));
        let e = ImageEntry::parse_path("missing.img:p2/x");
        assert_eq!(
            (e.file.to_str(), e.entry.as_str()),
            (Some("missing.img"), "p2/x")
        );
        assert!(ImageEntry::parse(img).is_err());
    }
}
