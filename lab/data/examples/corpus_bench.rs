//! Builds a corpus from scratch and prints MB/s per pipeline stage.
//!
//! `cargo run -p codescale-data --example corpus_bench -- [recipe.toml] [--tokenizer T] [--out DIR]`
//! (`bench/corpus.sh` runs it on `corpora/local.toml`).

use std::path::PathBuf;

use codescale_data::{build, summary_table, BuildOptions};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut recipe = PathBuf::from("corpora/local.toml");
    let mut opts = BuildOptions { force: true, ..BuildOptions::default() };
    while let Some(a) = args.next() {
        match a.as_str() {
            "--tokenizer" => opts.tokenizer = args.next(),
            "--out" => opts.out = args.next().map(PathBuf::from),
            "--quiet" => opts.quiet = true,
            other => recipe = PathBuf::from(other),
        }
    }
    let corpus = match build(&recipe, &opts) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(if e.is_bad_input() { 2 } else { 1 });
        }
    };
    print!("{}", summary_table(&corpus.manifest));
    let stats = &corpus.manifest.build.stats;
    println!("\n{:<16} {:>10} {:>9} {:>9}", "stage", "MB in", "seconds", "MB/s");
    for (name, s) in stats.stages() {
        if s.bytes == 0 && s.seconds == 0.0 {
            continue;
        }
        println!("{name:<16} {:>10.2} {:>9.3} {:>9.1}", s.bytes as f64 / 1e6, s.seconds, s.mb_per_s());
    }
    println!("{:<16} {:>10} {:>9.3}", "total", "", stats.total_seconds);
    println!("corpus {} in {}", corpus.hash(), corpus.dir.display());
}
