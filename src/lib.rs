//! `webhook-worker`: delivers Comm100 webhook events from RabbitMQ to their
//! receivers, retrying through TTL delay queues, with nothing lost.
//!
//! The crate is laid out by concept, I/O at the edges:
//!
//! | module | role |
//! |---|---|
//! | [`config`] | every setting, typed and validated |
//! | [`topology`] | exchange and queue names, arguments, declaration |
//! | [`message`] | envelope parsing and validation (pure) |
//! | [`retry`] | the retry policy (pure) and the retry headers |
//! | [`signing`] | Standard Webhooks signatures (pure) |
//! | [`target`] | the private-address guard |
//! | [`delivery`] | one HTTP attempt, and the headers of every request |
//! | [`broker`] | connecting with backoff, publishing with confirms |
//! | [`settle`] | batched acks for out-of-order completions |
//! | [`hosts`] | per-receiver in-flight limits |
//! | [`worker`] | the consumer loop, sessions, shutdown drain |
//! | [`dead`] | `dead list` and `dead replay` |
//! | [`publish`], [`demo_receiver`] | demo producer and receiver |
//! | [`telemetry`] | metrics, health endpoints, logs |
//! | [`cli`] | the command line |

pub mod broker;
pub mod cli;
pub mod config;
pub mod dead;
pub mod delivery;
pub mod demo_receiver;
mod error;
pub mod hosts;
pub mod message;
pub mod publish;
pub mod retry;
pub mod settle;
pub mod shutdown;
pub mod signing;
pub mod target;
pub mod telemetry;
pub mod topology;
pub mod worker;

pub use error::Error;
