//! JSON values as the command line gives and shows them (`-` for
//! standard input or absent).

use anyhow::Context;
use statemesh::Json;

fn json(text: &str) -> anyhow::Result<Json> {
    text.parse()
        .with_context(|| format!("{text:?} is not JSON (quote strings: '\"text\"')"))
}

/// A JSON value from the command line, or from standard input if `-`.
pub(super) fn json_or_stdin(text: &str) -> anyhow::Result<Json> {
    if text != "-" {
        return json(text);
    }
    let mut all = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut all)
        .context("reading the value from standard input")?;
    all.trim()
        .parse()
        .context("standard input does not hold one JSON value")
}

pub(super) fn optional_json(text: &str) -> anyhow::Result<Option<Json>> {
    if text == "-" {
        Ok(None)
    } else {
        json(text).map(Some)
    }
}

pub(super) fn show(v: Option<&Json>) -> String {
    v.map_or_else(|| "null".to_owned(), ToString::to_string)
}
