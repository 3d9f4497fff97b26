//! `fusion`: the one binary. Runs the node daemon (`fusion node serve`), the hub daemon
//! (`fusion hub serve`) and the operator commands that talk to them over HTTP.
//!
//! Exit codes: 0 success; 1 failure (I/O, server error, unreachable); 2 usage error;
//! 3 the server refused the request (4xx).

mod backup_cmd;
mod client;
mod hub_cmd;
mod node_cmd;
mod sync_cmd;
mod systemd;
mod token_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of glibc malloc: the request path allocates small short-lived buffers on
/// several threads, where it measured faster (docs/BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "fusion",
    version,
    about = "FusionCommerce Edge: offline-first commerce node"
)]
struct Cli {
    #[command(subcommand)]
    command: Top,
}

#[derive(Subcommand)]
enum Top {
    /// Run and manage a node.
    #[command(subcommand)]
    Node(node_cmd::NodeCommand),
    /// Run the hub and enroll or revoke nodes.
    #[command(subcommand)]
    Hub(hub_cmd::HubCommand),
    /// Inspect replication.
    #[command(subcommand)]
    Sync(sync_cmd::SyncCommand),
    /// Manage API tokens (admin).
    #[command(subcommand)]
    Token(token_cmd::TokenCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: starting the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Top::Node(cmd) => node_cmd::run(cmd).await,
            Top::Hub(cmd) => hub_cmd::run(cmd).await,
            Top::Sync(cmd) => sync_cmd::run(cmd).await,
            Top::Token(cmd) => token_cmd::run(cmd).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(client::exit_code(&error))
        }
    }
}
