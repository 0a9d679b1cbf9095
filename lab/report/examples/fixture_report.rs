//! Writes a fixture report so it can be opened in a browser:
//! `cargo run -p codescale-report --example fixture_report -- /tmp/fixture-report [full|partial|empty]`

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "reports/fixture".into());
    let input = match args.next().as_deref().unwrap_or("full") {
        "full" => codescale_report::fixture::full(),
        "partial" => codescale_report::fixture::partly_failed(),
        "empty" => codescale_report::fixture::empty(),
        other => anyhow::bail!("unknown fixture {other:?}: full, partial or empty"),
    };
    let out = codescale_report::write_report(&input, std::path::Path::new(&dir))?;
    println!("{}", out.html.display());
    for f in &out.figures {
        println!("{}", f.display());
    }
    Ok(())
}
