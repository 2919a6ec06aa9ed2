//! `webhook-worker`: delivers Comm100 webhook events from RabbitMQ to their
//! receivers, retrying through TTL delay queues, with nothing lost.
//!
//! The crate is layered; a layer imports only the layers below it:
//!
//! | layer | modules | may import |
//! |---|---|---|
//! | commands | [`cli`] (one file per command), [`app`] | everything below |
//! | stages | `worker` (reconnect loop, session, lane, delivery, republish, per-receiver limits) | edges, domain, config, telemetry |
//! | edges | [`broker`] (AMQP), [`http`] (receivers), [`telemetry`] | domain |
//! | settings | [`config`] | domain, `broker::topology` (queue type) |
//! | clock | `clock`: the wall clock, read in one place | nothing |
//! | domain | [`domain`]: schedule, outcome, policy, envelope, signing, target | nothing of the crate; no lapin, reqwest or tokio |

// No function over 80 lines (the threshold is in clippy.toml).
#![warn(clippy::too_many_lines)]

pub mod app;
pub mod broker;
pub mod cli;
mod clock;
pub mod config;
pub mod domain;
mod error;
pub mod http;
pub mod telemetry;
mod worker;

pub use error::{ConfigError, Error};
