//! Markdown-aware chunking and the markdown filter of the official client.
//!
//! # Chunking
//!
//! [`chunk_markdown`] splits an answer into messages of at most
//! `max_chars` characters (2 000 by default: the server has been seen to cut
//! longer texts short without an error, and to refuse much longer ones with
//! `-2`) and never
//! leaves a fenced code block open across a message boundary: a block that
//! does not fit is closed at the end of one message and opened again, with
//! the same fence and info string, at the start of the next, so every
//! message renders its code as code.
//!
//! Where a message ends is chosen in this order: at the last paragraph
//! break or block boundary outside code (a blank line, just before a fence
//! opens, just after one closes) in the second half of the window; else at
//! the last line break; else, for a single line longer than the window,
//! where [`wxlink_client::chunk_text`] would cut it (whitespace, then any
//! character boundary, never inside a character).
//!
//! [`chunk_markdown_spans`] gives the same cuts as [`Span`]s of the input,
//! so a caller can see exactly what was added: the bodies tile the input,
//! and each chunk is `reopen + body + close`.
//!
//! # The filter
//!
//! [`filter_markdown`] rewrites text the way the official client does
//! before it sends every text (its streaming markdown filter; WeChat shows
//! some markdown and not the rest): code (fenced and
//! inline) passes verbatim; `*x*`, `_x_`, `***x***` and `___x___` lose
//! their markers when `x` holds CJK characters and keep them otherwise;
//! `#####` and `######` headings lose the marker; images `![alt](url)` are
//! removed. Everything else (bold, strike, lists, tables, quotes, links,
//! H1–H4) passes through. CJK means U+2E80–U+9FFF, U+AC00–U+D7AF and
//! U+F900–U+FAFF, as there.

use std::ops::Range;

/// The default chunk size in characters.
pub const DEFAULT_CHUNK_CHARS: usize = 2000;

/// One chunk as a piece of the input: the chunk's text is
/// `reopen + &input[body] + close`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Span {
    /// A fence line opening again a code block the previous chunk closed.
    pub reopen: Option<String>,
    /// The byte range of the input this chunk holds.
    pub body: Range<usize>,
    /// A fence line closing a code block the next chunk opens again (or that
    /// the input never closed).
    pub close: Option<String>,
}

impl Span {
    /// The chunk's text.
    pub fn text(&self, input: &str) -> String {
        let mut out = String::new();
        if let Some(reopen) = &self.reopen {
            out.push_str(reopen);
        }
        out.push_str(input.get(self.body.clone()).unwrap_or_default());
        if let Some(close) = &self.close {
            out.push_str(close);
        }
        out
    }
}

/// A fence: its character, its length and the whole opening line.
#[derive(Debug, Clone)]
struct Fence {
    ch: char,
    len: usize,
    /// The opening line without its line break, as it is repeated.
    open: String,
}

/// Whether `line` (without its line break) opens a fence: up to three spaces,
/// then three or more backticks or tildes (a backtick fence's info string
/// holds no backtick).
fn fence_open(line: &str) -> Option<Fence> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    if indent > 3 {
        return None;
    }
    let rest = &line[indent..];
    let ch = rest.chars().next().filter(|c| *c == '`' || *c == '~')?;
    let len = rest.chars().take_while(|c| *c == ch).count();
    if len < 3 {
        return None;
    }
    let info = &rest[len..];
    if ch == '`' && info.contains('`') {
        return None;
    }
    Some(Fence {
        ch,
        len,
        open: line.trim_end_matches(['\r', '\n']).to_owned(),
    })
}

/// Whether `line` closes `fence`: the same character, at least as many, and
/// nothing but whitespace after.
fn fence_closes(line: &str, fence: &Fence) -> bool {
    let trimmed = line.trim_end_matches(['\r', '\n']);
    let indent = trimmed.len() - trimmed.trim_start_matches(' ').len();
    if indent > 3 {
        return false;
    }
    let rest = &trimmed[indent..];
    let len = rest.chars().take_while(|c| *c == fence.ch).count();
    len >= fence.len && rest[len * fence.ch.len_utf8()..].trim().is_empty()
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Splits markdown into chunks of at most `max_chars` characters, keeping
/// code fences intact in every chunk; see the [module docs](self).
///
/// Returns no chunk for empty text. A `max_chars` too small to hold a fence
/// line, its closing line and one character of code splits code blocks
/// without reopening them.
///
/// ```
/// use wxlink_bridge::markdown::chunk_markdown;
///
/// let code: String = (0..40).map(|i| format!("let x{i} = {i};\n")).collect();
/// let answer = format!("Here it is:\n\n```rust\n{code}```\n\nDone.");
/// let chunks = chunk_markdown(&answer, 200);
/// assert!(chunks.len() > 2);
/// for chunk in &chunks {
///     assert!(chunk.chars().count() <= 200);
///     // Every chunk opens and closes its fences.
///     assert_eq!(chunk.matches("```").count() % 2, 0, "{chunk}");
/// }
/// ```
pub fn chunk_markdown(text: &str, max_chars: usize) -> Vec<String> {
    chunk_markdown_spans(text, max_chars)
        .iter()
        .map(|span| span.text(text))
        .collect()
}

/// Where a chunk may end without a split fence.
#[derive(Clone, Copy)]
struct Boundary {
    /// Byte offset in the input.
    at: usize,
    /// Characters of the chunk before it.
    chars: usize,
    /// The line that follows it.
    line: usize,
}

/// The chunks of [`chunk_markdown`] as spans of the input.
pub fn chunk_markdown_spans(text: &str, max_chars: usize) -> Vec<Span> {
    let max = max_chars.max(1);
    // Lines with their line breaks, and their byte offsets.
    let mut lines: Vec<(usize, &str)> = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        lines.push((offset, line));
        offset += line.len();
    }
    let mut spans = Vec::new();
    // Where the next chunk starts: a line, bytes into it, and the fence
    // open there.
    let (mut i, mut part, mut fence): (usize, usize, Option<Fence>) = (0, 0, None);
    while i < lines.len() {
        let chunk_start = lines[i].0 + part;
        let reopen = fence.as_ref().map(|f| format!("{}\n", f.open));
        let mut used = reopen.as_deref().map_or(0, chars);
        let mut state = fence.clone();
        let mut best: Option<Boundary> = None;
        let mut end = chunk_start;
        let (mut j, mut p) = (i, part);
        // Where the chunk ends when a line had to be cut: (line, bytes in).
        let mut cut: Option<(usize, usize)> = None;
        while j < lines.len() {
            let (line_at, full_line) = lines[j];
            let piece = &full_line[p..];
            // The fence state after this piece; only a whole line can open
            // or close a fence.
            let after = match &state {
                None if p == 0 => fence_open(full_line),
                Some(f) if p == 0 && fence_closes(full_line, f) => None,
                other => other.clone(),
            };
            let close_chars = after.as_ref().map_or(0, |f| chars(&close_line(f, piece)));
            let n = chars(piece);
            if used + n + close_chars <= max {
                let closed = state.is_some() && after.is_none();
                used += n;
                end = line_at + full_line.len();
                state = after;
                j += 1;
                p = 0;
                let next_opens = lines.get(j).is_some_and(|(_, l)| fence_open(l).is_some());
                if state.is_none() && (piece.trim().is_empty() || closed || next_opens) {
                    best = Some(Boundary {
                        at: end,
                        chars: used,
                        line: j,
                    });
                }
                continue;
            }
            if end > chunk_start {
                break;
            }
            // Nothing placed yet and this line is longer than the room: cut
            // it, keeping room for a closing fence when inside a block.
            let reserve = state.as_ref().map_or(0, |f| f.len + 2);
            let room = max.saturating_sub(used + reserve).max(1);
            let bytes = cut_len(piece, room);
            end = line_at + p + bytes;
            cut = Some((j, p + bytes));
            break;
        }
        let (body_end, next, next_fence) = match (cut, best) {
            (Some((line, bytes)), _) => (end, (line, bytes), state),
            (None, _) if j >= lines.len() => (end, (j, 0), state),
            (None, Some(b)) if b.chars >= max / 2 && b.at > chunk_start => {
                (b.at, (b.line, 0), None)
            }
            (None, _) => (end, (j, 0), state),
        };
        let close = next_fence
            .as_ref()
            .map(|f| close_line(f, &text[chunk_start..body_end]));
        let mut span = Span {
            reopen,
            body: chunk_start..body_end,
            close,
        };
        // When the fences leave no room at all, the chunk goes without them.
        if chars(&span.text(text)) > max {
            span.reopen = None;
            span.close = None;
        }
        spans.push(span);
        (i, part, fence) = (next.0, next.1, next_fence);
        if i < lines.len() && part >= lines[i].1.len() {
            i += 1;
            part = 0;
        }
    }
    spans
}

/// The line that closes `fence` after `body`: on a line of its own.
fn close_line(fence: &Fence, body: &str) -> String {
    let marker: String = std::iter::repeat_n(fence.ch, fence.len).collect();
    if body.is_empty() || body.ends_with('\n') {
        format!("{marker}\n")
    } else {
        format!("\n{marker}\n")
    }
}

/// How many bytes of `line` go into a piece of at most `room` characters,
/// cut where `chunk_text` would.
fn cut_len(line: &str, room: usize) -> usize {
    wxlink_client::chunk_text(line, room.max(1))
        .first()
        .map_or(line.len(), |first| first.len())
}

/// Whether `c` is a CJK character in the sense of the official filter.
fn is_cjk(c: char) -> bool {
    matches!(c, '\u{2E80}'..='\u{9FFF}' | '\u{AC00}'..='\u{D7AF}' | '\u{F900}'..='\u{FAFF}')
}

/// Rewrites markdown as the official client does before sending; see the
/// [module docs](self).
///
/// ```
/// use wxlink_bridge::markdown::filter_markdown;
///
/// assert_eq!(filter_markdown("*你好* and *hi*"), "你好 and *hi*");
/// assert_eq!(filter_markdown("##### Small\n![logo](x.png)**bold**"), "Small\n**bold**");
/// assert_eq!(filter_markdown("```\n*kept* ![a](b)\n```\n"), "```\n*kept* ![a](b)\n```\n");
/// ```
pub fn filter_markdown(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut fence: Option<Fence> = None;
    for line in text.split_inclusive('\n') {
        match &fence {
            Some(f) => {
                if fence_closes(line, f) {
                    fence = None;
                }
                out.push_str(line);
            }
            None => {
                if let Some(f) = fence_open(line) {
                    fence = Some(f);
                    out.push_str(line);
                    continue;
                }
                let line = strip_small_heading(line);
                filter_inline(line, &mut out);
            }
        }
    }
    out
}

/// Removes a `#####` or `######` marker and one space at the line start.
fn strip_small_heading(line: &str) -> &str {
    for marker in ["###### ", "##### "] {
        if let Some(rest) = line.strip_prefix(marker) {
            return rest;
        }
    }
    line
}

/// Filters one line outside code blocks.
fn filter_inline(line: &str, out: &mut String) {
    let chars: Vec<char> = line.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        // Inline code passes verbatim, up to a closing run of equal length.
        if c == '`' {
            let run = run_len(&chars, i, '`');
            if let Some(close) = find_run(&chars, i + run, '`', run) {
                out.extend(&chars[i..close + run]);
                i = close + run;
            } else {
                out.extend(&chars[i..i + run]);
                i += run;
            }
            continue;
        }
        // Images are removed when complete.
        if c == '!'
            && chars.get(i + 1) == Some(&'[')
            && let Some(end) = image_end(&chars, i)
        {
            i = end;
            continue;
        }
        if c == '*' || c == '_' {
            let run = run_len(&chars, i, c);
            let next = chars.get(i + run).copied();
            if (run == 1 || run == 3)
                && next.is_some_and(|n| !n.is_whitespace())
                && let Some(close) = find_emphasis_close(&chars, i + run, c, run)
            {
                let content = &chars[i + run..close];
                if content.iter().any(|&ch| is_cjk(ch)) {
                    let inner: String = content.iter().collect();
                    filter_inline(&inner, out);
                } else {
                    out.extend(&chars[i..close + run]);
                }
                i = close + run;
                continue;
            }
            out.extend(&chars[i..i + run]);
            i += run;
            continue;
        }
        out.push(c);
        i += 1;
    }
}

fn run_len(chars: &[char], at: usize, c: char) -> usize {
    chars[at..].iter().take_while(|&&x| x == c).count()
}

/// The start of the next run of exactly `len` `c`s at or after `from`.
fn find_run(chars: &[char], from: usize, c: char, len: usize) -> Option<usize> {
    let mut i = from;
    while i < chars.len() {
        if chars[i] == c {
            let run = run_len(chars, i, c);
            if run == len {
                return Some(i);
            }
            i += run;
        } else {
            i += 1;
        }
    }
    None
}

/// The closing run of an emphasis: exactly `len` markers, not after
/// whitespace, on the same line.
fn find_emphasis_close(chars: &[char], from: usize, c: char, len: usize) -> Option<usize> {
    let mut i = from;
    while i < chars.len() {
        if chars[i] == '\n' {
            return None;
        }
        if chars[i] == c {
            let run = run_len(chars, i, c);
            if run == len && i > from && !chars[i - 1].is_whitespace() {
                return Some(i);
            }
            i += run;
        } else {
            i += 1;
        }
    }
    None
}

/// The end (exclusive) of an image `![alt](url)` starting at `at`.
fn image_end(chars: &[char], at: usize) -> Option<usize> {
    let mut i = at + 2;
    while i < chars.len() && chars[i] != ']' {
        if chars[i] == '\n' {
            return None;
        }
        i += 1;
    }
    if chars.get(i + 1) != Some(&'(') {
        return None;
    }
    let mut j = i + 2;
    while j < chars.len() && chars[j] != ')' {
        if chars[j] == '\n' {
            return None;
        }
        j += 1;
    }
    (j < chars.len()).then_some(j + 1)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(chunk_markdown("hello", 2000), ["hello"]);
        assert!(chunk_markdown("", 2000).is_empty());
    }

    #[test]
    fn a_split_fence_is_closed_and_reopened_with_its_info_string() {
        let code: String = (0..30).map(|i| format!("line {i:02}\n")).collect();
        let text = format!("intro\n\n```python\n{code}```\nafter\n");
        let chunks = chunk_markdown(&text, 100);
        assert!(chunks.len() >= 3, "{chunks:#?}");
        for chunk in &chunks[1..chunks.len() - 1] {
            assert!(chunk.starts_with("```python\n"), "{chunk:?}");
            assert!(chunk.ends_with("```\n"), "{chunk:?}");
        }
        for chunk in &chunks {
            assert!(chars(chunk) <= 100);
        }
    }

    #[test]
    fn a_block_that_fits_the_next_chunk_moves_there_whole() {
        let prose = "word ".repeat(30); // 150 characters
        let code = "```\nshort code\n```\n";
        let text = format!("{prose}\n{code}tail");
        let chunks = chunk_markdown(&text, 160);
        assert_eq!(chunks[0], format!("{prose}\n"));
        assert!(chunks[1].starts_with(code), "{:?}", chunks[1]);
    }

    #[test]
    fn an_unclosed_fence_is_closed_at_the_end() {
        let chunks = chunk_markdown("```\ncode", 100);
        assert_eq!(chunks, ["```\ncode\n```\n"]);
    }

    #[test]
    fn the_filter_follows_the_official_rules() {
        assert_eq!(
            filter_markdown("*斜体* _下划线_ ***粗斜*** ___x中___"),
            "斜体 下划线 粗斜 x中"
        );
        assert_eq!(
            filter_markdown("*italic* _under_ ***both***"),
            "*italic* _under_ ***both***"
        );
        assert_eq!(filter_markdown("**粗体** ~~删除~~"), "**粗体** ~~删除~~");
        assert_eq!(filter_markdown("* item\n* 项目\n"), "* item\n* 项目\n");
        assert_eq!(filter_markdown("a * b * c"), "a * b * c");
        assert_eq!(
            filter_markdown("##### H5\n###### H6\n#### H4\n"),
            "H5\nH6\n#### H4\n"
        );
        assert_eq!(
            filter_markdown("x ![img](u) y ![no link]"),
            "x  y ![no link]"
        );
        assert_eq!(filter_markdown("`*代码*` *代码*"), "`*代码*` 代码");
        assert_eq!(
            filter_markdown("| a | b |\n|---|---|\n> quote\n---\n"),
            "| a | b |\n|---|---|\n> quote\n---\n"
        );
        assert_eq!(
            filter_markdown("~~~\n*中* ![a](b)\n~~~\n*中*"),
            "~~~\n*中* ![a](b)\n~~~\n中"
        );
    }
}
