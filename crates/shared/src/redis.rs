//! The Redis backend: one Lua script per operation (a script is atomic on
//! the server; the time is the server's clock, TIME; sent once with
//! SCRIPT LOAD, then run by its hash with EVALSHA), over a fixed pool of
//! connections each carrying one command at a time (redis_conn.rs), every
//! operation bounded by a timeout. One Redis server (with a replica for
//! failover if wanted), not Redis Cluster: a script touches several keys.
//!
//! Every key lives under the configured prefix and expires: failure counts
//! after the window, locks after the lockout, known devices after
//! `known_for`, windows after their span, session entries after their ttl.
//! Nothing an attacker sends makes a key live longer or grow past a limit
//! (a window refuses its `max + 1`th entry).
//!
//! Redis's own CPU is the cost here (issue 16: on the nodes' machines it
//! is throughput lost), and a script costs about one `redis.call` each
//! (command lookup, arguments, reply), so the scripts take the fewest
//! calls for the common answer: a window or a session set is counted
//! (ZCARD) before anything else, and its old entries are removed only
//! when the count says it may be full; entries younger than the span
//! never exceed ZCARD, so "room" from ZCARD alone is the answer a trim
//! then a count would give, and a set never holds more than `max`
//! entries either way. The clock (TIME) is read only when a script
//! writes or trims, and its milliseconds are put together as a string
//! from TIME's two integers, not formatted from a float.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use crate::redis_conn::{text, Endpoint, Pool};
use crate::resp::Value;
use crate::{Full, Lock, LockRules, Pending, Scope, SharedState, Slot, Unreachable, UseRecord, Window};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://[user:password@]host:port/db`
    pub url: String,
    /// Connections in the pool: at most this many commands at once (each
    /// connection carries one at a time; more callers wait for a free one).
    pub pool: usize,
    /// Per operation: waiting for a connection, connecting, the commands.
    pub timeout: Duration,
    /// Every key starts with it (several deployments on one server).
    pub prefix: String,
}

pub struct Redis {
    pool: Pool,
    /// host:port, for messages.
    server: String,
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

/// Server time in milliseconds, read by `clock()` the first time a script
/// needs it: `now` (a number, for arithmetic) and `now_s` (the same as
/// digits, what ZADD stores: no float formatting).
const NOW: &str = "
local now, now_s
local function clock()
  if not now then
    local t = redis.call('TIME')
    now_s = t[1] .. string.sub(string.rep('0', 6 - #t[2]) .. t[2], 1, 3)
    now = tonumber(now_s)
  end
end
";

/// The lock that refuses an attempt, as a Lua function: `which, ms` (1
/// the address's, 2 the login's, 0 none) and whether the login's lock is
/// on at all (a known device is spared it, but its failures are not
/// counted either). The known mark is read only when the login is
/// locked (the only time it matters). A macro, as [`succeeded_fn`].
macro_rules! lock_fn {
    () => {
        "
local function lock_in_force(a_lock, l_lock, known, with_login)
  local t = redis.call('PTTL', a_lock)
  if t > 0 then return 1, t, false end
  if with_login == '1' then
    t = redis.call('PTTL', l_lock)
    if t > 0 then
      if redis.call('EXISTS', known) == 0 then return 2, t, true end
      return 0, 0, true
    end
  end
  return 0, 0, false
end
"
    };
}

/// One failure counted under `fail` (the count starts with its window,
/// ARGV[1]); at `after` the lock is set for ARGV[4] and the count starts
/// over. The one body of FAILED's and FAILED_UNLESS_LOCKED's counting (a
/// macro, as [`succeeded_fn`]); each first makes sure no lock holds.
macro_rules! count_fn {
    () => {
        "
local function count(fail, lock, after)
  local n = redis.call('INCR', fail)
  if n == 1 then redis.call('PEXPIRE', fail, ARGV[1]) end
  if n >= tonumber(after) then
    redis.call('SET', lock, n, 'PX', ARGV[4])
    redis.call('DEL', fail)
    return n
  end
  return 0
end
"
    };
}

/// KEYS: the address's lock, the login's lock, the device's known mark;
/// ARGV: '1' when there is a login.
const LOCKED: &str =
    concat!(lock_fn!(), "local which, t = lock_in_force(KEYS[1], KEYS[2], KEYS[3], ARGV[1])\nreturn {which, t}");

/// LOCKED, then FAILED's count unless a lock refuses: `{which, ms, a,
/// l}`. KEYS: the address's failures and lock, the login's failures and
/// lock, the device's known mark; ARGV: FAILED's. Each lock's PTTL is
/// read once: a failure under a lock is not counted, as FAILED has it.
const FAILED_UNLESS_LOCKED: &str = concat!(
    lock_fn!(),
    count_fn!(),
    "
local which, t, login_locked = lock_in_force(KEYS[2], KEYS[4], KEYS[5], ARGV[5])
if which > 0 then return {which, t, 0, 0} end
local a = count(KEYS[1], KEYS[2], ARGV[2])
local l = 0
if ARGV[5] == '1' and not login_locked then l = count(KEYS[3], KEYS[4], ARGV[3]) end
return {0, 0, a, l}"
);

/// A failure during a lock is not counted (it would extend it); the count
/// starts over once the lock is set.
const FAILED: &str = concat!(
    count_fn!(),
    "
local function one(fail, lock, after)
  if redis.call('PTTL', lock) > 0 then return 0 end
  return count(fail, lock, after)
end
local a = one(KEYS[1], KEYS[2], ARGV[2])
local l = 0
if ARGV[5] == '1' then l = one(KEYS[3], KEYS[4], ARGV[3]) end
return {a, l}"
);

/// The body of SUCCEEDED as a Lua function, so that SUCCEEDED_ENTER runs
/// the very same steps (a macro: `concat!` takes literals only). The
/// failures go without looking at the lock: a login under a lock has no
/// failure count (FAILED deletes it when it sets the lock and counts
/// nothing while one holds), so this never forgets a lock's failures.
macro_rules! succeeded_fn {
    () => {
        "
local function succeeded(fail, device, device_ms)
  redis.call('DEL', fail)
  redis.call('SET', device, 1, 'PX', device_ms)
end
"
    };
}

/// The body of ENTER as a Lua function (see [`succeeded_fn`]); it calls
/// `clock()`, which [`NOW`] defines before it. A session already in (and
/// younger than the ttl) is had and left as it is; a stale entry of it is
/// entered again as if new (as a trim would have removed it).
macro_rules! enter_fn {
    () => {
        "
local function enter(k, session, max, ttl_ms)
  clock()
  max = tonumber(max)
  local stale = now - tonumber(ttl_ms)
  if redis.call('ZCARD', k) < max then
    if redis.call('ZADD', k, 'NX', now_s, session) == 0 then
      if tonumber(redis.call('ZSCORE', k, session)) > stale then return 1 end
      redis.call('ZADD', k, now_s, session)
    end
  else
    redis.call('ZREMRANGEBYSCORE', k, '-inf', stale)
    if redis.call('ZSCORE', k, session) then return 1 end
    if redis.call('ZCARD', k) >= max then return 0 end
    redis.call('ZADD', k, now_s, session)
  end
  redis.call('PEXPIRE', k, ttl_ms)
  return 1
end
"
    };
}

/// KEYS: the login's failures, the device's known mark; ARGV: known_ms.
const SUCCEEDED: &str = concat!(succeeded_fn!(), "succeeded(KEYS[1], KEYS[2], ARGV[1])\nreturn 1");

/// LOCKED, then SUCCEEDED unless a lock refuses: `{which, ms}`. KEYS:
/// the address's lock, the login's lock, the device's known mark, the
/// login's failures; ARGV: known_ms.
const SUCCEEDED_UNLESS_LOCKED: &str = concat!(
    lock_fn!(),
    succeeded_fn!(),
    "local which, t = lock_in_force(KEYS[1], KEYS[2], KEYS[3], '1')
if which > 0 then return {which, t} end
succeeded(KEYS[4], KEYS[3], ARGV[1])
return {0, 0}"
);

/// ARGV: member ('' to only check), then span_ms and max per key. A
/// window is trimmed only when its count (entries old and young) reaches
/// its max: then the young ones decide.
const RESERVE: &str = "
for i, k in ipairs(KEYS) do
  local max = tonumber(ARGV[2 * i + 1])
  if redis.call('ZCARD', k) >= max then
    clock()
    local span = tonumber(ARGV[2 * i])
    redis.call('ZREMRANGEBYSCORE', k, '-inf', now - span)
    if redis.call('ZCARD', k) >= max then
      local oldest = redis.call('ZRANGE', k, 0, 0, 'WITHSCORES')
      local wait = 0
      if oldest[2] then wait = tonumber(oldest[2]) + span - now end
      return {i, wait}
    end
  end
end
if ARGV[1] ~= '' then
  clock()
  for i, k in ipairs(KEYS) do
    redis.call('ZADD', k, now_s, ARGV[1])
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
/// KEYS: SUCCEEDED's two, then the sessions key; ARGV: known_ms, then
/// ENTER's session, max, ttl_ms.
const SUCCEEDED_ENTER: &str = concat!(
    succeeded_fn!(),
    enter_fn!(),
    "succeeded(KEYS[1], KEYS[2], ARGV[1])\nreturn enter(KEYS[3], ARGV[2], ARGV[3], ARGV[4])"
);

/// LOCKED, then SUCCEEDED_ENTER unless a lock refuses: `{which, ms,
/// entered}`. KEYS: as SUCCEEDED_UNLESS_LOCKED, then the sessions key;
/// ARGV: known_ms, then ENTER's session, max, ttl_ms.
const SUCCEEDED_ENTER_UNLESS_LOCKED: &str = concat!(
    lock_fn!(),
    succeeded_fn!(),
    enter_fn!(),
    "local which, t = lock_in_force(KEYS[1], KEYS[2], KEYS[3], '1')
if which > 0 then return {which, t, 0} end
succeeded(KEYS[4], KEYS[3], ARGV[1])
return {0, 0, enter(KEYS[5], ARGV[2], ARGV[3], ARGV[4])}"
);

/// ARGV: field, unix seconds, ip, port. Value: 'seen ip port uses'.
const RECORD: &str = "
local v = redis.call('HGET', KEYS[1], ARGV[1])
local uses = 0
if v then uses = tonumber(string.match(v, '(%d+)$')) or 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ' ' .. ARGV[3] .. ' ' .. ARGV[4] .. ' ' .. (uses + 1))
return 1";

impl Redis {
    /// Reads the URL and opens one connection if Redis answers within the
    /// timeout; does not wait longer (a node starts while Redis is down:
    /// each operation then tries to connect, at most every 500 ms).
    pub async fn connect(config: &RedisConfig) -> Result<Redis, String> {
        let ep = Endpoint::parse(&config.url).map_err(|e| format!("redis url: {e}"))?;
        let server = format!("{}:{}", ep.host, ep.port);
        let pool = Pool::new(ep, config.pool.clamp(1, 64));
        let _ = tokio::time::timeout(config.timeout, pool.get()).await;
        Ok(Redis { pool, server, timeout: config.timeout, prefix: config.prefix.clone(), scripts: Default::default() })
    }

    /// Runs one script: EVALSHA once the server knows it (SCRIPT LOAD the
    /// first time; loaded again after NOSCRIPT, e.g. a restarted server),
    /// all of it bounded by the timeout. A server's error reply is an
    /// `Err` too.
    async fn eval(&self, script: &'static str, keys: &[String], args: &[String]) -> Result<Value, Unreachable> {
        let run = async {
            let known = self.scripts.read().unwrap_or_else(|p| p.into_inner()).get(script).cloned();
            let (body, sha) = match known {
                Some(k) => k,
                None => {
                    let body: Arc<str> =
                        if script.contains("clock()") { format!("{NOW}{script}").into() } else { script.into() };
                    (body, None)
                }
            };
            let numkeys = keys.len().to_string();
            let mut conn = self.pool.get().await?;
            if let Some(sha) = &sha {
                match conn.call(&evalsha(sha, &numkeys, keys, args)).await? {
                    Value::Error(e) if e.starts_with(b"NOSCRIPT") => {}
                    other => return Ok(other),
                }
            }
            let sha: Arc<str> = match conn.call(&[b"SCRIPT", b"LOAD", body.as_bytes()]).await? {
                Value::Bulk(Some(sha)) if sha.len() == 40 && sha.iter().all(u8::is_ascii_hexdigit) => {
                    String::from_utf8_lossy(&sha).into()
                }
                other => return Err(format!("SCRIPT LOAD answered {}", text(&other))),
            };
            self.scripts.write().unwrap_or_else(|p| p.into_inner()).insert(script, (body, Some(sha.clone())));
            conn.call(&evalsha(&sha, &numkeys, keys, args)).await
        };
        match tokio::time::timeout(self.timeout, run).await {
            Ok(Ok(Value::Error(e))) => Err(Unreachable(format!("redis {}: {}", self.server, text(&Value::Error(e))))),
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Unreachable(format!("redis {}: {e}", self.server))),
            Err(_) => {
                Err(Unreachable(format!("redis {}: no answer within {} ms", self.server, self.timeout.as_millis())))
            }
        }
    }

    fn key(&self, parts: &[&str]) -> String {
        let mut k = self.prefix.clone();
        k.push_str(&parts.join(":"));
        k
    }
}

/// `EVALSHA sha numkeys keys... args...`
fn evalsha<'a>(sha: &'a str, numkeys: &'a str, keys: &'a [String], args: &'a [String]) -> Vec<&'a [u8]> {
    let mut v: Vec<&[u8]> = Vec::with_capacity(3 + keys.len() + args.len());
    v.push(b"EVALSHA");
    v.push(sha.as_bytes());
    v.push(numkeys.as_bytes());
    v.extend(keys.iter().map(|k| k.as_bytes()));
    v.extend(args.iter().map(|a| a.as_bytes()));
    v
}

/// A script's array of `N` numbers.
fn ints<const N: usize>(v: Value) -> Result<[i64; N], Unreachable> {
    let mut out = [0; N];
    let all = match &v {
        Value::Array(Some(a)) if a.len() == N => a.iter().zip(&mut out).all(|(x, o)| match x {
            Value::Integer(x) => {
                *o = *x;
                true
            }
            _ => false,
        }),
        _ => false,
    };
    if all {
        Ok(out)
    } else {
        Err(Unreachable(format!("redis: a script answered {v:?}")))
    }
}

/// A lock script's `which, ms`: the lock in force, if any.
fn lock_of(which: i64, ms: i64) -> Option<Lock> {
    let left = Duration::from_millis(ms.max(0) as u64);
    match which {
        1 => Some((Scope::Address, left)),
        2 => Some((Scope::Login, left)),
        _ => None,
    }
}

/// The one number the other scripts answer with.
fn int(v: Value) -> Result<i64, Unreachable> {
    match v {
        Value::Integer(n) => Ok(n),
        other => Err(Unreachable(format!("redis: a script answered {other:?}"))),
    }
}

/// FAILED's ARGV (and FAILED_UNLESS_LOCKED's).
fn failed_args(rules: LockRules, with_login: bool) -> Vec<String> {
    vec![
        ms(rules.window),
        rules.address_lock_after.max(1).to_string(),
        rules.login_lock_after.max(1).to_string(),
        ms(rules.lockout),
        flag(with_login),
    ]
}

/// The locks a failure started, from FAILED's two counts.
fn started(a: i64, l: i64) -> Vec<(Scope, u32)> {
    let mut started = Vec::new();
    if a > 0 {
        started.push((Scope::Address, a as u32));
    }
    if l > 0 {
        started.push((Scope::Login, l as u32));
    }
    started
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

    fn locked<'a>(&'a self, address: &'a str, login: Option<&'a str>) -> Pending<'a, Option<Lock>> {
        Box::pin(async move {
            let l = login.unwrap_or("");
            let keys =
                vec![self.key(&["lock", "a", address]), self.key(&["lock", "l", l]), self.key(&["known", l, address])];
            let [which, left] = ints(self.eval(LOCKED, &keys, &[flag(login.is_some())]).await?)?;
            Ok(lock_of(which, left))
        })
    }

    fn failed<'a>(
        &'a self,
        address: &'a str,
        login: Option<&'a str>,
        rules: LockRules,
    ) -> Pending<'a, Vec<(Scope, u32)>> {
        Box::pin(async move {
            let keys = self.failure_keys(address, login.unwrap_or(""));
            let [a, l] = ints(self.eval(FAILED, &keys, &failed_args(rules, login.is_some())).await?)?;
            Ok(started(a, l))
        })
    }

    fn failed_unless_locked<'a>(
        &'a self,
        address: &'a str,
        login: Option<&'a str>,
        rules: LockRules,
    ) -> Pending<'a, Result<Vec<(Scope, u32)>, Lock>> {
        Box::pin(async move {
            let l = login.unwrap_or("");
            let mut keys = self.failure_keys(address, l);
            keys.push(self.key(&["known", l, address]));
            let args = failed_args(rules, login.is_some());
            let [which, left, a, l] = ints(self.eval(FAILED_UNLESS_LOCKED, &keys, &args).await?)?;
            if let Some(lock) = lock_of(which, left) {
                return Ok(Err(lock));
            }
            Ok(Ok(started(a, l)))
        })
    }

    fn succeeded_unless_locked<'a>(
        &'a self,
        address: &'a str,
        login: &'a str,
        rules: LockRules,
    ) -> Pending<'a, Result<(), Lock>> {
        Box::pin(async move {
            let keys = self.success_keys(address, login);
            let [which, left] = ints(self.eval(SUCCEEDED_UNLESS_LOCKED, &keys, &[ms(rules.known_for)]).await?)?;
            Ok(lock_of(which, left).map_or(Ok(()), Err))
        })
    }

    fn succeeded_entering_unless_locked<'a>(
        &'a self,
        address: &'a str,
        login: &'a str,
        rules: LockRules,
        slot: Slot<'a>,
    ) -> Pending<'a, Result<bool, Lock>> {
        Box::pin(async move {
            let mut keys = self.success_keys(address, login);
            keys.push(self.key(&["sessions", slot.login]));
            let args = vec![ms(rules.known_for), slot.session.to_owned(), slot.max.max(1).to_string(), ms(slot.ttl)];
            let [which, left, entered] = ints(self.eval(SUCCEEDED_ENTER_UNLESS_LOCKED, &keys, &args).await?)?;
            Ok(lock_of(which, left).map_or(Ok(entered == 1), Err))
        })
    }

    fn succeeded<'a>(&'a self, address: &'a str, login: &'a str, rules: LockRules) -> Pending<'a, ()> {
        Box::pin(async move {
            let keys = vec![self.key(&["fail", "l", login]), self.key(&["known", login, address])];
            int(self.eval(SUCCEEDED, &keys, &[ms(rules.known_for)]).await?)?;
            Ok(())
        })
    }

    fn reserve<'a>(&'a self, windows: &'a [Window], member: Option<&'a str>) -> Pending<'a, Result<(), Full>> {
        Box::pin(async move {
            let windows: Vec<&Window> = windows.iter().filter(|w| w.max > 0).collect();
            if windows.is_empty() {
                return Ok(Ok(()));
            }
            let keys: Vec<String> = windows.iter().map(|w| self.key(&["w", &w.key])).collect();
            let mut args = vec![member.unwrap_or("").to_owned()];
            for w in &windows {
                args.push(ms(w.span));
                args.push(w.max.to_string());
            }
            let [i, wait] = ints(self.eval(RESERVE, &keys, &args).await?)?;
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
            let keys: Vec<String> = keys.iter().map(|k| self.key(&["w", k])).collect();
            int(self.eval(RELEASE, &keys, &[member.to_owned()]).await?)?;
            Ok(())
        })
    }

    fn enter_session<'a>(&'a self, login: &'a str, session: &'a str, max: u32, ttl: Duration) -> Pending<'a, bool> {
        Box::pin(async move {
            let keys = [self.key(&["sessions", login])];
            let n = int(self.eval(ENTER, &keys, &[session.to_owned(), max.max(1).to_string(), ms(ttl)]).await?)?;
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
                self.key(&["known", login, address]),
                self.key(&["sessions", slot.login]),
            ];
            let args = vec![ms(rules.known_for), slot.session.to_owned(), slot.max.max(1).to_string(), ms(slot.ttl)];
            let n = int(self.eval(SUCCEEDED_ENTER, &keys, &args).await?)?;
            Ok(n == 1)
        })
    }

    fn leave_session<'a>(&'a self, login: &'a str, session: &'a str) -> Pending<'a, ()> {
        Box::pin(async move { self.release_raw(self.key(&["sessions", login]), session).await })
    }

    fn record_use<'a>(&'a self, login: &'a str, legacy: bool, ip: &'a str, port: u16, unix: i64) -> Pending<'a, ()> {
        Box::pin(async move {
            let field = format!("{}:{login}", flag(legacy));
            let args = [field, unix.to_string(), ip.to_owned(), port.to_string()];
            int(self.eval(RECORD, &[self.key(&["usage"])], &args).await?)?;
            Ok(())
        })
    }

    /// Read in pages (HSCAN, about 1,000 records each) so that no reply
    /// is larger than the client's bounds however many logins there are;
    /// a record seen twice while the hash grows is counted once.
    fn usage(&self) -> Pending<'_, Vec<UseRecord>> {
        Box::pin(async move {
            let key = self.key(&["usage"]);
            let scan = async {
                let mut conn = self.pool.get().await?;
                let mut all: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
                let mut cursor = b"0".to_vec();
                loop {
                    let page = conn.call(&[b"HSCAN", key.as_bytes(), &cursor, b"COUNT", b"1000"]).await?;
                    let Value::Array(Some(mut page)) = page else { return Err(text(&page)) };
                    let (Some(Value::Array(Some(items))), Some(Value::Bulk(Some(next))), None) =
                        (page.pop(), page.pop(), page.pop())
                    else {
                        return Err("HSCAN answered something else than a cursor and records".into());
                    };
                    let mut it = items.into_iter();
                    while let (Some(Value::Bulk(Some(f))), Some(Value::Bulk(Some(v)))) = (it.next(), it.next()) {
                        all.insert(f, v);
                    }
                    if next == b"0" {
                        return Ok(all);
                    }
                    cursor = next;
                }
            };
            let all = tokio::time::timeout(self.timeout * 20, scan)
                .await
                .map_err(|_| Unreachable(format!("redis {}: the usage records did not arrive in time", self.server)))?
                .map_err(|e| Unreachable(format!("redis {}: {e}", self.server)))?;
            let mut out: Vec<UseRecord> = all
                .iter()
                .filter_map(|(f, v)| parse_use(std::str::from_utf8(f).ok()?, std::str::from_utf8(v).ok()?))
                .collect();
            out.sort_by(|a, b| (&a.login, a.legacy).cmp(&(&b.login, b.legacy)));
            Ok(out)
        })
    }
}

impl Redis {
    /// FAILED's keys (and the first four of FAILED_UNLESS_LOCKED's).
    fn failure_keys(&self, address: &str, login: &str) -> Vec<String> {
        vec![
            self.key(&["fail", "a", address]),
            self.key(&["lock", "a", address]),
            self.key(&["fail", "l", login]),
            self.key(&["lock", "l", login]),
        ]
    }

    /// The keys the *_UNLESS_LOCKED scripts of a success start with.
    fn success_keys(&self, address: &str, login: &str) -> Vec<String> {
        vec![
            self.key(&["lock", "a", address]),
            self.key(&["lock", "l", login]),
            self.key(&["known", login, address]),
            self.key(&["fail", "l", login]),
        ]
    }

    async fn release_raw(&self, key: String, member: &str) -> Result<(), Unreachable> {
        int(self.eval(RELEASE, &[key], &[member.to_owned()]).await?)?;
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
