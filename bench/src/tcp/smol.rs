//! The reference: bulk TCP between two smoltcp interfaces in one process, frames moved
//! in memory as between our two stacks, with the same bytes, MTU and socket buffers.

use std::collections::VecDeque;
use std::time::Instant as WallInstant;

use smoltcp::iface::{Config, Interface, SocketSet};
use smoltcp::phy::{Device, DeviceCapabilities, Medium, RxToken, TxToken};
use smoltcp::socket::tcp;
use smoltcp::time::Instant;
use smoltcp::wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr};

/// One end of an in-memory link: frames to receive, frames sent.
struct Mem {
    rx: VecDeque<Vec<u8>>,
    tx: VecDeque<Vec<u8>>,
    mtu: usize,
    /// Frames sent and their bytes (Ethernet header included).
    sent: (u64, u64),
}

struct Rx(Vec<u8>);
struct Tx<'a>(&'a mut VecDeque<Vec<u8>>);

impl RxToken for Rx {
    fn consume<R, F: FnOnce(&[u8]) -> R>(self, f: F) -> R {
        f(&self.0)
    }
}

impl TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let mut buf = vec![0u8; len];
        let r = f(&mut buf);
        self.0.push_back(buf);
        r
    }
}

impl Device for Mem {
    type RxToken<'a> = Rx;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, _: Instant) -> Option<(Rx, Tx<'_>)> {
        let f = self.rx.pop_front()?;
        self.sent.0 += 1;
        self.sent.1 += f.len() as u64;
        Some((Rx(f), Tx(&mut self.tx)))
    }

    fn transmit(&mut self, _: Instant) -> Option<Tx<'_>> {
        Some(Tx(&mut self.tx))
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut c = DeviceCapabilities::default();
        c.medium = Medium::Ethernet;
        // smoltcp counts the Ethernet header in the MTU of an Ethernet device.
        c.max_transmission_unit = self.mtu + 14;
        c
    }
}

fn iface(dev: &mut Mem, mac: u8, ip: [u8; 4]) -> Interface {
    let mut cfg = Config::new(HardwareAddress::Ethernet(EthernetAddress([
        2, 0, 0, 0, 0, mac,
    ])));
    cfg.random_seed = u64::from(mac);
    let mut i = Interface::new(cfg, dev, Instant::from_micros(0));
    i.update_ip_addrs(|a| {
        let _ = a.push(IpCidr::new(IpAddress::v4(ip[0], ip[1], ip[2], ip[3]), 24));
    });
    i
}

/// Moves `bytes` from interface a to b: (bytes delivered, seconds from the first byte,
/// mean size of b's received frames, frames b sent per frame it received).
pub(crate) fn bulk(
    bytes: usize,
    mtu: u16,
    buffer: usize,
) -> Result<(usize, f64, f64, f64), String> {
    let mtu = usize::from(mtu);
    let mut da = Mem {
        rx: VecDeque::new(),
        tx: VecDeque::new(),
        mtu,
        sent: (0, 0),
    };
    let mut db = Mem {
        rx: VecDeque::new(),
        tx: VecDeque::new(),
        mtu,
        sent: (0, 0),
    };
    let mut ia = iface(&mut da, 1, [10, 0, 0, 1]);
    let mut ib = iface(&mut db, 2, [10, 0, 0, 2]);
    let sock = || {
        tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0u8; buffer]),
            tcp::SocketBuffer::new(vec![0u8; buffer]),
        )
    };
    let mut sa = SocketSet::new(vec![]);
    let mut sb = SocketSet::new(vec![]);
    let ha = sa.add(sock());
    let hb = sb.add(sock());
    sb.get_mut::<tcp::Socket>(hb)
        .listen(5001)
        .map_err(|e| format!("smoltcp listen: {e}"))?;
    let start = WallInstant::now();
    let now = || Instant::from_micros(start.elapsed().as_micros() as i64);
    sa.get_mut::<tcp::Socket>(ha)
        .connect(ia.context(), (IpAddress::v4(10, 0, 0, 2), 5001), 49152)
        .map_err(|e| format!("smoltcp connect: {e}"))?;
    let chunk = vec![0x5au8; 256 * 1024];
    let mut sink = vec![0u8; 256 * 1024];
    let (mut sent, mut got) = (0usize, 0usize);
    let mut t0 = None;
    while got < bytes {
        let t = now();
        {
            let s = sa.get_mut::<tcp::Socket>(ha);
            if sent < bytes && s.may_send() {
                t0.get_or_insert_with(WallInstant::now);
                let n = (bytes - sent).min(chunk.len());
                sent += s
                    .send_slice(&chunk[..n])
                    .map_err(|e| format!("smoltcp send: {e}"))?;
            }
        }
        ia.poll(t, &mut da, &mut sa);
        db.rx.append(&mut da.tx);
        ib.poll(t, &mut db, &mut sb);
        {
            let s = sb.get_mut::<tcp::Socket>(hb);
            while s.can_recv() {
                match s.recv_slice(&mut sink) {
                    Ok(0) => break,
                    Ok(n) => got += n,
                    Err(e) => return Err(format!("smoltcp recv: {e}")),
                }
            }
        }
        ib.poll(t, &mut db, &mut sb);
        da.rx.append(&mut db.tx);
        if start.elapsed().as_secs() > 120 {
            return Err(format!(
                "smoltcp stalled: {got} of {bytes} bytes after 120 s"
            ));
        }
    }
    let secs = t0.map_or(0.0, |t| t.elapsed().as_secs_f64());
    Ok((
        got,
        secs,
        db.sent.1 as f64 / db.sent.0.max(1) as f64,
        da.sent.0 as f64 / db.sent.0.max(1) as f64,
    ))
}
