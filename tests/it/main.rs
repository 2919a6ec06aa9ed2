//! The integration tests, one binary: the worker against the real local
//! RabbitMQ and real HTTP receivers on loopback, in this process (through
//! the library's `app::start`) or as the built binary. [`harness`] is the
//! one way each test sets up, and cleans up even when it fails.
//!
//! The tests run in parallel threads of this one process: nothing here may
//! depend on process-wide state (environment variables, the log
//! subscriber, the current directory); a child process gets its settings
//! on its own command line and environment.

mod harness;

mod bad_input;
mod broker_faults;
mod channel_rotation;
mod cluster;
mod consumer_timeout;
mod dead;
mod dead_kill;
mod dead_ops;
mod dead_reads;
mod dead_replay;
mod delivery;
mod delivery_limit;
mod delivery_log;
mod deploy;
mod faults;
mod first_hour;
mod layers;
mod log_command;
mod mtls;
mod node_scripts;
mod operator;
mod outcomes;
mod proxy;
mod proxy_faults;
mod readme;
mod receivers;
mod reporting;
mod rotation;
mod shards;
mod tls;
mod tools;
mod topology;
mod trace_and_health;
