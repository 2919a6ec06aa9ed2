//! The contract model: the `contract-model` crate (also the fuzz targets'
//! model), independent of `src/`. Re-exported here so each module names
//! it as `crate::contract`.

pub(crate) use contract_model::{amqp, catalog::*, envelope::*, headers::*};
