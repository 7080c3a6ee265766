//! Drawing a QR code in the terminal with Unicode half blocks.
//!
//! One character cell shows two rows of modules: the upper one in the top
//! half of the cell and the lower one in the bottom half. Light modules are
//! drawn with the block characters and dark modules are left blank, the
//! same convention as `qrencode -t UTF8`: on the usual light-on-dark
//! terminal the code then appears dark-on-light, which is what phone
//! scanners expect. A quiet zone of light modules surrounds the symbol.

use qrcode::{Color, QrCode};

/// Light modules around the symbol on every side.
const QUIET_ZONE: usize = 2;

/// Renders `data` as a QR code made of half-block characters, one string
/// with a trailing newline per terminal line.
pub fn render(data: &str) -> Result<String, qrcode::types::QrError> {
    let code = QrCode::new(data.as_bytes())?;
    Ok(render_code(&code))
}

/// Renders an already encoded symbol (see [`render`]).
fn render_code(code: &QrCode) -> String {
    let width = code.width();
    let colors = code.to_colors();
    let size = width + 2 * QUIET_ZONE;
    // Whether the module at (x, y) of the padded grid is light.
    let light = |x: usize, y: usize| -> bool {
        if x < QUIET_ZONE || y < QUIET_ZONE || x >= width + QUIET_ZONE || y >= width + QUIET_ZONE {
            return true;
        }
        colors[(y - QUIET_ZONE) * width + (x - QUIET_ZONE)] == Color::Light
    };
    let mut out = String::with_capacity((size + 1) * size.div_ceil(2) * 3);
    let mut y = 0;
    while y < size {
        for x in 0..size {
            let top = light(x, y);
            // A missing bottom row (odd size) counts as dark: it is outside
            // the quiet zone and must not look like an extra light row.
            let bottom = y + 1 < size && light(x, y + 1);
            out.push(match (top, bottom) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push('\n');
        y += 2;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads the module grid back from a rendering: `true` for light.
    fn parse(rendered: &str) -> Vec<Vec<bool>> {
        let mut rows = Vec::new();
        for line in rendered.lines() {
            let (mut top, mut bottom) = (Vec::new(), Vec::new());
            for c in line.chars() {
                let (t, b) = match c {
                    '█' => (true, true),
                    '▀' => (true, false),
                    '▄' => (false, true),
                    ' ' => (false, false),
                    other => panic!("unexpected character {other:?}"),
                };
                top.push(t);
                bottom.push(b);
            }
            rows.push(top);
            rows.push(bottom);
        }
        rows
    }

    #[test]
    fn rendering_reproduces_every_module_of_the_symbol() {
        let url = "http://127.0.0.1:4321/qr/3f9a0c?bot_type=3";
        let code = QrCode::new(url.as_bytes()).unwrap();
        let grid = parse(&render(url).unwrap());
        let w = code.width();
        let colors = code.to_colors();
        for y in 0..w {
            for x in 0..w {
                let light = colors[y * w + x] == Color::Light;
                assert_eq!(
                    grid[y + QUIET_ZONE][x + QUIET_ZONE],
                    light,
                    "module ({x},{y})"
                );
            }
        }
        // The quiet zone is light on all four sides.
        let last = w + 2 * QUIET_ZONE - 1;
        assert!(grid[0].iter().all(|&m| m) && grid[last].iter().all(|&m| m));
        assert!(grid.iter().take(last + 1).all(|row| row[0] && row[last]));
    }

    #[test]
    fn lines_are_square_in_modules() {
        let out = render("https://liteapp.weixin.qq.com/q/x?qrcode=abc&bot_type=3").unwrap();
        let width = out.lines().next().unwrap().chars().count();
        assert!(out.lines().all(|l| l.chars().count() == width));
        assert_eq!(out.lines().count(), width.div_ceil(2));
    }
}
