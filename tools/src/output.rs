//! Printing: JSON and text on stdout, tables, and the number formats restic
//! users know (`1.234 MiB`, `1:05`, local `YYYY-MM-DD HH:MM:SS`).
//!
//! Every write to stdout goes through `io::Write` and returns its error, so a
//! closed pipe (`vaultfs snapshots | head -1`) ends the command quietly
//! instead of panicking like `println!` would.

use std::io::{self, Write};

use anyhow::Result;
use chrono::{DateTime, FixedOffset, Local};
use serde::Serialize;

/// Writes `value` as one line of JSON on stdout.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<()> {
    let mut out = io::stdout().lock();
    serde_json::to_writer(&mut out, value)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Writes text (a newline is added) on stdout.
pub fn line(text: impl AsRef<str>) -> Result<()> {
    let mut out = io::stdout().lock();
    out.write_all(text.as_ref().as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// A size in restic's style: bytes below 1 KiB, else three decimals.
pub fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    // f64 is exact enough for a three-decimal display.
    let mut v = n as f64 / 1024.0;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    format!("{v:.3} {}", UNITS[unit])
}

/// A duration as `M:SS` or `H:MM:SS`.
pub fn duration(secs: f64) -> String {
    let total = if secs.is_finite() && secs > 0.0 {
        secs.round() as u64
    } else {
        0
    };
    let (h, m, s) = (total / 3600, total / 60 % 60, total % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

/// A timestamp in the local time zone, `YYYY-MM-DD HH:MM:SS`.
pub fn local_time(t: &DateTime<FixedOffset>) -> String {
    t.with_timezone(&Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

/// A text table whose cells may span several lines (restic prints each
/// extra path of a snapshot on its own line).
pub struct Table {
    headers: Vec<String>,
    rows: Vec<Vec<Vec<String>>>,
}

impl Table {
    /// A table with these column headers.
    pub fn new(headers: &[&str]) -> Table {
        Table {
            headers: headers.iter().map(|h| (*h).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row; each cell is a list of lines.
    pub fn row(&mut self, cells: Vec<Vec<String>>) {
        self.rows.push(cells);
    }

    fn widths(&self) -> Vec<usize> {
        let mut w: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate() {
                let cw = cell.iter().map(|l| l.chars().count()).max().unwrap_or(0);
                if let Some(x) = w.get_mut(i) {
                    *x = (*x).max(cw);
                }
            }
        }
        w
    }

    fn format_line(widths: &[usize], cells: &[&str]) -> String {
        let mut s = String::new();
        for (i, w) in widths.iter().enumerate() {
            let c = cells.get(i).copied().unwrap_or("");
            if i + 1 == widths.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        s.trim_end().to_owned()
    }

    /// Renders header, separator, rows, separator.
    pub fn render(&self) -> String {
        let widths = self.widths();
        let total = widths.iter().sum::<usize>() + 2 * widths.len().saturating_sub(1);
        let rule = "-".repeat(total.max(1));
        let headers: Vec<&str> = self.headers.iter().map(String::as_str).collect();
        let mut out = vec![Table::format_line(&widths, &headers), rule.clone()];
        for row in &self.rows {
            let height = row.iter().map(Vec::len).max().unwrap_or(1).max(1);
            for l in 0..height {
                let cells: Vec<&str> = row
                    .iter()
                    .map(|c| c.get(l).map(String::as_str).unwrap_or(""))
                    .collect();
                out.push(Table::format_line(&widths, &cells));
            }
        }
        out.push(rule);
        out.join("\n")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(1023), "1023 B");
        assert_eq!(bytes(1536), "1.500 KiB");
        assert_eq!(bytes(3 << 30), "3.000 GiB");
        assert_eq!(duration(65.4), "1:05");
        assert_eq!(duration(3725.0), "1:02:05");
        assert_eq!(duration(f64::NAN), "0:00");
    }

    #[test]
    fn table_multiline() {
        let mut t = Table::new(&["ID", "Paths"]);
        t.row(vec![vec!["ab".into()], vec!["/a".into(), "/bb".into()]]);
        assert_eq!(
            t.render(),
            "ID  Paths\n---------\nab  /a\n    /bb\n---------"
        );
    }
}
