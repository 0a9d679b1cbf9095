//! One axis type for every chart: linear or logarithmic, with tick positions and labels we
//! choose ourselves. plotters' own log axis prints no labels on ranges narrower than a decade
//! (the usual case for loss), and clamps out-of-range points to the border, so ticks, ranges
//! and clipping all live here.

use std::ops::Range;
use std::sync::Arc;

use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};

pub type Fmt = Arc<dyn Fn(f64) -> String + Send + Sync>;

#[derive(Clone)]
pub struct Scale {
    pub lo: f64,
    pub hi: f64,
    pub log: bool,
    ticks: Vec<f64>,
    minor: Vec<f64>,
    fmt: Fmt,
}

impl Scale {
    pub fn log(lo: f64, hi: f64, fmt: fn(f64) -> String) -> Scale {
        let (ticks, minor) = log_ticks(lo, hi);
        Scale { lo, hi, log: true, ticks, minor, fmt: Arc::new(fmt) }
    }

    pub fn linear(lo: f64, hi: f64, fmt: fn(f64) -> String) -> Scale {
        Scale { lo, hi, log: false, ticks: nice_ticks(lo, hi, 6), minor: Vec::new(), fmt: Arc::new(fmt) }
    }

    /// Integer positions 0..n labelled with `labels`, for heatmap rows and columns.
    pub fn categorical(labels: Vec<String>) -> Scale {
        let n = labels.len();
        let fmt: Fmt = Arc::new(move |v| {
            let i = v.round();
            if i >= 0.0 && (i as usize) < labels.len() {
                labels[i as usize].clone()
            } else {
                String::new()
            }
        });
        Scale {
            lo: -0.5,
            hi: n as f64 - 0.5,
            log: false,
            ticks: (0..n).map(|i| i as f64).collect(),
            minor: Vec::new(),
            fmt,
        }
    }

    fn t(&self, v: f64) -> f64 {
        if self.log {
            v.ln()
        } else {
            v
        }
    }

    fn inv(&self, t: f64) -> f64 {
        if self.log {
            t.exp()
        } else {
            t
        }
    }

    pub fn contains(&self, v: f64) -> bool {
        let (a, b) = (self.t(self.lo), self.t(self.hi));
        let t = self.t(v);
        let eps = (b - a).abs() * 1e-9;
        t.is_finite() && t >= a - eps && t <= b + eps
    }
}

impl Ranged for Scale {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let (a, b) = (self.t(self.lo), self.t(self.hi));
        let f = (self.t(*value) - a) / (b - a);
        let px = limit.0 as f64 + f * (limit.1 - limit.0) as f64;
        if px.is_finite() {
            px.round().clamp(-1e6, 1e6) as i32
        } else {
            limit.0
        }
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        if hint.weight().allow_light_points() {
            self.minor.clone()
        } else {
            self.ticks.clone()
        }
    }

    fn range(&self) -> Range<f64> {
        self.lo..self.hi
    }
}

impl ValueFormatter<f64> for Scale {
    fn format_ext(&self, value: &f64) -> String {
        (self.fmt)(*value)
    }
}

/// Major and minor ticks for a log axis. Wide ranges get decades (thinned to at most seven);
/// one or two decades get 1-2-5; narrower ranges get evenly spaced round numbers, which on a
/// log axis is what a reader expects for loss values like 1.5 … 3.
pub fn log_ticks(lo: f64, hi: f64) -> (Vec<f64>, Vec<f64>) {
    // An infinite end (a degenerate fit's overflowing term) would make the decade loops run
    // over the whole i32 range.
    if !(lo > 0.0 && hi > lo && hi.is_finite()) {
        return (Vec::new(), Vec::new());
    }
    let inside = |v: f64| v >= lo * (1.0 - 1e-9) && v <= hi * (1.0 + 1e-9);
    let k0 = lo.log10().floor() as i32;
    let k1 = hi.log10().ceil() as i32;
    let powers: Vec<f64> = (k0..=k1).map(|k| 10f64.powi(k)).filter(|&v| inside(v)).collect();
    if powers.len() >= 3 {
        let step = powers.len().div_ceil(7);
        let major: Vec<f64> = powers.iter().copied().step_by(step).collect();
        let mut minor: Vec<f64> = powers.iter().copied().filter(|p| !major.contains(p)).collect();
        if step == 1 && powers.len() <= 6 {
            for k in k0..=k1 {
                for m in 2..10 {
                    let v = m as f64 * 10f64.powi(k);
                    if inside(v) {
                        minor.push(v);
                    }
                }
            }
        }
        return (major, minor);
    }
    let mut major = Vec::new();
    for k in k0..=k1 {
        for m in [1.0, 2.0, 5.0] {
            let v = m * 10f64.powi(k);
            if inside(v) {
                major.push(v);
            }
        }
    }
    if major.len() >= 3 {
        let mut minor = Vec::new();
        for k in k0..=k1 {
            for m in [3.0, 4.0, 6.0, 7.0, 8.0, 9.0] {
                let v = m * 10f64.powi(k);
                if inside(v) {
                    minor.push(v);
                }
            }
        }
        return (major, minor);
    }
    (nice_ticks(lo, hi, 8), Vec::new())
}

/// Round-number ticks (steps of 1, 2, 2.5 or 5 × 10^k), at most `max_n` of them.
pub fn nice_ticks(lo: f64, hi: f64, max_n: usize) -> Vec<f64> {
    let span = hi - lo;
    if span.is_nan() || span <= 0.0 || !span.is_finite() {
        return Vec::new();
    }
    let k = span.log10().floor() as i32;
    for e in (k - 2)..=(k + 1) {
        for m in [1.0, 2.0, 2.5, 5.0] {
            let step = m * 10f64.powi(e);
            let first = (lo / step - 1e-9).ceil() as i64;
            let last = (hi / step + 1e-9).floor() as i64;
            let count = last - first + 1;
            if count >= 2 && count as usize <= max_n {
                return (first..=last).map(|i| i as f64 * step).collect();
            }
        }
    }
    vec![lo, hi]
}

/// Smallest and largest positive finite value.
pub fn log_extent(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    extent(values.into_iter().filter(|v| *v > 0.0))
}

pub fn extent(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    let mut out: Option<(f64, f64)> = None;
    for v in values.into_iter().filter(|v| v.is_finite()) {
        out = Some(match out {
            None => (v, v),
            Some((a, b)) => (a.min(v), b.max(v)),
        });
    }
    out
}

/// Widens a log range by `frac` of its span (in log space) on each side; a single value gets
/// a quarter decade either way so it still sits inside a readable axis.
pub fn pad_log((lo, hi): (f64, f64), frac: f64) -> (f64, f64) {
    let (a, b) = (lo.log10(), hi.log10());
    let pad = ((b - a) * frac).max(0.03);
    if b - a < 1e-9 {
        return (10f64.powf(a - 0.25), 10f64.powf(b + 0.25));
    }
    (10f64.powf(a - pad), 10f64.powf(b + pad))
}

pub fn pad_lin((lo, hi): (f64, f64), frac: f64) -> (f64, f64) {
    let span = hi - lo;
    if span <= 1e-12 * lo.abs().max(1.0) {
        let d = lo.abs().max(1.0) * 0.05;
        return (lo - d, hi + d);
    }
    (lo - span * frac, hi + span * frac)
}

/// Splits a polyline into the pieces that lie inside the chart, cutting segments exactly at
/// the border (in the axes' own log or linear space) instead of letting plotters clamp them.
pub fn clip_polyline(x: &Scale, y: &Scale, pts: &[(f64, f64)]) -> Vec<Vec<(f64, f64)>> {
    let (x0, x1) = (x.t(x.lo), x.t(x.hi));
    let (y0, y1) = (y.t(y.lo), y.t(y.hi));
    let mut out: Vec<Vec<(f64, f64)>> = Vec::new();
    let mut cur: Vec<(f64, f64)> = Vec::new();
    let mut prev: Option<(f64, f64)> = None;
    for &(px, py) in pts {
        let p = (x.t(px), y.t(py));
        if !(p.0.is_finite() && p.1.is_finite()) {
            if cur.len() >= 2 {
                out.push(std::mem::take(&mut cur));
            }
            cur.clear();
            prev = None;
            continue;
        }
        if let Some(q) = prev {
            match clip_segment(q, p, (x0, x1), (y0, y1)) {
                Some((a, b)) => {
                    let a = (x.inv(a.0), y.inv(a.1));
                    let b = (x.inv(b.0), y.inv(b.1));
                    if cur.last().is_none_or(|l| !close(*l, a)) {
                        if cur.len() >= 2 {
                            out.push(std::mem::take(&mut cur));
                        }
                        cur.clear();
                        cur.push(a);
                    }
                    cur.push(b);
                }
                None => {
                    if cur.len() >= 2 {
                        out.push(std::mem::take(&mut cur));
                    }
                    cur.clear();
                }
            }
        }
        prev = Some(p);
    }
    if cur.len() >= 2 {
        out.push(cur);
    }
    out
}

fn close(a: (f64, f64), b: (f64, f64)) -> bool {
    let tol = |u: f64, v: f64| (u - v).abs() <= 1e-9 * u.abs().max(v.abs()).max(1e-300);
    tol(a.0, b.0) && tol(a.1, b.1)
}

/// Liang–Barsky.
fn clip_segment(p: (f64, f64), q: (f64, f64), xr: (f64, f64), yr: (f64, f64)) -> Option<((f64, f64), (f64, f64))> {
    let (dx, dy) = (q.0 - p.0, q.1 - p.1);
    let mut t0: f64 = 0.0;
    let mut t1: f64 = 1.0;
    for (d, lo_gap, hi_gap) in [(dx, p.0 - xr.0, xr.1 - p.0), (dy, p.1 - yr.0, yr.1 - p.1)] {
        for (pk, qk) in [(-d, lo_gap), (d, hi_gap)] {
            if pk == 0.0 {
                if qk < 0.0 {
                    return None;
                }
            } else {
                let r = qk / pk;
                if pk < 0.0 {
                    t0 = t0.max(r);
                } else {
                    t1 = t1.min(r);
                }
            }
        }
    }
    if t0 > t1 {
        return None;
    }
    Some(((p.0 + t0 * dx, p.1 + t0 * dy), (p.0 + t1 * dx, p.1 + t1 * dy)))
}

const SUPERSCRIPT: [char; 10] = ['⁰', '¹', '²', '³', '⁴', '⁵', '⁶', '⁷', '⁸', '⁹'];

fn superscript(e: i32) -> String {
    let mut s = String::new();
    if e < 0 {
        s.push('⁻');
    }
    for c in e.unsigned_abs().to_string().chars() {
        s.push(SUPERSCRIPT[c.to_digit(10).unwrap_or(0) as usize]);
    }
    s
}

/// Up to three significant digits, trailing zeros dropped: 1.5, 2, 0.0123, 3e-4.
pub fn fmt_num(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    if v == 0.0 {
        return "0".into();
    }
    let a = v.abs();
    if !(1e-3..1e6).contains(&a) {
        let e = a.log10().floor() as i32;
        let m = v / 10f64.powi(e);
        let m = trim(format!("{m:.2}"));
        return format!("{m}e{e}");
    }
    let digits = (2 - a.log10().floor() as i32).max(0) as usize;
    trim(format!("{v:.digits$}"))
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Parameter and token counts: 950k, 1.2M, 35B.
pub fn fmt_si(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    for (scale, suffix) in [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")] {
        if a >= scale * 0.9995 {
            return format!("{}{suffix}", fmt_num(v / scale));
        }
    }
    fmt_num(v)
}

/// Compute budgets: 10¹⁸, 3×10¹⁸.
pub fn fmt_pow10(v: f64) -> String {
    if !(v.is_finite() && v > 0.0) {
        return fmt_num(v);
    }
    let e = v.log10().floor() as i32;
    let m = v / 10f64.powi(e);
    let (m, e) = if m >= 9.995 { (1.0, e + 1) } else { (m, e) };
    if (m - 1.0).abs() < 5e-3 {
        format!("10{}", superscript(e))
    } else {
        format!("{}×10{}", trim(format!("{m:.1}")), superscript(e))
    }
}

/// Plain numbers for everyday magnitudes, `m×10ᵉ` for very large or small ones (N_c, D_c).
pub fn fmt_big(v: f64) -> String {
    let a = v.abs();
    if v.is_finite() && a != 0.0 && !(1e-3..1e4).contains(&a) {
        let e = a.log10().floor() as i32;
        let m = v / 10f64.powi(e);
        return format!("{}×10{}", trim(format!("{m:.2}")), superscript(e));
    }
    fmt_num(v)
}

/// Counts that are usually exact integers (batch sizes in tokens): 8192 rather than 8.19k.
pub fn fmt_count(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e5 {
        format!("{}", v as i64)
    } else {
        fmt_si(v)
    }
}

pub fn fmt_pct(v: f64) -> String {
    format!("{}%", fmt_num(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn infinite_or_huge_ranges_return_at_once() {
        assert_eq!(log_ticks(1.0, f64::INFINITY), (Vec::new(), Vec::new()));
        let (major, _) = log_ticks(1e-300, f64::MAX);
        assert!(!major.is_empty() && major.len() <= 8, "{major:?}");
    }

    #[test]
    fn narrow_log_range_gets_labelled_ticks() {
        let (major, _) = log_ticks(1.4, 3.9);
        assert!(major.len() >= 3, "{major:?}");
        assert!(major.iter().all(|v| (1.4..=3.9).contains(v)));
    }

    #[test]
    fn wide_log_range_gets_thinned_decades() {
        let (major, _) = log_ticks(1e10, 1e24);
        assert!(major.len() <= 8 && major.len() >= 4, "{major:?}");
        let (major, minor) = log_ticks(3e5, 2e7);
        assert!(major.contains(&1e6) && major.contains(&1e7) && major.len() >= 3, "{major:?}");
        assert!(!minor.is_empty());
    }

    #[test]
    fn clipping_cuts_at_the_border() {
        let x = Scale::linear(0.0, 10.0, fmt_num);
        let y = Scale::log(1.0, 100.0, fmt_num);
        let parts = clip_polyline(&x, &y, &[(0.0, 10.0), (5.0, 1000.0), (10.0, 10.0)]);
        assert_eq!(parts.len(), 2);
        assert!((parts[0].last().unwrap().1 - 100.0).abs() < 1e-6);
        assert!((parts[1][0].1 - 100.0).abs() < 1e-6);
    }

    #[test]
    fn formats() {
        assert_eq!(fmt_si(1.2e6), "1.2M");
        assert_eq!(fmt_si(350e9), "350B");
        assert_eq!(fmt_num(2.5), "2.5");
        assert_eq!(fmt_num(3e-4), "3e-4");
        assert_eq!(fmt_pow10(1e18), "10¹⁸");
        assert_eq!(fmt_pow10(3e18), "3×10¹⁸");
        assert_eq!(fmt_big(8.8e13), "8.8×10¹³");
    }
}
