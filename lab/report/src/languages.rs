//! Languages compared: their loss at the largest (N, D) every language trained, and their fitted
//! irreducible loss L_inf, each ranked, with the pairs this sweep can tell apart and those it
//! cannot, beside the order the seed paper reports (lowest loss first: C# < Java ≈ Rust < Go <
//! TypeScript < JavaScript < Python).
//!
//! Losses are nats per token; with the byte tokenizer that is per byte, so languages compare on
//! the same footing (BPE trials are left out: a token of one language is not one of another).
//! Only dense trials without FIM that are not held-out targets are compared.

use std::collections::BTreeMap;

use codescale_core::{Arch, ResultRow};
use serde::Serialize;

use crate::axes::fmt_si;
use crate::data::{is_done, Seeds};

/// The seed paper's order, lowest loss first; languages on one rung are reported as tied.
pub const SEED_ORDER: [&[&str]; 6] =
    [&["csharp"], &["java", "rust"], &["go"], &["typescript"], &["javascript"], &["python"]];

#[derive(Serialize)]
pub struct Ranked {
    pub rank: usize,
    pub language: String,
    pub value: String,
    pub interval: String,
    /// The seed paper's rung for this language (1 = lowest loss), if it ranks it.
    pub seed_rank: Option<usize>,
}

#[derive(Serialize, Default)]
pub struct Comparison {
    /// The (N, D) the losses are compared at.
    pub at: String,
    pub by_loss: Vec<Ranked>,
    pub loss_pairs: Pairs,
    pub by_l_inf: Vec<Ranked>,
    pub l_inf_pairs: Pairs,
    /// How our loss order agrees with the seed paper's, over pairs both rank.
    pub seed_agreement: String,
    /// What the losses' intervals measure: the seeds' spread, or with one seed the evaluation's
    /// standard error alone (which leaves seed noise out, so it separates too readily).
    pub noise: String,
}

/// Which pairs are separated (their difference beyond twice its standard error, or for L_inf
/// their 95 % intervals apart) and which are not.
#[derive(Serialize, Default)]
pub struct Pairs {
    pub separated: Vec<String>,
    pub not_separated: Vec<String>,
}

/// One language's number with its standard error (loss) or interval (L_inf).
struct Measure {
    language: String,
    value: f64,
    lo: f64,
    hi: f64,
}

/// `None` with fewer than two languages to compare.
pub fn compare(results: &[ResultRow], fit: Option<&codescale_fit::FitFile>) -> Option<Comparison> {
    let plain = |r: &&ResultRow| {
        is_done(r) && !r.target && r.arch == Arch::Dense && r.fim_rate == 0.0 && r.tokenizer == "bytes"
    };
    // (N, D) → language → its seeds.
    let mut cells: BTreeMap<(u64, u64), BTreeMap<String, Seeds>> = BTreeMap::new();
    for r in results.iter().filter(plain) {
        let e = cells.entry((r.n_params.to_bits(), r.tokens.round().to_bits())).or_default();
        let seeds = e.entry(r.language.clone()).or_default();
        seeds.losses.push(r.val_loss.expect("done"));
        seeds.ses.push(r.val_loss_se.unwrap_or(0.0));
    }
    let languages = cells.values().map(|c| c.len()).max().unwrap_or(0);
    if languages < 2 {
        return None;
    }
    // The cell with the most languages, then the largest compute.
    let (&(n, d), cell) = cells.iter().filter(|(_, c)| c.len() == languages).max_by(|a, b| {
        let c = |k: &(u64, u64)| f64::from_bits(k.0) * f64::from_bits(k.1);
        c(a.0).total_cmp(&c(b.0))
    })?;
    // Seed noise pooled over every configuration with replicates (relative variance, one degree
    // of freedom per extra seed): two seeds of one cell alone estimate it far too loosely.
    let (mut ss, mut dof) = (0.0, 0usize);
    for seeds in cells.values().flat_map(|c| c.values()).filter(|s| s.losses.len() >= 2) {
        let mean = seeds.mean();
        ss += seeds.losses.iter().map(|x| (x / mean - 1.0).powi(2)).sum::<f64>();
        dof += seeds.losses.len() - 1;
    }
    let pooled = (dof > 0).then(|| (ss / dof as f64).sqrt());
    let losses: Vec<Measure> = cell
        .iter()
        .map(|(language, seeds)| {
            let k = seeds.losses.len() as f64;
            let mean = seeds.mean();
            let se = match pooled {
                Some(rel) => mean * rel / k.sqrt(),
                None if seeds.ses[0] > 0.0 => seeds.ses[0],
                // Nothing measures this loss's noise: no interval, and no pair judged.
                None => f64::NAN,
            };
            Measure { language: language.clone(), value: mean, lo: mean - 1.96 * se, hi: mean + 1.96 * se }
        })
        .collect();
    let noise = match pooled {
        Some(rel) => format!(
            "seed noise pooled over the sweep's replicated configurations ({dof} degrees of freedom): {:.2} % of the loss per run",
            100.0 * rel
        ),
        None => "the evaluation's standard error alone: one seed, so seed noise (about 1 % of the loss on the lab's \
                 ladders) is left out and pairs look more separated than they are"
            .to_string(),
    };
    let l_infs: Vec<Measure> = fit
        .map(|f| f.groups.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|g| !g.group.contains('/'))
        .filter_map(|g| {
            let e = &g.law.as_ref()?.l_inf;
            Some(Measure { language: g.group.clone(), value: e.value, lo: e.lo?, hi: e.hi? })
        })
        .collect();
    let (by_loss, loss_pairs) = rank(losses, |m| format!("{:.4}", m.value));
    let seed_agreement = agreement(&by_loss);
    let (by_l_inf, l_inf_pairs) = rank(l_infs, |m| format!("{:.3}", m.value));
    Some(Comparison {
        at: format!("N = {}, D = {}", fmt_si(f64::from_bits(n)), fmt_si(f64::from_bits(d))),
        by_loss,
        loss_pairs,
        by_l_inf,
        l_inf_pairs,
        seed_agreement,
        noise,
    })
}

fn seed_rank(language: &str) -> Option<usize> {
    SEED_ORDER.iter().position(|rung| rung.contains(&language)).map(|i| i + 1)
}

/// Sorted lowest first, and every pair judged: separated when the intervals (±1.96 SE for a
/// loss, the bootstrap interval for L_inf) do not overlap.
fn rank(mut ms: Vec<Measure>, show: impl Fn(&Measure) -> String) -> (Vec<Ranked>, Pairs) {
    ms.sort_by(|a, b| a.value.total_cmp(&b.value));
    let mut pairs = Pairs::default();
    for (i, a) in ms.iter().enumerate() {
        for b in &ms[i + 1..] {
            let line = format!("{} < {}", a.language, b.language);
            if a.hi < b.lo {
                pairs.separated.push(line);
            } else {
                pairs.not_separated.push(format!("{} ≈ {}", a.language, b.language));
            }
        }
    }
    let ranked = ms
        .iter()
        .enumerate()
        .map(|(i, m)| Ranked {
            rank: i + 1,
            language: m.language.clone(),
            value: show(m),
            interval: if m.lo.is_finite() { format!("{:.4} – {:.4}", m.lo, m.hi) } else { "–".into() },
            seed_rank: seed_rank(&m.language),
        })
        .collect();
    (ranked, pairs)
}

/// Pairs ordered alike by this sweep and the seed paper, out of the pairs the paper orders.
fn agreement(ranked: &[Ranked]) -> String {
    let (mut agree, mut total, mut disagree) = (0, 0, vec![]);
    for (i, a) in ranked.iter().enumerate() {
        for b in &ranked[i + 1..] {
            let (Some(sa), Some(sb)) = (a.seed_rank, b.seed_rank) else { continue };
            if sa == sb {
                continue;
            }
            total += 1;
            if sa < sb {
                agree += 1;
            } else {
                disagree.push(format!("{} below {}", a.language, b.language));
            }
        }
    }
    if total == 0 {
        return "no pair of these languages is ordered by the seed paper".into();
    }
    let mut s = format!("{agree} of {total} pairs the seed paper orders are in its order");
    if !disagree.is_empty() {
        s.push_str(&format!("; reversed here: {}", disagree.join(", ")));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture::row;

    #[test]
    fn languages_are_ranked_at_their_largest_common_cell_and_pairs_judged() {
        let mut rows = vec![];
        for (lang, loss) in [("python", 1.50), ("go", 1.40), ("rust", 1.401), ("csharp", 1.20)] {
            for (n, d) in [(1e5, 1e6), (3e5, 1e6), (3e5, 2e6)] {
                for seed in 0..2 {
                    let mut r = row("s", "done", lang, "dense", n, d, 3e-3, 32, 50, Some(loss + 0.001 * seed as f64));
                    r.trial_id = format!("{lang}{n}{d}{seed}");
                    rows.push(r);
                }
            }
        }
        rows.retain(|r| !(r.language == "csharp" && r.tokens == 2e6));
        let c = compare(&rows, None).unwrap();
        assert_eq!(c.at, "N = 300k, D = 1M", "the largest cell all four trained");
        let order: Vec<&str> = c.by_loss.iter().map(|r| r.language.as_str()).collect();
        assert_eq!(order, ["csharp", "go", "rust", "python"]);
        assert!(c.loss_pairs.not_separated.contains(&"go ≈ rust".to_string()));
        assert!(c.loss_pairs.separated.contains(&"csharp < go".to_string()));
        // go (rung 3) below rust (rung 2) is the one reversal of the paper's order.
        assert_eq!(
            c.seed_agreement,
            "5 of 6 pairs the seed paper orders are in its order; reversed here: go below rust"
        );
    }
}
