//! The published-ladder benchmark (`bench/ladders.sh`): every ladder in `../shared/ladders`
//! fitted on its paper's fit rows, each target predicted by every law form and by `auto`, beside
//! the paper's own error.
//!
//! ```sh
//! cargo run --example ladders -- [LADDERS_DIR] [BOOTSTRAP]
//! ```

use anyhow::Result;
use codescale::fit::{Form, LawChoice};
use codescale::ladders;

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dir = args.first().map_or_else(|| std::path::PathBuf::from("../shared/ladders"), std::path::PathBuf::from);
    let bootstrap = args.get(1).map_or(Ok(200), |b| b.parse()).map_err(|e| anyhow::anyhow!("BOOTSTRAP: {e}"))?;
    let work = tempfile::tempdir()?;
    let all = ladders::ladders(&dir, work.path())?;
    let laws = [
        LawChoice::Auto,
        LawChoice::Fixed(Form::Chinchilla),
        LawChoice::Fixed(Form::Kaplan),
        LawChoice::Fixed(Form::Gadre),
        LawChoice::Fixed(Form::Kaplan2020),
    ];
    let start = std::time::Instant::now();
    let rows = ladders::run(&all, &laws, bootstrap, work.path())?;
    print!("{}", ladders::render(&rows));
    println!(
        "\n{} targets × laws in {:.1} s ({bootstrap} bootstrap resamples)",
        rows.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}
