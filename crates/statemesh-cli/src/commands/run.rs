//! Running a client command: one arm per command, each a request or two
//! and a JSON line of output.

use super::args::{CellCommand, ClientCommand, MembersCommand};
use super::follow::Follow;
use super::json::{json_or_stdin, optional_json, show};
use crate::connect::ConnectArgs;
use crate::output::outln;
use crate::readable::ReadableMap;
use crate::report;
use anyhow::bail;
use statemesh::hooks::Hooked;
use statemesh::{ClientError, Consistency, Json, Member, MemberRole, RemoteMap};
use statemesh_cli::kinds::JsonEvents;

async fn map(connect: &ConnectArgs, name: &str) -> anyhow::Result<RemoteMap<String, Json>> {
    let client = connect.client().await?;
    Ok(client.map::<String, Json>(name).await?)
}

pub(crate) async fn run(command: ClientCommand) -> anyhow::Result<()> {
    match command {
        ClientCommand::Status { output, connect } => {
            report::status(&connect.client().await?.report().await?, output)?;
        }
        ClientCommand::Health { output, connect } => {
            if !report::health(&connect.client().await?.report().await?, output)? {
                return Err(crate::Exit(1).into());
            }
        }
        ClientCommand::Get {
            map: name,
            key,
            local,
            connect,
        } => {
            let consistency = if local {
                Consistency::Local
            } else {
                Consistency::Linearizable
            };
            let client = connect.client().await?;
            let m = ReadableMap::open(&client, &name, consistency).await?;
            let got = m.get(&key).await.map_err(|e| {
                if matches!(e.downcast_ref(), Some(ClientError::NoQuorum { .. })) {
                    e.context(
                        "a read through the leader needs a quorum (--local reads the \
                         answering node's copy, possibly stale)",
                    )
                } else {
                    e
                }
            })?;
            match got {
                Some(v) => outln!("{v}"),
                None => bail!("map {name:?} has no key {key:?}"),
            }
        }
        ClientCommand::Put {
            map: name,
            key,
            value,
            connect,
        } => {
            let value = json_or_stdin(&value)?;
            let (previous, version) = map(&connect, &name).await?.insert(key, value).await?;
            outln!(
                r#"{{"previous":{},"version":{version}}}"#,
                show(previous.as_ref())
            );
        }
        ClientCommand::Cas {
            map: name,
            key,
            expected,
            new,
            connect,
        } => {
            let (expected, new) = (optional_json(&expected)?, optional_json(&new)?);
            let (r, version) = map(&connect, &name)
                .await?
                .compare_exchange(key, expected, new)
                .await?;
            match r {
                Ok(prev) => outln!(
                    r#"{{"swapped":true,"previous":{},"version":{version}}}"#,
                    show(prev.as_ref())
                ),
                Err(current) => {
                    outln!(
                        r#"{{"swapped":false,"current":{},"version":{version}}}"#,
                        show(current.as_ref())
                    );
                    // Like a miss in grep: scripts tell it from a swap.
                    return Err(crate::Exit(2).into());
                }
            }
        }
        ClientCommand::Del {
            map: name,
            key,
            connect,
        } => {
            let (previous, version) = map(&connect, &name).await?.remove(key).await?;
            outln!(
                r#"{{"previous":{},"version":{version}}}"#,
                show(previous.as_ref())
            );
        }
        ClientCommand::List { map: name, connect } => {
            let client = connect.client().await?;
            let m = ReadableMap::open(&client, &name, Consistency::Linearizable).await?;
            for (k, v) in m.list().await? {
                outln!(r#"{{"key":{},"value":{v}}}"#, serde_json::Value::String(k));
            }
        }
        ClientCommand::Cell(CellCommand::Get { name, connect }) => {
            let cell: statemesh::RemoteCell<Json> =
                connect.client().await?.open_existing(&name).await?;
            outln!("{}", show(cell.read().await?.as_ref()));
        }
        ClientCommand::Cell(CellCommand::Set {
            name,
            value,
            connect,
        }) => {
            let value = json_or_stdin(&value)?;
            let cell = connect.client().await?.cell::<Json>(&name).await?;
            let (previous, version) = cell.write(value).await?;
            outln!(
                r#"{{"previous":{},"version":{version}}}"#,
                show(previous.as_ref())
            );
        }
        ClientCommand::Watch {
            name,
            kind,
            count,
            connect,
        } => {
            let follow = Follow {
                name: &name,
                dir: None,
                count,
                print_state: false,
            };
            follow.run_kind(kind, &connect).await?;
        }
        ClientCommand::Mirror {
            name,
            kind,
            dir,
            count,
            connect,
        } => {
            let follow = Follow {
                name: &name,
                dir,
                count,
                print_state: true,
            };
            follow.run_kind(kind, &connect).await?;
        }
        ClientCommand::Event {
            name,
            event,
            connect,
        } => {
            let event = json_or_stdin(&event)?;
            let hooked = Hooked::new(JsonEvents)?;
            let collection = connect.client().await?.open_with(&name, &hooked).await?;
            let (answer, version) = collection.send_event(event).await?;
            match answer {
                Ok(output) => outln!(r#"{{"output":{output},"version":{version}}}"#),
                Err(refusal) => {
                    bail!("the hooks refused the event at version {version}: {refusal}")
                }
            }
        }
        ClientCommand::Members(m) => members(m).await?,
        ClientCommand::Snapshot {
            collection,
            connect,
        } => {
            connect.client().await?.snapshot(&collection).await?;
            outln!("snapshot of {collection:?} written");
        }
    }
    Ok(())
}

async fn members(command: MembersCommand) -> anyhow::Result<()> {
    match command {
        MembersCommand::List { output, connect } => {
            report::members(&connect.client().await?.report().await?, output)?;
        }
        MembersCommand::Add {
            id,
            address,
            role,
            connect,
        } => {
            let role = match role {
                crate::node::RoleArg::Voter => MemberRole::Voter,
                crate::node::RoleArg::Reader => MemberRole::Reader,
            };
            connect
                .client()
                .await?
                .join(id, Member { address, role })
                .await?;
            outln!("node {id} added");
        }
        MembersCommand::Remove { id, connect } => {
            connect.client().await?.leave(id).await?;
            outln!("node {id} removed");
        }
        MembersCommand::Promote { id, connect } => {
            let client = connect.client().await?;
            let status = client.status().await?;
            let Some(member) = status.members.get(&id) else {
                bail!("node {id} is not a member");
            };
            let member = Member {
                address: member.address.clone(),
                role: MemberRole::Voter,
            };
            client.join(id, member).await?;
            outln!("node {id} may vote");
        }
    }
    Ok(())
}
