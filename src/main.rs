//! The `webhook-worker` binary; everything lives in the library crate.

/// jemalloc, with background purging (Cargo.toml, .cargo/config.toml):
/// glibc's malloc kept freed connection buffers and let RSS creep under a
/// hanging receiver.
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static GLOBAL: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> std::process::ExitCode {
    webhook_worker::cli::main()
}
