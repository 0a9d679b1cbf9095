//! Writes the fixture report so it can be opened in a browser:
//! `cargo run -p codescale-report --example fixture_report -- /tmp/fixture-report`

fn main() -> anyhow::Result<()> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "reports/fixture".into());
    let out = codescale_report::fixture::write_fixture_report(std::path::Path::new(&dir))?;
    println!("{}", out.html.display());
    for f in &out.figures {
        println!("{}", f.display());
    }
    Ok(())
}
