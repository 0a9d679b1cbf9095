//! The sweep crate's modules form no circle: planning (`spec`, `plan`, `branches`, `asha`,
//! `tasks`) depends on no executor, and neither executor (`scheduler`, the local one, and
//! `slurm`) depends on the other. Read from the sources' `crate::` paths outside comments and
//! test modules, so a new `use` that closes a circle fails here, naming it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).unwrap();
    let first = rel.components().next().unwrap().as_os_str().to_string_lossy().into_owned();
    first.trim_end_matches(".rs").to_string()
}

fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
            } else if p.extension().is_some_and(|x| x == "rs") {
                files.push(p);
            }
        }
    }
    assert!(files.len() > 10, "found only {} source files under {}", files.len(), src.display());
    let path = regex_free_paths();
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for f in files {
        let module = module_of(&src, &f);
        if module == "lib" {
            continue;
        }
        let text = std::fs::read_to_string(&f).unwrap();
        let code = text.split("#[cfg(test)]").next().unwrap();
        let deps = graph.entry(module.clone()).or_default();
        for line in code.lines().map(str::trim_start).filter(|l| !l.starts_with("//")) {
            for used in path(line) {
                if used != module {
                    deps.insert(used);
                }
            }
        }
    }
    graph
}

/// The module named after each `crate::` in a line (`crate::plan::x` → `plan`; `use
/// crate::{a, b}` is not used in this crate).
fn regex_free_paths() -> impl Fn(&str) -> Vec<String> {
    |line: &str| {
        line.match_indices("crate::")
            .filter(|(i, _)| !line[..*i].ends_with(|c: char| c.is_alphanumeric() || c == '_'))
            .map(|(i, m)| {
                line[i + m.len()..].chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect::<String>()
            })
            .filter(|m| !m.is_empty())
            .collect()
    }
}

fn find_cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        n: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        stack: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = stack.iter().position(|s| s == n) {
            let mut cycle = stack[at..].to_vec();
            cycle.push(n.to_string());
            return Some(cycle);
        }
        if done.contains(n) {
            return None;
        }
        stack.push(n.to_string());
        for d in graph.get(n).into_iter().flatten() {
            if let Some(c) = visit(d, graph, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        done.insert(n.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph.keys().find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_sweep_crates_modules_form_no_circle() {
    let graph = edges();
    for executor in ["scheduler", "slurm"] {
        assert!(graph.contains_key(executor), "no module {executor}: {:?}", graph.keys());
    }
    if let Some(cycle) = find_cycle(&graph) {
        panic!("the sweep's modules form a circle: {}\n{graph:#?}", cycle.join(" → "));
    }
    for planning in ["spec", "plan", "branches", "asha", "tasks", "runs"] {
        let deps = &graph[planning];
        assert!(
            !deps.contains("scheduler")
                && !deps.contains("slurm")
                && !deps.contains("trial")
                && !deps.contains("child"),
            "planning module {planning} depends on an executor: {deps:?}"
        );
    }
    assert!(!graph["slurm"].contains("scheduler") && !graph["scheduler"].contains("slurm"));
}

#[test]
fn a_circle_is_found() {
    let graph: BTreeMap<String, BTreeSet<String>> = [("a", "b"), ("b", "c"), ("c", "a")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), BTreeSet::from([v.to_string()])))
        .collect();
    assert_eq!(find_cycle(&graph).unwrap(), ["a", "b", "c", "a"]);
}
