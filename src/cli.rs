//! The subcommands: serve (the default), migrate, import and export.

use std::io::Read;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::auth::{self, Scope};
use crate::config::{ServeConfig, StoreConfig};
use crate::domain::FieldError;
use crate::domain::Vocabulary;
use crate::domain::checks::{Level, Report};
use crate::domain::dataset::{Dataset, RowAction, RowChange};
use crate::store;
use crate::wire::dataset::DatasetBody;
use crate::wire::spreadsheet::{self, Locations};

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
    Serve(Box<ServeConfig>),
    /// Create or update the database schema, then exit.
    Migrate,
    /// Import the export format, all or nothing (upsert by id): a JSON file
    /// (`-` reads stdin) or a directory of CSV files (agreements.csv and its companions).
    Import {
        /// A JSON file, `-`, or a directory of CSV files.
        path: String,
        /// Print what would change, field by field, and change nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// Write the whole store: JSON to stdout or --out FILE, or CSV files into --out DIR.
    Export {
        /// json: the whole store in one document; csv: the agreements as five files.
        #[arg(long, value_parser = ["json", "csv"], default_value = "json")]
        format: String,
        /// Where to write: a file for json (default stdout), a directory for csv.
        #[arg(long)]
        out: Option<std::path::PathBuf>,
    },
    /// Check the data for what an editor should fix; exits 1 when a check at the error level fails.
    Check {
        /// error: list only findings at the error level (counts still cover all).
        #[arg(long, value_parser = ["error", "warning"])]
        level: Option<String>,
        /// text for people, json for scripts (the shape of GET /v1/checks).
        #[arg(long, value_parser = ["text", "json"], default_value = "text")]
        format: String,
    },
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Manage exchange rates against EUR.
    #[command(subcommand)]
    Rates(RatesCommand),
    /// Add synthetic agreements for benchmarks, distributed like the bundled data; deterministic per seed.
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
        /// Days until the key expires (1 to 36,500); without it the key does not expire.
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=36_500))]
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
        Some(Command::Import { path, dry_run }) => import(&cli.store, &path, dry_run).await,
        Some(Command::Export { format, out }) => export(&cli.store, &format, out).await,
        Some(Command::Check { level, format }) => {
            return check(&cli.store, level.as_deref(), &format).await;
        }
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

/// The configured store, or why it cannot be opened.
async fn open_store(config: &StoreConfig) -> Result<std::sync::Arc<dyn store::Store>, String> {
    store::open(&config.options())
        .await
        .map_err(|e| e.to_string())
}

async fn migrate(config: &StoreConfig) -> Result<(), String> {
    let store = open_store(config).await?;
    store.close().await;
    eprintln!("accords: the {} schema is up to date", store.backend());
    Ok(())
}

/// An import read from disk and parsed, with where each record came from
/// when it was CSV.
struct ImportInput {
    dataset: Dataset,
    locations: Option<Locations>,
}

impl ImportInput {
    fn read(path: &str) -> Result<Self, Vec<String>> {
        let fail = |message: String| vec![message];
        let directory = path != "-" && std::path::Path::new(path).is_dir();
        if directory {
            let mut files = Vec::new();
            let entries =
                std::fs::read_dir(path).map_err(|e| fail(format!("cannot read {path}: {e}")))?;
            for entry in entries {
                let entry = entry.map_err(|e| fail(format!("cannot read {path}: {e}")))?;
                let name = entry.file_name().to_string_lossy().into_owned();
                if !name.ends_with(".csv") {
                    continue;
                }
                let bytes = std::fs::read(entry.path())
                    .map_err(|e| fail(format!("cannot read {}: {e}", entry.path().display())))?;
                files.push((name, bytes));
            }
            files.sort();
            let (dataset, locations) = spreadsheet::parse(&files)
                .map_err(|errors| errors.iter().map(ToString::to_string).collect::<Vec<_>>())?;
            return Ok(Self {
                dataset,
                locations: Some(locations),
            });
        }
        let mut text = Vec::new();
        let read = if path == "-" {
            std::io::stdin().read_to_end(&mut text).map(|_| ())
        } else {
            std::fs::read(path).map(|bytes| text = bytes)
        };
        read.map_err(|e| fail(format!("cannot read {path}: {e}")))?;
        let body: DatasetBody = serde_json::from_slice(&text).map_err(|e| fail(e.to_string()))?;
        let dataset = body.parse().map_err(|errors| {
            errors
                .iter()
                .map(|e| format!("{}: {}", e.field, e.message))
                .collect::<Vec<_>>()
        })?;
        Ok(Self {
            dataset,
            locations: None,
        })
    }

    fn describe(&self, error: &FieldError) -> String {
        match &self.locations {
            Some(locations) => locations.locate(&error.field, &error.message).to_string(),
            None => format!("{}: {}", error.field, error.message),
        }
    }
}

fn rejected(path: &str, errors: &[String]) -> String {
    let lines: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
    format!(
        "{path} is not valid ({} problem{}), nothing was imported:\n{}",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" },
        lines.join("\n")
    )
}

async fn import(config: &StoreConfig, path: &str, dry_run: bool) -> Result<(), String> {
    let input = ImportInput::read(path).map_err(|errors| rejected(path, &errors))?;
    let store = open_store(config).await?;
    let result = store.import(CLI_ACTOR, &input.dataset, dry_run).await;
    store.close().await;
    let summary = result.map_err(|e| match e {
        store::StoreError::Invalid(errors) => {
            let lines: Vec<String> = errors.iter().map(|e| input.describe(e)).collect();
            rejected(path, &lines)
        }
        other => other.to_string(),
    })?;
    let mut out = String::new();
    for change in &summary.changes {
        out.push_str(&describe_change(change));
    }
    use std::io::Write;
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .map_err(|e| format!("cannot write the report: {e}"))?;
    let counts = if dry_run {
        format!(
            "dry run of {path}, nothing was changed: {} to create, {} to update, {} unchanged",
            summary.created, summary.updated, summary.unchanged
        )
    } else {
        format!(
            "imported {path}: {} created, {} updated, {} unchanged",
            summary.created, summary.updated, summary.unchanged
        )
    };
    eprintln!("accords: {counts} (partners, areas and agreements; each agreement with its rows)");
    Ok(())
}

/// One row of an import report: `+ pledge ua-jp-2024-p3 (agreement ua-jp-2024)`,
/// then for a changed row each field as `    field: before → after`.
fn describe_change(change: &RowChange) -> String {
    let sign = match change.action {
        RowAction::Added => '+',
        RowAction::Changed => '~',
        RowAction::Removed => '-',
    };
    let mut text = format!("{sign} {} {}", change.entity, change.id);
    if let Some(agreement) = &change.agreement_id {
        text.push_str(&format!(" (agreement {agreement})"));
    }
    text.push('\n');
    for field in &change.fields {
        text.push_str(&format!(
            "    {}: {} → {}\n",
            field.field, field.before, field.after
        ));
    }
    text
}

async fn export(
    config: &StoreConfig,
    format: &str,
    out: Option<std::path::PathBuf>,
) -> Result<(), String> {
    let store = open_store(config).await?;
    let result = store.export().await;
    store.close().await;
    let dataset = result.map_err(|e| e.to_string())?;
    use std::io::Write;
    if format == "csv" {
        let Some(directory) = out else {
            return Err("a CSV export is several files: name a directory with --out DIR".into());
        };
        std::fs::create_dir_all(&directory)
            .map_err(|e| format!("cannot create {}: {e}", directory.display()))?;
        for (name, bytes) in spreadsheet::write(&dataset.agreements)? {
            let path = directory.join(name);
            std::fs::write(&path, bytes)
                .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        }
        eprintln!(
            "accords: wrote {} agreements as {} into {}",
            dataset.agreements.len(),
            spreadsheet::TABLES.map(|t| t.file).join(", "),
            directory.display()
        );
        return Ok(());
    }
    let mut text = serde_json::to_string_pretty(&dataset).map_err(|e| e.to_string())?;
    text.push('\n');
    match out {
        Some(path) => {
            std::fs::write(&path, text).map_err(|e| format!("cannot write {}: {e}", path.display()))
        }
        None => std::io::stdout()
            .lock()
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot write the export: {e}")),
    }
}

async fn check(config: &StoreConfig, level: Option<&str>, format: &str) -> ExitCode {
    let outcome = async {
        let level = level.map(Level::parse).transpose()?;
        let store = open_store(config).await?;
        let result = store.export().await;
        store.close().await;
        let dataset = result.map_err(|e| e.to_string())?;
        let today = chrono::Utc::now().date_naive();
        Ok::<_, String>(Report::of(&dataset, today, level))
    }
    .await;
    let report = match outcome {
        Ok(report) => report,
        Err(message) => {
            eprintln!("accords: {message}");
            return ExitCode::from(2);
        }
    };
    if format == "json" {
        match serde_json::to_string_pretty(&report) {
            Ok(text) => println!("{text}"),
            Err(e) => {
                eprintln!("accords: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        for finding in &report.findings {
            let level = match finding.level {
                Level::Error => "error",
                Level::Warning => "warning",
            };
            let within = finding
                .agreement_id
                .as_ref()
                .map_or(String::new(), |a| format!(" (agreement {a})"));
            println!(
                "{level}: {}: {} {}{within}: {}",
                finding.check, finding.entity, finding.id, finding.message
            );
        }
        eprintln!(
            "accords: {}: {} error{}, {} warning{}",
            if report.passed { "passed" } else { "FAILED" },
            report.errors,
            if report.errors == 1 { "" } else { "s" },
            report.warnings,
            if report.warnings == 1 { "" } else { "s" },
        );
    }
    if report.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn keys(config: &StoreConfig, command: KeysCommand) -> Result<(), String> {
    let store = open_store(config).await?;
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
    let store = open_store(config).await?;
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
    let store = open_store(config).await?;
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
