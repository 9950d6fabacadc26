//! systemd integration of `port25 serve` (and of `port25 spampot` and
//! `port25 spampot collect`, whose listeners it maps the same way): socket activation
//! (sd_listen_fds(3)) and service notification (sd_notify(3)), a small
//! implementation of the two documented protocols instead of libsystemd.
//!
//! Socket activation: systemd (or `systemd-socket-activate`) binds ports 25,
//! 587 and 465 as root and passes the listening sockets as file descriptors
//! 3.. with `LISTEN_FDS=n`, `LISTEN_PID=<our pid>` and, from the socket
//! units' `FileDescriptorName=`, `LISTEN_FDNAMES=mx:submission:...`. A
//! socket goes to the `[[listener]]` of the same name; a socket without a
//! name (or with the default one) goes to the listener whose configured
//! address is the socket's own. A socket that matches no listener, or two
//! sockets for one listener, stop the start-up: a port that systemd holds
//! open while nobody accepts on it would swallow connections.
//!
//! Notification: `READY=1` once every listener accepts, `RELOADING=1`
//! (with `MONOTONIC_USEC`) and `READY=1` around a reload, `STOPPING=1`
//! when a stop begins, and `WATCHDOG=1` every half `WATCHDOG_USEC` from
//! the runtime that serves the sessions (a wedged runtime stops pinging
//! and systemd restarts the service). Without `NOTIFY_SOCKET` all of it
//! is a no-op.

use anyhow::{bail, Context};
use port25_config::Listener;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::net::UnixDatagram;
use std::sync::OnceLock;
use std::time::Duration;

/// The first inherited descriptor (SD_LISTEN_FDS_START).
const FIRST_FD: RawFd = 3;

/// Sockets inherited from systemd, not yet given to a listener.
#[derive(Default)]
pub struct Inherited {
    sockets: Vec<(String, TcpListener)>,
}

/// What `LISTEN_FDNAMES` holds for a socket unit without
/// `FileDescriptorName=`: the unit's own name ("port25-mx.socket"), or
/// "unknown" from `systemd-socket-activate` without `--fdname`.
fn is_default_name(name: &str) -> bool {
    name.is_empty() || name == "unknown" || name.ends_with(".socket")
}

/// The configured address is the socket's: equal (IPv4-mapped folded), or
/// both wildcards on one port (`ListenStream=25` binds `[::]:25`, which
/// also takes IPv4, for a listener written `0.0.0.0:25`).
fn same_address(configured: SocketAddr, socket: SocketAddr) -> bool {
    let (c, s) = (configured.ip().to_canonical(), socket.ip().to_canonical());
    configured.port() == socket.port() && (c == s || (c.is_unspecified() && s.is_unspecified()))
}

/// Which listener each inherited socket belongs to, by name first, then by
/// address. Pure, for the tests: `sockets` are (name, local address).
pub fn assign(listeners: &[(&str, SocketAddr)], sockets: &[(String, SocketAddr)]) -> anyhow::Result<Vec<usize>> {
    let mut out: Vec<usize> = Vec::with_capacity(sockets.len());
    for (i, (name, local)) in sockets.iter().enumerate() {
        let by_name = listeners.iter().position(|(l, _)| *l == name.as_str());
        let found = match by_name {
            Some(n) => Some(n),
            None if is_default_name(name) => listeners.iter().position(|(_, a)| same_address(*a, *local)),
            None => None,
        };
        let Some(n) = found else {
            let names: Vec<&str> = listeners.iter().map(|(l, _)| *l).collect();
            bail!(
                "systemd passed socket {} (fd {}, name {name:?}, address {local}) that matches no [[listener]]: \
                 set FileDescriptorName= in its socket unit to one of {names:?}, or give the listener that address",
                i + 1,
                FIRST_FD + i as RawFd
            );
        };
        if out.contains(&n) {
            bail!(
                "systemd passed two sockets for the [[listener]] {:?} (the second is fd {}): one socket unit per listener",
                listeners[n].0,
                FIRST_FD + i as RawFd
            );
        }
        out.push(n);
    }
    Ok(out)
}

/// Takes the sockets systemd passed, if it passed any to this process, and
/// removes the variables so that no child process believes they are its.
/// Call before any thread starts (it changes the environment).
pub fn take_inherited(listeners: &[Listener]) -> anyhow::Result<Inherited> {
    let wanted: Vec<(&str, SocketAddr)> = listeners.iter().map(|l| (l.name.as_str(), l.address)).collect();
    take_inherited_for(&wanted)
}

/// [`take_inherited`] for any service's listeners, given as (name,
/// configured address): the spampot's bait and the collector use it too.
pub fn take_inherited_for(wanted: &[(&str, SocketAddr)]) -> anyhow::Result<Inherited> {
    let pid = std::env::var("LISTEN_PID").ok();
    let count = std::env::var("LISTEN_FDS").ok();
    let names = std::env::var("LISTEN_FDNAMES").ok();
    for v in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(v);
    }
    let (Some(pid), Some(count)) = (pid, count) else { return Ok(Inherited::default()) };
    // Meant for another process (inherited through a wrapper): not ours.
    if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
        return Ok(Inherited::default());
    }
    let count: usize = count.trim().parse().with_context(|| format!("LISTEN_FDS={count:?} is not a number"))?;
    if count > 64 {
        bail!("LISTEN_FDS={count}: more sockets than port25 has listeners");
    }
    let names: Vec<String> = match names {
        Some(n) => n.split(':').map(str::to_owned).collect(),
        None => vec![String::new(); count],
    };
    if names.len() != count {
        bail!("LISTEN_FDNAMES names {} sockets but LISTEN_FDS={count}", names.len());
    }
    let mut sockets = Vec::with_capacity(count);
    for (i, name) in names.into_iter().enumerate() {
        let fd = FIRST_FD + i as RawFd;
        check_listening_stream(fd).with_context(|| format!("systemd socket fd {fd} ({name:?})"))?;
        // SAFETY: systemd hands fds 3..3+LISTEN_FDS to this process (checked
        // by LISTEN_PID above) and nothing else in port25 uses them; each is
        // wrapped exactly once.
        let listener = unsafe { TcpListener::from_raw_fd(fd) };
        // Our children (none today) must not inherit the port.
        // SAFETY: fcntl on a descriptor we own.
        unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        listener.set_nonblocking(true)?;
        sockets.push((name, listener));
    }
    let shown: Vec<(String, SocketAddr)> =
        sockets.iter().map(|(n, l)| Ok((n.clone(), l.local_addr()?))).collect::<std::io::Result<_>>()?;
    let order = assign(wanted, &shown)?;
    let sockets = sockets.into_iter().zip(order).map(|((_, l), n)| (wanted[n].0.to_owned(), l)).collect();
    Ok(Inherited { sockets })
}

/// A TCP socket in the listening state (SO_ACCEPTCONN), or an error
/// saying what it is instead.
fn check_listening_stream(fd: RawFd) -> anyhow::Result<()> {
    let get = |opt: libc::c_int| -> std::io::Result<libc::c_int> {
        let mut v: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: v and len are valid for the call; fd is only read.
        let r = unsafe { libc::getsockopt(fd, libc::SOL_SOCKET, opt, (&mut v as *mut libc::c_int).cast(), &mut len) };
        if r == 0 {
            Ok(v)
        } else {
            Err(std::io::Error::last_os_error())
        }
    };
    let kind = get(libc::SO_TYPE).context("not a socket (is ListenStream= set, not ListenDatagram= or a FIFO?)")?;
    if kind != libc::SOCK_STREAM {
        bail!("not a stream socket: use ListenStream=");
    }
    let domain = get(libc::SO_DOMAIN)?;
    if domain != libc::AF_INET && domain != libc::AF_INET6 {
        bail!("not a TCP socket (address family {domain}): use ListenStream=PORT or ADDRESS:PORT");
    }
    if get(libc::SO_ACCEPTCONN)? == 0 {
        bail!("not listening: port25 takes listening sockets (Accept=no)");
    }
    Ok(())
}

impl Inherited {
    /// The socket systemd passed for this listener, if any.
    pub fn take(&mut self, name: &str) -> Option<TcpListener> {
        let i = self.sockets.iter().position(|(n, _)| n == name)?;
        Some(self.sockets.swap_remove(i).1)
    }

    /// The socket of the listener `name`: the inherited one, else bound
    /// here on `address`.
    pub async fn listener(&mut self, name: &str, address: SocketAddr) -> anyhow::Result<tokio::net::TcpListener> {
        if let Some(s) = self.take(name) {
            return tokio::net::TcpListener::from_std(s)
                .with_context(|| format!("listener {name:?}: the socket systemd passed"));
        }
        tokio::net::TcpListener::bind(address).await.with_context(|| {
            format!(
                "listener {name:?}: cannot bind {address} (ports below 1024 need socket activation (port25-*.socket), CAP_NET_BIND_SERVICE or root; is another server on it?)"
            )
        })
    }
}

/// The service manager's notification socket (`NOTIFY_SOCKET`).
struct Notifier {
    socket: UnixDatagram,
    addr: std::os::unix::net::SocketAddr,
}

static NOTIFIER: OnceLock<Option<Notifier>> = OnceLock::new();

fn notifier() -> Option<&'static Notifier> {
    NOTIFIER
        .get_or_init(|| {
            let path = std::env::var_os("NOTIFY_SOCKET")?;
            let bytes = std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str());
            let addr = match bytes.strip_prefix(b"@") {
                // An abstract socket (Linux): "@name".
                Some(name) => {
                    <std::os::unix::net::SocketAddr as std::os::linux::net::SocketAddrExt>::from_abstract_name(name)
                        .ok()?
                }
                None => std::os::unix::net::SocketAddr::from_pathname(std::path::Path::new(&path)).ok()?,
            };
            Some(Notifier { socket: UnixDatagram::unbound().ok()?, addr })
        })
        .as_ref()
}

/// Sends one notification ("READY=1", ...); false when there is no
/// service manager to tell, or it could not be told.
pub fn notify(state: &str) -> bool {
    let Some(n) = notifier() else { return false };
    n.socket.send_to_addr(state.as_bytes(), &n.addr).is_ok()
}

/// Every listener accepts: `READY=1`, and the watchdog starts.
pub fn ready(listeners: usize) {
    ready_with(&format!("accepting mail on {listeners} listeners"));
}

/// `READY=1` with `status` for systemctl status, and the watchdog starts.
pub fn ready_with(status: &str) {
    notify(&format!("READY=1\nSTATUS={status}\nMAINPID={}", std::process::id()));
    if let Some(every) = watchdog_interval() {
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                notify("WATCHDOG=1");
            }
        });
    }
}

/// A reload begins (`RELOADING=1` with the CLOCK_MONOTONIC time systemd
/// asks for); [`reloaded`] says it is over, whatever the outcome.
pub fn reloading() {
    notify(&format!("RELOADING=1\nSTATUS=reloading\nMONOTONIC_USEC={}", monotonic_usec()));
}

pub fn reloaded(status: &str) {
    notify(&format!("READY=1\nSTATUS={status}"));
}

/// A stop begins: sessions drain, then delivery stops.
pub fn stopping() {
    notify("STOPPING=1\nSTATUS=draining sessions");
}

/// A stop begins, with `status` saying what is being finished.
pub fn stopping_with(status: &str) {
    notify(&format!("STOPPING=1\nSTATUS={status}"));
}

/// Half of `WATCHDOG_USEC` (sd_watchdog_enabled(3)), when the watchdog is
/// on for this process.
fn watchdog_interval() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.trim().parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.trim().parse::<u32>().ok() != Some(std::process::id()) {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec / 2).max(Duration::from_millis(10)))
}

fn monotonic_usec() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

#[cfg(test)]
mod tests {
    use super::assign;
    use std::net::SocketAddr;

    fn a(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    #[test]
    fn sockets_go_to_listeners_by_name_then_by_address() {
        let listeners = [("mx", a("0.0.0.0:25")), ("submission", a("0.0.0.0:587")), ("submissions", a("0.0.0.0:465"))];
        let named = [("submissions".to_owned(), a("[::]:465")), ("mx".to_owned(), a("[::]:25"))];
        assert_eq!(assign(&listeners, &named).unwrap(), vec![2, 0]);
        // systemd-socket-activate without --fdname, a socket unit without FileDescriptorName=
        let unnamed = [
            ("unknown".to_owned(), a("0.0.0.0:587")),
            ("port25-mx.socket".to_owned(), a("[::]:25")),
            (String::new(), a("[::ffff:0.0.0.0]:465")),
        ];
        assert_eq!(assign(&listeners, &unnamed).unwrap(), vec![1, 0, 2]);
    }

    #[test]
    fn a_socket_for_no_listener_or_a_second_one_stops_the_start() {
        let listeners = [("mx", a("0.0.0.0:25"))];
        let e = assign(&listeners, &[("smtp".to_owned(), a("0.0.0.0:25"))]).unwrap_err().to_string();
        assert!(e.contains("\"smtp\"") && e.contains("FileDescriptorName=") && e.contains("[\"mx\"]"), "{e}");
        let e = assign(&listeners, &[("unknown".to_owned(), a("0.0.0.0:2525"))]).unwrap_err().to_string();
        assert!(e.contains("0.0.0.0:2525"), "{e}");
        let e = assign(&listeners, &[("mx".to_owned(), a("0.0.0.0:25")), ("unknown".to_owned(), a("0.0.0.0:25"))])
            .unwrap_err()
            .to_string();
        assert!(e.contains("two sockets") && e.contains("fd 4"), "{e}");
    }
}
