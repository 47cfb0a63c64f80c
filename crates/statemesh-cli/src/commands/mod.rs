//! The commands that talk to a running cluster.
//!
//! Split by concern: the command line's shape (`args`), running each
//! command (`run`), following a collection (`follow`, `printed`) and
//! JSON arguments (`json`); this file only declares and re-exports.

mod args;
mod follow;
mod json;
mod printed;
mod run;

pub(crate) use args::{ClientCommand, Kind};
pub(crate) use run::run;
