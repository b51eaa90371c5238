//! `dpbench tcp`: bulk TCP between two stack instances in one process, on one core.
//!
//! Stack a sends, stack b receives; frames move between them in memory (the frame
//! handle is passed, as `drivers::MemLink` does), with the stacks' clock following the
//! wall clock so that their timers (delayed ACK, retransmission) run as they would on
//! a real link. The figure is payload bytes delivered to b's application per second.

use std::time::Instant as WallInstant;

use serde_json::{json, Map, Value};
use stack::addr::Ipv4Cidr;
use stack::wire::EthernetAddress;
use stack::{
    FramePool, Instant, InterfaceConfig, PoolConfig, PortId, SocketError, Stack, StackConfig,
    TcpConfig,
};

/// Options of `dpbench tcp`.
#[derive(Debug, Clone, clap::Args)]
pub struct TcpArgs {
    /// Bytes to transfer.
    #[arg(long, default_value_t = 1 << 30)]
    pub bytes: usize,
    /// Send and receive buffer per connection, bytes.
    #[arg(long, default_value_t = 4 << 20)]
    pub buffer: usize,
    /// Link MTU (frames of 16 KiB above 1700, else 2 KiB).
    #[arg(long, default_value_t = 1500)]
    pub mtu: u16,
}

fn host(name: &str, ip: &str, mac: u8, args: &TcpArgs) -> Stack {
    let mut cfg = StackConfig::host(name);
    cfg.tcp = TcpConfig {
        rx_buffer: args.buffer,
        tx_buffer: args.buffer,
        ..TcpConfig::default()
    };
    let frame_size = if args.mtu > 1700 { 16384 } else { 2048 };
    let pool = FramePool::with_frames(
        8192,
        PoolConfig {
            frame_size,
            ..PoolConfig::default()
        },
    )
    .expect("pool");
    let mut s = Stack::new(cfg, pool, u64::from(mac) * 7919);
    let port = InterfaceConfig::new(name, EthernetAddress([2, 0, 0, 0, 0, mac]))
        .with_mtu(args.mtu)
        .with_ipv4(ip.parse::<Ipv4Cidr>().expect("cidr"));
    s.add_port(port).expect("port");
    s
}

/// Runs the transfer; the figures as JSON fields.
pub fn run(args: &TcpArgs) -> Result<Map<String, Value>, String> {
    let mut a = host("a", "10.0.0.1/24", 1, args);
    let mut b = host("b", "10.0.0.2/24", 2, args);
    let p = PortId(0);
    let start = WallInstant::now();
    let now = |s: WallInstant| Instant::from_nanos(1_000_000_000 + s.elapsed().as_nanos() as u64);
    let server = "10.0.0.2:5001".parse().expect("addr");
    let l = b.tcp_listen(server, 4).map_err(|e| e.to_string())?;
    let c = a
        .tcp_connect(now(start), server, None)
        .map_err(|e| e.to_string())?;
    let mut frames = Vec::with_capacity(1024);
    let chunk = vec![0x5au8; 256 * 1024];
    let mut sink = vec![0u8; 256 * 1024];
    let mut s = None;
    let (mut sent, mut got) = (0usize, 0usize);
    let mut t0 = None;
    let mut rounds = 0u64;
    while got < args.bytes {
        rounds += 1;
        let t = now(start);
        if s.is_none() {
            s = b.tcp_accept(l);
        }
        if sent < args.bytes && s.is_some() {
            t0.get_or_insert_with(WallInstant::now);
            let n = (args.bytes - sent).min(chunk.len());
            sent += a
                .tcp_send(t, c, &chunk[..n])
                .map_err(|e| format!("send: {e}"))?;
        }
        a.drain_tx(p, &mut frames, usize::MAX);
        if !frames.is_empty() {
            b.receive_batch(t, p, &mut frames);
            frames.clear();
        }
        if let Some(s) = s {
            loop {
                match b.tcp_recv(s, &mut sink) {
                    Ok(0) | Err(SocketError::WouldBlock) => break,
                    Ok(n) => got += n,
                    Err(e) => return Err(format!("recv: {e}")),
                }
            }
        }
        b.drain_tx(p, &mut frames, usize::MAX);
        if !frames.is_empty() {
            a.receive_batch(t, p, &mut frames);
            frames.clear();
        }
        for st in [&mut a, &mut b] {
            if st.poll_at().is_some_and(|at| at <= t) {
                st.poll(t);
            }
        }
        if start.elapsed().as_secs() > 120 {
            return Err(format!(
                "stalled: {got} of {} bytes after 120 s",
                args.bytes
            ));
        }
    }
    let secs = t0.map_or(0.0, |t| t.elapsed().as_secs_f64());
    let gbps = got as f64 * 8.0 / secs / 1e9;
    let conn = a.tcp_connection(c).ok_or("connection gone")?;
    println!(
        "tcp bulk: {} MB in {:.3} s = {:.2} Gbit/s (MSS {}, cwnd {} B, {} rounds, one core)",
        got >> 20,
        secs,
        gbps,
        conn.mss(),
        conn.cwnd(),
        rounds
    );
    let mut m = Map::new();
    m.insert("bytes".into(), json!(got));
    m.insert("seconds".into(), json!(secs));
    m.insert("mtu".into(), json!(args.mtu));
    m.insert(
        "tcb_bytes".into(),
        json!(core::mem::size_of::<stack::tcp::Tcb>()),
    );
    m.insert("bulk_gbps".into(), json!(gbps));
    Ok(m)
}
