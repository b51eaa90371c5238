//! Bad configuration gives a one-line [`DriverError`] that names the interface and says
//! what to do: a missing interface, a queue that does not exist, a pool too small for
//! the MTU, no privileges (the test drops its own thread's capabilities), and sending on
//! an interface that is down.

mod common;

use common::{pool, Netns};
use drivers::{AfPacket, AfPacketConfig, Driver, DriverError, Tap, TapConfig};
use stack::{FramePool, PoolConfig};

#[test]
fn a_missing_interface_is_named() {
    let ns = Netns::new();
    ns.run(|| {
        let e = AfPacket::open(&AfPacketConfig::new("veth9"), pool())
            .err()
            .unwrap();
        assert!(matches!(e, DriverError::NoSuchDevice { .. }), "{e:?}");
        assert_eq!(
            e.to_string(),
            "interface veth9: no such device (create it or fix the name)"
        );
        assert_eq!(e.iface(), "veth9");
        assert_eq!(e.raw_os_error(), Some(libc::ENODEV));
        let e = AfPacket::open(&AfPacketConfig::new("bad/name"), pool())
            .err()
            .unwrap();
        assert!(
            e.to_string()
                .starts_with("interface bad/name: bad interface name"),
            "{e}"
        );
    });
}

#[test]
fn a_missing_queue_and_a_small_pool_are_refused() {
    let ns = Netns::new();
    ns.ip("link add dp0 type veth peer name dp1");
    ns.run(|| {
        let mut drv = AfPacket::open(&AfPacketConfig::new("dp0"), pool()).unwrap();
        let e = drv.recv(1, &mut Vec::new(), 8).unwrap_err();
        assert_eq!(
            e.to_string(),
            "interface dp0: queue 1 does not exist (it has 1: use 0..1)"
        );
        let e = drv.send(3, &mut Vec::new()).unwrap_err();
        assert!(matches!(e, DriverError::NoSuchQueue { queue: 3, .. }));
        assert!(drv.poll_fd(1).is_none());
        let small = FramePool::with_frames(
            8,
            PoolConfig {
                frame_size: 1024,
                headroom: 256,
            },
        )
        .unwrap();
        let e = AfPacket::open(&AfPacketConfig::new("dp0"), small).err().unwrap();
        assert_eq!(
            e.to_string(),
            "interface dp0: pool frames hold 768 bytes after headroom but MTU 1500 needs 1518 (use a larger frame size or lower the MTU)"
        );
    });
}

/// Drops every capability of the calling thread (capabilities are per thread, and the
/// raw `capset` system call changes only the caller).
#[allow(unsafe_code)]
fn drop_thread_capabilities() {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let header = Header {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [Data {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    // SAFETY: capset(2) reads a header and two data structs that live for the call.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header, data.as_ptr()) };
    assert_eq!(rc, 0, "capset: {}", std::io::Error::last_os_error());
}

#[test]
fn without_privileges_the_error_says_which_capability() {
    let ns = Netns::new();
    ns.ip("link add dp0 type veth peer name dp1");
    ns.run(|| {
        drop_thread_capabilities();
        let e = AfPacket::open(&AfPacketConfig::new("dp0"), pool()).err().unwrap();
        assert_eq!(e.kind(), std::io::ErrorKind::PermissionDenied);
        assert_eq!(
            e.to_string(),
            "interface dp0: opening an AF_PACKET socket: permission denied (run as root or with CAP_NET_RAW)"
        );
        let e = Tap::open(&TapConfig::new("dtap0"), pool()).err().unwrap();
        assert!(matches!(e, DriverError::PermissionDenied { .. }), "{e:?}");
        assert!(
            e.to_string().starts_with("interface dtap0: ")
                && e.to_string().ends_with("permission denied (run as root or with CAP_NET_ADMIN)"),
            "{e}"
        );
    });
}

#[test]
fn sending_on_a_down_interface_says_bring_it_up_and_keeps_the_frames() {
    let ns = Netns::new();
    ns.ip("link add dp0 type veth peer name dp1");
    ns.run(|| {
        let mut drv = AfPacket::open(&AfPacketConfig::new("dp0"), pool()).unwrap();
        let mut f = drv.pool().alloc().unwrap();
        f.append(60).unwrap().fill(0xff);
        let mut frames = vec![f];
        let e = drv.send(0, &mut frames).unwrap_err();
        assert_eq!(
            e.to_string(),
            "interface dp0: sending frames: network is down (bring it up: ip link set dp0 up)"
        );
        assert_eq!(e.raw_os_error(), Some(libc::ENETDOWN));
        assert_eq!(frames.len(), 1, "the unsent frame stays with the caller");
        // A TAP interface that is down refuses writes with EIO: reported the same way.
        let mut tap = Tap::open(&TapConfig::new("dtap0"), pool()).unwrap();
        let e = tap.send(0, &mut frames).unwrap_err();
        assert_eq!(
            e.to_string(),
            "interface dtap0: writing a frame: network is down (bring it up: ip link set dtap0 up)"
        );
        assert_eq!(frames.len(), 1);
        assert_eq!(tap.stats().tx_packets, 0);
    });
}
