//! What the `statemesh` command line hosts and speaks, for programs that
//! embed a node yet want the command line to work against it: the
//! standard collection kinds and the JSON event hooks behind
//! `statemesh event`.
//!
//! ```
//! use statemesh_cli::kinds::{self, JsonEvents};
//! use statemesh::StateMachine;
//! use statemesh::hooks::Hooked;
//!
//! let hosted = kinds::standard();
//! let events = Hooked::new(JsonEvents).unwrap();
//! assert!(hosted.knows(&events.signature()));
//! ```

pub mod kinds;
