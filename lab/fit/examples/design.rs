//! Scratch: sampling spread of the fitted law at a design.
use codescale_fit::approach3::{chinchilla_grid, fit_noise_matched, Data, Law};
use codescale_fit::bootstrap::{bootstrap_law, interval, singletons};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

fn normal(rng: &mut impl Rng) -> f64 {
    let (u, v): (f64, f64) = (1.0 - rng.random::<f64>(), rng.random());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

fn main() {
    let a: Vec<String> = std::env::args().collect();
    let parse = |s: &str| s.split(',').map(|x| x.parse::<f64>().unwrap()).collect::<Vec<f64>>();
    let law_v = parse(&a[1]); // e,a,b,alpha,beta
    let truth = Law { e: law_v[0], a: law_v[1], b: law_v[2], alpha: law_v[3], beta: law_v[4] };
    let ns = parse(&a[2]);
    let ds = parse(&a[3]);
    let sigma: f64 = a[4].parse().unwrap(); // per point
    let tau: f64 = a[5].parse().unwrap(); // per size (trunk) shared
    let reps: u64 = a[6].parse().unwrap();
    let target = parse(&a[7]);
    let boot: usize = a.get(8).map(|s| s.parse().unwrap()).unwrap_or(0);
    let res: Vec<_> = (0..reps)
        .into_par_iter()
        .map(|rep| {
            let mut rng = ChaCha8Rng::seed_from_u64(77 + rep);
            let mut pts = vec![];
            for &n in &ns {
                let size_eff = tau * normal(&mut rng);
                for &d in &ds {
                    pts.push((n, d, truth.predict(n, d) * (size_eff + sigma * normal(&mut rng)).exp()));
                }
            }
            let data = Data::new(&pts);
            let (fit, delta) = fit_noise_matched(&data, &chinchilla_grid()).unwrap();
            let l = fit.law;
            let pred = l.predict(target[0], target[1]) / truth.predict(target[0], target[1]) - 1.0;
            let mut cover = [false; 3];
            let mut width = [0.0; 3];
            if boot > 0 {
                let b = bootstrap_law(&data, &fit, delta, boot, rep, &singletons(data.len()));
                let gets: [fn(&Law) -> f64; 3] = [|l| l.alpha, |l| l.beta, |l| l.e];
                let tv = [truth.alpha, truth.beta, truth.e];
                for k in 0..3 {
                    let s: Vec<f64> = b.laws.iter().map(gets[k]).collect();
                    let (lo, hi) = interval(&s, 0.95).unwrap();
                    cover[k] = lo <= tv[k] && tv[k] <= hi;
                    width[k] = (hi - lo) / tv[k];
                }
            }
            (l, pred, cover, width)
        })
        .collect();
    let q = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let n = v.len() as f64;
        (v[(0.025 * n) as usize], v[(0.5 * n) as usize], v[((0.975 * n) as usize).min(v.len() - 1)])
    };
    for (name, t, f) in [("alpha", truth.alpha, (|l: &Law| l.alpha) as fn(&Law) -> f64), ("beta", truth.beta, |l| l.beta), ("E", truth.e, |l| l.e)] {
        let (lo, med, hi) = q(res.iter().map(|r| f(&r.0)).collect());
        println!("{name:>6} truth {t:.3}  median {med:.3}  95% [{lo:.3}, {hi:.3}]  width/truth {:.2}", (hi - lo) / t);
    }
    let (lo, med, hi) = q(res.iter().map(|r| r.1 * 100.0).collect());
    let mae = res.iter().map(|r| r.1.abs()).sum::<f64>() / res.len() as f64 * 100.0;
    println!("target err %: median {med:.2} 95% [{lo:.2}, {hi:.2}] mean|err| {mae:.2}");
    if boot > 0 {
        for (k, name) in ["alpha", "beta", "E"].iter().enumerate() {
            let c = res.iter().filter(|r| r.2[k]).count();
            let w = res.iter().filter(|r| r.3[k] < 1.0).count();
            let mw = q(res.iter().map(|r| r.3[k]).collect()).1;
            println!("  boot {name}: coverage {c}/{reps}, identified {w}/{reps}, median width/truth {mw:.2}");
        }
    }
}
