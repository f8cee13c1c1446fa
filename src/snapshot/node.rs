//! One entry of a tree: a file, directory, symlink, device, fifo or socket
//! with its metadata, in restic's JSON shape.

use chrono::{DateTime, FixedOffset, TimeZone, Utc};
use serde::{Deserialize, Serialize};

use crate::id::Id;

/// The kind of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeType {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Block device.
    Dev,
    /// Character device.
    Chardev,
    /// Named pipe.
    Fifo,
    /// Unix socket.
    Socket,
    /// Anything else.
    Irregular,
}

/// An extended attribute.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtendedAttribute {
    /// Attribute name, e.g. `user.comment`.
    pub name: String,
    /// Raw value.
    #[serde(with = "crate::b64", default)]
    pub value: Vec<u8>,
}

/// Go's zero `time.Time`, which restic writes for unknown times.
pub fn zero_time() -> DateTime<FixedOffset> {
    Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0)
        .single()
        .map(|t| t.fixed_offset())
        .unwrap_or_default()
}

/// A tree entry.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// File name (one path component).
    pub name: String,
    /// Kind.
    #[serde(rename = "type")]
    pub node_type: NodeType,
    /// Go `os.FileMode` bits (see [`super::mode`]).
    #[serde(default, skip_serializing_if = "is_zero_u32")]
    pub mode: u32,
    /// Modification time.
    #[serde(default = "zero_time")]
    pub mtime: DateTime<FixedOffset>,
    /// Access time.
    #[serde(default = "zero_time")]
    pub atime: DateTime<FixedOffset>,
    /// Status change time.
    #[serde(default = "zero_time")]
    pub ctime: DateTime<FixedOffset>,
    /// Owner uid.
    #[serde(default)]
    pub uid: u32,
    /// Owner gid.
    #[serde(default)]
    pub gid: u32,
    /// Owner name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// Group name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub group: String,
    /// Inode number at backup time.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub inode: u64,
    /// `st_dev` (restic stores it for hardlinked files).
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub device_id: u64,
    /// File size.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub size: u64,
    /// Hard link count.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub links: u64,
    /// Symlink target.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub linktarget: String,
    /// Symlink target bytes when not valid UTF-8.
    #[serde(with = "opt_b64", default, skip_serializing_if = "Option::is_none")]
    pub linktarget_raw: Option<Vec<u8>>,
    /// Extended attributes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extended_attributes: Vec<ExtendedAttribute>,
    /// Platform-specific attributes restic may write; kept as they are.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub generic_attributes: Option<serde_json::Map<String, serde_json::Value>>,
    /// `st_rdev` of devices.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub device: u64,
    /// Data blob ids of a file's content, in order (`null` for non-files).
    #[serde(default)]
    pub content: Option<Vec<Id>>,
    /// The tree of a directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subtree: Option<Id>,
    /// An error recorded while backing up this node.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub error: String,
}

fn is_zero_u32(v: &u32) -> bool {
    *v == 0
}
fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

mod opt_b64 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(b) => crate::b64::serialize(b, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "crate::b64")] Vec<u8>);
        Ok(Option::<W>::deserialize(d)?.map(|w| w.0))
    }
}

impl Node {
    /// A node of `node_type` named `name` with zero metadata.
    pub fn new(name: impl Into<String>, node_type: NodeType) -> Node {
        Node {
            name: name.into(),
            node_type,
            mode: 0,
            mtime: zero_time(),
            atime: zero_time(),
            ctime: zero_time(),
            uid: 0,
            gid: 0,
            user: String::new(),
            group: String::new(),
            inode: 0,
            device_id: 0,
            size: 0,
            links: 0,
            linktarget: String::new(),
            linktarget_raw: None,
            extended_attributes: Vec::new(),
            generic_attributes: None,
            device: 0,
            content: None,
            subtree: None,
            error: String::new(),
        }
    }

    /// A placeholder directory node.
    pub fn default_dir() -> Node {
        Node::new("", NodeType::Dir)
    }

    /// Is it a directory?
    pub fn is_dir(&self) -> bool {
        self.node_type == NodeType::Dir
    }

    /// Is it a regular file?
    pub fn is_file(&self) -> bool {
        self.node_type == NodeType::File
    }

    /// The file's content blob ids (empty for non-files).
    pub fn content(&self) -> &[Id] {
        self.content.as_deref().unwrap_or(&[])
    }

    /// The symlink target as bytes (raw form preferred).
    pub fn link_target_bytes(&self) -> Vec<u8> {
        match &self.linktarget_raw {
            Some(raw) => raw.clone(),
            None => self.linktarget.as_bytes().to_vec(),
        }
    }

    /// The Unix permission bits (with setuid/setgid/sticky).
    pub fn unix_perm(&self) -> u32 {
        super::mode::to_unix_perm(self.mode)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_restic_node() {
        let j = r#"{"name":"a.txt","type":"file","mode":420,"mtime":"2024-05-01T10:11:12.123456789+02:00","atime":"2024-05-01T10:11:12.1+02:00","ctime":"2024-05-01T10:11:12Z","uid":1000,"gid":100,"user":"u","group":"g","inode":77,"device_id":5,"size":3,"links":2,"content":["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"]}"#;
        let n: Node = serde_json::from_str(j).expect("parse");
        assert_eq!(n.node_type, NodeType::File);
        assert_eq!(n.mtime.timestamp_subsec_nanos(), 123456789);
        assert_eq!(n.content().len(), 1);
        assert_eq!(n.unix_perm(), 0o644);
        let d: Node = serde_json::from_str(r#"{"name":"d","type":"dir","mode":2147484141,"mtime":"0001-01-01T00:00:00Z","atime":"0001-01-01T00:00:00Z","ctime":"0001-01-01T00:00:00Z","uid":0,"gid":0,"content":null,"subtree":"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"}"#).expect("dir");
        assert!(d.is_dir() && d.subtree.is_some() && d.content.is_none());
        let back = serde_json::to_string(&d).unwrap_or_default();
        assert!(back.contains("\"content\":null"), "{back}");
    }
}
