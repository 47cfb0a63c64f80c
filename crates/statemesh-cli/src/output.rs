//! Standard output that a reader may stop reading.
//!
//! `println!` panics when stdout is a pipe whose reader has gone
//! (`statemesh list big | head`). Every command writes through [`line()`]
//! instead, which ends the command quietly with status 0 then, as `cat`
//! and `grep` do when their reader leaves.

use std::fmt;
use std::io::Write;

/// Writes one line to standard output.
///
/// # Errors
///
/// [`crate::Exit`]`(0)` when the reader has gone, so the command stops
/// without a message; any other write failure as an error that says so.
pub(crate) fn line(args: fmt::Arguments<'_>) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{args}") {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Err(crate::Exit(0).into()),
        Err(e) => Err(anyhow::anyhow!("writing to standard output: {e}")),
    }
}

/// `println!` through [`line()`], returning early from the enclosing
/// function when the reader has gone.
macro_rules! outln {
    () => {
        $crate::output::line(format_args!(""))?
    };
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))?
    };
}
pub(crate) use outln;
