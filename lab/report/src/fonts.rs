//! plotters is built without fontconfig/freetype (see ../shared/DEPENDENCIES.md), so text only
//! renders once a font is registered with its `ab_glyph` backend. Registration is global and
//! the bytes must live for the whole process, so it happens once and the outcome is cached.

use std::sync::OnceLock;

use anyhow::Result;
use plotters::style::{register_font, FontStyle};

pub const FONT_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const BOLD_PATH: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf";

/// The family name every chart asks for.
pub const FAMILY: &str = "sans-serif";

/// Why the report's font could not be registered (what to install).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct FontMissing(String);

static REGISTERED: OnceLock<Result<(), FontMissing>> = OnceLock::new();

/// Registers DejaVu Sans under [`FAMILY`]; later calls return the first call's outcome.
pub fn ensure() -> Result<()> {
    Ok(REGISTERED.get_or_init(register).clone()?)
}

fn register() -> Result<(), FontMissing> {
    let bytes = std::fs::read(FONT_PATH).map_err(|e| {
        FontMissing(format!(
            "cannot read the report font {FONT_PATH} ({e}); install the Debian package \
             `fonts-dejavu-core` (apt-get install fonts-dejavu-core)"
        ))
    })?;
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    register_font(FAMILY, FontStyle::Normal, bytes)
        .map_err(|_| FontMissing(format!("{FONT_PATH} is not a valid TrueType font; reinstall `fonts-dejavu-core`")))?;
    // Bold ships in the same package; without it plotters falls back to the regular face.
    if let Ok(bold) = std::fs::read(BOLD_PATH) {
        let bold: &'static [u8] = Box::leak(bold.into_boxed_slice());
        let _ = register_font(FAMILY, FontStyle::Bold, bold);
    }
    Ok(())
}
