//! The C ABI (`include/dpsock.h`): POSIX-like calls with a `dp_` prefix, returning -1
//! and setting `errno` on failure.
//!
//! ```c
//! dp_client *c = dp_attach("/run/dataplane-apps.sock");
//! int s = dp_socket(c, AF_INET, SOCK_DGRAM);
//! dp_bind(c, s, (struct sockaddr *)&addr, sizeof addr);
//! dp_sendto(c, s, buf, len, (struct sockaddr *)&to, sizeof to);
//! dp_recvfrom(c, s, buf, sizeof buf, (struct sockaddr *)&from, &fromlen);
//! dp_close(c, s);
//! dp_detach(c);
//! ```
//!
//! Only UDP (`SOCK_DGRAM`) for now. Pointers from the caller are checked for null;
//! lengths are checked against the address family.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, CStr};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::Mutex;

use crate::client::{Client, TcpListener, TcpStream, UdpSocket};

/// An attached client and its sockets, by descriptor number.
pub struct DpClient {
    client: Client,
    sockets: Mutex<Vec<Option<Slot>>>,
}

enum Slot {
    Unbound(c_int),
    Udp(UdpSocket),
    /// A TCP socket before listen/connect: its family, the address bound, and the
    /// send and receive ring sizes asked for (SO_SNDBUF, SO_RCVBUF; 0: the default).
    Tcp(c_int, Option<SocketAddr>, [usize; 2]),
    Listener(TcpListener),
    Stream(TcpStream),
}

fn set_errno(e: c_int) -> c_int {
    // SAFETY: __errno_location returns this thread's errno.
    unsafe { *libc::__errno_location() = e };
    -1
}

fn io_errno(e: &std::io::Error) -> c_int {
    e.raw_os_error().unwrap_or(match e.kind() {
        std::io::ErrorKind::WouldBlock => libc::EAGAIN,
        std::io::ErrorKind::TimedOut => libc::ETIMEDOUT,
        std::io::ErrorKind::ConnectionAborted => libc::ECONNABORTED,
        std::io::ErrorKind::PermissionDenied => libc::EACCES,
        _ => libc::EIO,
    })
}

/// Reads a sockaddr of `len` bytes.
///
/// # Safety
/// `sa` must point to `len` readable bytes (or be null).
unsafe fn read_sockaddr(sa: *const libc::sockaddr, len: libc::socklen_t) -> Option<SocketAddr> {
    if sa.is_null() {
        return None;
    }
    // SAFETY: the caller promises `len` readable bytes; each family's size is checked
    // before its struct is read (unaligned).
    unsafe {
        match c_int::from((*sa).sa_family) {
            libc::AF_INET if len as usize >= std::mem::size_of::<libc::sockaddr_in>() => {
                let a = std::ptr::read_unaligned(sa.cast::<libc::sockaddr_in>());
                Some(SocketAddr::V4(SocketAddrV4::new(
                    Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr)),
                    u16::from_be(a.sin_port),
                )))
            }
            libc::AF_INET6 if len as usize >= std::mem::size_of::<libc::sockaddr_in6>() => {
                let a = std::ptr::read_unaligned(sa.cast::<libc::sockaddr_in6>());
                Some(SocketAddr::V6(SocketAddrV6::new(
                    Ipv6Addr::from(a.sin6_addr.s6_addr),
                    u16::from_be(a.sin6_port),
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

/// Writes `addr` into `sa` (capacity `*len`), setting `*len` to its full size.
///
/// # Safety
/// `sa` must point to `*len` writable bytes and `len` to a writable socklen_t (or be
/// null).
unsafe fn write_sockaddr(addr: SocketAddr, sa: *mut libc::sockaddr, len: *mut libc::socklen_t) {
    if sa.is_null() || len.is_null() {
        return;
    }
    // SAFETY: writes at most `*len` bytes into `sa`, as the caller promises room for.
    unsafe {
        let cap = *len as usize;
        let (bytes, size): ([u8; 28], usize) = match addr {
            SocketAddr::V4(a) => {
                let s = libc::sockaddr_in {
                    sin_family: libc::AF_INET as libc::sa_family_t,
                    sin_port: a.port().to_be(),
                    sin_addr: libc::in_addr {
                        s_addr: u32::from(*a.ip()).to_be(),
                    },
                    sin_zero: [0; 8],
                };
                let mut b = [0u8; 28];
                std::ptr::copy_nonoverlapping(
                    (&s as *const libc::sockaddr_in).cast::<u8>(),
                    b.as_mut_ptr(),
                    16,
                );
                (b, 16)
            }
            SocketAddr::V6(a) => {
                let s = libc::sockaddr_in6 {
                    sin6_family: libc::AF_INET6 as libc::sa_family_t,
                    sin6_port: a.port().to_be(),
                    sin6_flowinfo: a.flowinfo(),
                    sin6_addr: libc::in6_addr {
                        s6_addr: a.ip().octets(),
                    },
                    sin6_scope_id: a.scope_id(),
                };
                let mut b = [0u8; 28];
                std::ptr::copy_nonoverlapping(
                    (&s as *const libc::sockaddr_in6).cast::<u8>(),
                    b.as_mut_ptr(),
                    28,
                );
                (b, 28)
            }
        };
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), sa.cast::<u8>(), size.min(cap));
        *len = size as libc::socklen_t;
    }
}

/// Attaches to the daemon at `path`; null (and `errno`) on failure.
///
/// # Safety
/// `path` must be a valid NUL-terminated string.
#[no_mangle]
pub unsafe extern "C" fn dp_attach(path: *const c_char) -> *mut DpClient {
    if path.is_null() {
        set_errno(libc::EINVAL);
        return std::ptr::null_mut();
    }
    // SAFETY: the caller passes a NUL-terminated string.
    let p = unsafe { CStr::from_ptr(path) }
        .to_string_lossy()
        .into_owned();
    match Client::attach(p) {
        Ok(client) => Box::into_raw(Box::new(DpClient {
            client,
            sockets: Mutex::new(Vec::new()),
        })),
        Err(e) => {
            set_errno(io_errno(&e));
            std::ptr::null_mut()
        }
    }
}

/// Closes every socket of the client and detaches.
///
/// # Safety
/// `c` must come from [`dp_attach`] and not be used afterwards.
#[no_mangle]
pub unsafe extern "C" fn dp_detach(c: *mut DpClient) {
    if !c.is_null() {
        // SAFETY: the caller gives back the pointer dp_attach made.
        drop(unsafe { Box::from_raw(c) });
    }
}

fn with<R>(c: *mut DpClient, f: impl FnOnce(&DpClient) -> R) -> Option<R> {
    // SAFETY: a non-null pointer from dp_attach, per each function's contract.
    (!c.is_null()).then(|| f(unsafe { &*c }))
}

/// A new socket (`AF_INET`/`AF_INET6`, `SOCK_DGRAM` or `SOCK_STREAM`): its number, or
/// -1.
///
/// # Safety
/// `c` must come from [`dp_attach`].
#[no_mangle]
pub unsafe extern "C" fn dp_socket(c: *mut DpClient, domain: c_int, ty: c_int) -> c_int {
    if domain != libc::AF_INET && domain != libc::AF_INET6 {
        return set_errno(libc::EAFNOSUPPORT);
    }
    let slot = match ty & 0xf {
        libc::SOCK_DGRAM => Slot::Unbound(domain),
        libc::SOCK_STREAM => Slot::Tcp(domain, None, [0, 0]),
        _ => return set_errno(libc::EPROTONOSUPPORT),
    };
    with(c, |c| {
        let mut s = c
            .sockets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.push(Some(slot));
        (s.len() - 1) as c_int
    })
    .unwrap_or_else(|| set_errno(libc::EINVAL))
}

fn bind_slot(c: &DpClient, s: c_int, addr: Option<SocketAddr>) -> c_int {
    let mut socks = c
        .sockets
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let Some(slot) = usize::try_from(s).ok().and_then(|i| socks.get_mut(i)) else {
        return set_errno(libc::EBADF);
    };
    let domain = match slot {
        Some(Slot::Unbound(d)) => *d,
        Some(Slot::Tcp(d, bound @ None, _)) => {
            // TCP: the address waits for dp_listen.
            return match addr {
                Some(a) if a.is_ipv4() == (*d == libc::AF_INET) => {
                    *bound = Some(a);
                    0
                }
                Some(_) => set_errno(libc::EAFNOSUPPORT),
                None => set_errno(libc::EINVAL),
            };
        }
        Some(_) => return set_errno(libc::EINVAL),
        None => return set_errno(libc::EBADF),
    };
    let addr = addr.unwrap_or(if domain == libc::AF_INET {
        "0.0.0.0:0"
            .parse()
            .unwrap_or(SocketAddr::from(([0, 0, 0, 0], 0)))
    } else {
        SocketAddr::from((Ipv6Addr::UNSPECIFIED, 0))
    });
    if addr.is_ipv4() != (domain == libc::AF_INET) {
        return set_errno(libc::EAFNOSUPPORT);
    }
    match UdpSocket::bind(&c.client, addr) {
        Ok(u) => {
            *slot = Some(Slot::Udp(u));
            0
        }
        Err(e) => set_errno(io_errno(&e)),
    }
}

/// Binds socket `s` to `addr`.
///
/// # Safety
/// `c` from [`dp_attach`]; `addr` points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn dp_bind(
    c: *mut DpClient,
    s: c_int,
    addr: *const libc::sockaddr,
    len: libc::socklen_t,
) -> c_int {
    // SAFETY: per this function's contract.
    let Some(a) = (unsafe { read_sockaddr(addr, len) }) else {
        return set_errno(libc::EINVAL);
    };
    with(c, |c| bind_slot(c, s, Some(a))).unwrap_or_else(|| set_errno(libc::EINVAL))
}

/// Sends `len` bytes to `to` (binding to an ephemeral port first if needed).
///
/// # Safety
/// `c` from [`dp_attach`]; `buf` points to `len` readable bytes; `to` to `tolen`.
#[no_mangle]
pub unsafe extern "C" fn dp_sendto(
    c: *mut DpClient,
    s: c_int,
    buf: *const std::ffi::c_void,
    len: libc::size_t,
    to: *const libc::sockaddr,
    tolen: libc::socklen_t,
) -> libc::ssize_t {
    // SAFETY: per this function's contract.
    let Some(dst) = (unsafe { read_sockaddr(to, tolen) }) else {
        return set_errno(libc::EINVAL) as isize;
    };
    if buf.is_null() && len > 0 {
        return set_errno(libc::EFAULT) as isize;
    }
    // SAFETY: `buf` holds `len` readable bytes, per the contract.
    let data = if len == 0 {
        &[][..]
    } else {
        unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) }
    };
    with(c, |c| {
        let unbound = {
            let socks = c
                .sockets
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            matches!(
                usize::try_from(s).ok().and_then(|i| socks.get(i)),
                Some(Some(Slot::Unbound(_)))
            )
        };
        if unbound && bind_slot(c, s, None) < 0 {
            return -1;
        }
        let socks = c
            .sockets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match usize::try_from(s).ok().and_then(|i| socks.get(i)) {
            Some(Some(Slot::Udp(u))) => match u.send_to(data, dst) {
                Ok(n) => n as isize,
                Err(e) => set_errno(io_errno(&e)) as isize,
            },
            _ => set_errno(libc::EBADF) as isize,
        }
    })
    .unwrap_or_else(|| set_errno(libc::EINVAL) as isize)
}

/// Receives one datagram (waiting for it), its sender into `from` if given.
///
/// # Safety
/// `c` from [`dp_attach`]; `buf` points to `len` writable bytes; `from`/`fromlen` as
/// for recvfrom(2) or null.
#[no_mangle]
pub unsafe extern "C" fn dp_recvfrom(
    c: *mut DpClient,
    s: c_int,
    buf: *mut std::ffi::c_void,
    len: libc::size_t,
    from: *mut libc::sockaddr,
    fromlen: *mut libc::socklen_t,
) -> libc::ssize_t {
    if buf.is_null() && len > 0 {
        return set_errno(libc::EFAULT) as isize;
    }
    let out = if len == 0 {
        &mut [][..]
    } else {
        // SAFETY: `buf` holds `len` writable bytes, per the contract.
        unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), len) }
    };
    with(c, |c| {
        // The socket is taken out while waiting, so other sockets stay usable.
        let taken = {
            let mut socks = c
                .sockets
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            match usize::try_from(s).ok().and_then(|i| socks.get_mut(i)) {
                Some(slot @ Some(Slot::Udp(_))) => slot.take(),
                _ => None,
            }
        };
        let Some(Slot::Udp(u)) = taken else {
            return set_errno(libc::EBADF) as isize;
        };
        let r = u.recv_from(out);
        let mut socks = c
            .sockets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(slot) = usize::try_from(s).ok().and_then(|i| socks.get_mut(i)) {
            *slot = Some(Slot::Udp(u));
        }
        match r {
            Ok((n, addr)) => {
                // SAFETY: per the contract on `from`/`fromlen`.
                unsafe { write_sockaddr(addr, from, fromlen) };
                n.min(len) as isize
            }
            Err(e) => set_errno(io_errno(&e)) as isize,
        }
    })
    .unwrap_or_else(|| set_errno(libc::EINVAL) as isize)
}

/// Closes socket `s`.
///
/// # Safety
/// `c` from [`dp_attach`].
#[no_mangle]
pub unsafe extern "C" fn dp_close(c: *mut DpClient, s: c_int) -> c_int {
    with(c, |c| {
        let mut socks = c
            .sockets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        match usize::try_from(s).ok().and_then(|i| socks.get_mut(i)) {
            Some(slot @ Some(_)) => {
                *slot = None;
                0
            }
            _ => set_errno(libc::EBADF),
        }
    })
    .unwrap_or_else(|| set_errno(libc::EINVAL))
}

/// Runs `f` on socket `s` taken out of the table (so a blocking call holds no lock),
/// then puts it back.
fn with_slot<R>(c: &DpClient, s: c_int, f: impl FnOnce(&mut Slot) -> R) -> Option<R> {
    let taken = {
        let mut socks = c
            .sockets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        usize::try_from(s)
            .ok()
            .and_then(|i| socks.get_mut(i))
            .and_then(Option::take)
    };
    let mut slot = taken?;
    let r = f(&mut slot);
    let mut socks = c
        .sockets
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(place) = usize::try_from(s).ok().and_then(|i| socks.get_mut(i)) {
        *place = Some(slot);
    }
    Some(r)
}

/// Listens on the address a TCP socket was bound to.
///
/// # Safety
/// `c` from [`dp_attach`].
#[no_mangle]
pub unsafe extern "C" fn dp_listen(c: *mut DpClient, s: c_int, _backlog: c_int) -> c_int {
    with(c, |c| {
        with_slot(c, s, |slot| match slot {
            Slot::Tcp(_, Some(addr), [snd, rcv]) => {
                let l = TcpListener::bind(&c.client, *addr).and_then(|l| {
                    if *snd > 0 {
                        l.set_send_buffer_size(*snd)?;
                    }
                    if *rcv > 0 {
                        l.set_recv_buffer_size(*rcv)?;
                    }
                    Ok(l)
                });
                match l {
                    Ok(l) => {
                        *slot = Slot::Listener(l);
                        0
                    }
                    Err(e) => set_errno(io_errno(&e)),
                }
            }
            Slot::Tcp(_, None, _) => set_errno(libc::EDESTADDRREQ),
            _ => set_errno(libc::EOPNOTSUPP),
        })
        .unwrap_or_else(|| set_errno(libc::EBADF))
    })
    .unwrap_or_else(|| set_errno(libc::EINVAL))
}

/// Waits for a connection on a listening socket: the new socket's number, its peer
/// into `addr`/`len` if given.
///
/// # Safety
/// `c` from [`dp_attach`]; `addr`/`len` as for accept(2) or null.
#[no_mangle]
pub unsafe extern "C" fn dp_accept(
    c: *mut DpClient,
    s: c_int,
    addr: *mut libc::sockaddr,
    len: *mut libc::socklen_t,
) -> c_int {
    with(c, |c| {
        let r = with_slot(c, s, |slot| match slot {
            Slot::Listener(l) => l.accept().map_err(|e| io_errno(&e)),
            _ => Err(libc::EINVAL),
        });
        match r {
            None => set_errno(libc::EBADF),
            Some(Err(e)) => set_errno(e),
            Some(Ok((stream, peer))) => {
                // SAFETY: per this function's contract.
                unsafe { write_sockaddr(peer, addr, len) };
                let mut socks = c
                    .sockets
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                socks.push(Some(Slot::Stream(stream)));
                (socks.len() - 1) as c_int
            }
        }
    })
    .unwrap_or_else(|| set_errno(libc::EINVAL))
}

/// Connects a TCP socket to `addr` (waiting for the handshake).
///
/// # Safety
/// `c` from [`dp_attach`]; `addr` points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn dp_connect(
    c: *mut DpClient,
    s: c_int,
    addr: *const libc::sockaddr,
    len: libc::socklen_t,
) -> c_int {
    // SAFETY: per this function's contract.
    let Some(to) = (unsafe { read_sockaddr(addr, len) }) else {
        return set_errno(libc::EINVAL);
    };
    with(c, |c| {
        with_slot(c, s, |slot| match slot {
            Slot::Tcp(d, ..) if to.is_ipv4() != (*d == libc::AF_INET) => {
                set_errno(libc::EAFNOSUPPORT)
            }
            Slot::Tcp(_, _, [snd, rcv]) => {
                match TcpStream::connect_with_buffers(&c.client, to, *snd, *rcv) {
                    Ok(t) => {
                        *slot = Slot::Stream(t);
                        0
                    }
                    Err(e) => set_errno(io_errno(&e)),
                }
            }
            Slot::Stream(_) => set_errno(libc::EISCONN),
            _ => set_errno(libc::EOPNOTSUPP),
        })
        .unwrap_or_else(|| set_errno(libc::EBADF))
    })
    .unwrap_or_else(|| set_errno(libc::EINVAL))
}

/// Writes up to `len` bytes on a connection; the bytes taken.
///
/// # Safety
/// `c` from [`dp_attach`]; `buf` points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn dp_send(
    c: *mut DpClient,
    s: c_int,
    buf: *const std::ffi::c_void,
    len: libc::size_t,
    _flags: c_int,
) -> libc::ssize_t {
    if buf.is_null() && len > 0 {
        return set_errno(libc::EFAULT) as isize;
    }
    // SAFETY: `buf` holds `len` readable bytes, per the contract.
    let data = if len == 0 {
        &[][..]
    } else {
        unsafe { std::slice::from_raw_parts(buf.cast::<u8>(), len) }
    };
    with(c, |c| {
        with_slot(c, s, |slot| match slot {
            Slot::Stream(t) => match std::io::Write::write(t, data) {
                Ok(n) => n as isize,
                Err(e) => set_errno(io_errno(&e)) as isize,
            },
            _ => set_errno(libc::ENOTCONN) as isize,
        })
        .unwrap_or_else(|| set_errno(libc::EBADF) as isize)
    })
    .unwrap_or_else(|| set_errno(libc::EINVAL) as isize)
}

/// Reads up to `len` bytes from a connection, waiting for some; 0 at the end of the
/// stream.
///
/// # Safety
/// `c` from [`dp_attach`]; `buf` points to `len` writable bytes.
#[no_mangle]
pub unsafe extern "C" fn dp_recv(
    c: *mut DpClient,
    s: c_int,
    buf: *mut std::ffi::c_void,
    len: libc::size_t,
    _flags: c_int,
) -> libc::ssize_t {
    if buf.is_null() && len > 0 {
        return set_errno(libc::EFAULT) as isize;
    }
    let out = if len == 0 {
        &mut [][..]
    } else {
        // SAFETY: `buf` holds `len` writable bytes, per the contract.
        unsafe { std::slice::from_raw_parts_mut(buf.cast::<u8>(), len) }
    };
    with(c, |c| {
        with_slot(c, s, |slot| match slot {
            Slot::Stream(t) => match std::io::Read::read(t, out) {
                Ok(n) => n as isize,
                Err(e) => set_errno(io_errno(&e)) as isize,
            },
            _ => set_errno(libc::ENOTCONN) as isize,
        })
        .unwrap_or_else(|| set_errno(libc::EBADF) as isize)
    })
    .unwrap_or_else(|| set_errno(libc::EINVAL) as isize)
}

/// Shuts a connection down for writing (`SHUT_WR` or `SHUT_RDWR`: FIN after the
/// queued bytes; `SHUT_RD` does nothing).
///
/// # Safety
/// `c` from [`dp_attach`].
#[no_mangle]
pub unsafe extern "C" fn dp_shutdown(c: *mut DpClient, s: c_int, how: c_int) -> c_int {
    with(c, |c| {
        with_slot(c, s, |slot| match slot {
            Slot::Stream(t) => {
                if how == libc::SHUT_RD {
                    return 0;
                }
                let r =
                    std::io::Write::flush(t).and_then(|()| t.shutdown(std::net::Shutdown::Write));
                match r {
                    Ok(()) => 0,
                    Err(e) => set_errno(io_errno(&e)),
                }
            }
            _ => set_errno(libc::ENOTCONN),
        })
        .unwrap_or_else(|| set_errno(libc::EBADF))
    })
    .unwrap_or_else(|| set_errno(libc::EINVAL))
}

/// The socket's local address into `addr`/`len`.
///
/// # Safety
/// `c` from [`dp_attach`]; `addr`/`len` as for getsockname(2).
#[no_mangle]
pub unsafe extern "C" fn dp_getsockname(
    c: *mut DpClient,
    s: c_int,
    addr: *mut libc::sockaddr,
    len: *mut libc::socklen_t,
) -> c_int {
    sockname(c, s, addr, len, false)
}

/// The connection's peer address into `addr`/`len`.
///
/// # Safety
/// `c` from [`dp_attach`]; `addr`/`len` as for getpeername(2).
#[no_mangle]
pub unsafe extern "C" fn dp_getpeername(
    c: *mut DpClient,
    s: c_int,
    addr: *mut libc::sockaddr,
    len: *mut libc::socklen_t,
) -> c_int {
    sockname(c, s, addr, len, true)
}

fn sockname(
    c: *mut DpClient,
    s: c_int,
    addr: *mut libc::sockaddr,
    len: *mut libc::socklen_t,
    peer: bool,
) -> c_int {
    with(c, |c| {
        let socks = c
            .sockets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let a = match (usize::try_from(s).ok().and_then(|i| socks.get(i)), peer) {
            (Some(Some(Slot::Udp(u))), false) => u.local_addr().ok(),
            (Some(Some(Slot::Listener(l))), false) => l.local_addr().ok(),
            (Some(Some(Slot::Stream(t))), false) => t.local_addr().ok(),
            (Some(Some(Slot::Stream(t))), true) => t.peer_addr().ok(),
            (Some(Some(Slot::Tcp(_, a, _))), false) => *a,
            (Some(Some(_)), true) => return set_errno(libc::ENOTCONN),
            (Some(Some(_)), false) => None,
            _ => return set_errno(libc::EBADF),
        };
        match a {
            Some(a) => {
                // SAFETY: per the public functions' contracts.
                unsafe { write_sockaddr(a, addr, len) };
                0
            }
            None => set_errno(libc::EINVAL),
        }
    })
    .unwrap_or_else(|| set_errno(libc::EINVAL))
}

/// Sets a socket option from an `int` at `val` (`len` at least `sizeof(int)`):
/// `SOL_SOCKET`: `SO_REUSEADDR` (TCP: accepted; the stack never refuses a listener
/// because of connections in TIME-WAIT on its port, which is what the option allows on
/// Linux), `SO_RCVBUF` (UDP: receive slots; TCP before `dp_listen`/`dp_connect`, or a
/// listener: the receive ring of its connections), `SO_SNDBUF` (TCP, likewise: the
/// send ring), `SO_KEEPALIVE` (a connection: probes after 2 hours idle, or off);
/// `IPPROTO_TCP`: `TCP_NODELAY` (a connection). Buffer sizes come out of the
/// application's buffer memory (`ENOBUFS` when they cannot fit); an established
/// connection's rings are not resized (`EISCONN`). Others: `ENOPROTOOPT`.
///
/// # Safety
/// `c` from [`dp_attach`]; `val` points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn dp_setsockopt(
    c: *mut DpClient,
    s: c_int,
    level: c_int,
    name: c_int,
    val: *const std::ffi::c_void,
    len: libc::socklen_t,
) -> c_int {
    if val.is_null() || (len as usize) < std::mem::size_of::<c_int>() {
        return set_errno(libc::EINVAL);
    }
    // SAFETY: at least an int's bytes are readable (checked above).
    let v = unsafe { std::ptr::read_unaligned(val.cast::<c_int>()) };
    let size = usize::try_from(v).unwrap_or(0);
    with(c, |c| {
        with_slot(c, s, |slot| {
            let r: std::io::Result<()> = match (level, name, slot) {
                (libc::SOL_SOCKET, libc::SO_REUSEADDR, Slot::Tcp(..) | Slot::Listener(_)) => Ok(()),
                (libc::SOL_SOCKET, libc::SO_RCVBUF, Slot::Udp(u)) => u.set_recv_buffer_size(size),
                (libc::SOL_SOCKET, libc::SO_RCVBUF, Slot::Tcp(_, _, b)) => {
                    b[1] = size;
                    Ok(())
                }
                (libc::SOL_SOCKET, libc::SO_SNDBUF, Slot::Tcp(_, _, b)) => {
                    b[0] = size;
                    Ok(())
                }
                (libc::SOL_SOCKET, libc::SO_RCVBUF, Slot::Listener(l)) => {
                    l.set_recv_buffer_size(size)
                }
                (libc::SOL_SOCKET, libc::SO_SNDBUF, Slot::Listener(l)) => {
                    l.set_send_buffer_size(size)
                }
                (libc::SOL_SOCKET, libc::SO_RCVBUF | libc::SO_SNDBUF, Slot::Stream(_)) => {
                    Err(std::io::Error::from_raw_os_error(libc::EISCONN))
                }
                (libc::SOL_SOCKET, libc::SO_KEEPALIVE, Slot::Stream(t)) => {
                    t.set_keepalive((v != 0).then(|| std::time::Duration::from_secs(7200)))
                }
                (libc::IPPROTO_TCP, libc::TCP_NODELAY, Slot::Stream(t)) => t.set_nodelay(v != 0),
                _ => Err(std::io::Error::from_raw_os_error(libc::ENOPROTOOPT)),
            };
            match r {
                Ok(()) => 0,
                Err(e) => set_errno(io_errno(&e)),
            }
        })
        .unwrap_or_else(|| set_errno(libc::EBADF))
    })
    .unwrap_or_else(|| set_errno(libc::EINVAL))
}

#[cfg(test)]
mod header {
    /// `include/dpsock.h` is what cbindgen makes of this file with `cbindgen.toml`
    /// (`DPSOCK_BLESS=1 cargo test -p dpsock c_header` rewrites it).
    #[test]
    fn c_header_is_cbindgens() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let config = cbindgen::Config::from_file(dir.join("cbindgen.toml")).unwrap();
        let mut out = Vec::new();
        cbindgen::Builder::new()
            .with_config(config)
            .with_src(dir.join("src/capi.rs"))
            .generate()
            .expect("cbindgen")
            .write(&mut out);
        let path = dir.join("include/dpsock.h");
        if std::env::var_os("DPSOCK_BLESS").is_some() {
            std::fs::write(&path, &out).unwrap();
        }
        let committed = std::fs::read(&path).unwrap();
        assert!(
            committed == out,
            "include/dpsock.h differs from cbindgen's output; run DPSOCK_BLESS=1 cargo test -p dpsock c_header"
        );
    }
}
