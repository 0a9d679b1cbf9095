//! From a sweep's results table to fit points: which rows form a group, which column is N, and
//! the hash that ties a fit to the results it came from. The CLI, the report and library users
//! all go through here, so a group is named the same everywhere.

use codescale_core::{Arch, ResultRow, DEFAULT_FIM_SPM_RATE};

use crate::Point;

/// The group a trial is fitted in: its language, then `/moe` for mixture-of-experts models and
/// `/fim<rate>` for fill-in-the-middle training (`-spm<rate>` when SPM's share is not the
/// default), so that models trained differently (which follow different laws) never share a
/// fit: `python`, `python/moe`, `python/fim0.5`, `python/moe/fim0.9-spm0`.
pub fn group_of(row: &ResultRow) -> String {
    let mut group = arch_group(&row.language, row.arch);
    if row.fim_rate > 0.0 {
        group = format!("{group}/fim{}", row.fim_rate);
        if row.fim_spm_rate != DEFAULT_FIM_SPM_RATE {
            group = format!("{group}-spm{}", row.fim_spm_rate);
        }
    }
    group
}

/// The group of a language and architecture, before the training recipe is named: `python`,
/// `python/moe` (what compares runs of one architecture across FIM rates).
pub fn arch_group(language: &str, arch: Arch) -> String {
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

/// Columns of a sweep's results a law can be fitted to: the causal validation loss, or the
/// infilling loss of fill-in-the-middle trials.
pub const LOSS_COLUMNS: [&str; 2] = ["val_loss", "val_fim_loss"];

/// One fit point per results row, N from `n_col` (one of [`N_COLUMNS`]; anything else reads
/// `n_params`) and the loss from `loss_col` (one of [`LOSS_COLUMNS`]; anything else reads
/// `val_loss`). The infilling loss leaves out the rows of trials without FIM, which have none.
/// Fine-tuning trials (`init_from`, `sft`) are left out: their loss is not a function of the
/// parameters and tokens of a run from scratch, which is what a law relates.
pub fn points_from_rows(rows: &[ResultRow], n_col: &str, loss_col: &str) -> Vec<Point> {
    let infilling = loss_col == "val_fim_loss";
    rows.iter()
        .filter(|r| r.init_from.is_empty() && r.sft.is_empty())
        .filter(|r| !infilling || r.fim_rate > 0.0)
        .map(|r| Point {
            id: r.trial_id.clone(),
            group: group_of(r),
            status: r.status,
            n: match n_col {
                "n_params_active" => r.n_params_active,
                "n_params_total" => r.n_params_total,
                "n_params_with_head" => r.n_params_with_head,
                _ => r.n_params,
            },
            d: r.tokens,
            loss: if infilling { r.val_fim_loss } else { r.val_loss }.unwrap_or(f64::NAN),
            flops: Some(r.flops),
            lr: Some(r.lr),
            batch_tokens: Some((r.batch_size * r.seq_len) as f64),
            warmup_steps: Some(r.warmup_steps as f64),
            config: (!r.config_id.is_empty()).then(|| r.config_id.clone()),
            trunk: (!r.trunk.is_empty()).then(|| r.trunk.clone()),
            loss_se: if infilling { r.val_fim_loss_se } else { r.val_loss_se },
            task: r.task_exact_match,
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
        for x in [Some(p.n), Some(p.d), Some(p.loss), p.flops, p.lr, p.batch_tokens, p.warmup_steps, p.loss_se, p.task]
        {
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
        let row = |arch, fim_rate, fim_spm_rate| {
            let mut spec = codescale_core::TrialSpec::default();
            spec.set("language", "\"python\"").unwrap();
            spec.set("model", "\"d16-l2\"").unwrap();
            let config = spec.resolve().unwrap();
            let mut r = ResultRow::from_record("s", &codescale_core::TrialRecord::pending(config));
            (r.arch, r.fim_rate, r.fim_spm_rate) = (arch, fim_rate, fim_spm_rate);
            group_of(&r)
        };
        assert_eq!(row(Arch::Dense, 0.0, 0.0), "python");
        assert_eq!(row(Arch::Moe, 0.0, 0.0), "python/moe");
        assert_eq!(row(Arch::Dense, 0.5, 0.5), "python/fim0.5");
        assert_eq!(row(Arch::Moe, 0.9, 0.0), "python/moe/fim0.9-spm0");
        assert_eq!(language_of("python/moe/fim0.9"), "python");
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
