//! Model shapes: names like `d128-l4`, and the aspect-ratio ladder that turns a target
//! parameter count into a shape.
//!
//! The ladder keeps `d_model = 32 · n_layers` (width grows with depth, as in the small end of
//! Kaplan et al.'s sweeps), heads of size 32 and a SwiGLU hidden size of ⌈8/3 · d_model⌉ rounded
//! up to a multiple of 16, so a non-embedding layer holds about 12·d² parameters.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub d_model: usize,
    pub n_layers: usize,
    pub n_heads: usize,
    pub d_ff: usize,
}

pub const HEAD_DIM: usize = 32;

impl Shape {
    /// The ladder's defaults for heads and MLP width at this width and depth.
    pub fn new(d_model: usize, n_layers: usize) -> Shape {
        let n_heads = if d_model.is_multiple_of(HEAD_DIM) { (d_model / HEAD_DIM).max(1) } else { 1 };
        let d_ff = (8 * d_model).div_ceil(3).div_ceil(16) * 16;
        Shape { d_model, n_layers, n_heads, d_ff }
    }
}

pub fn name(d_model: usize, n_layers: usize) -> String {
    format!("d{d_model}-l{n_layers}")
}

/// A shape name that is not `d<width>-l<depth>`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{0}` is not a shape name like `d128-l4`")]
pub struct NotAShape(pub String);

/// Parses `d<width>-l<depth>`.
pub fn parse_name(name: &str) -> Result<Shape, NotAShape> {
    let err = || NotAShape(name.to_string());
    let (d, l) = name.split_once('-').ok_or_else(err)?;
    let d: usize = d.strip_prefix('d').and_then(|s| s.parse().ok()).ok_or_else(err)?;
    let l: usize = l.strip_prefix('l').and_then(|s| s.parse().ok()).ok_or_else(err)?;
    if d == 0 || l == 0 {
        return Err(err());
    }
    Ok(Shape::new(d, l))
}

/// Non-embedding parameters of a dense shape: attention 4d², SwiGLU 3·d·d_ff, two norms per
/// layer and the final norm.
pub fn non_embedding_params(s: &Shape) -> f64 {
    let d = s.d_model as f64;
    s.n_layers as f64 * (4.0 * d * d + 3.0 * d * s.d_ff as f64 + 2.0 * d) + d
}

/// The ladder shape whose non-embedding parameter count is closest (in log) to `target`.
pub fn from_param_count(target: f64) -> Shape {
    (1..=48)
        .map(|l| Shape::new(HEAD_DIM * l, l))
        .min_by(|a, b| {
            let da = (non_embedding_params(a) / target).ln().abs();
            let db = (non_embedding_params(b) / target).ln().abs();
            da.total_cmp(&db)
        })
        .expect("ladder is not empty")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        let s = parse_name("d128-l4").unwrap();
        assert_eq!((s.d_model, s.n_layers, s.n_heads, s.d_ff), (128, 4, 4, 352));
        assert_eq!(name(128, 4), "d128-l4");
        assert!(parse_name("128-4").is_err());
        assert!(parse_name("d0-l2").is_err());
    }

    #[test]
    fn ladder_picks_nearest_rung() {
        let s = from_param_count(800e3);
        assert_eq!((s.d_model, s.n_layers), (128, 4));
        let n = non_embedding_params(&s);
        assert!((n / 800e3 - 1.0).abs() < 0.1, "{n}");
    }
}
