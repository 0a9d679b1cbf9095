//! The report as a person sees it: headless Chromium renders the fixture report and we check
//! the screenshot is a real page (not blank, not an error page). CI installs the Debian
//! package `chromium`; without it this test fails on purpose rather than passing unseen.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const CHROMIUM: &str = "/usr/bin/chromium";

#[test]
fn chromium_renders_the_fixture_report() {
    assert!(
        Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: install the Debian package `chromium` (apt-get install chromium) to run the browser check"
    );
    let dir = fresh_dir("browser");
    let out = codescale_report::fixture::write_fixture_report(&dir.join("report")).unwrap();
    // Keep a copy of the screenshot for people to look at when SCREENSHOT_OUT is set.
    let shot = dir.join("screenshot.png");
    let profile = dir.join("profile");
    let url = format!("file://{}", out.html.canonicalize().unwrap().display());
    let mut child = Command::new(CHROMIUM)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", shot.display()))
        .arg("--window-size=1280,2000")
        .arg(&url)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("starting chromium");
    let start = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if start.elapsed() > Duration::from_secs(120) {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let stderr = {
        use std::io::Read;
        let mut s = String::new();
        let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut s));
        s
    };
    assert!(status.success(), "chromium failed: {status}\n{stderr}");
    assert!(shot.exists(), "no screenshot written\n{stderr}");

    let img = decode_png(&shot);
    assert_eq!((img.width, img.height), (1280, 2000), "screenshot size");
    let var = grey_variance(&img);
    assert!(var > 500.0, "screenshot looks blank (grey variance {var:.1})");
    // The dark header band sits at the top; below it the page is mostly light with text.
    let top_row: Vec<u8> = img.rgb[(40 * 1280 * 3)..(41 * 1280 * 3)].to_vec();
    let top_dark = top_row.chunks(3).filter(|p| p.iter().all(|c| *c < 80)).count();
    assert!(top_dark > 640, "header band missing ({top_dark} dark pixels on row 40)");
    let ink = ink_fraction(&img);
    assert!(ink > 0.05 && ink < 0.7, "ink fraction {ink:.3}: not a plausible report page");
    assert!(colour_count(&img) > 30, "too few colours for a page with charts");

    if let Ok(keep) = std::env::var("SCREENSHOT_OUT") {
        std::fs::copy(&shot, keep).unwrap();
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
