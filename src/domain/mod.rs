//! The pure bottom layer: the rules of the contract as values and
//! functions, with no I/O. Nothing here imports lapin, reqwest or tokio, so
//! every rule is unit-tested and fuzzed directly, and the edges above
//! (`broker`, `http`) and the worker's stages only translate to and from
//! these types.
//!
//! | module | what it decides |
//! |---|---|
//! | [`duration`] | durations as operators write them |
//! | [`schedule`] | the retry schedule and its tiers |
//! | [`outcome`] | how one attempt ended |
//! | [`policy`] | retry or drop, and why |
//! | [`catalog`] | the webhook catalog and the header rules |
//! | [`envelope`] | what producers publish, validated |
//! | [`signing`] | Standard Webhooks signatures |
//! | [`target`] | which addresses a receiver may not have |
//! | [`proxy`] | the forward proxy's settings, the password redacted |
//! | [`retry_after`] | a receiver's `Retry-After` |
//! | [`limit`] | how many attempts one receiver gets at once |
//! | [`parked`] | what a parked message's body says, and its redacted form |
//! | [`selection`] | which parked messages a `dead` command acts on |
//! | [`log_selection`] | which outcome events `log` prints |
//! | [`receiver_health`] | when a receiver is failing, and recovered |
//! | [`outcome_event`] | outcome events: kinds, fields, the batch format |
//! | [`trace`] | W3C trace context, checked |
//! | [`size`] | sizes as operators write them |

pub mod catalog;
pub mod duration;
pub mod envelope;
pub mod limit;
pub mod log_selection;
pub mod outcome;
pub mod outcome_event;
pub mod parked;
pub mod policy;
pub mod proxy;
pub mod receiver_health;
pub mod retry_after;
pub mod schedule;
pub mod selection;
pub mod signing;
pub mod size;
pub mod target;
pub mod trace;
