//! DOS dates and times as directory entries store them.
//!
//! Source: Microsoft FAT specification ("FAT: General Overview of On-Disk
//! Format", 1.03, 2005), §6.3 "Date and Time Formats": a date is
//! `year-1980 << 9 | month << 5 | day`, a time `hour << 11 | minute << 5 |
//! seconds/2`; the creation time adds a byte of 10 ms units (0–199).
//!
//! FAT records local time with no zone; this reader returns it as if it
//! were UTC (what the Linux vfat driver does with `tz=UTC`, and what mtools
//! writes when `TZ=UTC`). Fields out of range are not refused: a month or
//! day of 0 counts as 1 and overflowing days, hours or minutes carry over,
//! so any bytes give a time and never an error.

use crate::fs::Timestamp;

/// Days from 1970-01-01 to `year-month-day` of the proleptic Gregorian
/// calendar (month 1–12; a day past the month's end carries over).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    // Count years from March, so that the leap day is the last of a year.
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * i64::from(m) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// Seconds since 1970 of DOS `date` at midnight.
fn date_secs(date: u16) -> i64 {
    let year = 1980 + i64::from(date >> 9);
    let month = u32::from((date >> 5) & 0x0F).clamp(1, 12);
    let day = u32::from(date & 0x1F).max(1);
    days_from_civil(year, month, day) * 86_400
}

/// A DOS date and time plus the creation time's 10 ms units (`tenths`,
/// 0 for the other times; values past 199 carry into the seconds).
pub fn dos_time(date: u16, time: u16, tenths: u8) -> Timestamp {
    let hours = i64::from(time >> 11);
    let minutes = i64::from((time >> 5) & 0x3F);
    let two_secs = i64::from(time & 0x1F);
    let centis = u32::from(tenths);
    Timestamp {
        secs: date_secs(date)
            + hours * 3600
            + minutes * 60
            + two_secs * 2
            + i64::from(centis / 100),
        nanos: (centis % 100) * 10_000_000,
    }
}

/// A DOS date at midnight (the access date).
pub fn dos_date(date: u16) -> Timestamp {
    dos_time(date, 0, 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack_date(y: u16, m: u16, d: u16) -> u16 {
        ((y - 1980) << 9) | (m << 5) | d
    }

    fn pack_time(h: u16, m: u16, s: u16) -> u16 {
        (h << 11) | (m << 5) | (s / 2)
    }

    #[test]
    fn known_instants() {
        // 1980-01-01 00:00:00, the DOS epoch.
        assert_eq!(dos_time(pack_date(1980, 1, 1), 0, 0).secs, 315_532_800);
        // 2024-02-29 13:37:42 UTC = 1709213862.
        let t = dos_time(pack_date(2024, 2, 29), pack_time(13, 37, 42), 0);
        assert_eq!(
            t,
            Timestamp {
                secs: 1_709_213_862,
                nanos: 0
            }
        );
        // The creation byte adds 10 ms units: 157 = 1.57 s.
        let c = dos_time(pack_date(2024, 2, 29), pack_time(13, 37, 42), 157);
        assert_eq!(
            c,
            Timestamp {
                secs: 1_709_213_863,
                nanos: 570_000_000
            }
        );
        // 2107-12-31, the last date a DOS date holds.
        assert_eq!(dos_date(pack_date(2107, 12, 31)).secs, 4_354_732_800);
        assert_eq!(dos_date(pack_date(2000, 3, 1)).secs, 951_868_800);
    }

    #[test]
    fn out_of_range_fields_carry_instead_of_failing() {
        // Month 0 and day 0 count as 1.
        assert_eq!(dos_date(0).secs, 315_532_800);
        // Month 15 counts as 12, day 31 of February carries into March.
        assert_eq!(
            dos_date(pack_date(1990, 15, 1)),
            dos_date(pack_date(1990, 12, 1))
        );
        assert_eq!(
            dos_date(pack_date(1990, 2, 31)),
            dos_date(pack_date(1990, 3, 3))
        );
        // Hour 31, minute 63 and tenths 255 just add up.
        let t = dos_time(0, 0xFFFF, 255);
        assert_eq!(t.secs, 315_532_800 + 31 * 3600 + 63 * 60 + 62 + 2);
        assert_eq!(t.nanos, 550_000_000);
    }
}
