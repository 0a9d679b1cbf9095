//! Reading documents (a `content` column) from Parquet files, for corpus sources.
//!
//! The shape is that of The Stack / StarCoderData exports: a content column (string, or
//! binary when the export kept undecodable files) plus optional language and path columns,
//! named `content`, `lang` and `path` unless [`Columns`] says otherwise. Other columns are
//! never read, so wide exports with many metadata columns stay cheap.

use std::fs::File;
use std::path::Path;

use anyhow::{bail, Context, Result};
use polars::prelude::{DataFrame, DataType, ParquetReader, SerReader};

/// One document of a Parquet source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// Raw bytes: binary columns may hold text that is not UTF-8, which the corpus filter
    /// counts rather than this reader rejecting. A null cell reads as empty.
    pub content: Vec<u8>,
    pub lang: Option<String>,
    pub path: Option<String>,
}

/// The columns (or JSON fields) a document's content, language and path are read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns {
    pub content: String,
    pub lang: String,
    pub path: String,
}

impl Default for Columns {
    fn default() -> Columns {
        Columns { content: "content".into(), lang: "lang".into(), path: "path".into() }
    }
}

/// Reads every row of `path`. Fails when the file is not Parquet or has no content column.
pub fn read_documents(path: &Path, columns: &Columns) -> Result<Vec<Document>> {
    let open = || File::open(path).with_context(|| format!("opening {}", path.display()));
    let schema = ParquetReader::new(open()?)
        .schema()
        .with_context(|| format!("{} is not a readable Parquet file", path.display()))?;
    if !schema.contains(&columns.content) {
        let names: Vec<String> = schema.iter_names().map(|n| n.to_string()).collect();
        bail!("{} has no `{}` column (columns: {})", path.display(), columns.content, names.join(", "));
    }
    let wanted: Vec<String> =
        [&columns.content, &columns.lang, &columns.path].into_iter().filter(|c| schema.contains(c)).cloned().collect();
    let df = ParquetReader::new(open()?)
        .with_columns(Some(wanted))
        .finish()
        .with_context(|| format!("reading {}", path.display()))?;

    let content = bytes_column(&df, &columns.content, path)?.context("content column vanished")?;
    let lang = string_column(&df, &columns.lang, path)?;
    let paths = string_column(&df, &columns.path, path)?;
    Ok((0..df.height())
        .map(|i| Document {
            content: content[i].clone().unwrap_or_default(),
            lang: lang.as_ref().and_then(|c| c[i].clone()),
            path: paths.as_ref().and_then(|c| c[i].clone()),
        })
        .collect())
}

fn bytes_column(df: &DataFrame, name: &str, path: &Path) -> Result<Option<Vec<Option<Vec<u8>>>>> {
    let Ok(col) = df.column(name) else { return Ok(None) };
    match col.dtype() {
        DataType::String => Ok(Some(col.str()?.iter().map(|v| v.map(|s| s.as_bytes().to_vec())).collect())),
        DataType::Binary => Ok(Some(col.binary()?.iter().map(|v| v.map(<[u8]>::to_vec)).collect())),
        other => bail!("{}: column `{name}` has type {other}, expected string or binary", path.display()),
    }
}

fn string_column(df: &DataFrame, name: &str, path: &Path) -> Result<Option<Vec<Option<String>>>> {
    Ok(bytes_column(df, name, path)?
        .map(|col| col.into_iter().map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned())).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use polars::df;
    use polars::prelude::ParquetWriter;

    #[test]
    fn reads_content_lang_and_path_and_ignores_other_columns() {
        let dir = std::env::temp_dir().join(format!("codescale-documents-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("docs.parquet");
        let mut df = df!(
            "content" => ["print(1)\n", "fn main() {}\n"],
            "lang" => [Some("python"), None],
            "stars" => [3i64, 4],
        )
        .unwrap();
        ParquetWriter::new(File::create(&file).unwrap()).finish(&mut df).unwrap();
        let docs = read_documents(&file, &Columns::default()).unwrap();
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].content, b"print(1)\n");
        assert_eq!(docs[0].lang.as_deref(), Some("python"));
        assert_eq!(docs[1].lang, None);
        assert_eq!(docs[1].path, None);

        let mut no_content = df!("text" => ["x"]).unwrap();
        ParquetWriter::new(File::create(&file).unwrap()).finish(&mut no_content).unwrap();
        let err = read_documents(&file, &Columns::default()).unwrap_err().to_string();
        assert!(err.contains("no `content` column") && err.contains("text"), "{err}");
        let columns = Columns { content: "text".into(), ..Columns::default() };
        assert_eq!(read_documents(&file, &columns).unwrap()[0].content, b"x");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
