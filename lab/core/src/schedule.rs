//! Learning-rate schedules. Warmup rises linearly to the peak at step `warmup_steps`; then
//! cosine and linear decay to `final_lr_ratio · lr` at the last step, constant stays at the
//! peak, and WSD holds the peak until the last `decay_frac` of the steps, then decays linearly
//! or as 1 − √progress (`decay_shape`).

use crate::config::{DecayShape, Schedule, TrialConfig};

pub fn lr_at(c: &TrialConfig, step: usize) -> f64 {
    let total = c.total_steps().max(1);
    let warmup = c.warmup_steps();
    if step < warmup {
        return c.optimizer.lr * (step + 1) as f64 / warmup as f64;
    }
    let last = total - 1;
    let floor = c.optimizer.lr * c.schedule.final_lr_ratio;
    // Fraction of the decay phase done, 0 at its start and 1 at the last step.
    let progress = |start: usize| -> f64 {
        if last <= start {
            1.0
        } else {
            (step.min(last) - start) as f64 / (last - start) as f64
        }
    };
    match c.schedule.kind {
        Schedule::Constant => c.optimizer.lr,
        Schedule::Cosine => {
            floor + (c.optimizer.lr - floor) * 0.5 * (1.0 + (std::f64::consts::PI * progress(warmup)).cos())
        }
        Schedule::Linear => c.optimizer.lr + (floor - c.optimizer.lr) * progress(warmup),
        Schedule::Wsd => {
            let decay_start = c.decay_start();
            if step < decay_start {
                return c.optimizer.lr;
            }
            let done = match c.schedule.decay_shape {
                DecayShape::Linear => progress(decay_start),
                DecayShape::OneMinusSqrt => progress(decay_start).sqrt(),
            };
            c.optimizer.lr + (floor - c.optimizer.lr) * done
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::config::{DataSpec, ModelSpec, OptimizerSpec, Schedule, ScheduleSpec, TrialSpec};

    fn config(schedule: Schedule) -> crate::config::TrialConfig {
        TrialSpec {
            data: DataSpec { language: Some("go".into()), seq_len: Some(16), ..Default::default() },
            model: ModelSpec { name: Some("d64-l2".into()), ..Default::default() },
            optimizer: OptimizerSpec { batch_size: Some(4), lr: Some(1e-2.into()), ..Default::default() },
            schedule: ScheduleSpec {
                kind: Some(schedule),
                tokens: Some(64.0 * 100.0),
                warmup: Some(10.0),
                final_lr_ratio: Some(0.1),
                decay_frac: Some(0.2),
                ..Default::default()
            },
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

    #[test]
    fn one_minus_sqrt_cooldown_falls_faster_first_and_ends_at_the_floor() {
        let linear = config(Schedule::Wsd);
        let mut sqrt = linear.clone();
        sqrt.schedule.decay_shape = crate::config::DecayShape::OneMinusSqrt;
        assert_eq!(sqrt.lr_at(80), 1e-2);
        assert!(sqrt.lr_at(85) < linear.lr_at(85));
        assert!((sqrt.lr_at(99) - 1e-3).abs() < 1e-12);
        let mid = linear.decay_start() + (99 - linear.decay_start()) / 4;
        let p: f64 = (mid - 80) as f64 / 19.0;
        assert!((sqrt.lr_at(mid) - (1e-2 - 9e-3 * p.sqrt())).abs() < 1e-12);
    }

    #[test]
    fn a_trunk_runs_the_wsd_schedule_until_its_cooldown() {
        let short = config(Schedule::Wsd);
        let mut long = short.clone();
        long.schedule.tokens *= 3.0;
        assert_eq!(short.trunk_id(), long.trunk_id(), "budgets share a trunk");
        let trunk = long.trunk_config(long.decay_start());
        for step in 0..long.decay_start() {
            assert_eq!(trunk.lr_at(step).to_bits(), long.lr_at(step).to_bits(), "step {step}");
        }
        for step in 0..short.decay_start() {
            assert_eq!(trunk.lr_at(step).to_bits(), short.lr_at(step).to_bits(), "step {step}");
        }
        let mut other = short.clone();
        other.optimizer.lr *= 2.0;
        assert_ne!(short.trunk_id(), other.trunk_id());
        assert!(config(Schedule::Cosine).trunk_id().is_none());
    }
}
