//! Driver errors: which interface, what the driver was doing, why, and what to do.

use std::fmt;
use std::io;

/// Why a driver could not be opened or could not move frames.
///
/// Every variant names the interface. Errors from system calls keep the
/// [`io::Error`] (and so its [`io::ErrorKind`] and errno); [`DriverError::kind`] gives
/// a kind for every variant. `Display` is one line that ends with what to do.
#[derive(Debug)]
#[non_exhaustive]
pub enum DriverError {
    /// The interface does not exist (ENODEV / ENXIO).
    NoSuchDevice {
        /// Interface name.
        iface: String,
        /// What the driver was doing.
        op: &'static str,
        /// The system error.
        source: io::Error,
    },
    /// The caller lacks a privilege (EPERM / EACCES).
    PermissionDenied {
        /// Interface name.
        iface: String,
        /// What the driver was doing.
        op: &'static str,
        /// The capability that would allow it (`CAP_NET_ADMIN`, `CAP_NET_RAW`).
        needs: &'static str,
        /// The system error.
        source: io::Error,
    },
    /// The interface is down (ENETDOWN).
    LinkDown {
        /// Interface name.
        iface: String,
        /// What the driver was doing.
        op: &'static str,
        /// The system error.
        source: io::Error,
    },
    /// Another system call failure.
    Io {
        /// Interface name.
        iface: String,
        /// What the driver was doing.
        op: &'static str,
        /// The system error.
        source: io::Error,
    },
    /// A queue index at or past the queue count.
    NoSuchQueue {
        /// Interface name.
        iface: String,
        /// The queue asked for.
        queue: u16,
        /// How many queues there are.
        queues: u16,
    },
    /// A configuration value the driver cannot use.
    BadConfig {
        /// Interface name.
        iface: String,
        /// What is wrong and what to do, one line.
        why: String,
    },
}

impl DriverError {
    /// Classifies a system error from `op` on `iface`; `needs` names the capability a
    /// permission error asks for.
    pub fn from_io(
        iface: &str,
        op: &'static str,
        needs: &'static str,
        source: io::Error,
    ) -> DriverError {
        let iface = iface.to_string();
        match source.raw_os_error() {
            Some(libc::ENODEV) | Some(libc::ENXIO) => {
                DriverError::NoSuchDevice { iface, op, source }
            }
            Some(libc::EPERM) | Some(libc::EACCES) => DriverError::PermissionDenied {
                iface,
                op,
                needs,
                source,
            },
            Some(libc::ENETDOWN) => DriverError::LinkDown { iface, op, source },
            _ => DriverError::Io { iface, op, source },
        }
    }

    /// The interface the error is about.
    pub fn iface(&self) -> &str {
        match self {
            DriverError::NoSuchDevice { iface, .. }
            | DriverError::PermissionDenied { iface, .. }
            | DriverError::LinkDown { iface, .. }
            | DriverError::Io { iface, .. }
            | DriverError::NoSuchQueue { iface, .. }
            | DriverError::BadConfig { iface, .. } => iface,
        }
    }

    /// The kind of the underlying system error, or the closest kind for errors that
    /// did not come from one.
    pub fn kind(&self) -> io::ErrorKind {
        match self {
            DriverError::NoSuchDevice { source, .. }
            | DriverError::PermissionDenied { source, .. }
            | DriverError::LinkDown { source, .. }
            | DriverError::Io { source, .. } => source.kind(),
            DriverError::NoSuchQueue { .. } => io::ErrorKind::NotFound,
            DriverError::BadConfig { .. } => io::ErrorKind::InvalidInput,
        }
    }

    /// The errno of the underlying system error, if there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            DriverError::NoSuchDevice { source, .. }
            | DriverError::PermissionDenied { source, .. }
            | DriverError::LinkDown { source, .. }
            | DriverError::Io { source, .. } => source.raw_os_error(),
            _ => None,
        }
    }
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DriverError::NoSuchDevice { iface, .. } => {
                write!(
                    f,
                    "interface {iface}: no such device (create it or fix the name)"
                )
            }
            DriverError::PermissionDenied {
                iface, op, needs, ..
            } => write!(
                f,
                "interface {iface}: {op}: permission denied (run as root or with {needs})"
            ),
            DriverError::LinkDown { iface, op, .. } => write!(
                f,
                "interface {iface}: {op}: network is down (bring it up: ip link set {iface} up)"
            ),
            DriverError::Io { iface, op, source } => {
                write!(f, "interface {iface}: {op}: {source}")
            }
            DriverError::NoSuchQueue {
                iface,
                queue,
                queues,
            } => write!(
                f,
                "interface {iface}: queue {queue} does not exist (it has {queues}: use 0..{queues})"
            ),
            DriverError::BadConfig { iface, why } => write!(f, "interface {iface}: {why}"),
        }
    }
}

impl std::error::Error for DriverError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            DriverError::NoSuchDevice { source, .. }
            | DriverError::PermissionDenied { source, .. }
            | DriverError::LinkDown { source, .. }
            | DriverError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_is_classified_and_kept() {
        let e = DriverError::from_io(
            "veth9",
            "reading the interface index",
            "CAP_NET_RAW",
            io::Error::from_raw_os_error(libc::ENODEV),
        );
        assert!(matches!(e, DriverError::NoSuchDevice { .. }));
        assert_eq!(
            e.to_string(),
            "interface veth9: no such device (create it or fix the name)"
        );
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV));
        assert_eq!(e.iface(), "veth9");
        let e = DriverError::from_io(
            "tap0",
            "opening /dev/net/tun",
            "CAP_NET_ADMIN",
            io::Error::from_raw_os_error(libc::EPERM),
        );
        assert_eq!(e.kind(), io::ErrorKind::PermissionDenied);
        assert_eq!(
            e.to_string(),
            "interface tap0: opening /dev/net/tun: permission denied (run as root or with CAP_NET_ADMIN)"
        );
        let e = DriverError::from_io(
            "eth0",
            "sending",
            "CAP_NET_RAW",
            io::Error::from_raw_os_error(libc::EMSGSIZE),
        );
        assert!(matches!(e, DriverError::Io { .. }));
        assert!(std::error::Error::source(&e).is_some());
        let e = DriverError::NoSuchQueue {
            iface: "eth0".into(),
            queue: 3,
            queues: 1,
        };
        assert_eq!(
            e.to_string(),
            "interface eth0: queue 3 does not exist (it has 1: use 0..1)"
        );
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
    }
}
