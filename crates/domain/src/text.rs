//! Vietnamese text rules: NFC normalisation of input, folding for diacritic-insensitive
//! search, and Vietnamese collation for sorted lists.

use std::cmp::Ordering;
use std::sync::LazyLock;

use icu_collator::options::CollatorOptions;
use icu_collator::{Collator, CollatorBorrowed};
use unicode_normalization::UnicodeNormalization;

/// Normalises free text from any keyboard: NFC (Unikey "tổ hợp" and macOS produce
/// decomposed text), U+00D0 "Ð" → U+0110 "Đ" (and ð → đ), control characters other than
/// newline and tab removed, CRLF → LF, surrounding whitespace trimmed.
pub fn normalize(input: &str) -> String {
    let nfc: String = input.replace("\r\n", "\n").nfc().collect();
    nfc.chars()
        .filter_map(|c| match c {
            '\u{00D0}' => Some('\u{0110}'),
            '\u{00F0}' => Some('\u{0111}'),
            '\n' | '\t' => Some(c),
            c if c.is_control() => None,
            c => Some(c),
        })
        .collect::<String>()
        .trim()
        .to_string()
}

/// Like [`normalize`], for one-line values (names, addresses): inner whitespace collapsed.
pub fn normalize_line(input: &str) -> String {
    normalize(input)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// Folds text for search: lower case, every diacritic removed (tones, circumflex, breve,
/// horn) and "đ" → "d". "Buôn Ma Thuột" and "buon ma thuot" fold alike, and so do the two
/// tone placements "hòa" and "hoà". FTS5's `remove_diacritics` does not fold "đ", hence this.
///
/// Each character is decomposed on its own, which is what NFD does save for putting runs of
/// combining marks in their canonical order; the marks it drops (U+0300 to U+036F) cannot
/// change what is kept. Text with another combining mark (other scripts) takes the whole
/// NFD path, so the result is always the same as [`fold_nfd`]'s.
pub fn fold(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
            continue;
        }
        let mut other_mark = false;
        unicode_normalization::char::decompose_canonical(c, |d| match d {
            '\u{0300}'..='\u{036F}' => {}
            'đ' | 'Đ' | '\u{00D0}' | '\u{00F0}' => out.push('d'),
            d if unicode_normalization::char::canonical_combining_class(d) != 0 => {
                other_mark = true
            }
            d => out.extend(d.to_lowercase()),
        });
        if other_mark {
            return fold_nfd(input);
        }
    }
    out
}

/// [`fold`] the plain way: the whole text in NFD, its marks dropped.
fn fold_nfd(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for c in input.nfd() {
        match c {
            '\u{0300}'..='\u{036F}' => {}
            'đ' | 'Đ' | '\u{00D0}' | '\u{00F0}' => out.push('d'),
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// The five Vietnamese tone marks as combining characters (grave, acute, tilde, hook above,
/// dot below).
fn is_tone_mark(c: char) -> bool {
    matches!(
        c,
        '\u{0300}' | '\u{0301}' | '\u{0303}' | '\u{0309}' | '\u{0323}'
    )
}

/// The identity of a name: two spellings with the same key are the same name. Case, spacing
/// and the placement of the tone mark ("hòa" / "hoà") do not count; the letters and their
/// marks do ("Ôn" and "Ơn" are different names, and so are "Hùng" and "Hung"). Each word's
/// tones are moved to the word's end so that only their order matters.
pub fn identity_key(input: &str) -> String {
    let mut words = Vec::new();
    for word in normalize(input).split_whitespace() {
        let mut letters = String::new();
        let mut tones = String::new();
        for c in word.nfd() {
            if is_tone_mark(c) {
                tones.push(c);
            } else {
                letters.extend(c.to_lowercase());
            }
        }
        words.push(format!("{}{}", letters.nfc().collect::<String>(), tones));
    }
    words.join(" ")
}

static COLLATOR: LazyLock<Option<CollatorBorrowed<'static>>> = LazyLock::new(|| {
    let prefs = icu_locale::locale!("vi").into();
    Collator::try_new(prefs, CollatorOptions::default()).ok()
});

/// A cell as a spreadsheet may show it without running it. Text that Excel or LibreOffice
/// would read as a formula (starting with `=`, `+`, `-` or `@`, or with a tab or a carriage
/// return) gets a leading apostrophe, which both show as text; a plain number ("-2.5") and
/// a lone dash are left alone. Every CSV this program writes goes through it: a roster name
/// or a note is typed by someone, and an export is opened by someone else.
pub fn spreadsheet_cell(cell: &str) -> std::borrow::Cow<'_, str> {
    let risky = cell.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if !risky || cell == "-" || cell.parse::<f64>().is_ok_and(f64::is_finite) {
        std::borrow::Cow::Borrowed(cell)
    } else {
        std::borrow::Cow::Owned(format!("'{cell}"))
    }
}

/// A row of cells, each made safe to open in a spreadsheet (see [`spreadsheet_cell`]): what
/// every CSV writer of this program writes.
pub fn spreadsheet_row<I, S>(row: I) -> Vec<String>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    row.into_iter()
        .map(|c| spreadsheet_cell(c.as_ref()).into_owned())
        .collect()
}

/// A cell read back from a CSV this program wrote: the apostrophe [`spreadsheet_cell`] put
/// before a formula character is dropped, so that exporting and importing again changes
/// nothing.
pub fn from_spreadsheet_cell(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if rest.starts_with(['=', '+', '-', '@', '\t', '\r']) => rest,
        _ => cell,
    }
}

/// Compares two strings in Vietnamese alphabetical order (a < ă < â, d < đ, o < ô < ơ,
/// u < ư; tones after base letters), using CLDR's Vietnamese tailoring.
pub fn vi_cmp(a: &str, b: &str) -> Ordering {
    match COLLATOR.as_ref() {
        Some(c) => c.compare(a, b),
        // The compiled-in data always has "vi"; fall back to folded byte order regardless.
        None => fold(a).cmp(&fold(b)).then_with(|| a.cmp(b)),
    }
}

/// Sorts a slice by a string key in Vietnamese order.
pub fn vi_sort_by_key<T>(items: &mut [T], key: impl Fn(&T) -> &str) {
    items.sort_by(|a, b| vi_cmp(key(a), key(b)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_fold(input: &str, expected: &str) {
        assert_eq!(fold(input), expected, "fold({input:?})");
    }

    /// The per-character fold and the whole-text one agree: Vietnamese in both forms (and
    /// typed with separate marks in any order), Latin, other scripts with marks of their
    /// own (Hebrew, Devanagari, Thai), Hangul, and marks with nothing before them.
    #[test]
    fn folding_per_character_is_folding_the_whole() {
        let samples = [
            "Buôn Ma Thuột, Đắk Lắk: ĐẮK LẮK",
            "Ðắk Lắk ð Ð",
            "Nguyễn Thị Ánh Tuyết — 0912 345 678, thôn 3",
            "ho\u{0300}a ho\u{0323}\u{0302}i ngu\u{031B}\u{0323}\u{0300}c a\u{0323}\u{0306}",
            "\u{0301}\u{0323}a\u{0323}\u{0301}",
            "Ça, façade, Ölçü, Straße, ÆØÅ, İstanbul, ǅ",
            "שָׁלוֹם עֲ",
            "हिन्दी क़",
            "ภาษาไทย น้ำ",
            "한국어 각",
            "a\u{05B0}\u{0591}\u{0301}b a\u{0591}\u{05B0}b",
            "x\u{0345}\u{0301}y ῷ",
            "",
        ];
        for s in samples {
            assert_eq!(fold(s), fold_nfd(s), "{s:?}");
        }
    }

    #[test]
    fn folding() {
        check_fold("Buôn Ma Thuột", "buon ma thuot");
        check_fold("Đắk Lắk", "dak lak");
        check_fold("ĐẮK LẮK", "dak lak");
        check_fold("hòa", "hoa");
        check_fold("hoà", "hoa");
        check_fold("Ða Nẵng", "da nang");
        check_fold("Cư M'gar", "cu m'gar");
        check_fold("Trường Sơn", "truong son");
        check_fold("ưởng", "uong");
    }

    #[test]
    fn nfd_input_becomes_nfc() {
        let nfd: String = "Buôn Đôn, Đắk Lắk".nfd().collect();
        assert_ne!(nfd, "Buôn Đôn, Đắk Lắk");
        assert_eq!(normalize(&nfd), "Buôn Đôn, Đắk Lắk");
        assert_eq!(fold(&nfd), fold("Buôn Đôn, Đắk Lắk"));
    }

    #[test]
    fn eth_becomes_d_with_stroke() {
        assert_eq!(normalize("\u{00D0}ắk Lắk"), "Đắk Lắk");
        assert_eq!(normalize("\u{00F0}ường"), "đường");
    }

    #[test]
    fn control_characters_removed_newlines_kept() {
        assert_eq!(normalize("  a\u{0000}b\r\nc\u{0007} "), "ab\nc");
        assert_eq!(normalize_line("  Nguyễn   Văn\tAn "), "Nguyễn Văn An");
    }

    #[test]
    fn identity_ignores_tone_placement_not_letters() {
        assert_eq!(
            identity_key("Thôn Hòa Bình"),
            identity_key("thôn  hoà bình")
        );
        assert_eq!(identity_key("Y BLIÊNG NIÊ"), identity_key("y bliêng niê"));
        assert_ne!(identity_key("Thôn Ôn"), identity_key("Thôn Ơn"));
        assert_ne!(
            identity_key("Nguyễn Văn Hùng"),
            identity_key("Nguyen Van Hung")
        );
        assert_ne!(identity_key("Đông"), identity_key("Dông"));
    }

    #[test]
    fn vietnamese_collation() {
        let mut names = vec![
            "Đức", "Dũng", "Ân", "An", "Ấn", "Ơn", "Ôn", "On", "Ưng", "Ung", "Bình",
        ];
        names.sort_by(|a, b| vi_cmp(a, b));
        assert_eq!(
            names,
            vec![
                "An", "Ân", "Ấn", "Bình", "Dũng", "Đức", "On", "Ôn", "Ơn", "Ung", "Ưng"
            ]
        );
        // a < ă < â
        let mut v = vec!["âm", "ăn", "an"];
        v.sort_by(|a, b| vi_cmp(a, b));
        assert_eq!(v, vec!["an", "ăn", "âm"]);
    }

    #[test]
    fn spreadsheet_cells_never_run() {
        for (cell, shown) in [
            (
                "=HYPERLINK(\"http://x\",\"bấm\")",
                "'=HYPERLINK(\"http://x\",\"bấm\")",
            ),
            ("+84905123456 gọi", "'+84905123456 gọi"),
            ("-1+cmd|' /C calc'!A0", "'-1+cmd|' /C calc'!A0"),
            ("@SUM(A1)", "'@SUM(A1)"),
            ("\t=1", "'\t=1"),
            ("Buôn Ea Kmar", "Buôn Ea Kmar"),
            ("-", "-"),
            ("-2.5", "-2.5"),
            ("", ""),
        ] {
            assert_eq!(spreadsheet_cell(cell), shown, "{cell}");
            assert_eq!(from_spreadsheet_cell(&spreadsheet_cell(cell)), cell);
        }
        assert_eq!(from_spreadsheet_cell("'bình thường"), "'bình thường");
    }
}
