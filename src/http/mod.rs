//! The HTTP edge: the one client that talks to receivers. Above the
//! domain, below the worker's stages.
//!
//! | module | role |
//! |---|---|
//! | [`client`] | one attempt, classified into an outcome |
//! | [`headers`] | the one place a request's headers are built |
//! | [`resolver`] | the target rule at connect time |
//! | [`settings`] | what the client is built from |
//! | [`proxy`] | the forward proxy, asked for checked addresses only |

pub mod client;
pub mod headers;
pub mod proxy;
pub mod resolver;
pub mod settings;
