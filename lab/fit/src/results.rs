//! From a sweep's results table to fit points: which rows form a group, which column is N, and
//! the hash that ties a fit to the results it came from. The CLI, the report and library users
//! all go through here, so a group is named the same everywhere.

use codescale_core::{Arch, ResultRow};

use crate::Point;

/// The group a trial is fitted in: its language for dense models, `language/arch` otherwise,
/// so that dense and mixture-of-experts models (which follow different laws) never share a fit.
pub fn group_of(language: &str, arch: Arch) -> String {
    match arch {
        Arch::Dense => language.to_string(),
        Arch::Moe => format!("{language}/{}", arch.as_str()),
    }
}

/// The language part of a group name (`python/moe` → `python`).
pub fn language_of(group: &str) -> &str {
    group.split('/').next().unwrap_or(group)
}

/// Columns a sweep's N can come from.
pub const N_COLUMNS: [&str; 4] = ["n_params", "n_params_active", "n_params_total", "n_params_with_head"];

/// One fit point per results row, N from `n_col` (one of [`N_COLUMNS`]; anything else reads
/// `n_params`).
pub fn points_from_rows(rows: &[ResultRow], n_col: &str) -> Vec<Point> {
    rows.iter()
        .map(|r| Point {
            id: r.trial_id.clone(),
            group: group_of(&r.language, r.arch),
            status: r.status,
            n: match n_col {
                "n_params_active" => r.n_params_active,
                "n_params_total" => r.n_params_total,
                "n_params_with_head" => r.n_params_with_head,
                _ => r.n_params,
            },
            d: r.tokens,
            loss: r.val_loss.unwrap_or(f64::NAN),
            flops: Some(r.flops),
            lr: Some(r.lr),
            batch_tokens: Some((r.batch_size * r.seq_len) as f64),
            warmup_steps: Some(r.warmup_steps as f64),
            config: (!r.config_id.is_empty()).then(|| r.config_id.clone()),
            trunk: (!r.trunk.is_empty()).then(|| r.trunk.clone()),
            loss_se: r.val_loss_se,
            target: r.target,
            intermediate: false,
        })
        .collect()
}

/// blake3 of everything the fit reads from `points`, in order. Two fits with the same hash
/// (and options) are the same fit.
pub fn input_hash(points: &[Point]) -> String {
    let mut h = blake3::Hasher::new();
    let num = |h: &mut blake3::Hasher, x: Option<f64>| {
        h.update(&x.map_or(u64::MAX, f64::to_bits).to_le_bytes());
    };
    for p in points {
        for s in [
            p.id.as_str(),
            &p.group,
            p.status.as_str(),
            p.config.as_deref().unwrap_or(""),
            p.trunk.as_deref().unwrap_or(""),
            if p.target { "target" } else { "" },
        ] {
            h.update(&(s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
        for x in [Some(p.n), Some(p.d), Some(p.loss), p.flops, p.lr, p.batch_tokens, p.warmup_steps, p.loss_se] {
            num(&mut h, x);
        }
    }
    h.finalize().to_hex().to_string()
}

/// Compute budgets to plan for: every decade from the smallest trial's compute to a hundred
/// times the largest's, so the allocation speaks to the scale the sweep measured.
pub fn budgets_around(flops: impl Iterator<Item = f64>) -> Vec<f64> {
    let (lo, hi) =
        flops.filter(|f| f.is_finite() && *f > 0.0).fold((f64::INFINITY, 0f64), |(lo, hi), f| (lo.min(f), hi.max(f)));
    if hi <= 0.0 {
        return Vec::new();
    }
    (lo.log10().floor() as i32..=hi.log10().ceil() as i32 + 2).map(|e| 10f64.powi(e)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use codescale_core::Status;

    #[test]
    fn groups_are_named_by_one_rule() {
        assert_eq!(group_of("python", Arch::Dense), "python");
        assert_eq!(group_of("python", Arch::Moe), "python/moe");
        assert_eq!(language_of("python/moe"), "python");
    }

    #[test]
    fn the_hash_follows_the_data() {
        let p = Point {
            id: "a".into(),
            group: "go".into(),
            status: Status::Done,
            n: 1e5,
            d: 1e6,
            loss: 2.0,
            ..Default::default()
        };
        let mut q = p.clone();
        assert_eq!(input_hash(std::slice::from_ref(&p)), input_hash(std::slice::from_ref(&q)));
        q.loss = 2.0 + 1e-12;
        assert_ne!(input_hash(std::slice::from_ref(&p)), input_hash(std::slice::from_ref(&q)));
        assert_ne!(input_hash(std::slice::from_ref(&p)), input_hash(&[p.clone(), p]));
    }
}
