//! The `webhook-worker` binary: parse the command line, start the runtime,
//! run the command, turn its result into an exit code. Everything else lives
//! in the library crate.

use std::process::ExitCode;

use clap::Parser;
use webhook_worker::{
    cli::{Cli, execute, with_default_command},
    telemetry,
};

fn main() -> ExitCode {
    let cli = Cli::parse_from(with_default_command(std::env::args_os()));
    telemetry::init_logging(cli.command.log_format());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(execute(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}
