//! The root of the tree: `ids/`, `snapshots/` (with `latest`), `hosts/` and
//! `tags/`, rebuilt from the repository's snapshot list when one of them is
//! listed and the list is older than the refresh interval, so new
//! snapshots appear without remounting. A snapshot keeps its directory
//! object across refreshes, so what a client holds stays valid.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;

use super::{Attr, Broken, Dir, Entry, Kind, Listing, Shared, Symlink, snapdir, system_time};
use crate::backend::FileType;
use crate::error::Result;
use crate::id::Id;
use crate::snapshot::Snapshot;

/// How long a listing of the root directories is trusted before the
/// snapshot list is read again.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(3);

/// Which root directory.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Which {
    Top,
    Ids,
    Snapshots,
    Hosts,
    Tags,
}

struct Built {
    at: Instant,
    time: SystemTime,
    top: Arc<Listing>,
    ids: Arc<Listing>,
    snapshots: Arc<Listing>,
    hosts: Arc<Listing>,
    tags: Arc<Listing>,
}

struct State {
    built: Option<Arc<Built>>,
    /// Snapshots read so far (a snapshot file never changes).
    known: HashMap<Id, std::result::Result<(Snapshot, Entry), Arc<Broken>>>,
}

/// The root directory and its four children.
pub(crate) struct Root {
    shared: Arc<Shared>,
    state: Mutex<State>,
    started: SystemTime,
}

/// A view of one of the root's directories.
struct RootDir {
    root: Arc<Root>,
    which: Which,
}

fn time_name(s: &Snapshot) -> String {
    s.time.format("%Y-%m-%dT%H:%M:%S%:z").to_string()
}

/// A name usable as one path component.
fn component(s: &str) -> String {
    let s = s.replace('/', "_");
    match s.as_str() {
        "" => "(none)".into(),
        "." | ".." => format!("_{s}"),
        _ => s,
    }
}

fn symlink(target: &str, time: SystemTime) -> Entry {
    Entry::Symlink(Arc::new(Symlink {
        attr: Attr {
            kind: Kind::Symlink,
            size: target.len() as u64,
            perm: 0o777,
            nlink: 1,
            ..Attr::dir(time)
        },
        target: target.as_bytes().to_vec(),
        xattrs: None,
    }))
}

/// Snapshots (oldest first) as `<time>` entries, duplicates of one second
/// numbered, plus `latest` pointing at the newest.
fn by_time(snaps: &[(&Snapshot, &Entry)], time: SystemTime) -> Arc<Listing> {
    let mut out = Vec::new();
    let mut used: HashMap<String, u32> = HashMap::new();
    let mut newest = None;
    for (s, e) in snaps {
        let base = time_name(s);
        let n = used.entry(base.clone()).or_insert(0);
        let name = if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        };
        *n += 1;
        newest = Some(name.clone());
        out.push((name, (*e).clone()));
    }
    if let Some(n) = newest {
        out.push(("latest".into(), symlink(&n, time)));
    }
    Arc::new(Listing::new(out))
}

fn dir_of(root: &Arc<Root>, which: Which) -> Entry {
    Entry::Dir(Arc::new(RootDir {
        root: root.clone(),
        which,
    }))
}

struct Group {
    listing: Arc<Listing>,
    time: SystemTime,
}

impl Dir for Group {
    fn attr(&self) -> Attr {
        Attr::dir(self.time)
    }
    fn list(&self) -> Result<Arc<Listing>> {
        Ok(self.listing.clone())
    }
}

impl Root {
    pub(crate) fn new(shared: Arc<Shared>) -> Arc<Root> {
        Arc::new(Root {
            shared,
            state: Mutex::new(State {
                built: None,
                known: HashMap::new(),
            }),
            started: SystemTime::now(),
        })
    }

    /// The current listings, re-read if older than the refresh interval.
    fn built(self: &Arc<Root>) -> Result<Arc<Built>> {
        let mut state = self.state.lock();
        if let Some(b) = &state.built
            && b.at.elapsed() < self.shared.options.refresh
        {
            return Ok(b.clone());
        }
        // Listing the snapshot files is one backend call; only new ones are
        // read. The lock is held throughout so concurrent listers wait for
        // one refresh instead of each doing it.
        let repo = &self.shared.repo;
        let ids = repo.list_ids(FileType::Snapshot)?;
        let new: Vec<Id> = ids
            .iter()
            .filter(|id| !state.known.contains_key(id))
            .copied()
            .collect();
        if !new.is_empty() && state.built.is_some() {
            // Snapshots written after the tree was made come with index
            // files written before them; without those their trees would
            // read as missing (and stay so, as damage is remembered).
            repo.refresh_index()?;
        }
        let loaded = crate::parallel::map(new, |id| {
            let r = repo.load_unpacked::<Snapshot>(FileType::Snapshot, &id);
            Ok::<_, crate::error::Error>((id, r))
        })?;
        for (id, r) in loaded {
            let v = match r {
                Ok(s) => {
                    let e = snapdir::snapshot_root(&self.shared, &s);
                    Ok((s, e))
                }
                Err(e) => Err(Arc::new(Broken::new(Attr::dir(self.started), &e))),
            };
            state.known.insert(id, v);
        }
        state.known.retain(|id, _| ids.contains(id));

        let mut good: Vec<(&Id, &Snapshot, &Entry)> = Vec::new();
        let mut ids_out = Vec::new();
        for (id, v) in &state.known {
            match v {
                Ok((s, e)) => {
                    good.push((id, s, e));
                    ids_out.push((id.short(), e.clone()));
                }
                Err(b) => ids_out.push((id.short(), Entry::Broken(b.clone()))),
            }
        }
        good.sort_by(|a, b| a.1.time.cmp(&b.1.time).then(a.0.cmp(b.0)));
        let time = good
            .last()
            .map_or(self.started, |(_, s, _)| system_time(&s.time));
        let all: Vec<(&Snapshot, &Entry)> = good.iter().map(|(_, s, e)| (*s, *e)).collect();
        let mut hosts: BTreeMap<String, Vec<(&Snapshot, &Entry)>> = BTreeMap::new();
        let mut tags: BTreeMap<String, Vec<(&Snapshot, &Entry)>> = BTreeMap::new();
        for &(s, e) in &all {
            hosts
                .entry(component(&s.hostname))
                .or_default()
                .push((s, e));
            for t in &s.tags {
                tags.entry(component(t)).or_default().push((s, e));
            }
        }
        let group = |m: BTreeMap<String, Vec<(&Snapshot, &Entry)>>| {
            Arc::new(Listing::new(
                m.into_iter()
                    .map(|(k, v)| {
                        let t = v.last().map_or(time, |(s, _)| system_time(&s.time));
                        let g = Group {
                            listing: by_time(&v, t),
                            time: t,
                        };
                        (k, Entry::Dir(Arc::new(g)))
                    })
                    .collect(),
            ))
        };
        let built = Arc::new(Built {
            at: Instant::now(),
            time,
            top: Arc::new(Listing::new(vec![
                ("ids".into(), dir_of(self, Which::Ids)),
                ("snapshots".into(), dir_of(self, Which::Snapshots)),
                ("hosts".into(), dir_of(self, Which::Hosts)),
                ("tags".into(), dir_of(self, Which::Tags)),
            ])),
            ids: Arc::new(Listing::new(ids_out)),
            snapshots: by_time(&all, time),
            hosts: group(hosts),
            tags: group(tags),
        });
        state.built = Some(built.clone());
        Ok(built)
    }

    fn time(self: &Arc<Root>) -> SystemTime {
        self.state
            .lock()
            .built
            .as_ref()
            .map_or(self.started, |b| b.time)
    }
}

impl Dir for RootDir {
    fn attr(&self) -> Attr {
        Attr::dir(self.root.time())
    }

    fn list(&self) -> Result<Arc<Listing>> {
        let b = self.root.built()?;
        Ok(match self.which {
            Which::Top => b.top.clone(),
            Which::Ids => b.ids.clone(),
            Which::Snapshots => b.snapshots.clone(),
            Which::Hosts => b.hosts.clone(),
            Which::Tags => b.tags.clone(),
        })
    }
}

/// The root directory as an entry.
pub(crate) fn root_entry(root: &Arc<Root>) -> Entry {
    dir_of(root, Which::Top)
}
