//! Small facts about the running system: user and host names, uid/gid to
//! name lookups (cached), for snapshot and node metadata.

use std::collections::HashMap;

use nix::unistd::{Gid, Group, Uid, User};
use parking_lot::Mutex;

/// The current user's login name, or the uid as text.
pub fn username() -> String {
    let uid = Uid::current().as_raw();
    user_name(uid).unwrap_or_else(|| uid.to_string())
}

/// This machine's host name.
pub fn hostname() -> String {
    nix::unistd::gethostname()
        .ok()
        .and_then(|h| h.into_string().ok())
        .unwrap_or_else(|| "localhost".into())
}

/// The current uid and gid.
pub fn uid_gid() -> (u32, u32) {
    (Uid::current().as_raw(), Gid::current().as_raw())
}

type NameCache = Mutex<Option<HashMap<u32, Option<String>>>>;
static USERS: NameCache = Mutex::new(None);
static GROUPS: NameCache = Mutex::new(None);

/// The name of `uid`, cached.
pub fn user_name(uid: u32) -> Option<String> {
    let mut g = USERS.lock();
    g.get_or_insert_with(HashMap::new)
        .entry(uid)
        .or_insert_with(|| {
            User::from_uid(Uid::from_raw(uid))
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .clone()
}

/// The name of `gid`, cached.
pub fn group_name(gid: u32) -> Option<String> {
    let mut g = GROUPS.lock();
    g.get_or_insert_with(HashMap::new)
        .entry(gid)
        .or_insert_with(|| {
            Group::from_gid(Gid::from_raw(gid))
                .ok()
                .flatten()
                .map(|g| g.name)
        })
        .clone()
}

/// The uid of user `name`, for restoring owners by name.
pub fn uid_of(name: &str) -> Option<u32> {
    User::from_name(name).ok().flatten().map(|u| u.uid.as_raw())
}

/// The gid of group `name`.
pub fn gid_of(name: &str) -> Option<u32> {
    Group::from_name(name)
        .ok()
        .flatten()
        .map(|g| g.gid.as_raw())
}
