//! The Redis backend: one Lua script per operation (a script is atomic on
//! the server; each reads the server's clock with TIME; sent once with
//! SCRIPT LOAD, then run by its hash with EVALSHA), a fixed pool
//! of multiplexed connections, every command bounded by a timeout. One
//! Redis server (with a replica for failover if wanted), not Redis Cluster:
//! a script touches several keys.
//!
//! Every key lives under the configured prefix and expires: failure counts
//! after the window, locks after the lockout, known devices after
//! `known_for`, windows after their span, session entries after their ttl.
//! Nothing an attacker sends makes a key live longer or grow past a limit
//! (a window refuses its `max + 1`th entry).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use fred::prelude::*;

use crate::{Full, LockRules, Pending, Scope, SharedState, Slot, Unreachable, UseRecord, Window};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port/db`
    pub url: String,
    /// Connections in the pool (each multiplexes many commands).
    pub pool: usize,
    /// Per command and per connection attempt.
    pub timeout: Duration,
    /// Every key starts with it (several deployments on one server).
    pub prefix: String,
}

pub struct Redis {
    pool: Pool,
    timeout: Duration,
    prefix: String,
    /// Each script's text as sent (with [`NOW`] when it reads the clock)
    /// and its SHA1 once the server has it: a call then sends the 40-byte
    /// hash (EVALSHA) instead of the script, which the server would hash
    /// again on every EVAL.
    scripts: std::sync::RwLock<HashMap<&'static str, Loaded>>,
}

/// A script's text as sent, and its hash once the server has it.
type Loaded = (Arc<str>, Option<Arc<str>>);

/// Server time in milliseconds, for every script.
const NOW: &str = "local t = redis.call('TIME') local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) ";

const LOCKED: &str = "
local t = redis.call('PTTL', KEYS[1])
if t > 0 then return {1, t} end
if ARGV[1] == '1' and redis.call('EXISTS', KEYS[3]) == 0 then
  t = redis.call('PTTL', KEYS[2])
  if t > 0 then return {2, t} end
end
return {0, 0}";

/// A failure during a lock is not counted (it would extend it); the count
/// starts over once the lock is set.
const FAILED: &str = "
local function one(fail, lock, after)
  if redis.call('PTTL', lock) > 0 then return 0 end
  local n = redis.call('INCR', fail)
  if n == 1 then redis.call('PEXPIRE', fail, ARGV[1]) end
  if n >= tonumber(after) then
    redis.call('SET', lock, n, 'PX', ARGV[4])
    redis.call('DEL', fail)
    return n
  end
  return 0
end
local a = one(KEYS[1], KEYS[2], ARGV[2])
local l = 0
if ARGV[5] == '1' then l = one(KEYS[3], KEYS[4], ARGV[3]) end
return {a, l}";

/// The body of SUCCEEDED as a Lua function, so that SUCCEEDED_ENTER runs
/// the very same steps (a macro: `concat!` takes literals only).
macro_rules! succeeded_fn {
    () => {
        "
local function succeeded(fail, lock, device, device_ms)
  if redis.call('PTTL', lock) <= 0 then redis.call('DEL', fail) end
  redis.call('SET', device, 1, 'PX', device_ms)
end
"
    };
}

/// The body of ENTER as a Lua function (see [`succeeded_fn`]); it reads
/// `now`, which [`NOW`] defines before it.
macro_rules! enter_fn {
    () => {
        "
local function enter(k, session, max, ttl_ms)
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now - tonumber(ttl_ms))
  if redis.call('ZSCORE', k, session) then return 1 end
  if redis.call('ZCARD', k) >= tonumber(max) then return 0 end
  redis.call('ZADD', k, now, session)
  redis.call('PEXPIRE', k, ttl_ms)
  return 1
end
"
    };
}

/// KEYS: the login's failures, its lock, the device's known mark; ARGV: known_ms.
const SUCCEEDED: &str = concat!(succeeded_fn!(), "succeeded(KEYS[1], KEYS[2], KEYS[3], ARGV[1])\nreturn 1");

/// ARGV: member ('' to only check), then span_ms and max per key.
const RESERVE: &str = "
for i, k in ipairs(KEYS) do
  local span = tonumber(ARGV[2 * i])
  local max = tonumber(ARGV[2 * i + 1])
  redis.call('ZREMRANGEBYSCORE', k, '-inf', now - span)
  if redis.call('ZCARD', k) >= max then
    local oldest = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
    local wait = 0
    if oldest[2] then wait = tonumber(oldest[2]) + span - now end
    return {i, wait}
  end
end
if ARGV[1] ~= '' then
  for i, k in ipairs(KEYS) do
    redis.call('ZADD', k, now, ARGV[1])
    redis.call('PEXPIRE', k, ARGV[2 * i])
  end
end
return {0, 0}";

const RELEASE: &str = "
for _, k in ipairs(KEYS) do redis.call('ZREM', k, ARGV[1]) end
return 1";

/// ARGV: session, max, ttl_ms.
const ENTER: &str = concat!(enter_fn!(), "return enter(KEYS[1], ARGV[1], ARGV[2], ARGV[3])");

/// SUCCEEDED then ENTER in one call (a login's AUTH: one round trip).
/// KEYS: SUCCEEDED's three, then the sessions key; ARGV: known_ms, then
/// ENTER's session, max, ttl_ms.
const SUCCEEDED_ENTER: &str = concat!(
    succeeded_fn!(),
    enter_fn!(),
    "succeeded(KEYS[1], KEYS[2], KEYS[3], ARGV[1])\nreturn enter(KEYS[4], ARGV[2], ARGV[3], ARGV[4])"
);

/// ARGV: field, unix seconds, ip, port. Value: 'seen ip port uses'.
const RECORD: &str = "
local v = redis.call('HGET', KEYS[1], ARGV[1])
local uses = 0
if v then uses = tonumber(string.match(v, '(%d+)$')) or 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. (uses + 1))
return 1";

impl Redis {
    /// Builds the pool and starts connecting; does not wait for Redis (a
    /// node starts while it is down, and reconnects every 500 ms).
    pub async fn connect(config: &RedisConfig) -> Result<Redis, String> {
        let c = Config::from_url(&config.url).map_err(|e| format!("redis url: {e}"))?;
        let timeout = config.timeout;
        let pool = Builder::from_config(c)
            .with_connection_config(|cc| {
                cc.connection_timeout = timeout;
                cc.internal_command_timeout = timeout;
                cc.max_command_attempts = 1;
            })
            .with_performance_config(|p| p.default_command_timeout = timeout)
            .set_policy(ReconnectPolicy::new_constant(0, 500))
            .build_pool(config.pool.clamp(1, 64))
            .map_err(|e| format!("redis: {e}"))?;
        let _ = pool.connect_pool();
        let _ = tokio::time::timeout(timeout, pool.wait_for_connect()).await;
        Ok(Redis { pool, timeout, prefix: config.prefix.clone(), scripts: Default::default() })
    }

    /// Runs one script: EVALSHA once the server knows it (SCRIPT LOAD the
    /// first time; loaded again after NOSCRIPT, e.g. a restarted server),
    /// all of it bounded by the timeout.
    async fn eval<R: FromValue>(
        &self,
        script: &'static str,
        keys: Vec<String>,
        args: Vec<String>,
    ) -> Result<R, Unreachable> {
        let run = async {
            let known = self.scripts.read().unwrap_or_else(|p| p.into_inner()).get(script).cloned();
            let (text, sha) = match known {
                Some(k) => k,
                None => {
                    let text: Arc<str> =
                        if script.contains("now") { format!("{NOW}{script}").into() } else { script.into() };
                    (text, None)
                }
            };
            let client = self.pool.next_connected();
            if let Some(sha) = &sha {
                match client.evalsha::<R, _, _, _>(sha.to_string(), keys.clone(), args.clone()).await {
                    Err(e) if e.details().contains("NOSCRIPT") => {}
                    other => return other,
                }
            }
            let sha: String = client.script_load(text.to_string()).await?;
            self.scripts.write().unwrap_or_else(|p| p.into_inner()).insert(script, (text, Some(sha.as_str().into())));
            client.evalsha::<R, _, _, _>(sha, keys, args).await
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Unreachable(format!("redis: {e}"))),
            Err(_) => Err(Unreachable(format!("redis: no answer within {} ms", self.timeout.as_millis()))),
        }
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut k = self.prefix.clone();
        k.push_str(&parts.join(":"));
        k
    }
}

/// The two numbers every script answers with.
fn pair(v: Vec<i64>) -> Result<(i64, i64), Unreachable> {
    match v[..] {
        [a, b] => Ok((a, b)),
        _ => Err(Unreachable(format!("redis: a script answered {v:?}"))),
    }
}

fn ms(d: Duration) -> String {
    d.as_millis().max(1).to_string()
}

fn flag(b: bool) -> String {
    if b { "1" } else { "0" }.to_owned()
}

/// Parses a usage value ('seen ip port uses'); `None` for anything else.
pub fn parse_use(field: &str, value: &str) -> Option<UseRecord> {
    let (kind, login) = field.split_once(':')?;
    let legacy = match kind {
        "1" => true,
        "0" => false,
        _ => return None,
    };
    let mut it = value.split(' ');
    let (seen, ip, port, uses) = (it.next()?, it.next()?, it.next()?, it.next()?);
    if it.next().is_some() || login.is_empty() {
        return None;
    }
    Some(UseRecord {
        login: login.to_owned(),
        legacy,
        last_seen: seen.parse().ok()?,
        last_ip: ip.to_owned(),
        last_port: port.parse().ok()?,
        uses: uses.parse().ok()?,
    })
}

impl SharedState for Redis {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn locked<'a>(&'a self, address: &'a str, login: Option<&'a str>) -> Pending<'a, Option<(Scope, Duration)>> {
        Box::pin(async move {
            let l = login.unwrap_or("");
            let keys =
                vec![self.key(&["lock", "a", address]), self.key(&["lock", "l", l]), self.key(&["known", l, address])];
            let (which, left) = pair(self.eval(LOCKED, keys, vec![flag(login.is_some())]).await?)?;
            let left = Duration::from_millis(left.max(0) as u64);
            Ok(match which {
                1 => Some((Scope::Address, left)),
                2 => Some((Scope::Login, left)),
                _ => None,
            })
        })
    }

    fn failed<'a>(
        &'a self,
        address: &'a str,
        login: Option<&'a str>,
        rules: LockRules,
    ) -> Pending<'a, Vec<(Scope, u32)>> {
        Box::pin(async move {
            let l = login.unwrap_or("");
            let keys = vec![
                self.key(&["fail", "a", address]),
                self.key(&["lock", "a", address]),
                self.key(&["fail", "l", l]),
                self.key(&["lock", "l", l]),
            ];
            let args = vec![
                ms(rules.window),
                rules.address_lock_after.max(1).to_string(),
                rules.login_lock_after.max(1).to_string(),
                ms(rules.lockout),
                flag(login.is_some()),
            ];
            let (a, l) = pair(self.eval(FAILED, keys, args).await?)?;
            let mut started = Vec::new();
            if a > 0 {
                started.push((Scope::Address, a as u32));
            }
            if l > 0 {
                started.push((Scope::Login, l as u32));
            }
            Ok(started)
        })
    }

    fn succeeded<'a>(&'a self, address: &'a str, login: &'a str, rules: LockRules) -> Pending<'a, ()> {
        Box::pin(async move {
            let keys = vec![
                self.key(&["fail", "l", login]),
                self.key(&["lock", "l", login]),
                self.key(&["known", login, address]),
            ];
            let _: i64 = self.eval(SUCCEEDED, keys, vec![ms(rules.known_for)]).await?;
            Ok(())
        })
    }

    fn reserve<'a>(&'a self, windows: &'a [Window], member: Option<&'a str>) -> Pending<'a, Result<(), Full>> {
        Box::pin(async move {
            let windows: Vec<&Window> = windows.iter().filter(|w| w.max > 0).collect();
            if windows.is_empty() {
                return Ok(Ok(()));
            }
            let keys = windows.iter().map(|w| self.key(&["w", &w.key])).collect();
            let mut args = vec![member.unwrap_or("").to_owned()];
            for w in &windows {
                args.push(ms(w.span));
                args.push(w.max.to_string());
            }
            let (i, wait) = pair(self.eval(RESERVE, keys, args).await?)?;
            Ok(if i > 0 {
                Err(Full { index: i as usize - 1, retry_after: Duration::from_millis(wait.max(0) as u64) })
            } else {
                Ok(())
            })
        })
    }

    fn release<'a>(&'a self, keys: &'a [String], member: &'a str) -> Pending<'a, ()> {
        Box::pin(async move {
            if keys.is_empty() {
                return Ok(());
            }
            let keys = keys.iter().map(|k| self.key(&["w", k])).collect();
            let _: i64 = self.eval(RELEASE, keys, vec![member.to_owned()]).await?;
            Ok(())
        })
    }

    fn enter_session<'a>(&'a self, login: &'a str, session: &'a str, max: u32, ttl: Duration) -> Pending<'a, bool> {
        Box::pin(async move {
            let n: i64 = self
                .eval(
                    ENTER,
                    vec![self.key(&["sessions", login])],
                    vec![session.to_owned(), max.max(1).to_string(), ms(ttl)],
                )
                .await?;
            Ok(n == 1)
        })
    }

    fn succeeded_entering<'a>(
        &'a self,
        address: &'a str,
        login: &'a str,
        rules: LockRules,
        slot: Slot<'a>,
    ) -> Pending<'a, bool> {
        Box::pin(async move {
            let keys = vec![
                self.key(&["fail", "l", login]),
                self.key(&["lock", "l", login]),
                self.key(&["known", login, address]),
                self.key(&["sessions", slot.login]),
            ];
            let args = vec![ms(rules.known_for), slot.session.to_owned(), slot.max.max(1).to_string(), ms(slot.ttl)];
            let n: i64 = self.eval(SUCCEEDED_ENTER, keys, args).await?;
            Ok(n == 1)
        })
    }

    fn leave_session<'a>(&'a self, login: &'a str, session: &'a str) -> Pending<'a, ()> {
        Box::pin(async move { self.release_raw(self.key(&["sessions", login]), session).await })
    }

    fn record_use<'a>(&'a self, login: &'a str, legacy: bool, ip: &'a str, port: u16, unix: i64) -> Pending<'a, ()> {
        Box::pin(async move {
            let field = format!("{}:{login}", flag(legacy));
            let _: i64 = self
                .eval(
                    RECORD,
                    vec![self.key(&["usage"])],
                    vec![field, unix.to_string(), ip.to_owned(), port.to_string()],
                )
                .await?;
            Ok(())
        })
    }

    fn usage(&self) -> Pending<'_, Vec<UseRecord>> {
        Box::pin(async move {
            let all = tokio::time::timeout(
                self.timeout * 20,
                self.pool
                    .next_connected()
                    .hgetall::<std::collections::HashMap<String, String>, _>(self.key(&["usage"])),
            )
            .await
            .map_err(|_| Unreachable("redis: the usage records did not arrive in time".into()))?
            .map_err(|e| Unreachable(format!("redis: {e}")))?;
            let mut out: Vec<UseRecord> = all.iter().filter_map(|(f, v)| parse_use(f, v)).collect();
            out.sort_by(|a, b| (&a.login, a.legacy).cmp(&(&b.login, b.legacy)));
            Ok(out)
        })
    }
}

impl Redis {
    async fn release_raw(&self, key: String, member: &str) -> Result<(), Unreachable> {
        let _: i64 = self.eval(RELEASE, vec![key], vec![member.to_owned()]).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_values_parse_or_are_dropped() {
        let u = parse_use("1:alice@example.org", "1700000000 192.0.2.1 25 7").unwrap();
        assert_eq!(
            (u.login.as_str(), u.legacy, u.last_seen, u.last_port, u.uses),
            ("alice@example.org", true, 1700000000, 25, 7)
        );
        for (f, v) in [
            ("2:a", "1 x 25 1"),
            ("1:", "1 x 25 1"),
            ("0:a", "1 x 25"),
            ("0:a", "1 x 99999 1"),
            ("0:a", "1 x 25 1 extra"),
            ("0:a", ""),
            ("a", "1 x 2 3"),
        ] {
            assert_eq!(parse_use(f, v), None, "{f} {v}");
        }
    }
}
