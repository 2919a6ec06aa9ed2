//! Telemetry (contract section 7): what operators see of a running worker.
//!
//! | module | role |
//! |---|---|
//! | [`metrics`] | every Prometheus metric, handles resolved once |
//! | [`health`] | readiness |
//! | [`server`] | `/metrics`, `/healthz`, `/readyz`, `/receivers` |
//! | [`receivers`] | the rows of `/receivers` |
//! | `registrar` | making and registering a metric, one call each |
//! | [`logging`] | text or JSON logs |

pub mod health;
pub mod logging;
pub mod metrics;
pub mod receivers;
mod registrar;
pub mod server;
