//! OEM code pages for 8.3 short names.
//!
//! A short name is stored in the OEM code page of the system that wrote it;
//! the volume does not say which. Bytes 0x00–0x7F are ASCII in both pages
//! here; the upper halves below are the Unicode Consortium's mapping tables
//! `VENDORS/MICSFT/PC/CP437.TXT` and `CP850.TXT` (IBM PC code pages 437,
//! "United States", and 850, "Multilingual Latin 1").
//!
//! The default is 850, what GNU mtools uses unless told otherwise (the
//! Linux kernel's vfat driver defaults to 437, `CONFIG_FAT_DEFAULT_CODEPAGE`);
//! [`FsOptions::oem_codepage`](crate::fs::FsOptions::oem_codepage) chooses.

/// An OEM code page a short name can be decoded with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CodePage {
    /// IBM PC code page 437 (United States).
    Cp437,
    /// IBM PC code page 850 (Multilingual Latin 1).
    Cp850,
}

/// The code page used when none is chosen.
pub const DEFAULT_CODEPAGE: u16 = 850;

impl CodePage {
    /// The page numbered `n`, if supported.
    pub fn from_number(n: u16) -> Option<CodePage> {
        match n {
            437 => Some(CodePage::Cp437),
            850 => Some(CodePage::Cp850),
            _ => None,
        }
    }

    /// The character byte `b` stands for.
    pub fn decode(self, b: u8) -> char {
        if b < 0x80 {
            return char::from(b);
        }
        let table = match self {
            CodePage::Cp437 => &CP437,
            CodePage::Cp850 => &CP850,
        };
        table[usize::from(b - 0x80)]
    }
}

/// Code page 437, bytes 0x80–0xFF (Unicode `CP437.TXT`).
const CP437: [char; 128] = [
    '\u{00C7}', '\u{00FC}', '\u{00E9}', '\u{00E2}', '\u{00E4}', '\u{00E0}', '\u{00E5}',
    '\u{00E7}', // 0x80
    '\u{00EA}', '\u{00EB}', '\u{00E8}', '\u{00EF}', '\u{00EE}', '\u{00EC}', '\u{00C4}',
    '\u{00C5}', // 0x88
    '\u{00C9}', '\u{00E6}', '\u{00C6}', '\u{00F4}', '\u{00F6}', '\u{00F2}', '\u{00FB}',
    '\u{00F9}', // 0x90
    '\u{00FF}', '\u{00D6}', '\u{00DC}', '\u{00A2}', '\u{00A3}', '\u{00A5}', '\u{20A7}',
    '\u{0192}', // 0x98
    '\u{00E1}', '\u{00ED}', '\u{00F3}', '\u{00FA}', '\u{00F1}', '\u{00D1}', '\u{00AA}',
    '\u{00BA}', // 0xA0
    '\u{00BF}', '\u{2310}', '\u{00AC}', '\u{00BD}', '\u{00BC}', '\u{00A1}', '\u{00AB}',
    '\u{00BB}', // 0xA8
    '\u{2591}', '\u{2592}', '\u{2593}', '\u{2502}', '\u{2524}', '\u{2561}', '\u{2562}',
    '\u{2556}', // 0xB0
    '\u{2555}', '\u{2563}', '\u{2551}', '\u{2557}', '\u{255D}', '\u{255C}', '\u{255B}',
    '\u{2510}', // 0xB8
    '\u{2514}', '\u{2534}', '\u{252C}', '\u{251C}', '\u{2500}', '\u{253C}', '\u{255E}',
    '\u{255F}', // 0xC0
    '\u{255A}', '\u{2554}', '\u{2569}', '\u{2566}', '\u{2560}', '\u{2550}', '\u{256C}',
    '\u{2567}', // 0xC8
    '\u{2568}', '\u{2564}', '\u{2565}', '\u{2559}', '\u{2558}', '\u{2552}', '\u{2553}',
    '\u{256B}', // 0xD0
    '\u{256A}', '\u{2518}', '\u{250C}', '\u{2588}', '\u{2584}', '\u{258C}', '\u{2590}',
    '\u{2580}', // 0xD8
    '\u{03B1}', '\u{00DF}', '\u{0393}', '\u{03C0}', '\u{03A3}', '\u{03C3}', '\u{00B5}',
    '\u{03C4}', // 0xE0
    '\u{03A6}', '\u{0398}', '\u{03A9}', '\u{03B4}', '\u{221E}', '\u{03C6}', '\u{03B5}',
    '\u{2229}', // 0xE8
    '\u{2261}', '\u{00B1}', '\u{2265}', '\u{2264}', '\u{2320}', '\u{2321}', '\u{00F7}',
    '\u{2248}', // 0xF0
    '\u{00B0}', '\u{2219}', '\u{00B7}', '\u{221A}', '\u{207F}', '\u{00B2}', '\u{25A0}',
    '\u{00A0}', // 0xF8
];

/// Code page 850, bytes 0x80–0xFF (Unicode `CP850.TXT`).
const CP850: [char; 128] = [
    '\u{00C7}', '\u{00FC}', '\u{00E9}', '\u{00E2}', '\u{00E4}', '\u{00E0}', '\u{00E5}',
    '\u{00E7}', // 0x80
    '\u{00EA}', '\u{00EB}', '\u{00E8}', '\u{00EF}', '\u{00EE}', '\u{00EC}', '\u{00C4}',
    '\u{00C5}', // 0x88
    '\u{00C9}', '\u{00E6}', '\u{00C6}', '\u{00F4}', '\u{00F6}', '\u{00F2}', '\u{00FB}',
    '\u{00F9}', // 0x90
    '\u{00FF}', '\u{00D6}', '\u{00DC}', '\u{00F8}', '\u{00A3}', '\u{00D8}', '\u{00D7}',
    '\u{0192}', // 0x98
    '\u{00E1}', '\u{00ED}', '\u{00F3}', '\u{00FA}', '\u{00F1}', '\u{00D1}', '\u{00AA}',
    '\u{00BA}', // 0xA0
    '\u{00BF}', '\u{00AE}', '\u{00AC}', '\u{00BD}', '\u{00BC}', '\u{00A1}', '\u{00AB}',
    '\u{00BB}', // 0xA8
    '\u{2591}', '\u{2592}', '\u{2593}', '\u{2502}', '\u{2524}', '\u{00C1}', '\u{00C2}',
    '\u{00C0}', // 0xB0
    '\u{00A9}', '\u{2563}', '\u{2551}', '\u{2557}', '\u{255D}', '\u{00A2}', '\u{00A5}',
    '\u{2510}', // 0xB8
    '\u{2514}', '\u{2534}', '\u{252C}', '\u{251C}', '\u{2500}', '\u{253C}', '\u{00E3}',
    '\u{00C3}', // 0xC0
    '\u{255A}', '\u{2554}', '\u{2569}', '\u{2566}', '\u{2560}', '\u{2550}', '\u{256C}',
    '\u{00A4}', // 0xC8
    '\u{00F0}', '\u{00D0}', '\u{00CA}', '\u{00CB}', '\u{00C8}', '\u{0131}', '\u{00CD}',
    '\u{00CE}', // 0xD0
    '\u{00CF}', '\u{2518}', '\u{250C}', '\u{2588}', '\u{2584}', '\u{00A6}', '\u{00CC}',
    '\u{2580}', // 0xD8
    '\u{00D3}', '\u{00DF}', '\u{00D4}', '\u{00D2}', '\u{00F5}', '\u{00D5}', '\u{00B5}',
    '\u{00FE}', // 0xE0
    '\u{00DE}', '\u{00DA}', '\u{00DB}', '\u{00D9}', '\u{00FD}', '\u{00DD}', '\u{00AF}',
    '\u{00B4}', // 0xE8
    '\u{00AD}', '\u{00B1}', '\u{2017}', '\u{00BE}', '\u{00B6}', '\u{00A7}', '\u{00F7}',
    '\u{00B8}', // 0xF0
    '\u{00B0}', '\u{00A8}', '\u{00B7}', '\u{00B9}', '\u{00B3}', '\u{00B2}', '\u{25A0}',
    '\u{00A0}', // 0xF8
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ascii_is_itself_and_pages_differ_where_they_should() {
        for cp in [CodePage::Cp437, CodePage::Cp850] {
            assert_eq!(cp.decode(b'A'), 'A');
            assert_eq!(cp.decode(b'~'), '~');
            // Both pages agree on the accented letters of the first rows.
            assert_eq!(cp.decode(0x82), 'é');
            assert_eq!(cp.decode(0xA5), 'Ñ');
        }
        // 0x9D: Ø in 850, ¥ in 437; 0x9B: ø / ¢.
        assert_eq!(CodePage::Cp850.decode(0x9D), 'Ø');
        assert_eq!(CodePage::Cp437.decode(0x9D), '¥');
        assert_eq!(CodePage::Cp850.decode(0x9B), 'ø');
        assert_eq!(CodePage::Cp437.decode(0x9B), '¢');
        assert_eq!(CodePage::Cp437.decode(0xE1), 'ß');
        assert_eq!(CodePage::Cp850.decode(0xFF), '\u{A0}');
        assert_eq!(CodePage::from_number(1252), None);
    }
}
