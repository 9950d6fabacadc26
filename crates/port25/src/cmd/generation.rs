//! The SMTP listeners of `port25 serve`, in generations (issue 15,
//! section 2). A generation is one accept loop on a listener's socket with
//! one [`Runtime`]: every session it accepts runs on that runtime to its
//! end. A reload starts the next generation of every listener on the new
//! runtime, then stops the previous one accepting; the previous one's
//! sessions finish on the settings they started with.
//!
//! Why generations and not a runtime pointer swapped under one accept
//! loop (arc-swap, a watch channel): the connection caps and the
//! per-client table are built from a listener's limits, so a change of
//! limits needs a new accept loop anyway; with one loop per runtime there
//! is nothing to load per accept and no way for a session to see half of
//! two configurations. Each generation accepts on its own duplicate
//! (dup(2)) of the one listening socket, so an unchanged listener is never
//! closed: its accept queue is the kernel's and both generations serve it
//! while they overlap. During that overlap each generation counts its own
//! connections against the caps.
//!
//! Listeners are matched by name. One whose address changed is bound anew
//! first; if that fails the old socket keeps serving (on the new runtime)
//! and `port25.server.rebind_failed` says why. A listener added is bound
//! and started, one removed stops accepting (its socket closes, its
//! sessions finish). A socket systemd passed (LISTEN_FDS) is never
//! rebound: systemd owns its address.

use super::runtime::Runtime;
use port25_config::{Listener, Service, TlsMode};
use port25_events as ev;
use port25_events::emit;
use port25_submission::SubmissionPolicy;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// One listener: its socket (the original; generations accept on dups).
struct Entry {
    config: Listener,
    socket: std::net::TcpListener,
    bound: SocketAddr,
    /// Passed by systemd: never rebound.
    activated: bool,
    /// The current generation: cancel to stop it accepting.
    accepting: CancellationToken,
    /// Resolves once the current generation stopped accepting.
    stopped: tokio::sync::oneshot::Receiver<()>,
}

/// Every SMTP listener and their generations.
pub struct Listeners {
    entries: Vec<Entry>,
    /// Cancelled when the process stops: every session is told to end.
    shutdown: CancellationToken,
    /// Every generation's task, to wait for at the end.
    tasks: TaskTracker,
}

/// How long a reload waits for a previous generation to stop accepting.
const STOP_WAIT: Duration = Duration::from_secs(5);

impl Listeners {
    /// Binds (or takes from systemd) every configured listener and starts
    /// its first generation; an error stops the start-up.
    pub async fn start(
        runtime: &Arc<Runtime>,
        inherited: &mut super::systemd::Inherited,
        shutdown: CancellationToken,
    ) -> anyhow::Result<Listeners> {
        let mut set = Listeners { entries: Vec::new(), shutdown, tasks: TaskTracker::new() };
        for l in &runtime.config.listeners {
            let (socket, activated) = match inherited.take(&l.name) {
                Some(s) => (s, true),
                None => (bind(l)?, false),
            };
            set.add(l.clone(), socket, activated, runtime)?;
        }
        Ok(set)
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    fn add(
        &mut self,
        l: Listener,
        socket: std::net::TcpListener,
        activated: bool,
        runtime: &Arc<Runtime>,
    ) -> anyhow::Result<()> {
        let bound = socket.local_addr()?;
        emit!(info, ev::SERVER_LISTENING, listener = %l.name, address = %bound, service = ?l.service, tls = ?l.tls);
        let (accepting, stopped) = self.generation(&l, &socket, runtime)?;
        self.entries.push(Entry { config: l, socket, bound, activated, accepting, stopped });
        Ok(())
    }

    /// Starts a generation of `l` on a dup of `socket` with `runtime`.
    fn generation(
        &self,
        l: &Listener,
        socket: &std::net::TcpListener,
        runtime: &Arc<Runtime>,
    ) -> anyhow::Result<(CancellationToken, tokio::sync::oneshot::Receiver<()>)> {
        let dup = socket.try_clone()?;
        dup.set_nonblocking(true)?;
        let listener = tokio::net::TcpListener::from_std(dup)?;
        let settings =
            Arc::new(super::wiring::listener_settings(&runtime.config, l, &runtime.tls, &runtime.data_budget));
        let accepting = self.shutdown.child_token();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let (rt, l, sessions, until) = (runtime.clone(), l.clone(), self.shutdown.child_token(), accepting.clone());
        let drain_timeout = settings.drain_timeout;
        let name = l.name.clone();
        let shutdown = self.shutdown.clone();
        self.tasks.spawn(async move {
            let tracker = match (l.service, &rt.submission) {
                (Service::Mx, Some(shared)) if l.legacy_submission => {
                    let policy = Arc::new(port25_submission::legacy::LegacyMx::new(rt.mx.clone(), shared.clone()));
                    port25_engine::accept_sessions_until(listener, settings, policy, &until, sessions).await
                }
                // Screened: plain port-25 listeners only (legacy_submission
                // carries authenticated submission, which is never screened).
                (Service::Mx, _) if rt.screener.is_some() && l.tls != TlsMode::Implicit => {
                    let screener = rt.screener.clone().expect("checked");
                    port25_screen::server::accept_until(listener, settings, rt.mx.clone(), screener, &until, sessions)
                        .await
                }
                (Service::Mx, _) => {
                    port25_engine::accept_sessions_until(listener, settings, rt.mx.clone(), &until, sessions).await
                }
                (Service::Submission, Some(shared)) => {
                    let policy = Arc::new(SubmissionPolicy::new(shared.clone(), l.plaintext_auth));
                    port25_engine::accept_sessions_until(listener, settings, policy, &until, sessions).await
                }
                (Service::Submission, None) => {
                    unreachable!("a runtime with a submission listener has submission (runtime.rs)")
                }
            };
            let _ = tx.send(());
            // The runtime is this generation's sessions' from here on.
            tracker.close();
            if !shutdown.is_cancelled() {
                tokio::select! {
                    _ = tracker.wait() => return,
                    _ = shutdown.cancelled() => {}
                }
            }
            emit!(info, ev::SERVER_STOPPING, listener = %name, sessions = tracker.len());
            if !port25_listen::accept::drain(&tracker, drain_timeout).await {
                emit!(warn, ev::SERVER_STOPPING, listener = %name, sessions = tracker.len(), note = "drain timeout; closing remaining sessions");
            }
        });
        Ok((accepting, rx))
    }

    /// Moves every listener to `runtime` (its configuration is the new
    /// one): rebinds, adds and removes listeners as it says, and returns
    /// one note per listener that changed. Returns once every previous
    /// generation stopped accepting, so a connection made after this
    /// returns gets the new runtime.
    pub async fn apply(&mut self, runtime: &Arc<Runtime>) -> Vec<String> {
        let mut notes = Vec::new();
        let mut retired = Vec::new();
        let old = std::mem::take(&mut self.entries);
        let mut old: Vec<Option<Entry>> = old.into_iter().map(Some).collect();
        for l in &runtime.config.listeners {
            let found =
                old.iter_mut().find(|e| e.as_ref().is_some_and(|e| e.config.name == l.name)).and_then(Option::take);
            let Some(mut entry) = found else {
                match bind(l).and_then(|s| self.add(l.clone(), s, false, runtime)) {
                    Ok(()) => notes.push(format!("{} added", l.name)),
                    Err(e) => {
                        emit!(error, ev::SERVER_REBIND_FAILED, listener = %l.name, address = %l.address, error = %format!("{e:#}"));
                        notes.push(format!("{} not added ({e:#})", l.name));
                    }
                }
                continue;
            };
            let mut address = l.address;
            if entry.config.address != l.address {
                if entry.activated {
                    address = entry.config.address;
                    notes.push(format!(
                        "{}: address {} not applied: the socket is systemd's (socket activation), change its .socket unit",
                        l.name, l.address
                    ));
                } else {
                    match bind(l) {
                        Ok(socket) => {
                            let was = entry.bound;
                            entry.socket = socket;
                            entry.bound = entry.socket.local_addr().unwrap_or(l.address);
                            emit!(info, ev::SERVER_LISTENING, listener = %l.name, address = %entry.bound, service = ?l.service, tls = ?l.tls);
                            notes.push(format!("{} rebound from {was} to {}", l.name, entry.bound));
                        }
                        Err(e) => {
                            // Kept as configured before, so the next reload tries again.
                            address = entry.config.address;
                            emit!(error, ev::SERVER_REBIND_FAILED, listener = %l.name, address = %l.address, error = %format!("{e:#}"));
                            notes.push(format!("{} kept {} ({e:#})", l.name, entry.bound));
                        }
                    }
                }
            }
            match self.generation(l, &entry.socket, runtime) {
                Ok((accepting, stopped)) => {
                    retired.push((
                        std::mem::replace(&mut entry.accepting, accepting),
                        std::mem::replace(&mut entry.stopped, stopped),
                    ));
                }
                Err(e) => {
                    // The old generation goes on serving with the old runtime.
                    emit!(error, ev::SERVER_REBIND_FAILED, listener = %l.name, address = %entry.bound, error = %format!("{e:#}"));
                    notes.push(format!("{} kept its previous settings ({e:#})", l.name));
                }
            }
            entry.config = Listener { address, ..l.clone() };
            self.entries.push(entry);
        }
        for entry in old.into_iter().flatten() {
            notes.push(format!("{} removed", entry.config.name));
            emit!(info, ev::SERVER_STOPPING, listener = %entry.config.name, note = "removed from the configuration; its sessions finish");
            retired.push((entry.accepting, entry.stopped));
            // entry.socket closes here; the generation's dup when it stops.
        }
        for (accepting, _) in &retired {
            accepting.cancel();
        }
        for (_, stopped) in retired {
            let _ = tokio::time::timeout(STOP_WAIT, stopped).await;
        }
        notes
    }

    /// Waits for every generation to end (after `shutdown` was cancelled).
    pub async fn wait(&mut self) {
        self.entries.clear();
        self.tasks.close();
        self.tasks.wait().await;
    }
}

/// A listening socket on `l.address`, as tokio binds one (SO_REUSEADDR,
/// a backlog of 1024).
fn bind(l: &Listener) -> anyhow::Result<std::net::TcpListener> {
    use anyhow::Context;
    let listen = || -> std::io::Result<std::net::TcpListener> {
        let socket = match l.address {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.bind(l.address)?;
        socket.listen(1024)?.into_std()
    };
    let socket = listen().with_context(|| {
        format!(
            "listener {:?}: cannot bind {} (ports below 1024 need socket activation (port25-*.socket), CAP_NET_BIND_SERVICE or root; is another server on it?)",
            l.name, l.address
        )
    })?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}
