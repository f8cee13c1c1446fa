//! What `details()` shows of a file for forensic listing: the record, the
//! DOS attributes, the four $STANDARD_INFORMATION times at full (100 ns)
//! precision, every $FILE_NAME with its namespace, parent and own four
//! times (which Windows updates on rename/move only, so they often differ
//! from the $STANDARD_INFORMATION times, or betray a back-dated file), the
//! reparse tag, and the sizes and flags of the data.
//!
//! Times are printed as `YYYY-MM-DD HH:MM:SS.fffffff UTC` from the FILETIME
//! (100 ns intervals since 1601-01-01, "NTFS Documentation", "Concepts:
//! Time"); the civil date comes from the day count by the usual
//! days-to-civil conversion of the proleptic Gregorian calendar.

use super::attr::{self, FileName, NS_DOS, NS_POSIX, NS_WIN32, NS_WIN32_AND_DOS};
use super::data::Value;
use super::reparse;

/// A FILETIME as `YYYY-MM-DD HH:MM:SS.fffffff UTC`.
pub(crate) fn filetime(ft: u64) -> String {
    let secs = ft / 10_000_000;
    let frac = ft % 10_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Days from 1601-01-01 to 1970-01-01: 134774.
    let (y, m, d) = civil(days - 134_774);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{frac:07} UTC",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Year, month, day of a day count from 1970-01-01.
fn civil(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

fn namespace(ns: u8) -> &'static str {
    match ns {
        NS_POSIX => "POSIX",
        NS_WIN32 => "Win32",
        NS_DOS => "DOS",
        NS_WIN32_AND_DOS => "Win32+DOS",
        _ => "unknown",
    }
}

/// The pairs for one file.
pub(crate) struct Facts<'a> {
    pub record: u64,
    pub seq: u16,
    pub in_use: bool,
    pub link_count: u16,
    pub si: Option<attr::StdInfo>,
    pub names: &'a [FileName],
    pub reparse_tag: Option<u32>,
    pub data: Option<(String, Value)>,
    pub streams: Vec<String>,
}

pub(crate) fn pairs(f: &Facts<'_>) -> Vec<(String, String)> {
    let mut out = vec![
        ("mft_record".to_string(), f.record.to_string()),
        ("sequence".to_string(), f.seq.to_string()),
        ("in_use".to_string(), f.in_use.to_string()),
        ("link_count".to_string(), f.link_count.to_string()),
    ];
    if let Some(si) = f.si {
        out.push((
            "dos_attributes".into(),
            format!(
                "{:#010x} ({})",
                si.attributes,
                attr::file_attr::names(si.attributes)
            ),
        ));
        out.push(("si_created".into(), filetime(si.created)));
        out.push(("si_modified".into(), filetime(si.modified)));
        out.push(("si_mft_changed".into(), filetime(si.mft_changed)));
        out.push(("si_accessed".into(), filetime(si.accessed)));
    }
    for (i, n) in f.names.iter().enumerate() {
        let key = |k: &str| format!("fn[{i}].{k}");
        out.push((key("name"), String::from_utf16_lossy(&n.name)));
        out.push((key("namespace"), namespace(n.namespace).into()));
        out.push((
            key("parent"),
            format!(
                "{} (sequence {})",
                n.parent_record(),
                super::le::mref_seq(n.parent)
            ),
        ));
        out.push((key("created"), filetime(n.created)));
        out.push((key("modified"), filetime(n.modified)));
        out.push((key("mft_changed"), filetime(n.mft_changed)));
        out.push((key("accessed"), filetime(n.accessed)));
    }
    if let Some(tag) = f.reparse_tag {
        out.push((
            "reparse_tag".into(),
            format!("{tag:#010x} ({})", reparse::tag_name(tag)),
        ));
    }
    if let Some((name, v)) = &f.data {
        let p = |k: &str| format!("{name}.{k}");
        out.push((p("size"), v.size().to_string()));
        let mut flags = Vec::new();
        let fl = v.flags();
        if fl & attr::FLAG_COMPRESSED != 0 {
            flags.push("compressed");
        }
        if fl & attr::FLAG_ENCRYPTED != 0 {
            flags.push("encrypted");
        }
        if fl & attr::FLAG_SPARSE != 0 {
            flags.push("sparse");
        }
        match v {
            Value::Resident { .. } => flags.push("resident"),
            Value::NonResident(m) => {
                out.push((p("allocated_size"), m.allocated_size.to_string()));
                out.push((p("initialized_size"), m.initialized_size.to_string()));
                out.push((p("runs"), m.runs.len().to_string()));
            }
        }
        out.push((p("flags"), flags.join(",")));
    }
    if !f.streams.is_empty() {
        out.push(("streams".into(), f.streams.join(",")));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_filetimes() {
        assert_eq!(filetime(0), "1601-01-01 00:00:00.0000000 UTC");
        // 2020-09-13 12:26:40 UTC is Unix time 1_600_000_000.
        let ft = (1_600_000_000u64 + 11_644_473_600) * 10_000_000 + 1_234_567;
        assert_eq!(filetime(ft), "2020-09-13 12:26:40.1234567 UTC");
        let ft = (951_782_400u64 + 11_644_473_600) * 10_000_000; // 2000-02-29
        assert_eq!(filetime(ft), "2000-02-29 00:00:00.0000000 UTC");
    }
}
