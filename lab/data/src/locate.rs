//! Where a source lives. A recipe names a path, a list of candidate paths (the first that
//! exists wins), or a command that prints the path — because the code already on a machine
//! is found differently everywhere (`python3 -c 'import sysconfig…'`, `npm root -g`,
//! `go env GOROOT`, `/usr/lib/jvm/*/lib/src.zip`).
//!
//! ```toml
//! dir = "~/src/project"                                   # `~`, `$VAR` and `${VAR}` expand
//! zip = ["$JAVA_HOME/lib/src.zip", "/usr/lib/jvm/*/lib/src.zip"]  # globs: sorted, first match
//! dir = { command = ["go", "env", "GOROOT"], join = "src" }   # trimmed last line of stdout
//! dir = [{ command = ["npm", "root", "-g"] }, "/usr/lib/node_modules"]
//! ```

use std::fmt;
use std::io::Read;
use std::path::{Component, Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// A command that may hang (a network-mounted npm prefix) must not hang the build.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Candidate {
    Path(String),
    Command { command: Vec<String>, join: Option<String> },
}

/// Candidates in order of preference.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location(pub Vec<Candidate>);

impl fmt::Display for Candidate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Candidate::Path(p) => f.write_str(p),
            Candidate::Command { command, join } => {
                write!(f, "$({})", command.join(" "))?;
                join.as_ref().map_or(Ok(()), |j| write!(f, "/{j}"))
            }
        }
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|c| c.to_string()).collect();
        f.write_str(&parts.join(" | "))
    }
}

impl Location {
    /// The first candidate that exists, relative paths taken from `base` (the recipe's folder).
    pub fn resolve(&self, base: &Path) -> Option<PathBuf> {
        self.0.iter().find_map(|c| c.resolve(base))
    }
}

impl Candidate {
    fn resolve(&self, base: &Path) -> Option<PathBuf> {
        let path = match self {
            Candidate::Path(p) => PathBuf::from(expand_vars(p)?),
            Candidate::Command { command, join } => {
                let out = PathBuf::from(run(command)?);
                join.as_ref().map_or(out.clone(), |j| out.join(j))
            }
        };
        let path = if path.is_relative() { base.join(path) } else { path };
        first_match(&path)
    }
}

/// `~` and environment variables; `None` when a variable is unset or empty, so that a
/// candidate such as `$JAVA_HOME/lib/src.zip` simply does not apply.
fn expand_vars(s: &str) -> Option<String> {
    let mut out = String::new();
    let rest = if s == "~" || s.starts_with("~/") {
        out.push_str(&std::env::var("HOME").ok().filter(|h| !h.is_empty())?);
        &s[1..]
    } else {
        s
    };
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '$' {
            out.push(c);
            continue;
        }
        let braced = chars.peek() == Some(&'{');
        if braced {
            chars.next();
        }
        let mut name = String::new();
        while let Some(&n) = chars.peek() {
            if n.is_ascii_alphanumeric() || n == '_' {
                name.push(n);
                chars.next();
            } else {
                break;
            }
        }
        if braced && chars.next() != Some('}') {
            return None;
        }
        if name.is_empty() {
            out.push('$');
            continue;
        }
        out.push_str(&std::env::var(&name).ok().filter(|v| !v.is_empty())?);
    }
    Some(out)
}

fn run(command: &[String]) -> Option<String> {
    let (program, args) = command.split_first()?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    let mut stdout = child.stdout.take()?;
    // Read on a thread so a chatty command cannot fill the pipe while we wait on it.
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        stdout.read_to_string(&mut s).map(|_| s)
    });
    let start = Instant::now();
    let status = loop {
        match child.try_wait().ok()? {
            Some(status) => break status,
            None if start.elapsed() > COMMAND_TIMEOUT => {
                let _ = child.kill();
                let _ = child.wait();
                return None;
            }
            None => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    let text = reader.join().ok()?.ok()?;
    if !status.success() {
        return None;
    }
    text.lines().map(str::trim).rfind(|l| !l.is_empty()).map(String::from)
}

/// The path itself if it exists, or the first (sorted) existing match of its glob components.
fn first_match(path: &Path) -> Option<PathBuf> {
    let mut current = vec![PathBuf::new()];
    for comp in path.components() {
        let text = comp.as_os_str().to_string_lossy();
        let wild = matches!(comp, Component::Normal(_)) && text.contains(['*', '?', '[']);
        if !wild {
            current.iter_mut().for_each(|p| p.push(comp));
            continue;
        }
        let matcher = globset::Glob::new(&text).ok()?.compile_matcher();
        let mut next = Vec::new();
        for dir in &current {
            let Ok(entries) = std::fs::read_dir(dir) else { continue };
            let mut names: Vec<_> = entries.filter_map(|e| e.ok()).map(|e| e.file_name()).collect();
            names.sort();
            next.extend(names.into_iter().filter(|n| matcher.is_match(n)).map(|n| dir.join(n)));
        }
        current = next;
    }
    current.into_iter().find(|p| p.exists())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CommandSpec {
    command: Vec<String>,
    #[serde(default)]
    join: Option<String>,
}

impl CommandSpec {
    fn into_candidate<E: de::Error>(self) -> Result<Candidate, E> {
        if self.command.is_empty() {
            return Err(E::custom("`command` must name a program"));
        }
        Ok(Candidate::Command { command: self.command, join: self.join })
    }
}

impl<'de> Deserialize<'de> for Candidate {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Candidate;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a path or a table `{ command = [...], join = \"...\" }`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Candidate, E> {
                Ok(Candidate::Path(v.to_string()))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Candidate, A::Error> {
                CommandSpec::deserialize(de::value::MapAccessDeserializer::new(map))?.into_candidate()
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Location {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Location;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a path, a list of candidate paths, or a table `{ command = [...] }`")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Location, E> {
                Ok(Location(vec![Candidate::Path(v.to_string())]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Location, A::Error> {
                let mut all = Vec::new();
                while let Some(c) = seq.next_element::<Candidate>()? {
                    all.push(c);
                }
                if all.is_empty() {
                    return Err(de::Error::custom("the list of candidate paths is empty"));
                }
                Ok(Location(all))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Location, A::Error> {
                let c = CommandSpec::deserialize(de::value::MapAccessDeserializer::new(map))?.into_candidate()?;
                Ok(Location(vec![c]))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_existing_candidate_wins() {
        let dir = std::env::temp_dir().join(format!("codescale-locate-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("b-2/lib")).unwrap();
        std::fs::create_dir_all(dir.join("a-1/lib")).unwrap();
        let loc = Location(vec![
            Candidate::Path("$CODESCALE_SURELY_UNSET_VAR/x".into()),
            Candidate::Path("nope".into()),
            Candidate::Path("*-?/lib".into()),
        ]);
        assert_eq!(loc.resolve(&dir), Some(dir.join("a-1/lib")));
        let cmd = Location(vec![Candidate::Command {
            command: vec!["echo".into(), dir.display().to_string()],
            join: Some("b-2".into()),
        }]);
        assert_eq!(cmd.resolve(Path::new("/")), Some(dir.join("b-2")));
        let missing =
            Location(vec![Candidate::Command { command: vec!["codescale-no-such-program".into()], join: None }]);
        assert_eq!(missing.resolve(Path::new("/")), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn expands_home_and_braced_vars() {
        std::env::set_var("CODESCALE_LOCATE_TEST", "v");
        assert_eq!(
            expand_vars("/a/${CODESCALE_LOCATE_TEST}/$CODESCALE_LOCATE_TEST.zip").as_deref(),
            Some("/a/v/v.zip")
        );
        assert!(expand_vars("~/x").unwrap().ends_with("/x"));
    }
}
