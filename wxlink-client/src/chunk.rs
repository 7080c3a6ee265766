//! Splitting long text into messages that each fit the server's limit.
//!
//! The official client splits outbound text at 4 000 characters
//! (docs/protocol.md, "Text length and chunking"). [`chunk_text`] does the
//! same, counting Unicode scalar values (`char`s), so a CJK character or an
//! emoji outside the Basic Multilingual Plane counts as one and is never cut in
//! half. At 4 000 characters a chunk is at most 16 000 bytes of UTF-8, under
//! the 16 KiB a text item may hold.
//!
//! Where a chunk ends is chosen in this order, looking only at the last half
//! of the window so that chunks do not become needlessly short:
//!
//! 1. after the last paragraph break (`"\n\n"`);
//! 2. after the last line break (`"\n"`);
//! 3. after the last whitespace character;
//! 4. at the window's end (a hard split).
//!
//! Separators stay at the end of the chunk that precedes them, so joining
//! the chunks gives back the input exactly. Any cut also avoids the middle of
//! the common grapheme clusters where that is cheap to see: it never falls
//! right before a combining mark, a zero-width joiner, a variation selector,
//! an emoji skin-tone modifier or a tag character, never right after a
//! zero-width joiner, never between the two regional indicators of a flag and
//! never between `\r` and `\n`. Only when a single cluster is longer than the
//! whole window is it cut, because every chunk must fit.

/// The default chunk size in characters, as the official client uses
/// (docs/protocol.md, "Text length and chunking").
pub const DEFAULT_MAX_CHARS: usize = 4000;

/// Splits `text` into chunks of at most `max_chars` characters each.
///
/// Returns no chunk for empty text and never an empty chunk; the chunks
/// concatenated are exactly `text`. A `max_chars` of 0 is treated as 1.
/// See the [module docs](self) for where the cuts fall.
///
/// ```
/// use wxlink_client::chunk_text;
///
/// let text = "first paragraph\n\nsecond paragraph";
/// let chunks = chunk_text(text, 20);
/// assert_eq!(chunks, ["first paragraph\n\n", "second paragraph"]);
/// assert_eq!(chunks.concat(), text);
/// ```
pub fn chunk_text(text: &str, max_chars: usize) -> Vec<&str> {
    let max = max_chars.max(1);
    let mut chunks = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        // The byte offset just past `max` characters, or `None` when the
        // remainder fits as it is.
        let Some((limit, _)) = rest.char_indices().nth(max) else {
            chunks.push(rest);
            break;
        };
        let cut = choose_cut(rest, limit, max);
        let (head, tail) = rest.split_at(cut);
        chunks.push(head);
        rest = tail;
    }
    chunks
}

/// Picks the byte offset in `s` where the next chunk ends; `limit` is the
/// offset just past `max` characters. The result is in `1..=limit` and on a
/// char boundary.
fn choose_cut(s: &str, limit: usize, max: usize) -> usize {
    // The cut may not land before this offset, so that a chunk keeps at
    // least half of the window.
    let floor = s
        .char_indices()
        .nth(max - max / 2)
        .map_or(limit, |(i, _)| i)
        .min(limit);
    let window = &s[..limit];

    // Paragraph break, then line break: the cut goes after the separator.
    for sep in ["\n\n", "\n"] {
        let found = window
            .rmatch_indices(sep)
            .map(|(i, m)| i + m.len())
            .take_while(|&end| end >= floor)
            .find(|&end| is_good_cut(s, end));
        if let Some(end) = found {
            return end;
        }
    }

    // Any whitespace character in the last half of the window.
    let found = window
        .char_indices()
        .rev()
        .map(|(i, c)| (i + c.len_utf8(), c))
        .take_while(|&(end, _)| end >= floor)
        .filter(|(_, c)| c.is_whitespace())
        .map(|(end, _)| end)
        .find(|&end| is_good_cut(s, end));
    if let Some(end) = found {
        return end;
    }

    // A hard split: step back out of a grapheme cluster if that is possible
    // without producing an empty chunk.
    let mut cut = limit;
    while cut > 0 && !is_good_cut(s, cut) {
        cut = prev_boundary(s, cut);
    }
    if cut == 0 { limit } else { cut }
}

/// The char boundary just before byte offset `i` (which is a boundary > 0).
fn prev_boundary(s: &str, i: usize) -> usize {
    s[..i].char_indices().next_back().map_or(0, |(j, _)| j)
}

/// True when cutting `s` at byte offset `i` keeps the clusters we can cheaply
/// recognise whole. Offsets at either end are always good.
fn is_good_cut(s: &str, i: usize) -> bool {
    let (Some(prev), Some(next)) = (s[..i].chars().next_back(), s[i..].chars().next()) else {
        return true;
    };
    if prev == '\r' && next == '\n' {
        return false;
    }
    if prev == ZWJ || extends_previous(next) {
        return false;
    }
    if is_regional_indicator(prev) && is_regional_indicator(next) {
        // Flags are pairs of regional indicators: cutting is fine only after
        // an even number of them.
        let run = s[..i]
            .chars()
            .rev()
            .take_while(|&c| is_regional_indicator(c))
            .count();
        return run % 2 == 0;
    }
    true
}

/// The zero-width joiner that glues emoji sequences together.
const ZWJ: char = '\u{200D}';

/// True for characters that belong to the cluster of the character before
/// them: the common combining marks, joiners, variation selectors, emoji
/// modifiers, tag characters, Hangul medial and final jamo and the Japanese
/// combining sound marks. Not a full implementation of UAX #29, only the
/// cases that are cheap to test.
fn extends_previous(c: char) -> bool {
    matches!(c,
        '\u{0300}'..='\u{036F}'   // combining diacritical marks
        | '\u{0483}'..='\u{0489}' // Cyrillic combining marks
        | '\u{0591}'..='\u{05BD}' // Hebrew points
        | '\u{064B}'..='\u{065F}' // Arabic harakat
        | '\u{0670}'
        | '\u{0900}'..='\u{0903}' // Devanagari signs
        | '\u{093A}'..='\u{094F}'
        | '\u{0951}'..='\u{0957}'
        | '\u{0962}'..='\u{0963}'
        | '\u{0E31}'
        | '\u{0E34}'..='\u{0E3A}' // Thai vowels and tone marks
        | '\u{0E47}'..='\u{0E4E}'
        | '\u{1160}'..='\u{11FF}' // Hangul medial vowels and final consonants
        | '\u{1AB0}'..='\u{1AFF}'
        | '\u{1DC0}'..='\u{1DFF}'
        | '\u{200C}'..='\u{200D}' // ZWNJ and ZWJ
        | '\u{20D0}'..='\u{20FF}' // combining marks for symbols (keycaps)
        | '\u{3099}'..='\u{309A}' // Japanese combining (semi-)voiced marks
        | '\u{FE00}'..='\u{FE0F}' // variation selectors
        | '\u{FE20}'..='\u{FE2F}'
        | '\u{1F3FB}'..='\u{1F3FF}' // emoji skin-tone modifiers
        | '\u{E0020}'..='\u{E007F}' // tag characters (subdivision flags)
        | '\u{E0100}'..='\u{E01EF}' // variation selectors supplement
    )
}

/// True for the regional indicator symbols that form flag emoji in pairs.
fn is_regional_indicator(c: char) -> bool {
    ('\u{1F1E6}'..='\u{1F1FF}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn chars(s: &str) -> usize {
        s.chars().count()
    }

    /// Checks the invariants every result must have.
    fn check(text: &str, max: usize) -> Vec<&str> {
        let chunks = chunk_text(text, max);
        assert_eq!(chunks.concat(), text, "chunks must join back to the input");
        for c in &chunks {
            assert!(!c.is_empty(), "empty chunk in {chunks:?}");
            assert!(chars(c) <= max.max(1), "chunk {c:?} longer than {max}");
        }
        chunks
    }

    #[test]
    fn empty_text_gives_no_chunks() {
        assert!(chunk_text("", 10).is_empty());
    }

    #[test]
    fn text_that_fits_is_one_chunk() {
        assert_eq!(check("hello", 5), ["hello"]);
        assert_eq!(check("hello", 4000), ["hello"]);
    }

    #[test]
    fn exact_boundary_lengths() {
        let text = "a".repeat(4000);
        assert_eq!(check(&text, 4000).len(), 1);
        let text = "a".repeat(4001);
        let chunks = check(&text, 4000);
        assert_eq!(
            chunks.iter().map(|c| chars(c)).collect::<Vec<_>>(),
            [4000, 1]
        );
        let text = "a".repeat(8000);
        assert_eq!(check(&text, 4000).len(), 2);
    }

    #[test]
    fn prefers_paragraph_then_line_then_space() {
        // A paragraph break inside the last half wins over a later newline.
        let text = "aaaaaa\n\nbbb\ncc dddddddd";
        assert_eq!(check(text, 14)[0], "aaaaaa\n\n");
        // Without a paragraph break, the last line break wins over spaces.
        let text = "aaaa bbbb\ncc dd eeeeeeee";
        assert_eq!(check(text, 14)[0], "aaaa bbbb\n");
        // Without line breaks, the last whitespace.
        let text = "aaaa bbbb cc ddddddd";
        assert_eq!(check(text, 14)[0], "aaaa bbbb cc ");
    }

    #[test]
    fn break_points_early_in_the_window_are_not_used() {
        // The only space is in the first half of the window: a hard split
        // keeps the chunks long instead of producing a two-character one.
        let text = "a bcdefghijklmnopqrstuvwxyz";
        assert_eq!(check(text, 10)[0], "a bcdefghi");
    }

    #[test]
    fn text_without_break_points_is_hard_split() {
        let text = "x".repeat(25);
        let chunks = check(&text, 10);
        assert_eq!(
            chunks.iter().map(|c| chars(c)).collect::<Vec<_>>(),
            [10, 10, 5]
        );
    }

    #[test]
    fn cjk_counts_characters_not_bytes() {
        let text = "天地玄黄宇宙洪荒日月盈昃辰宿列张".repeat(3); // 48 chars, 144 bytes
        let chunks = check(&text, 16);
        assert_eq!(chunks.len(), 3);
        assert!(chunks.iter().all(|c| chars(c) == 16));
        // CJK punctuation is not whitespace, but an ideographic space is.
        let text = "第一句话。\u{3000}第二句话比较长一些。";
        assert_eq!(
            check(text, 12),
            ["第一句话。\u{3000}", "第二句话比较长一些。"]
        );
    }

    #[test]
    fn astral_emoji_are_one_character_and_never_split() {
        let text = "😀".repeat(9);
        let chunks = check(&text, 4);
        assert_eq!(chunks, ["😀😀😀😀", "😀😀😀😀", "😀"]);
    }

    #[test]
    fn zwj_sequences_stay_whole_where_they_fit() {
        // Family emoji: man ZWJ woman ZWJ girl, five chars in one cluster.
        let family = "👨\u{200D}👩\u{200D}👧";
        let text = format!("abcd{family}");
        let chunks = check(&text, 7);
        assert_eq!(chunks, ["abcd", family]);
        // A cluster longer than the window must still be cut to fit.
        let chunks = check(family, 2);
        assert_eq!(chunks.concat(), family);
    }

    #[test]
    fn flags_are_not_split_between_indicators() {
        let flags = "🇨🇳🇯🇵🇺🇸"; // three flags, six regional indicators
        let chunks = check(flags, 3);
        assert_eq!(chunks, ["🇨🇳", "🇯🇵", "🇺🇸"]);
        let text = format!("x{flags}");
        let chunks = check(&text, 4);
        assert_eq!(chunks, ["x🇨🇳", "🇯🇵🇺🇸"]);
    }

    #[test]
    fn combining_marks_and_selectors_stay_with_their_base() {
        let text = "abce\u{0301}fg"; // é written as e + combining acute
        assert_eq!(check(text, 4), ["abc", "e\u{0301}fg"]);
        let text = "ab\u{2764}\u{FE0F}c"; // heart + emoji presentation selector
        assert_eq!(check(text, 3), ["ab", "\u{2764}\u{FE0F}c"]);
        let text = "ab👍\u{1F3FD}c"; // thumbs up + skin tone
        assert_eq!(check(text, 3), ["ab", "👍\u{1F3FD}c"]);
    }

    #[test]
    fn crlf_is_kept_together() {
        let text = "abc\r\ndefgh";
        assert_eq!(check(text, 4), ["abc", "\r\n", "defg", "h"]);
    }

    #[test]
    fn zero_max_is_treated_as_one() {
        assert_eq!(check("abc", 0), ["a", "b", "c"]);
    }

    #[test]
    fn many_sizes_keep_the_invariants() {
        let samples = [
            "Hello, world! This is a test of the emergency chunking system.\n\nNew paragraph here.",
            "中文文本，没有空格也没有换行，测试硬切分的行为是否正确。",
            "👨‍👩‍👧‍👦 family 🇨🇳🇯🇵 flags é ñ ü 👍🏽 ok\r\n\r\nend",
            "x",
        ];
        for text in samples {
            for max in 0..=chars(text) + 2 {
                check(text, max);
            }
        }
    }

    proptest! {
        #[test]
        fn concatenation_is_the_input(text in "\\PC{0,200}|[a \\n\u{4e00}\u{1F600}\u{200D}\u{0301}\u{1F1E6}]{0,200}", max in 0usize..50) {
            check(&text, max);
        }
    }
}
