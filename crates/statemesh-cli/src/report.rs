//! `status`, `health` and `members list`: every member's account of itself,
//! as a table or as JSON. Roles are written the same way in both.

use crate::output::outln;
use clap::ValueEnum;
use serde_json::json;
use statemesh::{ClusterReport, MemberReport};

/// How a command prints what it found.
#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub(crate) enum Output {
    /// Columns for people.
    #[default]
    Table,
    /// One JSON document for programs.
    Json,
}

/// `statemesh status`: each member, then each group on each member.
pub(crate) fn status(r: &ClusterReport, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json => outln!("{}", serde_json::to_string_pretty(&status_json(r))?),
        Output::Table => {
            members_table(r, false)?;
            outln!();
            outln!(
                "{:<16} {:<18} {:<10} {:<18} {:>6} {:>9} {:>6}",
                "GROUP",
                "NODE",
                "ROLE",
                "LEADER",
                "TERM",
                "APPLIED",
                "LAG"
            );
            for g in r.groups() {
                for m in &r.members {
                    let own = m
                        .status
                        .as_ref()
                        .and_then(|s| s.groups.iter().find(|(n, _)| *n == g));
                    let Some((_, s)) = own else {
                        let cannot = m
                            .status
                            .as_ref()
                            .is_some_and(|s| s.unhosted.contains_key(&g));
                        let why = if !m.reachable {
                            "(no answer)"
                        } else if cannot {
                            "(cannot host it: see `statemesh health`)"
                        } else {
                            "(not hosted)"
                        };
                        outln!("{g:<16} {:<18} {why}", m.id);
                        continue;
                    };
                    outln!(
                        "{g:<16} {:<18} {:<10} {:<18} {:>6} {:>9} {:>6}",
                        m.id,
                        s.role.to_string(),
                        s.leader.map_or_else(|| "-".to_owned(), |l| l.to_string()),
                        s.term,
                        s.applied,
                        lag(r, m, &g),
                    );
                }
            }
        }
    }
    Ok(())
}

/// `statemesh health`: whether every member answers and every group has
/// a leader. Returns whether it is healthy.
pub(crate) fn health(r: &ClusterReport, output: Output) -> anyhow::Result<bool> {
    let problems = r.problems();
    let healthy = problems.is_empty();
    let answered = r.members.iter().filter(|m| m.reachable).count();
    let groups = r.groups().len();
    match output {
        Output::Json => outln!(
            "{}",
            serde_json::to_string_pretty(&json!({
                "healthy": healthy,
                "members": r.members.len(),
                "answered": answered,
                "groups": groups,
                "problems": problems,
            }))?
        ),
        Output::Table if healthy => outln!(
            "healthy: {answered} of {} members answered, {}",
            r.members.len(),
            if groups == 1 {
                "the group has a leader".to_owned()
            } else {
                format!("all {groups} groups have a leader")
            }
        ),
        Output::Table => {
            outln!(
                "unhealthy: {answered} of {} members answered",
                r.members.len()
            );
            for p in &problems {
                outln!("  {p}");
            }
        }
    }
    Ok(healthy)
}

/// `statemesh members list`.
pub(crate) fn members(r: &ClusterReport, output: Output) -> anyhow::Result<()> {
    match output {
        Output::Json => {
            let list: Vec<_> = r.members.iter().map(|m| member_json(r, m)).collect();
            outln!("{}", serde_json::to_string_pretty(&list)?);
        }
        Output::Table => members_table(r, true)?,
    }
    Ok(())
}

fn members_table(r: &ClusterReport, roles: bool) -> anyhow::Result<()> {
    let mut header = format!(
        "{:<18} {:<22} {:<7} {:<10} {:<13}",
        "ID", "ADDRESS", "ROLE", "REACHABLE", "LAST CONTACT"
    );
    if roles {
        header.push_str(&format!(" {:<6} ROLES", "LAG"));
    }
    outln!("{}", header.trim_end());
    for m in &r.members {
        let mut line = format!(
            "{:<18} {:<22} {:<7} {:<10} {:<13}",
            m.id,
            m.address,
            m.role.to_string(),
            if m.reachable { "yes" } else { "no" },
            contact(m.last_contact_ms),
        );
        if roles {
            let worst = r.groups().iter().filter_map(|g| r.lag(m.id, g)).max();
            let roles = m.status.as_ref().map_or_else(
                || "-".to_owned(),
                |s| {
                    s.groups
                        .iter()
                        .map(|(g, st)| format!("{g}:{}", st.role))
                        .collect::<Vec<_>>()
                        .join(" ")
                },
            );
            line.push_str(&format!(
                " {:<6} {roles}",
                worst.map_or_else(|| "-".to_owned(), |l| l.to_string())
            ));
        }
        outln!("{}", line.trim_end());
    }
    Ok(())
}

fn contact(ms: Option<u64>) -> String {
    match ms {
        None => "never".to_owned(),
        Some(ms) if ms < 1_000 => "now".to_owned(),
        Some(ms) => format!("{:.0}s ago", ms as f64 / 1000.0),
    }
}

fn lag(r: &ClusterReport, m: &MemberReport, group: &str) -> String {
    r.lag(m.id, group)
        .map_or_else(|| "-".to_owned(), |l| l.to_string())
}

fn member_json(r: &ClusterReport, m: &MemberReport) -> serde_json::Value {
    let groups: serde_json::Map<String, serde_json::Value> = m
        .status
        .iter()
        .flat_map(|s| &s.groups)
        .map(|(g, s)| {
            (
                g.clone(),
                json!({
                    "role": s.role,
                    "leader": s.leader,
                    "term": s.term,
                    "applied": s.applied,
                    "lag": r.lag(m.id, g),
                }),
            )
        })
        .collect();
    json!({
        "id": m.id,
        "address": m.address,
        "role": m.role,
        "reachable": m.reachable,
        "last_contact_ms": m.last_contact_ms,
        "error": m.error,
        "groups": groups,
        "unhosted": m.status.as_ref().map(|s| &s.unhosted),
    })
}

/// Each group as its leader sees it: replicas, version, the furthest
/// behind replica's lag, and the mirrors following it from any member.
fn group_json(r: &ClusterReport, g: &str) -> serde_json::Value {
    let leader = r.leader_status(g);
    let replicas: Vec<_> = leader
        .iter()
        .flat_map(|s| {
            let voters = s.voters.iter().map(|id| (id, "voter"));
            voters.chain(s.learners.iter().map(|id| (id, "learner")))
        })
        .map(|(id, kind)| json!({ "id": id, "kind": kind, "lag": r.lag(*id, g) }))
        .collect();
    let worst = r.members.iter().filter_map(|m| r.lag(m.id, g)).max();
    json!({
        "name": g,
        "leader": r.leader(g),
        "term": leader.map(|s| s.term),
        "version": leader.map(|s| s.applied),
        "replicas": replicas,
        "lag": worst,
        "mirrors": r.mirrors(g),
    })
}

/// What `status --output json` prints, and what the status page shows.
pub(crate) fn status_json(r: &ClusterReport) -> serde_json::Value {
    let groups: Vec<_> = r.groups().iter().map(|g| group_json(r, g)).collect();
    let problems = r.problems();
    json!({
        "asked": r.asked,
        "healthy": problems.is_empty(),
        "members": r.members.iter().map(|m| member_json(r, m)).collect::<Vec<_>>(),
        "groups": groups,
        "problems": problems,
    })
}
