//! The fallback generator of `dpbench router`: an AF_PACKET socket on `g0` sending
//! batches with `sendmmsg`, for kernels where the live-frames generator cannot run
//! (`--generator afpacket`, or chosen automatically when the live-frames probe fails).
//!
//! Each frame gets what the XDP generator writes: UDP ports varied per frame, a sequence
//! number and the CLOCK_MONOTONIC send time (the clock of `bpf_ktime_get_ns`), taken
//! just before the batch goes to the kernel. It reaches about 0.7 Mpps on this machine
//! (see `dpbench drivers`), far below live frames, so maximum rates measured with it are
//! bounded by the generator.
// sendmmsg(2) on a raw socket.
#![allow(unsafe_code)]

use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::stats::header_len;

/// Frames per `sendmmsg`.
const BATCH: usize = 64;

/// Writes ports, sequence number and send time into `frame` (an IPv4 or IPv6 UDP frame
/// of [`super::stats::udp_frame`] or [`super::stats::udp6_frame`]), as the XDP
/// generator does.
pub fn stamp(frame: &mut [u8], seq: u64, now_ns: u64) {
    let hdr = header_len(frame);
    let udp = hdr - 8;
    let sport = 4000 + ((seq >> 8) & 0xff) as u16;
    let dport = 9000 + (seq & 0xff) as u16;
    frame[udp..udp + 2].copy_from_slice(&sport.to_be_bytes());
    frame[udp + 2..udp + 4].copy_from_slice(&dport.to_be_bytes());
    frame[hdr..hdr + 8].copy_from_slice(&seq.to_ne_bytes());
    frame[hdr + 8..hdr + 16].copy_from_slice(&now_ns.to_ne_bytes());
}

/// How many frames are due at `elapsed_ns` at one per `interval_ns`, beyond `sent`,
/// at most one batch; a generator that fell more than a millisecond behind forgets the
/// backlog (as the XDP generator does) instead of bursting: (frames due, whether to
/// restart the schedule now).
pub fn due(elapsed_ns: u64, interval_ns: u64, sent_since_base: u64) -> (usize, bool) {
    let target = elapsed_ns / interval_ns.max(1);
    let behind = target.saturating_sub(sent_since_base);
    if behind.saturating_mul(interval_ns) > 1_000_000 {
        return (0, true);
    }
    (behind.min(BATCH as u64) as usize, false)
}

/// Sends copies of `template` on `dev` (in the calling thread's namespace) until `stop`:
/// as fast as possible, or one per `interval_ns`; counts frames the kernel took in
/// `sent` (which is also the next sequence number).
pub fn run(
    dev: &str,
    template: &[u8],
    interval_ns: u64,
    sent: &AtomicU64,
    stop: &AtomicBool,
    clock: fn() -> u64,
) -> Result<u64, String> {
    let fd = crate::drivers::packet_socket(dev, 0)?;
    let mut frames: Vec<Vec<u8>> = vec![template.to_vec(); BATCH];
    let mut iov: Vec<libc::iovec> = frames
        .iter_mut()
        .map(|f| libc::iovec {
            iov_base: f.as_mut_ptr().cast(),
            iov_len: f.len(),
        })
        .collect();
    let mut msgs: Vec<libc::mmsghdr> = iov
        .iter_mut()
        .map(|v| {
            // SAFETY: mmsghdr is plain data; all-zero is a valid value.
            let mut m: libc::mmsghdr = unsafe { std::mem::zeroed() };
            m.msg_hdr.msg_iov = v;
            m.msg_hdr.msg_iovlen = 1;
            m
        })
        .collect();
    let (mut base, mut since_base) = (clock(), 0u64);
    let mut calls = 0u64;
    while !stop.load(Ordering::Relaxed) {
        let n = if interval_ns == 0 {
            BATCH
        } else {
            let (n, reset) = due(clock() - base, interval_ns, since_base);
            if reset {
                (base, since_base) = (clock(), 0);
            }
            n
        };
        if n == 0 {
            std::hint::spin_loop();
            continue;
        }
        let seq0 = sent.load(Ordering::Relaxed);
        let now = clock();
        for (i, f) in frames.iter_mut().take(n).enumerate() {
            stamp(f, seq0 + i as u64, now);
        }
        // SAFETY: `msgs` points into `iov`, which points into `frames`; all outlive the
        // call and are not moved during it; the kernel only reads the frames.
        let r = unsafe {
            libc::sendmmsg(
                fd.as_raw_fd(),
                msgs.as_mut_ptr(),
                n as u32,
                libc::MSG_DONTWAIT,
            )
        };
        calls += 1;
        if r > 0 {
            // Frames the kernel did not take are sent again, with the same numbers.
            sent.fetch_add(r as u64, Ordering::Relaxed);
            since_base += r as u64;
        }
    }
    Ok(calls)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_ports_sequence_and_time() {
        let mut f = super::super::stats::udp_frame(64, [2; 6], [4; 6], [1; 4], [2; 4]).unwrap();
        let ip_before = f[14..34].to_vec();
        stamp(&mut f, 0x1_02, 77);
        assert_eq!(u16::from_be_bytes([f[34], f[35]]), 4001);
        assert_eq!(u16::from_be_bytes([f[36], f[37]]), 9002);
        assert_eq!(u64::from_ne_bytes(f[42..50].try_into().unwrap()), 0x102);
        assert_eq!(u64::from_ne_bytes(f[50..58].try_into().unwrap()), 77);
        assert_eq!(f[14..34], ip_before[..], "the IPv4 header is untouched");
        let mut six =
            super::super::stats::udp6_frame(128, [2; 6], [4; 6], [1; 16], [2; 16]).unwrap();
        stamp(&mut six, 3, 9);
        assert_eq!(u16::from_be_bytes([six[56], six[57]]), 9003);
        assert_eq!(u64::from_ne_bytes(six[62..70].try_into().unwrap()), 3);
        assert_eq!(u64::from_ne_bytes(six[70..78].try_into().unwrap()), 9);
    }

    #[test]
    fn pacing_sends_what_is_due_and_forgets_a_long_stall() {
        // 1 µs per frame: 10 µs in, 4 sent -> 6 due.
        assert_eq!(due(10_000, 1_000, 4), (6, false));
        // Never more than a batch.
        assert_eq!(due(500_000, 1_000, 0), (BATCH, false));
        // Ahead of schedule: nothing.
        assert_eq!(due(10_000, 1_000, 20), (0, false));
        // More than 1 ms behind: start afresh.
        assert_eq!(due(3_000_000, 1_000, 0), (0, true));
    }
}
