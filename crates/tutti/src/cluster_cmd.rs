//! `tutti cluster status`: the nodes of a multi-node deployment (issue 14) as they registered
//! themselves on NATS (`tutti_bus::Nodes`), and each show's conductor from the lease bucket
//! (`tutti_bus::lease_holders`). Reads only: it makes no bucket and writes nothing.

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use serde_json::json;
use tutti_bus::{LeaseEntry, NodeList, NodeRecord};

/// `tutti cluster …`.
#[derive(Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCmd,
}

#[derive(Subcommand)]
enum ClusterCmd {
    /// The registered nodes (id, role, shows, leading, last seen) and each show's conductor.
    Status(StatusArgs),
}

#[derive(Args)]
struct StatusArgs {
    /// The NATS server the nodes share.
    #[arg(long, env = "TUTTI_NATS", value_name = "nats://HOST:PORT")]
    nats: String,
    /// One JSON object on standard output, for machines.
    #[arg(long)]
    json: bool,
    /// The registry's bucket.
    #[arg(long, default_value = tutti_bus::NODES_BUCKET)]
    nodes_bucket: String,
    /// The leases' bucket.
    #[arg(long, default_value = tutti_bus::LEASES_BUCKET)]
    leases_bucket: String,
    /// Seconds to wait for NATS.
    #[arg(long, default_value_t = 5.0, value_parser = positive_secs)]
    timeout: f64,
}

fn positive_secs(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= 600.0 => Ok(v),
        _ => Err(format!("must be seconds in (0, 600], got '{s}'")),
    }
}

/// NATS could not be reached, or did not answer the buckets' reads (the binary's "could
/// not be reached" code, as for the management server).
const UNREACHABLE: u8 = 3;

/// Runs `tutti cluster …`; its exit code.
pub fn command(args: ClusterArgs) -> ExitCode {
    match args.command {
        ClusterCmd::Status(a) => status_command(&a),
    }
}

fn status_command(a: &StatusArgs) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tutti cluster status: tokio runtime: {e}");
            return ExitCode::from(70);
        }
    };
    match rt.block_on(read(a)) {
        Ok((nodes, leases)) => {
            let now = now_ms();
            if a.json {
                println!("{}", to_json(&a.nats, &nodes, &leases, now));
            } else {
                print!("{}", to_table(&a.nats, &nodes, &leases, now));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("tutti cluster status: {e}");
            ExitCode::from(UNREACHABLE)
        }
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

async fn read(a: &StatusArgs) -> Result<(NodeList, Vec<LeaseEntry>), String> {
    let wait = Duration::from_secs_f64(a.timeout);
    let bus = tutti_bus::connect(&a.nats, wait)
        .await
        .map_err(|e| e.to_string())?;
    let within = |what: &str| format!("NATS at {} did not answer {what} within {wait:?}", a.nats);
    let nodes =
        match tokio::time::timeout(wait, tutti_bus::Nodes::existing(&bus, &a.nodes_bucket)).await {
            Err(_) => return Err(within("the registry's read")),
            Ok(Err(e)) => return Err(format!("NATS at {}: {e}", a.nats)),
            Ok(Ok(None)) => NodeList::default(),
            Ok(Ok(Some(nodes))) => match tokio::time::timeout(wait, nodes.list()).await {
                Err(_) => return Err(within("the registry's read")),
                Ok(Err(e)) => return Err(format!("NATS at {}: {e}", a.nats)),
                Ok(Ok(list)) => list,
            },
        };
    let leases =
        match tokio::time::timeout(wait, tutti_bus::lease_holders(&bus, &a.leases_bucket)).await {
            Err(_) => return Err(within("the leases' read")),
            Ok(Err(e)) => return Err(format!("NATS at {}: {e}", a.nats)),
            Ok(Ok(l)) => l,
        };
    Ok((nodes, leases))
}

/// The term the holder of `lease` reports for it (its registry record), if it is registered.
fn term(nodes: &NodeList, lease: &LeaseEntry) -> Option<u64> {
    nodes
        .nodes
        .iter()
        .find(|n| n.id == lease.holder)
        .and_then(|n| n.shows.iter().find(|s| s.code == lease.show))
        .map(|s| s.term)
        .filter(|t| *t > 0)
}

fn ago_ms(n: &NodeRecord, now: i64) -> i64 {
    now.saturating_sub(n.at_ms).max(0)
}

fn to_json(url: &str, nodes: &NodeList, leases: &[LeaseEntry], now: i64) -> serde_json::Value {
    json!({
        "nats": url,
        "nodes": nodes.nodes.iter().map(|n| json!({
            "id": n.id,
            "role": n.role.as_str(),
            "shows": n.shows.iter().map(|s| json!({
                "code": s.code,
                "leading": s.leading,
                "term": s.term,
                "counters": s.counters,
            })).collect::<Vec<_>>(),
            "bus": n.bus,
            "connected": n.connected,
            "at_ms": n.at_ms,
            "last_seen_ms_ago": ago_ms(n, now),
        })).collect::<Vec<_>>(),
        "unreadable": nodes.unreadable,
        "shows": leases.iter().map(|l| json!({
            "show": l.show,
            "conductor": l.holder,
            "term": term(nodes, l),
            "revision": l.revision,
        })).collect::<Vec<_>>(),
    })
}

/// Rows as aligned columns.
fn table(rows: &[Vec<String>]) -> String {
    let mut widths = vec![0; rows.first().map_or(0, Vec::len)];
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let mut out = String::new();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn to_table(url: &str, nodes: &NodeList, leases: &[LeaseEntry], now: i64) -> String {
    let mut out = format!("NATS {url}\n\n");
    if nodes.nodes.is_empty() {
        out.push_str("nodes: none registered\n");
    } else {
        out.push_str(&format!("nodes: {}\n", nodes.nodes.len()));
        let mut rows = vec![["ID", "ROLE", "SHOWS", "LEADING", "BUS", "LAST SEEN"]
            .map(String::from)
            .to_vec()];
        for n in &nodes.nodes {
            let list = |f: &dyn Fn(&tutti_bus::ServedShow) -> bool| {
                let v: Vec<&str> = n
                    .shows
                    .iter()
                    .filter(|s| f(s))
                    .map(|s| s.code.as_str())
                    .collect();
                if v.is_empty() {
                    "-".to_owned()
                } else {
                    v.join(",")
                }
            };
            rows.push(vec![
                n.id.clone(),
                n.role.as_str().to_owned(),
                list(&|_| true),
                list(&|s| s.leading),
                if n.connected {
                    n.bus.clone()
                } else {
                    format!("{} (disconnected)", n.bus)
                },
                format!("{:.1}s ago", ago_ms(n, now) as f64 / 1000.0),
            ]);
        }
        out.push_str(&table(&rows));
    }
    if !nodes.unreadable.is_empty() {
        out.push_str(&format!(
            "unreadable records (ignored): {} ({})\n",
            nodes.unreadable.len(),
            nodes.unreadable.join(", ")
        ));
    }
    out.push('\n');
    if leases.is_empty() {
        out.push_str("shows: no conductor holds a lease\n");
    } else {
        out.push_str(&format!("shows: {}\n", leases.len()));
        let mut rows = vec![["SHOW", "CONDUCTOR", "TERM", "REVISION"]
            .map(String::from)
            .to_vec()];
        for l in leases {
            rows.push(vec![
                l.show.clone(),
                l.holder.clone(),
                term(nodes, l).map_or_else(|| "?".to_owned(), |t| t.to_string()),
                l.revision.to_string(),
            ]);
        }
        out.push_str(&table(&rows));
    }
    out
}
