//! What the command logs, and where: `STATEMESH_LOG`, checked before
//! anything starts, with openraft's internals below the default level.
//!
//! openraft logs every failed call to a peer at WARN or ERROR, a heartbeat
//! at a time: one dead peer made the survivors write thousands of lines a
//! minute. The node reports a peer that stops or starts answering itself,
//! once (`statemesh::network`), so openraft's own lines are shown only to
//! someone who asks for debugging output or names openraft.

use std::env::VarError;
use std::io::IsTerminal;
use tracing_subscriber::EnvFilter;

const LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// Sets up logging to stderr (coloured only on a terminal), at `level`
/// unless `STATEMESH_LOG` says otherwise.
///
/// # Errors
///
/// `STATEMESH_LOG` is not a list of `LEVEL` and `TARGET=LEVEL`.
pub(crate) fn init(level: &str) -> Result<(), String> {
    let spec = match std::env::var("STATEMESH_LOG") {
        Ok(s) => {
            check(&s)?;
            s
        }
        Err(VarError::NotPresent) => level.to_owned(),
        Err(VarError::NotUnicode(_)) => return Err("STATEMESH_LOG is not UTF-8".into()),
    };
    let mut filter = EnvFilter::builder()
        .parse(&spec)
        .map_err(|e| format!("STATEMESH_LOG={spec:?}: {e}"))?;
    if !shows_openraft(&spec) {
        filter = filter.add_directive("openraft=off".parse().map_err(|e| format!("{e}"))?);
    }
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    Ok(())
}

/// Whether `spec` asks for openraft's lines: it names openraft, or sets
/// the level of everything to debug or finer.
fn shows_openraft(spec: &str) -> bool {
    spec.split(',')
        .map(str::trim)
        .any(|d| d.starts_with("openraft") || d == "debug" || d == "trace")
}

/// Refuses what `EnvFilter` would take silently: a bare word that is not a
/// level is read as a target name, so a misspelt level (`degub`) would
/// turn all logging off but that target's.
fn check(spec: &str) -> Result<(), String> {
    for d in spec.split(',').map(str::trim) {
        let level = match d.split_once('=') {
            Some((target, level)) if !target.is_empty() => level,
            _ => d,
        };
        // Span filters (`target[span{field=value}]=level`) are left to
        // the parser.
        if !d.contains('[') && !LEVELS.contains(&level.to_ascii_lowercase().as_str()) {
            return Err(format!(
                "STATEMESH_LOG={spec:?}: {d:?} is not a level ({}) or TARGET=LEVEL",
                LEVELS.join(", ")
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_targets_pass_and_misspellings_do_not() {
        for ok in [
            "info",
            "DEBUG",
            "info,openraft=debug",
            "statemesh::network=trace, warn",
        ] {
            assert!(check(ok).is_ok(), "{ok}");
        }
        for bad in ["degub", "", "info,", "statemesh", "statemesh=loud", "=info"] {
            let e = check(bad).unwrap_err();
            assert!(e.starts_with("STATEMESH_LOG="), "{e}");
        }
    }

    #[test]
    fn openraft_shows_only_when_asked_for() {
        assert!(!shows_openraft("info"));
        assert!(!shows_openraft("statemesh=debug"));
        assert!(shows_openraft("debug"));
        assert!(shows_openraft("info,openraft=warn"));
    }
}
