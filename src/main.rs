//! The `webhook-worker` binary; everything lives in the library crate.

fn main() -> std::process::ExitCode {
    webhook_worker::cli::main()
}
