//! `[submission.shared]`: the handle on the state shared by several nodes
//! (crates/shared), for `serve` (the gate and submission) and
//! `migration report` (the usage of every node).

use std::sync::Arc;

use port25_config::{Config, OnUnreachable};
use port25_shared::{Redis, RedisConfig, Shared};

/// The shared store when configured. Does not wait for Redis to be up: a
/// node starts while it is down and behaves as `on_unreachable` says.
pub async fn open(config: &Config) -> anyhow::Result<Option<Shared>> {
    let Some(c) = &config.submission.shared else { return Ok(None) };
    let redis =
        RedisConfig { url: c.redis.clone(), pool: c.pool as usize, timeout: c.timeout, prefix: c.prefix.clone() };
    let backend = Redis::connect(&redis).await.map_err(|e| anyhow::anyhow!("[submission.shared]: {e}"))?;
    let policy = match c.on_unreachable {
        OnUnreachable::FailClosed => port25_shared::OnUnreachable::FailClosed,
        OnUnreachable::Local => port25_shared::OnUnreachable::Local,
    };
    Ok(Some(Shared::new(Arc::new(backend), policy)))
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
