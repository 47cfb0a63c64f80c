//! `watch` and `mirror`: following a collection through a [`Mirror`] and
//! printing what changes, resetting on a lag instead of losing changes
//! silently.

use super::args::Kind;
use super::printed::Printed;
use crate::connect::ConnectArgs;
use crate::output::outln;
use anyhow::{Context, bail};
use statemesh::collections::{CellState, MapState};
use statemesh::hooks::Hooked;
use statemesh::{Client, Json, Mirror, MirrorOptions, Mirrored, Resync, Update};
use statemesh_cli::kinds::JsonEvents;
use tokio::sync::broadcast;

pub(super) struct Follow<'a> {
    pub(super) name: &'a str,
    pub(super) dir: Option<std::path::PathBuf>,
    pub(super) count: Option<usize>,
    /// Print the state first (`mirror`) or only what changes (`watch`).
    pub(super) print_state: bool,
}

impl Follow<'_> {
    /// Follows a collection of `kind` through a client made from `connect`.
    pub(super) async fn run_kind(&self, kind: Kind, connect: &ConnectArgs) -> anyhow::Result<()> {
        let client = connect.client().await?;
        match kind {
            Kind::Map => self.run(&client, MapState::<String, Json>::default()).await,
            Kind::Cell => self.run(&client, CellState::<Json>::default()).await,
            Kind::Events => self.run(&client, Hooked::new(JsonEvents)?).await,
        }
    }

    /// Mirrors the collection and prints it as JSON lines: a map's entries
    /// (`"removed":true` for keys that went, `"cleared":true` when all
    /// did), a cell's value; a `"reset"` line before a whole state.
    async fn run<SM>(&self, client: &Client, initial: SM) -> anyhow::Result<()>
    where
        SM: Mirrored + Printed,
    {
        let mut options = MirrorOptions::default();
        if let Some(dir) = &self.dir {
            options = options.persist_in(dir);
        }
        let mirror = Mirror::open_with(client, self.name, initial, options)
            .await
            .with_context(|| format!("mirroring {:?}", self.name))?;
        let mut updates = mirror.updates();
        let (lines, mut version) = mirror.read_versioned(|sm| sm.lines());
        let received = if mirror.stats().full_states > 0 {
            "the whole state".to_owned()
        } else {
            format!(
                "the changes since version {}",
                mirror.resumed_from().unwrap_or(0)
            )
        };
        eprintln!(
            "mirroring {:?} at version {version}: received {received}",
            self.name
        );
        if self.print_state {
            for line in lines {
                outln!(r#"{{"version":{version},{line}}}"#);
            }
        }
        let mut printed = 0;
        while self.count.is_none_or(|c| printed < c) {
            let next = tokio::select! {
                next = updates.recv() => next,
                why = mirror.until_stopped() => bail!(why.to_string()),
            };
            let update = match next {
                Ok(u) => u,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    // Too far behind to print each change: print the state.
                    let (lines, v) = mirror.read_versioned(|sm| sm.lines());
                    outln!(r#"{{"version":{v},"reset":"lagged"}}"#);
                    for line in lines {
                        outln!(r#"{{"version":{v},{line}}}"#);
                    }
                    version = v;
                    continue;
                }
                Err(broadcast::error::RecvError::Closed) => {
                    let why = mirror
                        .stopped()
                        .map_or_else(|| "the mirror stopped".to_owned(), |e| e.to_string());
                    bail!(why);
                }
            };
            match &*update {
                Update::Changes { to, .. } if *to <= version => {}
                Update::Changes { to, changes, .. } => {
                    version = *to;
                    for change in changes {
                        outln!(r#"{{"version":{to},{}}}"#, SM::change_line(change));
                        printed += 1;
                    }
                }
                Update::Reset { version: v, reason } => {
                    version = *v;
                    let reason = match reason {
                        Resync::Behind => "behind",
                        Resync::TooSlow => "too slow",
                    };
                    outln!(r#"{{"version":{v},"reset":"{reason}"}}"#);
                    for line in mirror.read_with(SM::lines) {
                        outln!(r#"{{"version":{v},{line}}}"#);
                    }
                }
            }
        }
        mirror.close().await?;
        Ok(())
    }
}
