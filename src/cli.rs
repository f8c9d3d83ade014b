//! The subcommands: serve (the default), migrate, import and export.

use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::auth::{self, Scope};
use crate::config::{LogFormat, ServeConfig, StoreConfig};
use crate::domain::Vocabulary;
use crate::domain::dataset::DatasetBody;
use crate::store;

#[derive(Debug, Parser)]
#[command(
    name = "accords",
    version,
    about = "Ukraine's bilateral security agreements, served over HTTP"
)]
pub struct Cli {
    #[command(flatten)]
    pub store: StoreConfig,

    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API (the default when no command is given).
    Serve(ServeConfig),
    /// Create or update the database schema, then exit.
    Migrate,
    /// Import a JSON file in the export format (upsert by id, all or nothing); `-` reads stdin.
    Import {
        /// The file to import.
        file: String,
    },
    /// Write the whole store as JSON to stdout.
    Export,
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage exchange rates against EUR.
    #[command(subcommand)]
    Rates(RatesCommand),
    /// Add synthetic agreements (10 pledges each) for benchmarks; deterministic per seed.
    Generate {
        /// How many agreements to add.
        #[arg(long)]
        agreements: usize,
        /// The seed: the same seed gives the same data.
        #[arg(long, default_value_t = 1)]
        seed: u64,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; the key itself is printed once, alone on the last line.
    Create {
        /// The name history records for this key's changes.
        #[arg(long)]
        name: String,
        /// write: edit data; admin: also bulk operations such as POST /v1/import.
        #[arg(long, value_parser = ["write", "admin"])]
        scope: String,
        /// Days until the key expires; without it the key does not expire.
        #[arg(long)]
        expires: Option<u32>,
    },
    /// List the keys (never their secrets).
    List,
    /// Revoke the named key at once.
    Revoke {
        /// The key's name.
        name: String,
    },
}

/// The name history records for imports from the command line.
const CLI_ACTOR: &str = "cli";

pub async fn run(cli: Cli) -> ExitCode {
    let outcome = match cli.command {
        None => {
            let serve = ServeConfig::parse_from_env();
            crate::serve(&cli.store, &serve).await
        }
        Some(Command::Serve(serve)) => crate::serve(&cli.store, &serve).await,
        Some(Command::Migrate) => migrate(&cli.store).await,
        Some(Command::Import { file }) => import(&cli.store, &file).await,
        Some(Command::Export) => export(&cli.store).await,
        Some(Command::Keys(command)) => keys(&cli.store, command).await,
        Some(Command::Rates(command)) => rates(&cli.store, command).await,
        Some(Command::Generate { agreements, seed }) => {
            generate(&cli.store, agreements, seed).await
        }
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("accords: {message}");
            ExitCode::FAILURE
        }
    }
}

impl ServeConfig {
    /// Serve's settings when no subcommand was named: defaults and environment.
    fn parse_from_env() -> Self {
        #[derive(Parser)]
        struct Only {
            #[command(flatten)]
            serve: ServeConfig,
        }
        Only::parse_from(["accords"]).serve
    }
}

pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

async fn migrate(config: &StoreConfig) -> Result<(), String> {
    let store = store::open(&config.options())
        .await
        .map_err(|e| e.to_string())?;
    store.close().await;
    eprintln!("accords: the {} schema is up to date", store.backend());
    Ok(())
}

async fn import(config: &StoreConfig, file: &str) -> Result<(), String> {
    let mut text = Vec::new();
    let read = if file == "-" {
        std::io::stdin().read_to_end(&mut text).map(|_| ())
    } else {
        std::fs::read(file).map(|bytes| text = bytes)
    };
    read.map_err(|e| format!("cannot read {file}: {e}"))?;
    let body: DatasetBody = serde_json::from_slice(&text).map_err(|e| format!("{file}: {e}"))?;
    let dataset = body.parse().map_err(|errors| {
        let lines: Vec<String> = errors
            .iter()
            .map(|e| format!("  {}: {}", e.field, e.message))
            .collect();
        format!(
            "{file} is not valid, nothing was imported:\n{}",
            lines.join("\n")
        )
    })?;
    let store = store::open(&config.options())
        .await
        .map_err(|e| e.to_string())?;
    let result = store.import(CLI_ACTOR, &dataset).await;
    store.close().await;
    let summary = result.map_err(|e| match e {
        store::StoreError::Invalid(errors) => {
            let lines: Vec<String> = errors
                .iter()
                .map(|e| format!("  {}: {}", e.field, e.message))
                .collect();
            format!(
                "{file} is not valid, nothing was imported:\n{}",
                lines.join("\n")
            )
        }
        other => other.to_string(),
    })?;
    eprintln!(
        "accords: imported {file}: {} created, {} updated, {} unchanged",
        summary.created, summary.updated, summary.unchanged
    );
    Ok(())
}

async fn export(config: &StoreConfig) -> Result<(), String> {
    let store = store::open(&config.options())
        .await
        .map_err(|e| e.to_string())?;
    let result = store.export().await;
    store.close().await;
    let dataset = result.map_err(|e| e.to_string())?;
    let mut text = serde_json::to_string_pretty(&dataset).map_err(|e| e.to_string())?;
    text.push('\n');
    use std::io::Write;
    std::io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| format!("cannot write the export: {e}"))
}

async fn keys(config: &StoreConfig, command: KeysCommand) -> Result<(), String> {
    let store = store::open(&config.options())
        .await
        .map_err(|e| e.to_string())?;
    let result = run_keys(store.as_ref(), command).await;
    store.close().await;
    result
}

async fn run_keys(store: &dyn store::Store, command: KeysCommand) -> Result<(), String> {
    match command {
        KeysCommand::Create {
            name,
            scope,
            expires,
        } => {
            let name = auth::key_name(&name)?;
            let scope = Scope::parse(&scope)?;
            let expires_at =
                expires.map(|days| store::now() + chrono::TimeDelta::days(i64::from(days)));
            let (key, secret) = auth::generate(&name, scope, expires_at)?;
            store
                .create_api_key(&key)
                .await
                .map_err(|e| e.to_string())?;
            let until = expires_at.map_or("never".to_owned(), |at| at.to_rfc3339());
            println!(
                "created key {name:?} (scope {}, expires {until}); it is shown only now:",
                scope.as_str()
            );
            println!("{secret}");
            Ok(())
        }
        KeysCommand::List => {
            let now = store::now();
            println!(
                "{:<24} {:<14} {:<6} {:<8} {:<25} expires",
                "name", "id", "scope", "state", "created"
            );
            for key in store.list_api_keys().await.map_err(|e| e.to_string())? {
                let state = if key.revoked_at.is_some() {
                    "revoked"
                } else if key.is_active(now) {
                    "active"
                } else {
                    "expired"
                };
                println!(
                    "{:<24} {:<14} {:<6} {:<8} {:<25} {}",
                    key.name,
                    key.id,
                    key.scope.as_str(),
                    state,
                    key.created_at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    key.expires_at.map_or("never".to_owned(), |at| at
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
                );
            }
            Ok(())
        }
        KeysCommand::Revoke { name } => {
            if store
                .revoke_api_key(&name)
                .await
                .map_err(|e| e.to_string())?
            {
                eprintln!("accords: revoked key {name:?}");
                Ok(())
            } else {
                Err(format!("there is no key named {name:?}"))
            }
        }
    }
}

// ---- exchange rates ------------------------------------------------------

#[derive(Debug, Subcommand)]
pub enum RatesCommand {
    /// Load a CSV of rates against EUR — `date,currency,rate`, or the ECB
    /// layout `Date,USD,JPY,...` — all or nothing; `-` reads stdin.
    Import {
        /// The CSV file.
        file: String,
    },
}

async fn rates(config: &StoreConfig, command: RatesCommand) -> Result<(), String> {
    match command {
        RatesCommand::Import { file } => import_rates(config, &file).await,
    }
}

async fn import_rates(config: &StoreConfig, file: &str) -> Result<(), String> {
    let mut bytes = Vec::new();
    let read = if file == "-" {
        std::io::stdin().read_to_end(&mut bytes).map(|_| ())
    } else {
        std::fs::read(file).map(|b| bytes = b)
    };
    read.map_err(|e| format!("cannot read {file}: {e}"))?;
    let name = if file == "-" { "stdin" } else { file };
    let parsed = crate::domain::rates::RatesFile::parse_csv(&bytes).map_err(|errors| {
        let lines: Vec<String> = errors
            .iter()
            .map(|e| format!("  {}", e.render(name)))
            .collect();
        format!(
            "{name} is not valid, nothing was loaded ({} error(s)):\n{}",
            errors.len(),
            lines.join("\n")
        )
    })?;
    let store = store::open(&config.options())
        .await
        .map_err(|e| e.to_string())?;
    let result = store.load_rates(CLI_ACTOR, &parsed.rates).await;
    store.close().await;
    let summary = result.map_err(|e| e.to_string())?;
    let (currencies, first, last) = parsed.extent();
    let span = match (first, last) {
        (Some(first), Some(last)) => format!("{first}..{last}"),
        _ => String::new(),
    };
    eprintln!(
        "accords: loaded {name}: {} rates of {} currencies ({}), {span}: {} created, {} updated, {} unchanged",
        parsed.rates.len(),
        currencies.len(),
        currencies.join(", "),
        summary.created,
        summary.updated,
        summary.unchanged
    );
    for (currency, count) in &parsed.skipped {
        eprintln!("accords: skipped {count} rate(s) of {currency}, a withdrawn currency");
    }
    Ok(())
}

/// Agreements written per transaction while generating.
const GENERATE_CHUNK: usize = 500;

async fn generate(config: &StoreConfig, count: usize, seed: u64) -> Result<(), String> {
    let store = store::open(&config.options())
        .await
        .map_err(|e| e.to_string())?;
    let started = std::time::Instant::now();
    let result = async {
        crate::seed::seed_if_empty(store.as_ref())
            .await
            .map_err(|e| e.to_string())?;
        let mut first = 0;
        while first < count {
            let chunk = GENERATE_CHUNK.min(count - first);
            let dataset =
                crate::generate::agreements(seed, first, chunk).map_err(|e| format!("{e:?}"))?;
            store
                .bulk_insert_agreements(&dataset.agreements)
                .await
                .map_err(|e| e.to_string())?;
            first += chunk;
            eprintln!(
                "accords: generated {first}/{count} agreements ({:.1} s)",
                started.elapsed().as_secs_f64()
            );
        }
        store.analyze().await.map_err(|e| e.to_string())
    }
    .await;
    store.close().await;
    result
}
