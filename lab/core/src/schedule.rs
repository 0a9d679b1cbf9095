//! Learning-rate schedules. Warmup rises linearly to the peak at step `warmup_steps`; then
//! cosine and linear decay to `final_lr_ratio · lr` at the last step, constant stays at the
//! peak, and WSD holds the peak until the last `decay_frac` of the steps, then decays linearly.

use crate::config::{Schedule, TrialConfig};

pub fn lr_at(c: &TrialConfig, step: usize) -> f64 {
    let total = c.total_steps().max(1);
    let warmup = c.warmup_steps();
    if step < warmup {
        return c.lr * (step + 1) as f64 / warmup as f64;
    }
    let last = total - 1;
    let floor = c.lr * c.final_lr_ratio;
    // Fraction of the decay phase done, 0 at its start and 1 at the last step.
    let progress = |start: usize| -> f64 {
        if last <= start {
            1.0
        } else {
            (step.min(last) - start) as f64 / (last - start) as f64
        }
    };
    match c.schedule {
        Schedule::Constant => c.lr,
        Schedule::Cosine => floor + (c.lr - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress(warmup)).cos()),
        Schedule::Linear => c.lr + (floor - c.lr) * progress(warmup),
        Schedule::Wsd => {
            let decay_start = warmup.max(total - (c.decay_frac * total as f64).round() as usize);
            if step < decay_start {
                c.lr
            } else {
                c.lr + (floor - c.lr) * progress(decay_start)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{Schedule, TrialSpec};

    fn config(schedule: Schedule) -> crate::config::TrialConfig {
        TrialSpec {
            language: Some("go".into()),
            model: Some("d64-l2".into()),
            schedule: Some(schedule),
            batch_size: Some(4),
            seq_len: Some(16),
            tokens: Some(64.0 * 100.0),
            warmup: Some(10.0),
            lr: Some(1e-2),
            final_lr_ratio: Some(0.1),
            decay_frac: Some(0.2),
            ..Default::default()
        }
        .resolve()
        .unwrap()
    }

    #[test]
    fn warmup_reaches_peak_at_its_last_step() {
        let c = config(Schedule::Cosine);
        assert_eq!(c.total_steps(), 100);
        assert!(c.lr_at(0) > 0.0 && c.lr_at(0) < c.lr_at(5));
        assert!((c.lr_at(9) - 1e-2).abs() < 1e-15);
        assert!((c.lr_at(10) - 1e-2).abs() < 1e-15);
    }

    #[test]
    fn decays_reach_final_ratio_at_last_step() {
        for s in [Schedule::Cosine, Schedule::Linear, Schedule::Wsd] {
            let c = config(s);
            assert!((c.lr_at(99) - 1e-3).abs() < 1e-12, "{s:?}: {}", c.lr_at(99));
            assert!(c.lr_at(50) > 1e-3, "{s:?}");
        }
        assert_eq!(config(Schedule::Constant).lr_at(99), 1e-2);
        let wsd = config(Schedule::Wsd);
        assert_eq!(wsd.lr_at(80), 1e-2);
        assert!(wsd.lr_at(81) < 1e-2);
    }
}
