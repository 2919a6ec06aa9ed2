//! The broker edge: everything that speaks AMQP. Above the domain, below
//! the worker's stages; nothing here decides what happens to a message.
//!
//! | module | role |
//! |---|---|
//! | [`url`] | `AMQP_URL`: the list of nodes, defaults and redaction |
//! | [`tls`] | `amqps://`: private CA and client certificate |
//! | [`connect`] | connecting over the nodes, with backoff, forever |
//! | [`channel`] | the one way to open a channel (past stale channel errors) |
//! | [`publisher`] | the one way to publish: `mandatory`, confirmed |
//! | [`topology`] | names, arguments and the idempotent declaration |
//! | [`dead_reads`] | `P.dead`'s delivery limit: reads never drop a parked message |
//! | [`reshard`] | changing the shard count, nothing lost |
//! | [`shards`] | sharded work queues: the hash exchange, the shard count |
//! | [`check`] | comparing the broker's topology with it, changing nothing |
//! | [`management`] | the management API, for `check`: policies in effect on a queue |
//! | [`retry_headers`] | the retry state as AMQP headers |
//! | [`dead_letters`] | inspecting, replaying and purging parked messages |
//! | [`delivery_log`] | reading `P.log` from a point in time, unchanged |
//! | [`outcomes`] | outcome events to `P.outcomes`, batched and confirmed |
//! | [`trace_headers`] | the W3C trace context of a message's headers |

pub mod channel;
pub mod check;
pub mod connect;
pub mod dead_letters;
pub mod dead_reads;
pub mod delivery_log;
pub mod management;
pub mod outcomes;
pub mod publisher;
pub mod reshard;
pub mod retry_headers;
pub mod shards;
pub mod tls;
pub mod topology;
pub mod trace_headers;
pub mod url;
