//! System-call helpers shared by the kernel-backed drivers: interface names, link facts
//! by ioctl, and errno handling.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use stack::wire::EthernetAddress;

use crate::DriverError;

/// Checks `name` as the kernel would (`dev_valid_name`) and returns it as the
/// NUL-terminated `ifr_name` of an `ifreq`.
pub(crate) fn ifreq_named(name: &str) -> Result<libc::ifreq, DriverError> {
    let bad = |why: &str| DriverError::BadConfig {
        iface: name.to_string(),
        why: format!(
            "bad interface name: {why} (use 1 to 15 bytes, no '/', ':', NUL or whitespace)"
        ),
    };
    if name.is_empty() {
        return Err(bad("empty"));
    }
    if name.len() >= libc::IFNAMSIZ {
        return Err(bad("too long"));
    }
    if name == "." || name == ".." {
        return Err(bad("reserved"));
    }
    if name
        .bytes()
        .any(|b| b == b'/' || b == b':' || b == 0 || b.is_ascii_whitespace())
    {
        return Err(bad("forbidden character"));
    }
    // SAFETY: ifreq is plain old data; all zeroes is a valid value.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (dst, src) in req.ifr_name.iter_mut().zip(name.bytes()) {
        *dst = src as libc::c_char;
    }
    Ok(req)
}

/// The last OS error of this thread.
pub(crate) fn errno() -> io::Error {
    io::Error::last_os_error()
}

/// True for "try again later" errors.
pub(crate) fn would_block(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::ENOBUFS))
}

/// Facts the kernel holds about an interface.
pub(crate) struct KernelLink {
    pub(crate) index: i32,
    pub(crate) mac: EthernetAddress,
    pub(crate) mtu: u16,
}

/// Reads index, MAC (SIOCGIFHWADDR) and MTU (SIOCGIFMTU) of `name` in the calling
/// thread's network namespace, through a throwaway UDP socket (no privilege needed).
pub(crate) fn kernel_link(name: &str, needs: &'static str) -> Result<KernelLink, DriverError> {
    let req = ifreq_named(name)?;
    // SAFETY: plain socket(2) call; the result is checked before use.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(DriverError::from_io(
            name,
            "opening a socket for link ioctls",
            needs,
            errno(),
        ));
    }
    // SAFETY: `fd` is a fresh descriptor that nothing else owns.
    let sock = unsafe { OwnedFd::from_raw_fd(fd) };
    let ioctl = |request: libc::c_ulong, op: &'static str| -> Result<libc::ifreq, DriverError> {
        let mut r = req;
        // SAFETY: these requests read the name and write one member of the ifreq union,
        // which lives on this stack frame for the duration of the call.
        let rc = unsafe { libc::ioctl(sock.as_raw_fd(), request as _, &mut r) };
        if rc < 0 {
            return Err(DriverError::from_io(name, op, needs, errno()));
        }
        Ok(r)
    };
    let r = ioctl(libc::SIOCGIFINDEX, "reading the interface index")?;
    // SAFETY: SIOCGIFINDEX wrote the ifindex member.
    let index = unsafe { r.ifr_ifru.ifru_ifindex };
    let r = ioctl(
        libc::SIOCGIFHWADDR,
        "reading the MAC address (SIOCGIFHWADDR)",
    )?;
    // SAFETY: SIOCGIFHWADDR wrote the hwaddr member.
    let hw = unsafe { r.ifr_ifru.ifru_hwaddr };
    if hw.sa_family != libc::ARPHRD_ETHER {
        return Err(DriverError::BadConfig {
            iface: name.to_string(),
            why: format!(
                "not an Ethernet interface (hardware type {}; use an Ethernet, veth or TAP device)",
                hw.sa_family
            ),
        });
    }
    let mut mac = [0u8; 6];
    for (d, s) in mac.iter_mut().zip(hw.sa_data.iter()) {
        *d = *s as u8;
    }
    let r = ioctl(libc::SIOCGIFMTU, "reading the MTU (SIOCGIFMTU)")?;
    // SAFETY: SIOCGIFMTU wrote the mtu member.
    let mtu = unsafe { r.ifr_ifru.ifru_mtu };
    Ok(KernelLink {
        index,
        mac: EthernetAddress(mac),
        mtu: mtu.clamp(0, i32::from(u16::MAX)) as u16,
    })
}

/// Refuses a pool whose frames cannot hold a full frame of an `mtu`-byte link (Ethernet
/// header and one VLAN tag included).
pub(crate) fn check_frame_room(
    name: &str,
    pool: &stack::FramePool,
    mtu: u16,
) -> Result<(), DriverError> {
    let room = (pool.frame_size() - pool.headroom()) as usize;
    let needed = usize::from(mtu) + 18;
    if room < needed {
        return Err(DriverError::BadConfig {
            iface: name.to_string(),
            why: format!(
                "pool frames hold {room} bytes after headroom but MTU {mtu} needs {needed} (use a larger frame size or lower the MTU)"
            ),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_are_checked_like_the_kernel_does() {
        let name = |req: libc::ifreq| -> Vec<u8> {
            req.ifr_name
                .iter()
                .take_while(|c| **c != 0)
                .map(|c| *c as u8)
                .collect()
        };
        assert_eq!(name(ifreq_named("eth0").unwrap()), b"eth0");
        assert_eq!(name(ifreq_named("fifteen-chars-x").unwrap()).len(), 15);
        for bad in [
            "",
            "sixteen-chars-xy",
            ".",
            "..",
            "a/b",
            "a:b",
            "a b",
            "a\0b",
        ] {
            let e = ifreq_named(bad).unwrap_err();
            assert_eq!(e.iface(), bad);
            assert!(e.to_string().contains("bad interface name"), "{e}");
        }
    }
}
