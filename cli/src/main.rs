//! `fusion`: the one binary. Runs the node daemon (`fusion node serve`), the hub daemon
//! (`fusion hub serve`) and the operator commands that talk to them over HTTP.
//!
//! Exit codes: 0 success; 1 failure (I/O, server error, unreachable); 2 usage error;
//! 3 the server refused the request (4xx).

mod backup_cmd;
mod campaigns_cmd;
mod client;
mod config;
mod hub_cmd;
mod journal_cmd;
mod node_cmd;
mod orders_cmd;
mod output;
mod parse;
mod payments_cmd;
mod products_cmd;
mod progress;
mod promotions_cmd;
mod session_cmd;
mod settings_cmd;
mod staff_cmd;
mod stock_cmd;
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
    /// Print the server's JSON instead of tables (for scripts).
    #[arg(long, global = true)]
    json: bool,
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
    /// Check a node's signed journal, or export it for an auditor.
    #[command(subcommand)]
    Journal(journal_cmd::JournalCommand),
    /// Manage API tokens (admin).
    #[command(subcommand)]
    Token(token_cmd::TokenCommand),
    /// The catalog: add, get, list, update, archive, import and export CSV.
    #[command(subcommand)]
    Products(products_cmd::ProductsCommand),
    /// Stock levels: set, adjust, transfer, list.
    #[command(subcommand)]
    Stock(stock_cmd::StockCommand),
    /// The rights this till holds (stock, campaign seats, offline card budget), what is in
    /// transit, and the store as this till knows it; or give budget to another till.
    #[command(args_conflicts_with_subcommands = true)]
    Escrow {
        #[command(subcommand)]
        action: Option<stock_cmd::EscrowAction>,
        #[command(flatten)]
        target: client::Target,
    },
    /// Orders: place, get, list, cancel.
    #[command(subcommand)]
    Orders(orders_cmd::OrdersCommand),
    /// A paid order's receipt: 42-column text for an 80 mm printer (JSON with --json), a
    /// print-friendly HTML page, or ESC/POS printer bytes; `--print` records a print at the
    /// till (a reprint says DUPLICATE and is counted).
    Receipt {
        /// The order's id.
        order: String,
        #[arg(long, value_enum)]
        format: Option<orders_cmd::ReceiptFormat>,
        #[arg(long)]
        print: bool,
        #[command(flatten)]
        target: client::Target,
    },
    /// The till's cash drawer: open with a float, paid in/out, no-sale, close with the
    /// count, the X and Z reports.
    #[command(subcommand)]
    Session(session_cmd::SessionCommand),
    /// The store's shared settings: show them, set its taxes and discount threshold.
    #[command(subcommand)]
    Settings(settings_cmd::SettingsCommand),
    /// The store's promotions: list, percent off, multi-buy, end.
    #[command(subcommand)]
    Promotions(promotions_cmd::PromotionsCommand),
    /// The store's staff: list, add, update, remove, sign in with a PIN.
    #[command(subcommand)]
    Staff(staff_cmd::StaffCommand),
    /// Group-buying campaigns: create, list, join, cancel.
    #[command(subcommand)]
    Campaigns(campaigns_cmd::CampaignsCommand),
    /// Payments: take, refund.
    #[command(subcommand)]
    Payments(payments_cmd::PaymentsCommand),
    /// Shipments: list an order's, move one on.
    #[command(subcommand)]
    Shipments(payments_cmd::ShipmentsCommand),
    /// Check the daemons' config files.
    #[command(subcommand)]
    Config(config::ConfigCommand),
    /// Print a shell completion script: bash, zsh or fish.
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff).
    Man,
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
            Top::Hub(cmd) => hub_cmd::run(cmd, cli.json).await,
            Top::Sync(cmd) => sync_cmd::run(cmd, cli.json).await,
            Top::Journal(cmd) => journal_cmd::run(cmd, cli.json).await,
            Top::Token(cmd) => token_cmd::run(cmd, cli.json).await,
            Top::Products(cmd) => products_cmd::run(cmd, cli.json).await,
            Top::Stock(cmd) => stock_cmd::run(cmd, cli.json).await,
            Top::Escrow {
                action: None,
                target,
            } => stock_cmd::run(stock_cmd::StockCommand::Escrow { target }, cli.json).await,
            Top::Escrow {
                action: Some(action),
                target,
            } => stock_cmd::escrow_action(action, target, cli.json).await,
            Top::Orders(cmd) => orders_cmd::run(cmd, cli.json).await,
            Top::Receipt {
                order,
                format,
                print,
                target,
            } => orders_cmd::receipt(&order, format, print, target, cli.json).await,
            Top::Session(cmd) => session_cmd::run(cmd, cli.json).await,
            Top::Settings(cmd) => settings_cmd::run(cmd, cli.json).await,
            Top::Promotions(cmd) => promotions_cmd::run(cmd, cli.json).await,
            Top::Staff(cmd) => staff_cmd::run(cmd, cli.json).await,
            Top::Campaigns(cmd) => campaigns_cmd::run(cmd, cli.json).await,
            Top::Payments(cmd) => payments_cmd::run(cmd, cli.json).await,
            Top::Shipments(cmd) => payments_cmd::run_shipments(cmd, cli.json).await,
            Top::Config(cmd) => config::run(cmd),
            Top::Completions { shell } => {
                let mut command = <Cli as clap::CommandFactory>::command();
                clap_complete::generate(shell, &mut command, "fusion", &mut std::io::stdout());
                Ok(())
            }
            Top::Man => {
                let command = <Cli as clap::CommandFactory>::command();
                clap_mangen::Man::new(command)
                    .render(&mut std::io::stdout())
                    .map_err(anyhow::Error::from)
            }
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
