//! Helpers shared by the report tests: fresh output folders, PNG decoding and a small HTML
//! well-formedness check.

#![allow(dead_code)]

use std::path::{Path, PathBuf};

pub fn fresh_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("codescale-report-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

pub struct Decoded {
    pub width: u32,
    pub height: u32,
    /// RGB, 8 bits per channel.
    pub rgb: Vec<u8>,
}

pub fn decode_png(path: &Path) -> Decoded {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut reader = png::Decoder::new(std::io::BufReader::new(file))
        .read_info()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut buf = vec![0; reader.output_buffer_size()];
    let info = reader.next_frame(&mut buf).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    buf.truncate(info.buffer_size());
    let channels = info.color_type.samples();
    assert_eq!(info.bit_depth, png::BitDepth::Eight, "{}", path.display());
    let rgb = buf
        .chunks(channels)
        .flat_map(|p| if channels >= 3 { [p[0], p[1], p[2]] } else { [p[0], p[0], p[0]] })
        .collect();
    Decoded { width: info.width, height: info.height, rgb }
}

/// Variance of grey levels: a blank (one-colour) image has none.
pub fn grey_variance(img: &Decoded) -> f64 {
    let grey: Vec<f64> = img.rgb.chunks(3).map(|p| (p[0] as f64 + p[1] as f64 + p[2] as f64) / 3.0).collect();
    let mean = grey.iter().sum::<f64>() / grey.len() as f64;
    grey.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / grey.len() as f64
}

/// Fraction of pixels that are neither white nor near-white grey: how much was drawn.
pub fn ink_fraction(img: &Decoded) -> f64 {
    let inked = img.rgb.chunks(3).filter(|p| p.iter().any(|c| *c < 235)).count();
    inked as f64 / (img.rgb.len() / 3) as f64
}

/// Distinct colours (coarsely quantised): a chart has lines, markers and text in several.
pub fn colour_count(img: &Decoded) -> usize {
    let mut seen = std::collections::HashSet::new();
    for p in img.rgb.chunks(3) {
        seen.insert((p[0] / 16, p[1] / 16, p[2] / 16));
    }
    seen.len()
}

const VOID: &[&str] =
    &["area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"];

/// Checks that every non-void element is closed in order, skipping the contents of
/// `<script>`, `<style>` and comments. Returns the tag names seen.
pub fn check_balanced(html: &str) -> Vec<String> {
    let mut stack: Vec<String> = Vec::new();
    let mut seen = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        rest = &rest[start..];
        if rest.starts_with("<!--") {
            let end = rest.find("-->").expect("unterminated comment");
            rest = &rest[end + 3..];
            continue;
        }
        if rest.starts_with("<!") {
            let end = rest.find('>').unwrap();
            rest = &rest[end + 1..];
            continue;
        }
        let end = rest.find('>').expect("unterminated tag");
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        let closing = tag.starts_with('/');
        let name: String = tag
            .trim_start_matches('/')
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect::<String>()
            .to_ascii_lowercase();
        assert!(!name.is_empty(), "odd tag <{tag}>");
        if closing {
            let open = stack.pop().unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(open, name, "</{name}> closes <{open}>");
        } else if !VOID.contains(&name.as_str()) && !tag.ends_with('/') {
            seen.push(name.clone());
            if name == "script" || name == "style" {
                let close = format!("</{name}>");
                let end = rest.find(&close).unwrap_or_else(|| panic!("unclosed <{name}>"));
                rest = &rest[end + close.len()..];
                continue;
            }
            stack.push(name);
        } else {
            seen.push(name);
        }
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    seen
}

/// Every `src=` and `href=` value; none may point off the machine.
pub fn links(html: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in ["src=\"", "href=\""] {
        let mut rest = html;
        while let Some(i) = rest.find(attr) {
            rest = &rest[i + attr.len()..];
            let end = rest.find('"').unwrap();
            out.push(rest[..end].chars().take(120).collect());
            rest = &rest[end..];
        }
    }
    out
}
