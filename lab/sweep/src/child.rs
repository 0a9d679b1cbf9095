//! The local executor's trials in child processes: `codescale trial run <dir> --index N
//! --plan <task plan> --child`, one process per trial, each training its entry of the task plan
//! the run wrote for its queue ([`crate::tasks`]), as Slurm tasks do. Trials trained as threads of one process share burn's
//! autodiff graph registry, whose global lock is held through every backward pass, so two jobs
//! slowed each other by about 40 % (bench/sweep_parallel.py); processes share nothing but the
//! runs folder, as Slurm tasks do.
//!
//! Both ends of the pipe are here. The child writes lines to stdout: `progress <step>\t<message>`
//! while it trains and, last, `outcome trained|ended <status>` or `outcome busy <owner>`. The
//! parent drives the trial's bar from them. A child dies with the thread that started it
//! (`PR_SET_PDEATHSIG`), so a killed scheduler leaves no trial training behind, as before.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};
use codescale_core::Status;
use indicatif::ProgressBar;

use crate::trial::Outcome;

/// How a child's trial went, as its last line said.
#[derive(Debug, Clone, PartialEq)]
pub enum Reported {
    Trained(Status),
    Ended(Status),
    Busy(String),
}

/// Trains entry `entry` of the task plan at `plan` (a trial of the sweep at `sweep_dir`, with its
/// trunk and corpus folder) in a child process of `exe`, with `threads` threads, driving `bar`
/// from its progress.
pub fn train_in_child(
    exe: &Path,
    sweep_dir: &Path,
    plan: &Path,
    entry: usize,
    threads: usize,
    retry_failed: bool,
    bar: &ProgressBar,
) -> Result<Reported> {
    let mut cmd = Command::new(exe);
    cmd.args(["--quiet", "trial", "run"])
        .arg(sweep_dir)
        .args(["--index", &entry.to_string(), "--threads", &threads.to_string(), "--child", "--plan"])
        .arg(plan);
    if retry_failed {
        cmd.arg("--retry-failed");
    }
    die_with_parent(&mut cmd);
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {}", exe.display()))?;
    let mut stderr = child.stderr.take().expect("piped");
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let mut reported = None;
    for line in BufReader::new(child.stdout.take().expect("piped")).lines() {
        let line = line?;
        if let Some(progress) = line.strip_prefix("progress ") {
            let (step, message) = progress.split_once('\t').unwrap_or((progress, ""));
            bar.set_position(step.parse().unwrap_or(0));
            bar.set_message(message.to_string());
        } else if let Some(outcome) = line.strip_prefix("outcome ") {
            reported = parse_outcome(outcome);
        }
    }
    let status = child.wait()?;
    let errors = errors.join().unwrap_or_default();
    match reported {
        Some(r) if status.success() => Ok(r),
        _ => Err(anyhow::anyhow!("its process ended with {status}: {}", last_lines(&errors, 5))),
    }
}

/// The line the child ends with.
pub fn outcome_line(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Trained(record) => format!("outcome trained {}", record.status.as_str()),
        Outcome::Ended(status) => format!("outcome ended {}", status.as_str()),
        Outcome::Busy(owner) => {
            format!("outcome busy {}", owner.as_ref().map_or("another process".into(), |o| o.describe()))
        }
    }
}

fn parse_outcome(text: &str) -> Option<Reported> {
    let (kind, rest) = text.split_once(' ')?;
    let status = || {
        [Status::Pending, Status::Running, Status::Done, Status::Failed, Status::Diverged, Status::Pruned]
            .into_iter()
            .find(|s| s.as_str() == rest)
    };
    match kind {
        "trained" => status().map(Reported::Trained),
        "ended" => status().map(Reported::Ended),
        "busy" => Some(Reported::Busy(rest.to_string())),
        _ => None,
    }
}

/// In the child: a hidden bar for the trainer to drive, and a thread that prints its position
/// and message for the parent every quarter second while it moves. Dropping the reporter stops
/// the thread after a last line.
pub struct ProgressReporter {
    pub bar: ProgressBar,
    stop: std::sync::mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl ProgressReporter {
    pub fn start() -> ProgressReporter {
        let bar = ProgressBar::hidden();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let watched = bar.clone();
        let thread = std::thread::spawn(move || {
            let mut last = None;
            loop {
                let done = !matches!(
                    stopped.recv_timeout(Duration::from_millis(250)),
                    Err(std::sync::mpsc::RecvTimeoutError::Timeout)
                );
                let now = (watched.position(), watched.message());
                if last.as_ref() != Some(&now) {
                    println!("progress {}\t{}", now.0, now.1.replace(['\n', '\t'], " "));
                    last = Some(now);
                }
                if done {
                    break;
                }
            }
        });
        ProgressReporter { bar, stop, thread: Some(thread) }
    }
}

impl Drop for ProgressReporter {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    lines[lines.len().saturating_sub(n)..].join(" | ")
}

#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id() as i32;
    // SAFETY: between fork and exec only async-signal-safe calls (prctl, getppid, _exit).
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 || libc::getppid() != parent {
                libc::_exit(1);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_: &mut Command) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcome_lines_read_back() {
        assert_eq!(parse_outcome("trained done"), Some(Reported::Trained(Status::Done)));
        assert_eq!(parse_outcome("ended pruned"), Some(Reported::Ended(Status::Pruned)));
        assert_eq!(parse_outcome("busy pid 7 on node-1"), Some(Reported::Busy("pid 7 on node-1".into())));
        assert_eq!(parse_outcome("trained sideways"), None);
        assert_eq!(outcome_line(&Outcome::Ended(Status::Diverged)), "outcome ended diverged");
    }
}
