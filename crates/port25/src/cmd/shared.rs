//! `[submission.shared]`: the handle on the state shared by several nodes
//! (crates/shared), for `serve` (the gate and submission) and
//! `migration report` (the usage of every node).

use std::sync::Arc;

use port25_config::{Config, OnUnreachable, SharedStore};
use port25_shared::{Postgres, PostgresConfig, Redis, RedisConfig, Shared, SharedState};

/// The shared store when configured. Does not wait for the store to be
/// up: a node starts while it is down and behaves as `on_unreachable` says.
pub async fn open(config: &Config) -> anyhow::Result<Option<Shared>> {
    let Some(c) = &config.submission.shared else { return Ok(None) };
    let backend: Arc<dyn SharedState> = match &c.store {
        SharedStore::Redis(url) => {
            let redis =
                RedisConfig { url: url.clone(), pool: c.pool as usize, timeout: c.timeout, prefix: c.prefix.clone() };
            Arc::new(Redis::connect(&redis).await.map_err(|e| anyhow::anyhow!("[submission.shared]: {e}"))?)
        }
        SharedStore::Postgresql { .. } => {
            let pg = postgres(config)?;
            // The tables on first use: now if the database answers; if
            // not, on the first operation, whose failure (the database
            // down, or a role that may not create them) is logged as
            // port25.shared.unreachable with the reason.
            let _ = pg.init().await;
            pg
        }
    };
    let policy = match c.on_unreachable {
        OnUnreachable::FailClosed => port25_shared::OnUnreachable::FailClosed,
        OnUnreachable::Local => port25_shared::OnUnreachable::Local,
    };
    Ok(Some(Shared::new(backend, policy)))
}

/// The PostgreSQL store's pool (not connected yet).
fn postgres(config: &Config) -> anyhow::Result<Arc<Postgres>> {
    let Some(c) = &config.submission.shared else { anyhow::bail!("no [submission.shared]") };
    let SharedStore::Postgresql { connection, password_file } = &c.store else {
        anyhow::bail!("[submission.shared] backend is not \"postgresql\"")
    };
    let password = match password_file {
        Some(p) => Some(
            std::fs::read_to_string(p)
                .map_err(|e| anyhow::anyhow!("[submission.shared] password_file {}: {e}", p.display()))?
                .trim_end_matches(['\r', '\n'])
                .to_owned(),
        ),
        None => None,
    };
    let pg = PostgresConfig {
        connection: connection.clone(),
        password,
        pool: c.pool as usize,
        timeout: c.timeout,
        prefix: c.prefix.clone(),
    };
    Postgres::new(&pg).map_err(|e| anyhow::anyhow!("[submission.shared]: {e}"))
}

/// Every node's usage records, for the migration report (the store must
/// answer: a report from one node's records would count wrong).
pub fn usage(config: &Config) -> anyhow::Result<Option<Vec<port25_accounts::migration::Use>>> {
    if config.submission.shared.is_none() {
        return Ok(None);
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async {
        let Some(shared) = open(config).await? else { return Ok(None) };
        let records = shared
            .backend()
            .usage()
            .await
            .map_err(|e| anyhow::anyhow!("[submission.shared]: the usage records cannot be read: {e}"))?;
        Ok(Some(
            records
                .into_iter()
                .map(|r| port25_accounts::migration::Use {
                    login: r.login,
                    legacy: r.legacy,
                    last_seen: r.last_seen,
                    last_ip: r.last_ip,
                    last_port: r.last_port,
                    uses: r.uses,
                })
                .collect(),
        ))
    })
}

/// `port25 shared`: the PostgreSQL tables of `[submission.shared] backend
/// = "postgresql"`.
#[derive(clap::Subcommand)]
pub enum Command {
    /// Print the SQL that creates the PostgreSQL shared-state tables and functions (idempotent), for the database owner to run
    #[command(after_help = "Example: port25 shared schema | psql -d port25\n\
        port25 serve creates them itself on first use when its role may; see docs/SUBMISSION.md.")]
    Schema,
    /// Create the PostgreSQL shared-state tables and functions now, in the store the configuration names
    #[command(after_help = "Exit status: 0 when they are there, 2 when the store cannot be reached or refuses.")]
    Init {
        /// Configuration file with [submission.shared] backend = "postgresql"
        #[arg(long, short)]
        config: std::path::PathBuf,
    },
}

pub fn run(cmd: Command) -> anyhow::Result<std::process::ExitCode> {
    match cmd {
        Command::Schema => {
            outln!("{}", port25_shared::POSTGRES_SCHEMA.trim());
        }
        Command::Init { config } => {
            let config = port25_config::load(&config).map_err(|e| anyhow::anyhow!("{e}"))?;
            let Some(SharedStore::Postgresql { .. }) = config.submission.shared.as_ref().map(|s| &s.store) else {
                anyhow::bail!("[submission.shared] backend = \"postgresql\" is not configured");
            };
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
            rt.block_on(async {
                let pg = postgres(&config)?;
                pg.init().await.map_err(|e| anyhow::anyhow!("[submission.shared]: {e}"))
            })?;
            outln!("the shared-state tables are in place");
        }
    }
    Ok(std::process::ExitCode::SUCCESS)
}
