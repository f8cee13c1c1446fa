//! Retention: which snapshots a keep policy keeps, as restic's `forget`
//! decides it.
//!
//! Snapshots are grouped (by default by host and paths), and the policy is
//! applied to each group alone, newest snapshot first. `keep-last n` keeps
//! the n newest; `keep-hourly/daily/weekly/monthly/yearly n` keep the newest
//! snapshot of each of the n newest hours, days, ISO weeks, months or years
//! that have snapshots (in the time zone each snapshot was taken in);
//! `keep-within` keeps every snapshot younger than the duration, counted
//! back from the group's newest snapshot (not from now, so a machine that
//! stopped backing up keeps its last snapshots); `keep-tag` keeps every
//! snapshot carrying all tags of one of the given lists. A snapshot kept
//! by any rule is kept, with every rule that wanted it as its reasons. If a
//! time-bucket rule still has counts left when the oldest snapshot is
//! reached, the oldest snapshot is kept too (restic >= 0.16 does the same),
//! so a policy never ends a group's history sooner than asked.
//!
//! This module only decides; removing snapshot files is the caller's work.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Datelike, FixedOffset, Months, TimeDelta, Timelike};
use serde::Serialize;

use crate::id::Id;
use crate::snapshot::Snapshot;

/// A keep policy. All counts 0, no `within` and no tags: keeps everything
/// (an empty policy never removes).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Policy {
    /// The n newest snapshots.
    pub last: u32,
    /// The newest snapshot of each of the n newest hours.
    pub hourly: u32,
    /// … days.
    pub daily: u32,
    /// … ISO weeks.
    pub weekly: u32,
    /// … months.
    pub monthly: u32,
    /// … years.
    pub yearly: u32,
    /// Every snapshot younger than this, counted from the group's newest.
    pub within: Option<Within>,
    /// Every snapshot carrying all tags of one of these lists.
    pub tags: Vec<Vec<String>>,
}

impl Policy {
    /// Does the policy keep everything (nothing was asked)?
    pub fn is_empty(&self) -> bool {
        self.last == 0
            && self.hourly == 0
            && self.daily == 0
            && self.weekly == 0
            && self.monthly == 0
            && self.yearly == 0
            && self.within.is_none()
            && self.tags.is_empty()
    }
}

impl fmt::Display for Policy {
    /// restic's wording: `keep 3 latest, 7 daily snapshots`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        for (n, what) in [
            (self.last, "latest"),
            (self.hourly, "hourly"),
            (self.daily, "daily"),
            (self.weekly, "weekly"),
            (self.monthly, "monthly"),
            (self.yearly, "yearly"),
        ] {
            if n > 0 {
                parts.push(format!("{n} {what}"));
            }
        }
        let mut s = String::from("keep");
        if !parts.is_empty() {
            s.push(' ');
            s.push_str(&parts.join(", "));
            s.push_str(" snapshots");
        }
        if let Some(w) = &self.within {
            s.push_str(&format!(", all within {w}"));
        }
        for t in &self.tags {
            s.push_str(&format!(", all with tags [{}]", t.join(",")));
        }
        f.write_str(&s)
    }
}

/// A duration in calendar units, restic's `2y5m7d3h`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Within {
    /// Years.
    pub years: u32,
    /// Months.
    pub months: u32,
    /// Days.
    pub days: u32,
    /// Hours.
    pub hours: u32,
}

impl Within {
    /// Parses `2y5m7d3h` (any of the parts, in that order or any order,
    /// each once at most).
    pub fn parse(s: &str) -> Option<Within> {
        let mut w = Within::default();
        let mut num = String::new();
        let mut seen = String::new();
        for c in s.trim().chars() {
            if c.is_ascii_digit() {
                num.push(c);
                continue;
            }
            let n: u32 = num.parse().ok()?;
            num.clear();
            if seen.contains(c) {
                return None;
            }
            seen.push(c);
            match c {
                'y' => w.years = n,
                'm' => w.months = n,
                'd' => w.days = n,
                'h' => w.hours = n,
                _ => return None,
            }
        }
        (num.is_empty() && !seen.is_empty()).then_some(w)
    }

    /// `t` minus this duration, or `None` if that is before any date
    /// (then every snapshot is within).
    fn before(&self, t: DateTime<FixedOffset>) -> Option<DateTime<FixedOffset>> {
        let months = self.years.checked_mul(12)?.checked_add(self.months)?;
        t.checked_sub_months(Months::new(months))?
            .checked_sub_signed(TimeDelta::try_days(i64::from(self.days))?)?
            .checked_sub_signed(TimeDelta::try_hours(i64::from(self.hours))?)
    }
}

impl fmt::Display for Within {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}y{}m{}d{}h",
            self.years, self.months, self.days, self.hours
        )
    }
}

/// What groups snapshots before the policy is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupBy {
    /// By host name.
    pub host: bool,
    /// By the set of backed-up paths.
    pub paths: bool,
    /// By the set of tags.
    pub tags: bool,
}

impl Default for GroupBy {
    /// restic's default, `host,paths`.
    fn default() -> GroupBy {
        GroupBy {
            host: true,
            paths: true,
            tags: false,
        }
    }
}

impl GroupBy {
    /// Parses `host,paths`, `tags`, … or the empty string (one group).
    pub fn parse(s: &str) -> Option<GroupBy> {
        let mut g = GroupBy {
            host: false,
            paths: false,
            tags: false,
        };
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            match part {
                "host" => g.host = true,
                "paths" => g.paths = true,
                "tags" => g.tags = true,
                _ => return None,
            }
        }
        Some(g)
    }
}

/// The values a group shares (absent: not grouped by it).
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct GroupKey {
    /// The host.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The paths, sorted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// The tags, sorted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tags: Option<Vec<String>>,
}

/// Groups snapshots; each group keeps the input order.
pub fn group(
    snapshots: Vec<(Id, Snapshot)>,
    by: GroupBy,
) -> BTreeMap<GroupKey, Vec<(Id, Snapshot)>> {
    let mut out: BTreeMap<GroupKey, Vec<(Id, Snapshot)>> = BTreeMap::new();
    for (id, s) in snapshots {
        let sorted = |v: &[String]| {
            let mut v = v.to_vec();
            v.sort();
            v
        };
        let key = GroupKey {
            host: by.host.then(|| s.hostname.clone()),
            paths: by.paths.then(|| sorted(&s.paths)),
            tags: by.tags.then(|| sorted(&s.tags)),
        };
        out.entry(key).or_default().push((id, s));
    }
    out
}

/// The decision for one snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// The snapshot.
    pub id: Id,
    /// Kept?
    pub keep: bool,
    /// The rules that keep it (`daily snapshot`, `within 0y0m7d0h`, …).
    pub reasons: Vec<String>,
}

/// A time-bucket rule and where it stands.
struct Bucket {
    count: u32,
    last: Option<i64>,
    reason: &'static str,
    of: fn(&DateTime<FixedOffset>, usize) -> i64,
}

/// Applies `policy` to one group. Returns a decision per snapshot, newest
/// first. An empty policy keeps everything.
pub fn apply(group: &[(Id, Snapshot)], policy: &Policy) -> Vec<Decision> {
    let mut list: Vec<&(Id, Snapshot)> = group.iter().collect();
    // Newest first; equal times in a fixed order.
    list.sort_by(|a, b| b.1.time.cmp(&a.1.time).then(a.0.cmp(&b.0)));
    if policy.is_empty() {
        return list
            .iter()
            .map(|(id, _)| Decision {
                id: *id,
                keep: true,
                reasons: Vec::new(),
            })
            .collect();
    }
    let mut buckets = [
        Bucket {
            count: policy.last,
            last: None,
            reason: "last snapshot",
            of: |_, nr| nr as i64,
        },
        Bucket {
            count: policy.hourly,
            last: None,
            reason: "hourly snapshot",
            of: |t, _| {
                i64::from(t.year()) * 1_000_000
                    + i64::from(t.month()) * 10_000
                    + i64::from(t.day()) * 100
                    + i64::from(t.hour())
            },
        },
        Bucket {
            count: policy.daily,
            last: None,
            reason: "daily snapshot",
            of: |t, _| {
                i64::from(t.year()) * 10_000 + i64::from(t.month()) * 100 + i64::from(t.day())
            },
        },
        Bucket {
            count: policy.weekly,
            last: None,
            reason: "weekly snapshot",
            of: |t, _| {
                let w = t.iso_week();
                i64::from(w.year()) * 100 + i64::from(w.week())
            },
        },
        Bucket {
            count: policy.monthly,
            last: None,
            reason: "monthly snapshot",
            of: |t, _| i64::from(t.year()) * 100 + i64::from(t.month()),
        },
        Bucket {
            count: policy.yearly,
            last: None,
            reason: "yearly snapshot",
            of: |t, _| i64::from(t.year()),
        },
    ];
    let newest = list.first().map(|(_, s)| s.time);
    let within_from = match (&policy.within, newest) {
        (Some(w), Some(t)) => Some(w.before(t)),
        _ => None,
    };
    let oldest = list.len().saturating_sub(1);
    let mut out = Vec::with_capacity(list.len());
    for (nr, (id, s)) in list.iter().enumerate() {
        let mut reasons = Vec::new();
        for t in &policy.tags {
            if t.iter().all(|tag| s.tags.contains(tag)) {
                reasons.push(format!("has tags [{}]", t.join(",")));
            }
        }
        if let (Some(from), Some(w)) = (within_from, &policy.within) {
            // `None`: the duration reaches before any date.
            if from.is_none_or(|from| s.time > from) {
                reasons.push(format!("within {w}"));
            }
        }
        for (i, b) in buckets.iter_mut().enumerate() {
            if b.count == 0 {
                continue;
            }
            let v = (b.of)(&s.time, nr);
            if b.last != Some(v) {
                b.last = Some(v);
                b.count -= 1;
                reasons.push(b.reason.to_string());
            } else if nr == oldest && i > 0 {
                // Counts left at the oldest snapshot: keep it, so the
                // history reaches as far back as there is.
                reasons.push(format!("oldest {}", b.reason));
            }
        }
        out.push(Decision {
            id: *id,
            keep: !reasons.is_empty(),
            reasons,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(time: &str, tags: &[&str]) -> (Id, Snapshot) {
        let s: Snapshot = serde_json::from_value(serde_json::json!({
            "time": time,
            "tree": Id::hash(b"tree").to_hex(),
            "paths": ["/data"],
            "hostname": "h",
            "tags": tags,
        }))
        .expect("snapshot");
        (Id::hash(time.as_bytes()), s)
    }

    /// The times of the kept snapshots, newest first.
    fn kept(list: &[(Id, Snapshot)], p: &Policy) -> Vec<String> {
        let by_id: BTreeMap<Id, &Snapshot> = list.iter().map(|(i, s)| (*i, s)).collect();
        apply(list, p)
            .into_iter()
            .filter(|d| d.keep)
            .map(|d| by_id[&d.id].time.format("%Y-%m-%d %H:%M").to_string())
            .collect()
    }

    /// Two snapshots a day (08:00 and 20:00) from 2026-01-01 to 2026-03-10.
    fn twice_daily() -> Vec<(Id, Snapshot)> {
        let mut v = Vec::new();
        let mut d = chrono::NaiveDate::from_ymd_opt(2026, 1, 1).expect("date");
        let end = chrono::NaiveDate::from_ymd_opt(2026, 3, 10).expect("date");
        while d <= end {
            for h in ["08", "20"] {
                v.push(snap(&format!("{d}T{h}:00:00+01:00"), &[]));
            }
            d = d.succ_opt().expect("next day");
        }
        v
    }

    #[test]
    fn last_and_daily() {
        let list = twice_daily();
        let p = Policy {
            last: 3,
            daily: 4,
            ..Policy::default()
        };
        // last 3: 03-10 20:00, 03-10 08:00, 03-09 20:00; daily 4: the
        // newest of 03-10, 03-09, 03-08, 03-07.
        assert_eq!(
            kept(&list, &p),
            [
                "2026-03-10 20:00",
                "2026-03-10 08:00",
                "2026-03-09 20:00",
                "2026-03-08 20:00",
                "2026-03-07 20:00",
            ]
        );
    }

    #[test]
    fn weekly_uses_iso_weeks_and_monthly_months() {
        let list = twice_daily();
        let p = Policy {
            weekly: 3,
            ..Policy::default()
        };
        // 2026-03-10 is a Tuesday (ISO week 11); week 10 ends Sunday
        // 03-08, week 9 ends Sunday 03-01.
        assert_eq!(
            kept(&list, &p),
            ["2026-03-10 20:00", "2026-03-08 20:00", "2026-03-01 20:00"]
        );
        let p = Policy {
            monthly: 2,
            ..Policy::default()
        };
        assert_eq!(kept(&list, &p), ["2026-03-10 20:00", "2026-02-28 20:00"]);
    }

    #[test]
    fn counts_left_at_the_oldest_keep_the_oldest() {
        let list = twice_daily();
        let p = Policy {
            monthly: 12,
            yearly: 5,
            ..Policy::default()
        };
        // Three months and one year exist: their newest snapshots, and the
        // very first snapshot because counts are left.
        assert_eq!(
            kept(&list, &p),
            [
                "2026-03-10 20:00",
                "2026-02-28 20:00",
                "2026-01-31 20:00",
                "2026-01-01 08:00",
            ]
        );
        let d = apply(&list, &p);
        let oldest = d.last().expect("decisions");
        assert_eq!(
            oldest.reasons,
            ["oldest monthly snapshot", "oldest yearly snapshot"]
        );
        // keep-last never reaches back like this.
        let p = Policy {
            last: 500,
            ..Policy::default()
        };
        assert_eq!(kept(&list, &p).len(), list.len());
    }

    #[test]
    fn within_counts_from_the_newest_snapshot() {
        let list = twice_daily();
        let p = Policy {
            within: Within::parse("2d"),
            ..Policy::default()
        };
        // Newer than 03-08 20:00 (strictly).
        assert_eq!(
            kept(&list, &p),
            [
                "2026-03-10 20:00",
                "2026-03-10 08:00",
                "2026-03-09 20:00",
                "2026-03-09 08:00",
            ]
        );
        let p = Policy {
            within: Within::parse("1m12h"),
            ..Policy::default()
        };
        // 2026-03-10 20:00 - 1 month - 12 h = 2026-02-10 08:00.
        assert_eq!(
            kept(&list, &p).last().map(String::as_str),
            Some("2026-02-10 20:00")
        );
    }

    #[test]
    fn tags_hourly_and_time_zones() {
        let list = vec![
            snap("2026-05-01T10:15:00+02:00", &[]),
            snap("2026-05-01T10:45:00+02:00", &["keep", "db"]),
            snap("2026-05-01T11:05:00+02:00", &["db"]),
            // 23:30 at -05:00 is the next day in UTC: its day is still 05-01.
            snap("2026-05-01T23:30:00-05:00", &[]),
            snap("2026-05-01T23:10:00-05:00", &[]),
        ];
        let p = Policy {
            hourly: 2,
            tags: vec![vec!["keep".into(), "db".into()]],
            ..Policy::default()
        };
        // Newest first by instant: 23:30-05 and 23:10-05 share an hour,
        // 11:05+02 is the next hour bucket; the tagged one is kept by tag.
        assert_eq!(
            kept(&list, &p),
            ["2026-05-01 23:30", "2026-05-01 11:05", "2026-05-01 10:45",]
        );
        // All five are on 05-01 where they were taken (in UTC the two
        // newest are on 05-02, and 11:05 would be kept instead): the
        // newest, and the oldest because a count is left.
        let p = Policy {
            daily: 2,
            ..Policy::default()
        };
        assert_eq!(kept(&list, &p), ["2026-05-01 23:30", "2026-05-01 10:15"]);
    }

    #[test]
    fn empty_policy_keeps_all_and_parsers() {
        let list = twice_daily();
        assert!(apply(&list, &Policy::default()).iter().all(|d| d.keep));
        assert_eq!(
            Within::parse("2y5m7d3h"),
            Some(Within {
                years: 2,
                months: 5,
                days: 7,
                hours: 3
            })
        );
        for bad in ["", "5", "3x", "1d1d", "d"] {
            assert_eq!(Within::parse(bad), None, "{bad}");
        }
        assert_eq!(
            GroupBy::parse(""),
            Some(GroupBy {
                host: false,
                paths: false,
                tags: false
            })
        );
        assert_eq!(
            GroupBy::parse("host,tags").map(|g| (g.host, g.paths, g.tags)),
            Some((true, false, true))
        );
        assert_eq!(GroupBy::parse("hostname"), None);
        let p = Policy {
            last: 2,
            daily: 7,
            within: Within::parse("1y"),
            ..Policy::default()
        };
        assert_eq!(
            p.to_string(),
            "keep 2 latest, 7 daily snapshots, all within 1y0m0d0h"
        );
    }
}
