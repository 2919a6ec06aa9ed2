//! `webhook-worker check`: comparing the broker's topology with the
//! configured one without changing anything.
//!
//! AMQP has no "describe queue". A *passive* declare only tells whether a
//! queue exists; a normal declare compares the arguments but would create
//! a missing queue. So each exchange and queue is first declared
//! passively: missing ones are reported, never created. One that exists is
//! then declared again with exactly the configured arguments, which the
//! broker treats as a no-op when they are equivalent and refuses with
//! `PRECONDITION_FAILED`, naming the differing argument, when they are not
//! (the refusal closes only the channel; nothing changes either way). The
//! one thing that could change is a queue deleted by someone else between
//! the two declares, which the second would create as configured.
//!
//! `P.log`, a stream, compares like the queues (its `x-max-age`,
//! `x-max-length-bytes` and segment size); `P.outcomes` like `P`, as a
//! topic exchange.
//!
//! A `P.dead` that differs only by lacking the `x-delivery-limit` this
//! release declares is reported as [`Finding::Exposed`]: an earlier
//! release declared it, and the `dead` commands' reads may drop its
//! messages on RabbitMQ 4.0 and later (see [`super::dead_reads`]).
//!
//! With shards (`WEBHOOK_SHARDS` above 1) it also compares the shard
//! count (see [`super::shards`]), each tier's fanout exchange and, last,
//! `P.shards`, whose declare is also how a missing consistent-hash plugin
//! shows (the broker then closes the connection, so nothing can follow).
//! When `P.shards` does not exist yet, a throwaway exchange
//! `P.shards.plugin-check` is declared and deleted to ask for the plugin.
//!
//! The binding of `P.deliveries` to `P` is not checked: AMQP cannot ask
//! about it without creating it (`declare` and `run` add it).

use lapin::{
    Channel, Connection, ExchangeKind,
    options::{ExchangeDeclareOptions, QueueDeclareOptions},
    types::FieldTable,
};

use super::{
    dead_reads::{DELIVERY_LIMIT_ARG, exposed_advice, legacy},
    shards::{self, HASH_PLUGIN},
    topology::{QueueSpec, Topology, inequivalence},
};

/// How one exchange or queue compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Finding {
    /// It exists with the configured type and arguments.
    Matches,
    /// It does not exist.
    Missing,
    /// `P.dead` as an earlier release declared it: usable, but reads may
    /// drop parked messages on RabbitMQ 4.0 and later (see
    /// [`super::dead_reads`]).
    Exposed {
        /// What to do about it.
        advice: String,
    },
    /// It exists with another type or arguments.
    Differs {
        /// The differing argument, as the broker names it (or `type`).
        argument: String,
        /// The broker's own words.
        detail: String,
    },
}

/// One exchange or queue and how it compares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    /// `exchange` or `queue`.
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// How it compares.
    pub finding: Finding,
}

/// Compares every exchange and queue of `topology` with the broker's.
pub async fn check(conn: &Connection, topology: &Topology) -> Result<Vec<Checked>, lapin::Error> {
    let mut out = Vec::new();
    for (name, kind) in [
        (topology.exchange(), ExchangeKind::Fanout),
        (topology.outcomes(), ExchangeKind::Topic),
    ] {
        out.push(Checked {
            kind: "exchange",
            name: name.to_string(),
            finding: compare_exchange(conn, name, kind).await?,
        });
    }
    for q in topology.queues() {
        let mut finding = compare_queue(conn, &q).await?;
        if let (Finding::Differs { argument, .. }, Some(legacy)) = (&finding, legacy(&q))
            && argument == DELIVERY_LIMIT_ARG
        {
            // declared by an earlier release: exposed when it matches that
            // form, else what differs from that form is the news
            finding = match compare_queue(conn, &legacy).await? {
                Finding::Matches => Finding::Exposed {
                    advice: exposed_advice(&q.name),
                },
                other => other,
            };
        }
        out.push(Checked {
            kind: "queue",
            name: q.name.clone(),
            finding,
        });
    }
    out.push(shard_count(conn, topology).await?);
    if topology.is_sharded() {
        check_shard_exchanges(conn, topology, &mut out).await?;
    }
    Ok(out)
}

/// Whether the broker has the configured number of work queues.
async fn shard_count(conn: &Connection, topology: &Topology) -> Result<Checked, lapin::Error> {
    let found = shards::broker_shards(conn, topology).await?;
    let finding = if found == shards::BrokerShards::None {
        Finding::Missing
    } else if found.agrees_with(topology.shards()) {
        Finding::Matches
    } else {
        Finding::Differs {
            argument: "shard count".into(),
            detail: format!(
                "the broker has {}, configured {}",
                found.describe(topology.prefix()),
                topology.shards()
            ),
        }
    };
    Ok(Checked {
        kind: "shards",
        name: format!("{}.deliveries*", topology.prefix()),
        finding,
    })
}

/// The tiers' fanout exchanges, then `P.shards` and the plugin.
async fn check_shard_exchanges(
    conn: &Connection,
    topology: &Topology,
    out: &mut Vec<Checked>,
) -> Result<(), lapin::Error> {
    for (tier, _) in topology.tiers().iter() {
        let name = topology.retry_queue(tier);
        let finding = compare_exchange(conn, &name, ExchangeKind::Fanout).await?;
        out.push(Checked {
            kind: "exchange",
            name,
            finding,
        });
    }
    let hash = shards::hash_exchange(topology);
    let finding = compare(conn, async |ch: &Channel, passive| {
        shards::declare_hash_exchange(ch, &hash, passive).await
    })
    .await;
    let plugin = match finding {
        Err(e) if shards::is_missing_plugin(&e) => Finding::Missing,
        Err(e) => return Err(e),
        Ok(finding) => {
            let missing = finding == Finding::Missing;
            out.push(Checked {
                kind: "exchange",
                name: hash,
                finding,
            });
            if missing && !shards::hash_plugin_enabled(conn, topology).await? {
                Finding::Missing
            } else {
                Finding::Matches
            }
        }
    };
    out.push(Checked {
        kind: "plugin",
        name: HASH_PLUGIN.into(),
        finding: plugin,
    });
    Ok(())
}

/// How one exchange compares (its type, durable, no arguments).
async fn compare_exchange(
    conn: &Connection,
    name: &str,
    kind: ExchangeKind,
) -> Result<Finding, lapin::Error> {
    compare(conn, async |ch: &Channel, passive| {
        ch.exchange_declare(
            name.into(),
            kind.clone(),
            ExchangeDeclareOptions {
                passive,
                durable: true,
                ..Default::default()
            },
            FieldTable::default(),
        )
        .await
    })
    .await
}

async fn compare_queue(conn: &Connection, q: &QueueSpec) -> Result<Finding, lapin::Error> {
    compare(conn, async |ch: &Channel, passive| {
        let (options, arguments) = if passive {
            let options = QueueDeclareOptions {
                passive: true,
                ..Default::default()
            };
            (options, FieldTable::default())
        } else {
            (QueueDeclareOptions::durable(), q.arguments.clone())
        };
        ch.queue_declare(q.name.as_str().into(), options, arguments)
            .await
            .map(|_| ())
    })
    .await
}

/// Passive declare, then (when it exists) the identical declare, each on a
/// channel of its own, since a refusal closes the channel.
async fn compare(
    conn: &Connection,
    declare: impl AsyncFn(&Channel, bool) -> Result<(), lapin::Error>,
) -> Result<Finding, lapin::Error> {
    let channel = crate::broker::channel::open(conn).await?;
    match declare(&channel, true).await {
        Ok(()) => {}
        Err(e) if shards::is_not_found(&e) => return Ok(Finding::Missing),
        Err(e) => return Err(e),
    }
    let finding = match declare(&channel, false).await {
        Ok(()) => Finding::Matches,
        Err(e) => {
            let (argument, detail) = inequivalence(e)?;
            Finding::Differs { argument, detail }
        }
    };
    if channel.status().connected() {
        let _ = channel.close(200, "checked".into()).await;
    }
    Ok(finding)
}
