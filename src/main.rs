use std::process::ExitCode;

use clap::Parser;

#[tokio::main]
async fn main() -> ExitCode {
    accords::cli::run(accords::cli::Cli::parse()).await
}
