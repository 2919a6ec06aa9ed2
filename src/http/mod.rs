//! The HTTP edge: the one client that talks to receivers. Above the
//! domain, below the worker's stages.
//!
//! | module | role |
//! |---|---|
//! | [`client`] | one attempt, classified into an outcome |
//! | [`headers`] | the one place a request's headers are built |
//! | [`resolver`] | the target rule at connect time |

pub mod client;
pub mod headers;
pub mod resolver;
