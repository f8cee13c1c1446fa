//! Go's `os.FileMode` bit layout, which restic stores in a node's `mode`,
//! and its translation to and from Unix `st_mode`.

/// `os.ModeDir`.
pub const MODE_DIR: u32 = 1 << 31;
/// `os.ModeAppend`.
pub const MODE_APPEND: u32 = 1 << 30;
/// `os.ModeExclusive`.
pub const MODE_EXCLUSIVE: u32 = 1 << 29;
/// `os.ModeTemporary`.
pub const MODE_TEMPORARY: u32 = 1 << 28;
/// `os.ModeSymlink`.
pub const MODE_SYMLINK: u32 = 1 << 27;
/// `os.ModeDevice`.
pub const MODE_DEVICE: u32 = 1 << 26;
/// `os.ModeNamedPipe`.
pub const MODE_NAMED_PIPE: u32 = 1 << 25;
/// `os.ModeSocket`.
pub const MODE_SOCKET: u32 = 1 << 24;
/// `os.ModeSetuid`.
pub const MODE_SETUID: u32 = 1 << 23;
/// `os.ModeSetgid`.
pub const MODE_SETGID: u32 = 1 << 22;
/// `os.ModeCharDevice`.
pub const MODE_CHAR_DEVICE: u32 = 1 << 21;
/// `os.ModeSticky`.
pub const MODE_STICKY: u32 = 1 << 20;
/// `os.ModeIrregular`.
pub const MODE_IRREGULAR: u32 = 1 << 19;

const S_IFMT: u32 = 0o170000;

/// Unix `st_mode` -> Go `FileMode`.
pub fn from_unix(st_mode: u32) -> u32 {
    let mut m = st_mode & 0o777;
    m |= match st_mode & S_IFMT {
        0o040000 => MODE_DIR,
        0o120000 => MODE_SYMLINK,
        0o060000 => MODE_DEVICE,
        0o020000 => MODE_DEVICE | MODE_CHAR_DEVICE,
        0o010000 => MODE_NAMED_PIPE,
        0o140000 => MODE_SOCKET,
        _ => 0,
    };
    if st_mode & 0o4000 != 0 {
        m |= MODE_SETUID;
    }
    if st_mode & 0o2000 != 0 {
        m |= MODE_SETGID;
    }
    if st_mode & 0o1000 != 0 {
        m |= MODE_STICKY;
    }
    m
}

/// Go `FileMode` -> the permission bits of Unix `st_mode` (incl. setuid,
/// setgid, sticky), without the file type.
pub fn to_unix_perm(mode: u32) -> u32 {
    let mut m = mode & 0o777;
    if mode & MODE_SETUID != 0 {
        m |= 0o4000;
    }
    if mode & MODE_SETGID != 0 {
        m |= 0o2000;
    }
    if mode & MODE_STICKY != 0 {
        m |= 0o1000;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        assert_eq!(from_unix(0o100644), 0o644);
        assert_eq!(from_unix(0o040755), MODE_DIR | 0o755);
        assert_eq!(from_unix(0o120777), MODE_SYMLINK | 0o777);
        assert_eq!(from_unix(0o104755), MODE_SETUID | 0o755);
        assert_eq!(from_unix(0o041777), MODE_DIR | MODE_STICKY | 0o777);
        for m in [0o4755, 0o2750, 0o1777, 0o644] {
            assert_eq!(to_unix_perm(from_unix(0o100000 | m)), m);
        }
    }
}
