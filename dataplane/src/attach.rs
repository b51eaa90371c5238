//! Where applications attach (`[sockets]`): a Unix socket served by the control plane.
//!
//! The handshake: the application sends `DPSOCK <version>`; the daemon checks the
//! version and the peer's credentials (SO_PEERCRED against `allow-users` /
//! `allow-groups`), creates the application's shared region (one request and one
//! completion ring per shard) and answers `OK <shards>` with the region's memfd
//! attached (SCM_RIGHTS), or `ERR <why>`. The connection then stays open: when it
//! closes (the application exited, or was killed), every shard closes the
//! application's sockets and drops its rings, and the memory goes with the last map.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::{UnixListener, UnixStream};
use std::sync::Arc;
use std::time::Duration;

use dpsock::shm::{Region, VERSION};

use crate::config::SocketsConfig;
use crate::runtime::apps::AppConn;
use crate::runtime::shard::Shard;
use crate::runtime::Shared;

struct Attached {
    id: u64,
    stream: UnixStream,
    pid: i32,
}

/// A connection whose greeting is still arriving: the bytes so far, the client's
/// wake-up descriptor if it came with them, the deadline.
type Greeting = (UnixStream, Vec<u8>, Option<UnixStream>, std::time::Instant);

/// The attach socket and the applications attached through it.
pub struct AttachServer {
    listener: UnixListener,
    config: SocketsConfig,
    apps: Vec<Attached>,
    /// Connections whose greeting has not fully arrived: never waited for, so a
    /// silent client cannot stall the control plane.
    greeting: Vec<Greeting>,
    next_id: u64,
}

impl AttachServer {
    /// Binds the attach socket (a stale file is replaced; a live one is an error) and
    /// lets every user reach it (who may attach is checked by credentials).
    pub fn bind(config: &SocketsConfig) -> Result<AttachServer, String> {
        let path = &config.path;
        if path.exists() {
            if UnixStream::connect(path).is_ok() {
                return Err(format!(
                    "sockets.path {}: another dataplane is listening there",
                    path.display()
                ));
            }
            let _ = std::fs::remove_file(path);
        }
        let listener = UnixListener::bind(path)
            .map_err(|e| format!("sockets.path {}: {e}", path.display()))?;
        listener
            .set_nonblocking(true)
            .map_err(|e| format!("sockets.path {}: {e}", path.display()))?;
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o666));
        Ok(AttachServer {
            listener,
            config: config.clone(),
            apps: Vec::new(),
            greeting: Vec::new(),
            next_id: 1,
        })
    }

    /// Applications attached now.
    pub fn attached(&self) -> usize {
        self.apps.len()
    }

    /// Accepts new applications and notices departed ones.
    pub fn poll(&mut self, shared: &Shared) {
        while let Ok((stream, _)) = self.listener.accept() {
            let _ = stream.set_nonblocking(true);
            if self.greeting.len() >= 64 {
                let _ = (&stream).write_all(b"ERR too many attaches in progress\n");
                continue;
            }
            self.greeting.push((
                stream,
                Vec::new(),
                None,
                std::time::Instant::now() + Duration::from_secs(2),
            ));
        }
        let now = std::time::Instant::now();
        let mut i = 0;
        while i < self.greeting.len() {
            let (stream, buf, wake, deadline) = &mut self.greeting[i];
            let mut b = [0u8; 64];
            let closed = match dpsock::sys::recv_with_fds(stream, &mut b) {
                Ok((0, _)) => true,
                Ok((n, fds)) => {
                    buf.extend_from_slice(&b[..n]);
                    if let Some(fd) = fds.into_iter().next() {
                        wake.get_or_insert(UnixStream::from(fd));
                    }
                    false
                }
                Err(e) => e.kind() != std::io::ErrorKind::WouldBlock,
            };
            let complete = buf.contains(&b'\n') || buf.len() >= 64;
            if !(complete || closed || now >= *deadline) {
                i += 1;
                continue;
            }
            let (stream, buf, wake, _) = self.greeting.swap_remove(i);
            if !complete {
                continue;
            }
            let line = String::from_utf8_lossy(&buf).into_owned();
            match self.handshake(&stream, &line, wake, shared) {
                Ok(id) => {
                    let pid = dpsock::sys::peer_cred(&stream).map_or(0, |c| c.pid);
                    tracing::info!(app = id, pid, "application attached");
                    let _ = stream.set_nonblocking(true);
                    self.apps.push(Attached { id, stream, pid });
                }
                Err(why) => {
                    tracing::info!(%why, "attach refused");
                    let _ = stream.set_nonblocking(false);
                    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
                    let _ = (&stream).write_all(format!("ERR {why}\n").as_bytes());
                }
            }
        }
        let mut gone = Vec::new();
        self.apps.retain(|a| {
            let mut b = [0u8; 64];
            match (&a.stream).read(&mut b) {
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => true,
                Ok(n) if n > 0 => true,
                _ => {
                    gone.push((a.id, a.pid));
                    false
                }
            }
        });
        for (id, pid) in gone {
            tracing::info!(app = id, pid, "application detached; closing its sockets");
            detach_on_shards(shared, id);
        }
    }

    fn handshake(
        &mut self,
        stream: &UnixStream,
        line: &str,
        wake: Option<UnixStream>,
        shared: &Shared,
    ) -> Result<u64, String> {
        let version = line
            .trim()
            .strip_prefix("DPSOCK ")
            .and_then(|v| v.parse::<u32>().ok())
            .ok_or_else(|| "not a dataplane client (expected DPSOCK <version>)".to_string())?;
        if version != VERSION {
            return Err(format!(
                "version mismatch: this dataplane speaks {VERSION}, the client {version}; rebuild the client"
            ));
        }
        let cred = dpsock::sys::peer_cred(stream).map_err(|e| format!("credentials: {e}"))?;
        if !self.config.allows(cred.uid, cred.gid) {
            return Err(format!(
                "uid {} gid {} is not allowed (sockets.allow-users / allow-groups)",
                cred.uid, cred.gid
            ));
        }
        let shards = shared.shards.len() as u32;
        let id = self.next_id;
        let region = Region::create(
            &format!("dpsock-app-{id}"),
            shards,
            self.config.buffer_memory,
        )
        .map_err(|e| e.0)?;
        let region = Arc::new(region);
        let area = dpsock::shm::Area::new(region.clone());
        let wake = wake.map(|w| {
            let _ = w.set_nonblocking(true);
            Arc::new(w)
        });
        // The shards learn of the application before it can send anything.
        let max = self.config.max_sockets;
        for (s, link) in shared.shards.iter().enumerate() {
            let (a, w) = (area.clone(), wake.clone());
            let cmd: crate::runtime::shard::Command = Box::new(move |sh: &mut Shard| {
                sh.apps.push(AppConn::new(id, a, s as u32, max, w));
            });
            link.commands
                .push(cmd)
                .map_err(|_| "the daemon is busy; try again".to_string())?;
            link.notify();
        }
        self.next_id += 1;
        let reply = format!("OK {shards}\n");
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_write_timeout(Some(Duration::from_millis(500)));
        let mut fds = vec![region.file().as_raw_fd()];
        fds.extend(shared.shards.iter().map(|l| l.wake_fd()));
        if let Err(e) = dpsock::sys::send_with_fds(stream, reply.as_bytes(), &fds) {
            detach_on_shards(shared, id);
            return Err(format!("sending the region: {e}"));
        }
        Ok(id)
    }

    /// Removes the socket file.
    pub fn close(&mut self) {
        let _ = std::fs::remove_file(&self.config.path);
    }
}

/// Queues, on every shard, the closing of application `id`'s sockets.
fn detach_on_shards(shared: &Shared, id: u64) {
    for link in &shared.shards {
        let mut cmd: Option<crate::runtime::shard::Command> =
            Some(Box::new(move |s: &mut Shard| s.detach_app(id)));
        // A full command queue only delays it.
        for _ in 0..1000 {
            match cmd.take().map(|c| link.commands.push(c)) {
                Some(Err(c)) => {
                    cmd = Some(c);
                    link.notify();
                    std::thread::sleep(Duration::from_millis(1));
                }
                _ => break,
            }
        }
        link.notify();
    }
}
