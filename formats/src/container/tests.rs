use std::sync::Arc;

use super::*;
use crate::io::MemSource;

#[test]
fn anything_unrecognised_is_raw() {
    let src: Source = Arc::new(MemSource::new(vec![7u8; 10_000]));
    let disk = open(src, "disk.img", &NoSiblings).expect("ok");
    assert_eq!(disk.info.format, "raw");
    assert_eq!(disk.data.len(), 10_000);
    let empty: Source = Arc::new(MemSource::new(Vec::new()));
    assert_eq!(
        open(empty, "", &NoSiblings).expect("ok").info.virtual_size,
        0
    );
}

#[test]
fn sibling_names_resolve_like_qemu() {
    assert_eq!(name_components(r"C:\vms\base.vhd"), ["vms", "base.vhd"]);
    assert_eq!(name_components(r".\base.vhd"), ["base.vhd"]);
    assert_eq!(name_components("disk-flat.vmdk"), ["disk-flat.vmdk"]);
    let mut m = MemSiblings::default();
    m.0.insert("base.vhd".into(), Arc::new(MemSource::new(vec![1u8; 3])));
    assert!(m.open(r"C:\vms\base.vhd").is_ok());
    assert!(matches!(m.open("other.vhd"), Err(e) if e.kind() == io::ErrorKind::NotFound));
    let dir = tempfile::tempdir().expect("ok");
    std::fs::write(dir.path().join("base.vhd"), b"abc").expect("ok");
    let local = LocalDir::new(dir.path());
    assert_eq!(
        local.open("/home/someone/vms/base.vhd").expect("ok").len(),
        3
    );
    assert_eq!(local.open("base.vhd").expect("ok").len(), 3);
    assert!(local.open("missing.vhd").is_err());
}
