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

use crate::client::{Client, UdpSocket};

/// An attached client and its sockets, by descriptor number.
pub struct DpClient {
    client: Client,
    sockets: Mutex<Vec<Option<Slot>>>,
}

enum Slot {
    Unbound(c_int),
    Udp(UdpSocket),
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

/// A new socket (`AF_INET`/`AF_INET6`, `SOCK_DGRAM`): its number, or -1.
///
/// # Safety
/// `c` must come from [`dp_attach`].
#[no_mangle]
pub unsafe extern "C" fn dp_socket(c: *mut DpClient, domain: c_int, ty: c_int) -> c_int {
    if domain != libc::AF_INET && domain != libc::AF_INET6 {
        return set_errno(libc::EAFNOSUPPORT);
    }
    if ty & 0xf != libc::SOCK_DGRAM {
        return set_errno(libc::EPROTONOSUPPORT);
    }
    with(c, |c| {
        let mut s = c
            .sockets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        s.push(Some(Slot::Unbound(domain)));
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
        Some(Slot::Udp(_)) => return set_errno(libc::EINVAL),
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
    buf: *const u8,
    len: usize,
    to: *const libc::sockaddr,
    tolen: libc::socklen_t,
) -> isize {
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
        unsafe { std::slice::from_raw_parts(buf, len) }
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
    buf: *mut u8,
    len: usize,
    from: *mut libc::sockaddr,
    fromlen: *mut libc::socklen_t,
) -> isize {
    if buf.is_null() && len > 0 {
        return set_errno(libc::EFAULT) as isize;
    }
    let out = if len == 0 {
        &mut [][..]
    } else {
        // SAFETY: `buf` holds `len` writable bytes, per the contract.
        unsafe { std::slice::from_raw_parts_mut(buf, len) }
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
