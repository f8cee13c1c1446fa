//! Repository locks (`locks/<id>`): shared for backup, mount and check,
//! exclusive for prune. A lock is stale when its process is gone (same
//! host) or it was not refreshed for 30 minutes; stale locks do not block
//! and `unlock` removes them.

use std::sync::Arc;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Local};
use serde::{Deserialize, Serialize};

use super::Repository;
use crate::backend::FileType;
use crate::error::{Error, ErrorKind, Result};
use crate::id::Id;

/// A lock file's JSON.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LockFile {
    /// When it was made or last refreshed.
    pub time: DateTime<FixedOffset>,
    /// Exclusive (prune) or shared.
    #[serde(default)]
    pub exclusive: bool,
    /// Host of the holder.
    #[serde(default)]
    pub hostname: String,
    /// User of the holder.
    #[serde(default)]
    pub username: String,
    /// Process id of the holder.
    #[serde(default)]
    pub pid: i64,
    /// uid of the holder.
    #[serde(default)]
    pub uid: u32,
    /// gid of the holder.
    #[serde(default)]
    pub gid: u32,
}

const STALE_AFTER: i64 = 30 * 60;
const REFRESH_EVERY: Duration = Duration::from_secs(5 * 60);

impl LockFile {
    fn new(exclusive: bool) -> LockFile {
        let (uid, gid) = crate::sys::uid_gid();
        LockFile {
            time: Local::now().fixed_offset(),
            exclusive,
            hostname: crate::sys::hostname(),
            username: crate::sys::username(),
            pid: i64::from(std::process::id()),
            uid,
            gid,
        }
    }

    /// Is the lock's holder gone?
    pub fn is_stale(&self) -> bool {
        let age = Local::now()
            .fixed_offset()
            .signed_duration_since(self.time)
            .num_seconds();
        if age > STALE_AFTER {
            return true;
        }
        if self.hostname == crate::sys::hostname() {
            let Ok(pid) = i32::try_from(self.pid) else {
                return true;
            };
            // Signal 0 checks existence; EPERM means it exists under another user.
            return matches!(
                nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None),
                Err(nix::errno::Errno::ESRCH)
            );
        }
        false
    }
}

/// Every lock file that can be read; unreadable ones are skipped.
pub fn list_locks(repo: &Repository) -> Result<Vec<(Id, LockFile)>> {
    let mut out = Vec::new();
    for id in repo.list_ids(FileType::Lock)? {
        if let Ok(l) = repo.load_unpacked::<LockFile>(FileType::Lock, &id) {
            out.push((id, l));
        }
    }
    Ok(out)
}

/// Removes stale locks (or all, with `all`); returns how many.
pub fn remove_locks(repo: &Repository, all: bool) -> Result<usize> {
    let mut n = 0;
    for (id, l) in list_locks(repo)? {
        if all || l.is_stale() {
            repo.backend()
                .remove(FileType::Lock, &id.to_hex())
                .map_err(|e| Error::io("removing lock", e))?;
            n += 1;
        }
    }
    Ok(n)
}

/// A held lock; refreshed in the background, removed on drop.
pub struct LockGuard {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Fails when a live lock other than `ours` conflicts with taking one
/// (`exclusive` or shared).
fn conflict(repo: &Repository, exclusive: bool, ours: Option<&Id>) -> Result<()> {
    for (id, l) in list_locks(repo)? {
        if Some(&id) == ours {
            continue;
        }
        if (exclusive || l.exclusive) && !l.is_stale() {
            return Err(Error::new(
                ErrorKind::Locked,
                format!(
                    "repository is already locked {}by PID {} on {} by {} (since {}); lock {}\n\
                     if that process is gone, run `vaultfs unlock`",
                    if l.exclusive { "exclusively " } else { "" },
                    l.pid,
                    l.hostname,
                    l.username,
                    l.time,
                    id.short()
                ),
            ));
        }
    }
    Ok(())
}

/// Takes a lock, failing if a conflicting live lock exists.
pub fn acquire(repo: &Arc<Repository>, exclusive: bool) -> Result<LockGuard> {
    conflict(repo, exclusive, None)?;
    let mut current = repo.save_unpacked(FileType::Lock, &LockFile::new(exclusive))?;
    // Two processes can both find no conflict and then both write their
    // lock (a backup and a prune starting together). Looking again once
    // ours is written closes that gap, as restic does: of two conflicting
    // writers at least the later one sees the other (both may give up,
    // neither goes on beside the other).
    if let Err(e) = conflict(repo, exclusive, Some(&current)) {
        let _ = repo.backend().remove(FileType::Lock, &current.to_hex());
        return Err(e);
    }
    let (tx, rx) = mpsc::channel::<()>();
    let repo = repo.clone();
    let thread = std::thread::Builder::new()
        .name("lock-refresh".into())
        .spawn(move || {
            while let Err(mpsc::RecvTimeoutError::Timeout) = rx.recv_timeout(REFRESH_EVERY) {
                if let Ok(new) = repo.save_unpacked(FileType::Lock, &LockFile::new(exclusive)) {
                    let _ = repo.backend().remove(FileType::Lock, &current.to_hex());
                    current = new;
                }
            }
            let _ = repo.backend().remove(FileType::Lock, &current.to_hex());
        })
        .map_err(|e| Error::io("starting lock refresh", e))?;
    Ok(LockGuard {
        stop: Some(tx),
        thread: Some(thread),
    })
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::backend::MemBackend;
    use crate::repo::KdfParams;

    fn repo() -> Arc<Repository> {
        let kdf = KdfParams {
            n: 1 << 10,
            r: 8,
            p: 1,
        };
        Arc::new(Repository::init(Arc::new(MemBackend::new()), b"pw", kdf).expect("init"))
    }

    /// Many would-be exclusive holders at once: never two at a time, and
    /// every lock is gone when they are done.
    #[test]
    fn racing_exclusive_locks_never_both_hold() {
        let repo = repo();
        let holders = AtomicUsize::new(0);
        let most = AtomicUsize::new(0);
        let won = AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| {
                    for _ in 0..20 {
                        if let Ok(g) = acquire(&repo, true) {
                            let now = holders.fetch_add(1, Ordering::SeqCst) + 1;
                            most.fetch_max(now, Ordering::SeqCst);
                            won.fetch_add(1, Ordering::SeqCst);
                            std::thread::yield_now();
                            holders.fetch_sub(1, Ordering::SeqCst);
                            drop(g);
                        }
                    }
                });
            }
        });
        assert_eq!(
            most.load(Ordering::SeqCst),
            1,
            "two exclusive holders at once"
        );
        assert!(won.load(Ordering::SeqCst) > 0);
        assert!(list_locks(&repo).expect("list").is_empty());
    }

    #[test]
    fn shared_locks_coexist_and_block_exclusive() {
        let repo = repo();
        let a = acquire(&repo, false).expect("shared");
        let b = acquire(&repo, false).expect("second shared");
        let e = acquire(&repo, true)
            .map(|_| ())
            .expect_err("exclusive while shared held");
        assert!(e.to_string().contains("already locked"), "{e}");
        drop((a, b));
        let x = acquire(&repo, true).expect("exclusive once free");
        assert!(
            acquire(&repo, false).is_err(),
            "shared while exclusive held"
        );
        drop(x);
    }
}
