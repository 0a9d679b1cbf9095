//! Language names and detection by file extension.

use std::collections::BTreeMap;

/// The languages the lab knows by name; a recipe may add others with explicit globs.
pub const KNOWN: &[&str] = &["python", "java", "javascript", "typescript", "csharp", "go", "rust", "c", "cpp"];

/// Built-in extension table. `.h` is C: C++ headers are usually found by directory
/// (`/usr/include/c++`), not by extension.
const EXTENSIONS: &[(&str, &str)] = &[
    ("py", "python"),
    ("pyi", "python"),
    ("java", "java"),
    ("js", "javascript"),
    ("mjs", "javascript"),
    ("cjs", "javascript"),
    ("jsx", "javascript"),
    ("ts", "typescript"),
    ("mts", "typescript"),
    ("cts", "typescript"),
    ("tsx", "typescript"),
    ("cs", "csharp"),
    ("go", "go"),
    ("rs", "rust"),
    ("c", "c"),
    ("h", "c"),
    ("cc", "cpp"),
    ("cpp", "cpp"),
    ("cxx", "cpp"),
    ("c++", "cpp"),
    ("hh", "cpp"),
    ("hpp", "cpp"),
    ("hxx", "cpp"),
    ("h++", "cpp"),
    ("ipp", "cpp"),
    ("tcc", "cpp"),
];

/// Canonical name for the spellings found in recipes and dataset exports
/// (The Stack writes `C++`, `C#`, `c-sharp`, …). `None` when the name cannot be used
/// as a shard file name.
pub fn canonical(name: &str) -> Option<String> {
    let lower = name.trim().to_ascii_lowercase();
    let mapped = match lower.as_str() {
        "py" | "python3" => "python",
        "js" | "node" => "javascript",
        "ts" => "typescript",
        "c#" | "c-sharp" | "c_sharp" | "cs" => "csharp",
        "golang" => "go",
        "rs" => "rust",
        "c++" | "cxx" | "cc" => "cpp",
        other => other,
    };
    let ok = !mapped.is_empty()
        && mapped.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    ok.then(|| mapped.to_string())
}

/// Maps file names to languages: the built-in table with a recipe's overrides on top.
#[derive(Debug, Clone)]
pub struct Detector {
    by_ext: BTreeMap<String, String>,
}

impl Detector {
    pub fn new(overrides: &BTreeMap<String, String>) -> Detector {
        let mut by_ext: BTreeMap<String, String> =
            EXTENSIONS.iter().map(|(e, l)| (e.to_string(), l.to_string())).collect();
        for (ext, lang) in overrides {
            by_ext.insert(ext.trim_start_matches('.').to_ascii_lowercase(), lang.clone());
        }
        Detector { by_ext }
    }

    pub fn detect(&self, path: &str) -> Option<&str> {
        let name = path.rsplit(['/', '\\']).next()?;
        let (_, ext) = name.rsplit_once('.')?;
        self.by_ext.get(&ext.to_ascii_lowercase()).map(String::as_str)
    }

    /// Include globs for a language's files: `**/*.<ext>` for each of its extensions.
    pub fn globs_for(&self, lang: &str) -> Vec<String> {
        self.by_ext.iter().filter(|(_, l)| *l == lang).map(|(e, _)| format!("**/*.{e}")).collect()
    }

    /// Globs matching every extension the detector knows, for mixed-language sources.
    pub fn all_globs(&self) -> Vec<String> {
        self.by_ext.keys().map(|e| format!("**/*.{e}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detects_and_canonicalises() {
        let d = Detector::new(&BTreeMap::new());
        assert_eq!(d.detect("a/b/x.py"), Some("python"));
        assert_eq!(d.detect("lib.d.ts"), Some("typescript"));
        assert_eq!(d.detect("vector"), None);
        assert_eq!(canonical("C++").as_deref(), Some("cpp"));
        assert_eq!(canonical("C#").as_deref(), Some("csharp"));
        assert_eq!(canonical("../x"), None);
        for l in KNOWN {
            assert!(!d.globs_for(l).is_empty(), "{l}");
        }
    }
}
