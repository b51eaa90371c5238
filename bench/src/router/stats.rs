//! Pure helpers of `dpbench router`: frame templates, sequence accounting (loss,
//! reordering, duplicates), latency summaries, spreads, and the UTC timestamp of the
//! results file. Nothing here touches the system, so all of it is unit-tested.

use hdrhistogram::Histogram;

/// Ethernet + IPv4 (no options) + UDP header bytes, as the generator program rewrites
/// them (`HDR_LEN` in `bench/bpf/router.bpf.c`).
pub const HDR_LEN: usize = 42;
/// Ethernet + IPv6 (no extension headers) + UDP header bytes (`HDR6_LEN`).
pub const HDR6_LEN: usize = 62;
/// The smallest IPv6 frame size on the wire that holds headers and payload.
pub const MIN_SIZE6: usize = HDR6_LEN + PAYLOAD_LEN + 4;
/// UDP payload bytes the generator writes: a sequence number and the send time.
pub const PAYLOAD_LEN: usize = 16;
/// The smallest frame size (on the wire, with the 4-byte FCS) that holds both.
pub const MIN_SIZE: usize = 64;
/// The largest frame size (on the wire, with the FCS) for an MTU of 1500.
pub const MAX_SIZE: usize = 1518;

/// The IPv4/UDP frame of on-wire size `size` (FCS excluded from the bytes, so
/// `size - 4` long) from `src_ip` to `dst_ip`: UDP ports 4000 → 9000 (the generator
/// varies both per frame), UDP checksum 0 (none, valid for IPv4), TTL 64, DF, a zeroed
/// payload that the generator fills with sequence number and send time.
pub fn udp_frame(
    size: usize,
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src_ip: [u8; 4],
    dst_ip: [u8; 4],
) -> Result<Vec<u8>, String> {
    if !(MIN_SIZE..=MAX_SIZE).contains(&size) {
        return Err(format!(
            "frame size {size} is outside {MIN_SIZE}..={MAX_SIZE} (bytes on the wire with the FCS)"
        ));
    }
    let len = size - 4;
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut f[14..34];
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((len - 14) as u16).to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64;
    ip[9] = 17;
    ip[12..16].copy_from_slice(&src_ip);
    ip[16..20].copy_from_slice(&dst_ip);
    let sum = crate::drivers::ipv4_checksum(ip);
    ip[10..12].copy_from_slice(&sum.to_be_bytes());
    let udp = &mut f[34..42];
    udp[0..2].copy_from_slice(&4000u16.to_be_bytes());
    udp[2..4].copy_from_slice(&9000u16.to_be_bytes());
    udp[4..6].copy_from_slice(&((len - 34) as u16).to_be_bytes());
    Ok(f)
}

/// The header length of a frame the generator sends: [`HDR6_LEN`] for IPv6 (EtherType
/// 0x86dd), [`HDR_LEN`] otherwise.
pub fn header_len(frame: &[u8]) -> usize {
    if frame.get(12..14) == Some(&[0x86, 0xdd][..]) {
        HDR6_LEN
    } else {
        HDR_LEN
    }
}

/// The IPv6/UDP frame of on-wire size `size` from `src_ip` to `dst_ip`: ports 4000 →
/// 9000 (varied per frame by the generator), hop limit 64, a zeroed payload for sequence
/// number and send time, and UDP checksum 0. IPv6 requires a checksum (RFC 8200 §8.1),
/// but routers do not verify it when forwarding and the sink does not either; a valid one
/// would have to be recomputed for every frame.
pub fn udp6_frame(
    size: usize,
    dst_mac: [u8; 6],
    src_mac: [u8; 6],
    src_ip: [u8; 16],
    dst_ip: [u8; 16],
) -> Result<Vec<u8>, String> {
    if !(MIN_SIZE6..=MAX_SIZE).contains(&size) {
        return Err(format!(
            "IPv6 frame size {size} is outside {MIN_SIZE6}..={MAX_SIZE} (bytes on the wire with the FCS)"
        ));
    }
    let len = size - 4;
    let mut f = vec![0u8; len];
    f[0..6].copy_from_slice(&dst_mac);
    f[6..12].copy_from_slice(&src_mac);
    f[12..14].copy_from_slice(&0x86ddu16.to_be_bytes());
    let ip = &mut f[14..54];
    ip[0] = 0x60;
    ip[4..6].copy_from_slice(&((len - 54) as u16).to_be_bytes());
    ip[6] = 17;
    ip[7] = 64;
    ip[8..24].copy_from_slice(&src_ip);
    ip[24..40].copy_from_slice(&dst_ip);
    let udp = &mut f[54..62];
    udp[0..2].copy_from_slice(&4000u16.to_be_bytes());
    udp[2..4].copy_from_slice(&9000u16.to_be_bytes());
    udp[4..6].copy_from_slice(&((len - 54) as u16).to_be_bytes());
    Ok(f)
}

/// Counts what arrived of a numbered stream: unique frames, duplicates, and frames that
/// arrived after a higher sequence number had (reordered).
#[derive(Debug, Default, Clone)]
pub struct SeqTracker {
    seen: Vec<u64>,
    /// Records accounted.
    pub received: u64,
    /// Distinct sequence numbers.
    pub unique: u64,
    /// Sequence numbers seen more than once (each extra arrival counts).
    pub duplicates: u64,
    /// Arrivals whose sequence number is below the highest seen before them.
    pub reordered: u64,
    /// Sequence numbers too large to be ours (above [`SeqTracker::LIMIT`]).
    pub invalid: u64,
    highest: Option<u64>,
}

impl SeqTracker {
    /// Sequence numbers at or above this are counted as invalid (a frame that is not
    /// the generator's), which also bounds the bitmap.
    pub const LIMIT: u64 = 1 << 32;

    /// Accounts one arrival.
    pub fn record(&mut self, seq: u64) {
        self.received += 1;
        if seq >= Self::LIMIT {
            self.invalid += 1;
            return;
        }
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= self.seen.len() {
            self.seen.resize(word + 1, 0);
        }
        if self.seen[word] & (1 << bit) != 0 {
            self.duplicates += 1;
        } else {
            self.seen[word] |= 1 << bit;
            self.unique += 1;
        }
        match self.highest {
            Some(h) if seq < h => self.reordered += 1,
            Some(h) if seq == h => {}
            _ => self.highest = Some(seq),
        }
    }

    /// Frames of the `sent` (numbered `0..sent`) that never arrived.
    pub fn lost(&self, sent: u64) -> u64 {
        let arrived = (0..sent.div_ceil(64) as usize)
            .map(|w| {
                let word = self.seen.get(w).copied().unwrap_or(0);
                let bits_in_range = if (w as u64 + 1) * 64 <= sent {
                    u64::MAX
                } else {
                    (1u64 << (sent % 64)) - 1
                };
                u64::from((word & bits_in_range).count_ones())
            })
            .sum::<u64>();
        sent - arrived
    }
}

/// Latency percentiles of one measurement, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Latency {
    /// Frames in the histogram.
    pub count: u64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
    /// Largest.
    pub max_us: f64,
    /// Mean.
    pub mean_us: f64,
}

/// A histogram of one-way latencies in nanoseconds (1 ns to 100 s, 3 significant
/// digits).
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 100_000_000_000, 3).expect("valid histogram bounds")
}

/// Summarises a histogram of nanoseconds into microseconds; zeros when empty.
pub fn summarise(h: &Histogram<u64>) -> Latency {
    if h.is_empty() {
        return Latency::default();
    }
    let us = |ns: u64| (ns as f64 / 10.0).round() / 100.0;
    Latency {
        count: h.len(),
        p50_us: us(h.value_at_quantile(0.5)),
        p90_us: us(h.value_at_quantile(0.9)),
        p99_us: us(h.value_at_quantile(0.99)),
        p999_us: us(h.value_at_quantile(0.999)),
        max_us: us(h.max()),
        mean_us: (h.mean() / 10.0).round() / 100.0,
    }
}

/// Median, smallest and largest of a set of measurements.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// The median.
    pub median: f64,
    /// The smallest.
    pub min: f64,
    /// The largest.
    pub max: f64,
}

impl Spread {
    /// The spread of the finite values of `v`; `None` when there are none.
    pub fn of(v: &[f64]) -> Option<Spread> {
        let median = crate::drivers::median(v)?;
        let finite = v.iter().copied().filter(|x| x.is_finite());
        Some(Spread {
            median,
            min: finite.clone().fold(f64::INFINITY, f64::min),
            max: finite.fold(f64::NEG_INFINITY, f64::max),
        })
    }
}

/// The pacing interval of the generator for `pps` frames per second (at least 1 ns).
pub fn interval_ns(pps: f64) -> Result<u64, String> {
    if !(pps.is_finite() && pps > 0.0) {
        return Err(format!("offered rate {pps} pps is not a positive number"));
    }
    Ok(((1e9 / pps).round() as u64).max(1))
}

/// Parses a comma-separated list (`"64,128"`) with `parse` for each item; errors name
/// the option and the item.
pub fn parse_list<T>(
    option: &str,
    text: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Vec<T>, String> {
    let items: Vec<&str> = text.split(',').map(str::trim).collect();
    if items.iter().any(|s| s.is_empty()) {
        return Err(format!("{option}: {text:?} has an empty item"));
    }
    items
        .into_iter()
        .map(|s| parse(s).map_err(|e| format!("{option}: {s:?}: {e}")))
        .collect()
}

/// CPU time of one core from a line of `/proc/stat` (`cpuN user nice system idle iowait
/// irq softirq steal ...`), in clock ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CoreTimes {
    /// User time (with nice).
    pub user: u64,
    /// System time.
    pub system: u64,
    /// Hard and soft interrupt time.
    pub irq: u64,
    /// Idle time (with iowait).
    pub idle: u64,
    /// Stolen by the hypervisor.
    pub steal: u64,
}

impl CoreTimes {
    /// The times of core `core` in the text of `/proc/stat`.
    pub fn parse(proc_stat: &str, core: usize) -> Option<CoreTimes> {
        let tag = format!("cpu{core}");
        let line = proc_stat
            .lines()
            .find(|l| l.split_whitespace().next() == Some(tag.as_str()))?;
        let v: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(|x| x.parse().unwrap_or(0))
            .collect();
        let f = |i: usize| v.get(i).copied().unwrap_or(0);
        Some(CoreTimes {
            user: f(0) + f(1),
            system: f(2),
            idle: f(3) + f(4),
            irq: f(5) + f(6),
            steal: f(7),
        })
    }

    /// The share of each kind of time between `self` (earlier) and `later`, in percent:
    /// (user, system, irq, idle, steal); `None` when no time passed.
    pub fn shares(&self, later: &CoreTimes) -> Option<[f64; 5]> {
        let d = [
            later.user.saturating_sub(self.user),
            later.system.saturating_sub(self.system),
            later.irq.saturating_sub(self.irq),
            later.idle.saturating_sub(self.idle),
            later.steal.saturating_sub(self.steal),
        ];
        let total: u64 = d.iter().sum();
        (total > 0).then(|| d.map(|x| (x as f64 * 1000.0 / total as f64).round() / 10.0))
    }
}

/// Time on a CPU and time runnable but waiting for one, in nanoseconds, from the text
/// of `/proc/PID/task/TID/schedstat` (`run wait timeslices`).
pub fn schedstat(text: &str) -> Option<(u64, u64)> {
    let mut f = text.split_whitespace().map(|x| x.parse::<u64>().ok());
    Some((f.next()??, f.next()??))
}

/// The share (percent of one core) of each thread between two samples of a per-thread
/// time taken `ticks` units of the same time apart, largest first, those of at least 1 %.
pub fn thread_shares(before: &[(u32, u64)], after: &[(u32, u64)], ticks: f64) -> Vec<f64> {
    if ticks <= 0.0 {
        return Vec::new();
    }
    let mut v: Vec<f64> = after
        .iter()
        .map(|(tid, t)| {
            let t0 = before.iter().find(|(b, _)| b == tid).map_or(0, |(_, v)| *v);
            (t.saturating_sub(t0) as f64 * 100.0 / ticks).round()
        })
        .filter(|&p| p >= 1.0)
        .collect();
    v.sort_by(|a, b| b.total_cmp(a));
    v
}

/// `YYYYMMDDTHHMMSSZ` for `secs` seconds after the Unix epoch (UTC).
pub fn utc_stamp(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const D: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const S: [u8; 6] = [2, 0, 0, 0, 0, 2];

    #[test]
    fn frames_have_the_size_and_valid_headers() {
        for size in [64, 128, 1500, 1518] {
            let f = udp_frame(size, D, S, [198, 51, 100, 2], [203, 0, 113, 2]).unwrap();
            assert_eq!(f.len() + 4, size);
            assert_eq!(&f[0..6], &D);
            assert_eq!(&f[6..12], &S);
            let ip = stack::wire::ipv4::Ipv4Packet::new_checked(&f[14..]).unwrap();
            assert!(ip.verify_checksum());
            assert_eq!(u16::from_be_bytes([f[16], f[17]]) as usize, size - 18);
            assert_eq!(u16::from_be_bytes([f[38], f[39]]) as usize, size - 38);
            assert_eq!(&f[30..34], &[203, 0, 113, 2]);
            assert!(f.len() >= HDR_LEN + PAYLOAD_LEN);
        }
        assert!(udp_frame(63, D, S, [0; 4], [0; 4]).is_err());
        assert_eq!(
            header_len(&udp_frame(64, D, S, [0; 4], [0; 4]).unwrap()),
            HDR_LEN
        );
        let six = udp6_frame(128, D, S, [1; 16], [2; 16]).unwrap();
        assert_eq!(six.len() + 4, 128);
        assert_eq!(header_len(&six), HDR6_LEN);
        let ip = stack::wire::ipv6::Ipv6Packet::new_checked(&six[14..]).unwrap();
        assert_eq!(ip.payload_len() as usize, 128 - 4 - 54);
        assert_eq!(ip.hop_limit(), 64);
        assert_eq!(
            u16::from_be_bytes([six[58], six[59]]) as usize,
            128 - 4 - 54
        );
        assert!(udp6_frame(81, D, S, [0; 16], [0; 16]).is_err());
        assert!(udp6_frame(MIN_SIZE6, D, S, [0; 16], [0; 16]).is_ok());
        assert!(udp_frame(1519, D, S, [0; 4], [0; 4]).is_err());
    }

    #[test]
    fn in_order_stream_has_no_loss_reorder_or_duplicates() {
        let mut t = SeqTracker::default();
        for s in 0..1000 {
            t.record(s);
        }
        assert_eq!(
            (t.received, t.unique, t.duplicates, t.reordered),
            (1000, 1000, 0, 0)
        );
        assert_eq!(t.lost(1000), 0);
        assert_eq!(t.lost(1010), 10, "frames sent but never seen are lost");
    }

    #[test]
    fn loss_reordering_and_duplicates_are_counted() {
        let mut t = SeqTracker::default();
        for s in [0, 1, 3, 2, 4, 4, 7, 6, 100] {
            t.record(s);
        }
        assert_eq!(t.received, 9);
        assert_eq!(t.unique, 8);
        assert_eq!(t.duplicates, 1);
        assert_eq!(t.reordered, 2, "2 after 3 and 6 after 7");
        // Sent 0..8: 5 never arrived; 100 lies beyond what was sent.
        assert_eq!(t.lost(8), 1);
        assert_eq!(t.lost(64), 64 - 7);
        assert_eq!(t.lost(101), 101 - 8);
        t.record(SeqTracker::LIMIT);
        assert_eq!(t.invalid, 1);
        assert_eq!(t.unique, 8);
    }

    #[test]
    fn latency_summary_in_microseconds() {
        let mut h = histogram();
        for ns in 1..=1000u64 {
            h.record(ns * 1000).unwrap();
        }
        let l = summarise(&h);
        assert_eq!(l.count, 1000);
        assert!((l.p50_us - 500.0).abs() < 1.0, "{l:?}");
        assert!((l.p99_us - 990.0).abs() < 1.0, "{l:?}");
        assert!((l.max_us - 1000.0).abs() < 1.0, "{l:?}");
        assert!(l.p999_us >= l.p99_us && l.p99_us >= l.p90_us && l.p90_us >= l.p50_us);
        assert_eq!(summarise(&histogram()), Latency::default());
    }

    #[test]
    fn spreads_intervals_lists_and_stamps() {
        let s = Spread::of(&[3.0, 1.0, 2.0, f64::NAN]).unwrap();
        assert_eq!((s.median, s.min, s.max), (2.0, 1.0, 3.0));
        assert!(Spread::of(&[]).is_none());
        assert_eq!(interval_ns(1e6).unwrap(), 1000);
        assert!(interval_ns(0.0).is_err());
        assert_eq!(
            parse_list("--sizes", "64, 128", |s| s
                .parse::<u32>()
                .map_err(|e| e.to_string()))
            .unwrap(),
            vec![64, 128]
        );
        let e = parse_list("--sizes", "64,x", |s| {
            s.parse::<u32>().map_err(|e| e.to_string())
        })
        .unwrap_err();
        assert!(e.contains("--sizes") && e.contains("\"x\""), "{e}");
        assert!(parse_list("--sizes", "64,", |s| Ok(s.to_string())).is_err());
        assert_eq!(utc_stamp(0), "19700101T000000Z");
        assert_eq!(utc_stamp(1_795_791_599), "20261127T145959Z");
        assert_eq!(utc_stamp(951_782_400), "20000229T000000Z");
    }
    #[test]
    fn core_times_from_proc_stat() {
        let text = "cpu  10 0 10 100 0 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\ncpu1 100 0 50 800 0 10 40 0 0 0\n";
        let a = CoreTimes::parse(text, 1).unwrap();
        assert_eq!((a.user, a.system, a.irq, a.idle), (100, 50, 50, 800));
        let b0 = CoreTimes::parse(text, 0).unwrap();
        assert_eq!((b0.user, b0.idle, b0.irq, b0.steal), (3, 9, 13, 8));
        assert!(CoreTimes::parse(text, 2).is_none());
        let later = CoreTimes {
            user: 150,
            system: 70,
            irq: 80,
            idle: 800,
            steal: 0,
        };
        assert_eq!(a.shares(&later), Some([50.0, 20.0, 30.0, 0.0, 0.0]));
        assert_eq!(a.shares(&a), None);
    }
    #[test]
    fn thread_ticks_and_shares() {
        assert_eq!(schedstat("173794 3261475 2\n"), Some((173794, 3261475)));
        assert_eq!(schedstat("garbage"), None);
        assert_eq!(schedstat("12"), None);
        let before = [(1, 0), (2, 100), (3, 5)];
        let after = [(1, 500), (2, 120), (3, 400), (4, 260)];
        // 500 ticks apart: 1 (500), 3 (395), the new 4 (260) and 2 (20).
        assert_eq!(
            thread_shares(&before, &after, 500.0),
            vec![100.0, 79.0, 52.0, 4.0]
        );
        assert!(thread_shares(&before, &after, 0.0).is_empty());
    }
}
