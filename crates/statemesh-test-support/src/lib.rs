//! Test-only helpers shared by the statemesh crates' tests.
//!
//! - [`fuzz`]: the driver every fuzz target uses: mutations of valid
//!   encodings handed to a decoder that must never panic.
//! - [`eventually`] and [`eventually_async`]: wait for a condition with a
//!   deadline, naming what was awaited when it passes.

pub mod fuzz;
mod wait;

pub use wait::{eventually, eventually_async};
