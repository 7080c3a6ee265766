//! Property tests of markdown chunking: every chunk fits, the chunks are
//! exactly the answer plus the fence lines added to close and reopen code
//! blocks, and no chunk leaves a code block open.

use proptest::prelude::*;
use wxlink_bridge::markdown::{chunk_markdown, chunk_markdown_spans};

/// Whether the lines of `chunk` end outside any code block, by the same
/// fence rules a renderer uses.
fn fences_balanced(chunk: &str) -> bool {
    let mut open: Option<(char, usize)> = None;
    for line in chunk.lines() {
        let rest = line.trim_start_matches(' ');
        if line.len() - rest.len() > 3 {
            continue;
        }
        let Some(ch) = rest.chars().next().filter(|c| *c == '`' || *c == '~') else {
            continue;
        };
        let len = rest.chars().take_while(|c| *c == ch).count();
        if len < 3 {
            continue;
        }
        match open {
            None if !(ch == '`' && rest[len..].contains('`')) => open = Some((ch, len)),
            Some((c, l)) if c == ch && len >= l && rest[len..].trim().is_empty() => open = None,
            _ => {}
        }
    }
    open.is_none()
}

fn word() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,12}",
        "[\u{4e00}-\u{4e40}]{1,8}",
        Just("👩‍💻".to_owned()),
        Just("e\u{301}".to_owned()),
        "[a-z]{40,400}",
    ]
}

fn paragraph() -> impl Strategy<Value = String> {
    prop::collection::vec(word(), 1..40).prop_map(|w| w.join(" "))
}

fn code_block() -> impl Strategy<Value = String> {
    (
        prop_oneof![Just("```"), Just("~~~"), Just("````")],
        prop_oneof![Just(""), Just("rust"), Just("python")],
        prop::collection::vec("[ -~]{0,120}", 0..40),
        any::<bool>(),
    )
        .prop_map(|(fence, info, lines, closed)| {
            let mut block = format!("{fence}{info}\n");
            for line in lines {
                // A code line that would close the block is not code.
                if line.trim_start().starts_with(fence) {
                    continue;
                }
                block.push_str(&line);
                block.push('\n');
            }
            if closed {
                block.push_str(fence);
                block.push('\n');
            }
            block
        })
}

fn markdown() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            paragraph().prop_map(|p| p + "\n\n"),
            code_block(),
            paragraph().prop_map(|p| p + "\n")
        ],
        0..12,
    )
    .prop_map(|blocks| {
        // Only the last block may leave its fence open.
        let mut out = String::new();
        let n = blocks.len();
        for (k, b) in blocks.into_iter().enumerate() {
            if k + 1 < n && !fences_balanced(&b) {
                out.push_str(&b);
                out.push_str("```\n~~~\n````\n");
                continue;
            }
            out.push_str(&b);
        }
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn chunks_fit_tile_the_answer_and_keep_fences_intact(text in markdown(), max in 40usize..400) {
        let spans = chunk_markdown_spans(&text, max);
        // The bodies tile the input, in order, and none is empty.
        let mut at = 0;
        for span in &spans {
            prop_assert_eq!(span.body.start, at);
            prop_assert!(span.body.end > span.body.start);
            at = span.body.end;
        }
        prop_assert_eq!(at, text.len());
        let chunks = chunk_markdown(&text, max);
        prop_assert_eq!(chunks.len(), spans.len());
        for (chunk, span) in chunks.iter().zip(&spans) {
            prop_assert!(chunk.chars().count() <= max, "{} > {max}: {chunk:?}", chunk.chars().count());
            prop_assert!(fences_balanced(chunk), "open fence in {chunk:?}");
            // What was added is only fence lines.
            if let Some(reopen) = &span.reopen {
                prop_assert!(reopen.starts_with("```") || reopen.starts_with("~~~"));
            }
            if let Some(close) = &span.close {
                prop_assert!(matches!(close.trim(), "```" | "~~~" | "````"), "{close:?}");
            }
        }
    }

    #[test]
    fn text_without_fences_is_chunked_losslessly(text in paragraph(), max in 10usize..200) {
        let chunks = chunk_markdown(&text, max);
        prop_assert_eq!(chunks.concat(), text.clone());
        for chunk in &chunks {
            prop_assert!(chunk.chars().count() <= max);
        }
    }
}

#[test]
fn a_long_answer_at_the_default_size_keeps_its_code_block_whole_in_every_chunk() {
    let code: String = (0..400)
        .map(|i| format!("    println!(\"line {i}\");\n"))
        .collect();
    let answer = format!(
        "# Answer\n\n{}\n\n```rust\nfn main() {{\n{code}}}\n```\n\nThat is all.\n",
        "Some prose. ".repeat(100)
    );
    let chunks = chunk_markdown(&answer, 2000);
    assert!(chunks.len() >= 6, "{}", chunks.len());
    for chunk in &chunks {
        assert!(chunk.chars().count() <= 2000);
        assert!(fences_balanced(chunk));
    }
    // Chunks inside the block open it again with the language.
    assert!(chunks[2].starts_with("```rust\n"));
    // The prose before the block ends its own chunk rather than sharing one
    // with the start of the code.
    assert!(chunks[0].ends_with("\n\n") || chunks[0].ends_with("\n"));
}
