//! pcap capture: mirror frames to a file that tcpdump and Wireshark read.
//!
//! A [`Capture`] writes the classic pcap format (nanosecond timestamps, link type
//! Ethernet, native byte order): the file header with the `pcap-file` crate, and each
//! 16-byte record header itself (pcap-file's writer owns its output without giving it
//! back for a flush, and a runtime must flush a live capture); the tests read files
//! back with pcap-file's reader. The caller gives every frame's timestamp, so
//! the runtime can write wall-clock time and the simulator its virtual time; a runtime
//! calls [`Capture::capture`] for each frame it receives and transmits on a port.
//! Frames longer than the snap length are cut to it, with their original length kept in
//! the record, as tcpdump does (pcap-file 2.0's own parsed reader refuses such records:
//! read them with its `next_raw_packet`).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::Path;

use pcap_file::pcap::PcapHeader;
use pcap_file::{DataLink, Endianness, PcapError, TsResolution};
use stack::Frame;

/// Default snap length: whole frames up to 64 KiB.
pub const DEFAULT_SNAPLEN: u32 = 65535;

/// A capture timestamp: time since the Unix epoch for wall-clock captures, or since the
/// simulator's epoch for simulated ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Timestamp(pub std::time::Duration);

impl From<std::time::Duration> for Timestamp {
    fn from(d: std::time::Duration) -> Self {
        Timestamp(d)
    }
}

impl From<stack::Instant> for Timestamp {
    fn from(t: stack::Instant) -> Self {
        Timestamp(std::time::Duration::from_nanos(t.as_nanos()))
    }
}

/// Why a capture could not be written.
#[derive(Debug)]
pub struct CaptureError {
    /// The file (or "writer" for a caller-supplied writer).
    pub target: String,
    /// What the capture was doing.
    pub op: &'static str,
    /// The underlying error.
    pub source: io::Error,
}

impl CaptureError {
    fn new(target: &str, op: &'static str, e: PcapError) -> Self {
        let source = match e {
            PcapError::IoError(e) => e,
            other => io::Error::new(io::ErrorKind::InvalidData, other.to_string()),
        };
        CaptureError {
            target: target.to_string(),
            op,
            source,
        }
    }
}

impl std::fmt::Display for CaptureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "capture {}: {}: {}", self.target, self.op, self.source)
    }
}

impl std::error::Error for CaptureError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.source)
    }
}

/// A pcap writer for Ethernet frames.
pub struct Capture<W: Write = BufWriter<File>> {
    target: String,
    writer: W,
    snaplen: u32,
    packets: u64,
}

impl Capture<BufWriter<File>> {
    /// Creates (or truncates) the file at `path`.
    pub fn create(path: impl AsRef<Path>, snaplen: u32) -> Result<Self, CaptureError> {
        let path = path.as_ref();
        let target = path.display().to_string();
        let file = File::create(path).map_err(|e| CaptureError {
            target: target.clone(),
            op: "creating the file",
            source: e,
        })?;
        Capture::with_target(BufWriter::new(file), snaplen, target)
    }
}

impl<W: Write> Capture<W> {
    /// A capture into `writer`; `snaplen` bytes of each frame at most are kept (0 means
    /// [`DEFAULT_SNAPLEN`]).
    pub fn new(writer: W, snaplen: u32) -> Result<Self, CaptureError> {
        Capture::with_target(writer, snaplen, "writer".to_string())
    }

    fn with_target(writer: W, snaplen: u32, target: String) -> Result<Self, CaptureError> {
        let snaplen = if snaplen == 0 {
            DEFAULT_SNAPLEN
        } else {
            snaplen
        };
        let header = PcapHeader {
            version_major: 2,
            version_minor: 4,
            ts_correction: 0,
            ts_accuracy: 0,
            snaplen,
            datalink: DataLink::ETHERNET,
            ts_resolution: TsResolution::NanoSecond,
            endianness: Endianness::native(),
        };
        let mut writer = writer;
        header
            .write_to(&mut writer)
            .map_err(|e| CaptureError::new(&target, "writing the file header", e))?;
        Ok(Capture {
            target,
            writer,
            snaplen,
            packets: 0,
        })
    }

    /// Records `frame` at time `ts`.
    pub fn capture(&mut self, frame: &Frame, ts: impl Into<Timestamp>) -> Result<(), CaptureError> {
        self.capture_bytes(frame.data(), ts)
    }

    /// Records every frame of a batch at time `ts`.
    pub fn capture_batch(
        &mut self,
        frames: &[Frame],
        ts: impl Into<Timestamp>,
    ) -> Result<(), CaptureError> {
        let ts = ts.into();
        for f in frames {
            self.capture_bytes(f.data(), ts)?;
        }
        Ok(())
    }

    /// Records raw frame bytes at time `ts`.
    pub fn capture_bytes(
        &mut self,
        data: &[u8],
        ts: impl Into<Timestamp>,
    ) -> Result<(), CaptureError> {
        let ts = ts.into().0;
        let kept = data.len().min(self.snaplen as usize);
        let orig = u32::try_from(data.len()).unwrap_or(u32::MAX);
        let secs = u32::try_from(ts.as_secs()).map_err(|_| CaptureError {
            target: self.target.clone(),
            op: "writing a frame",
            source: io::Error::new(
                io::ErrorKind::InvalidInput,
                "timestamp past 2106 does not fit pcap's 32-bit seconds",
            ),
        })?;
        let mut record = [0u8; 16];
        record[0..4].copy_from_slice(&secs.to_ne_bytes());
        record[4..8].copy_from_slice(&ts.subsec_nanos().to_ne_bytes());
        record[8..12].copy_from_slice(&(kept as u32).to_ne_bytes());
        record[12..16].copy_from_slice(&orig.to_ne_bytes());
        let target = &self.target;
        let err = |e| CaptureError {
            target: target.clone(),
            op: "writing a frame",
            source: e,
        };
        self.writer.write_all(&record).map_err(err)?;
        self.writer.write_all(&data[..kept]).map_err(err)?;
        self.packets += 1;
        Ok(())
    }

    /// Frames recorded so far.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// The snap length in force.
    pub fn snaplen(&self) -> u32 {
        self.snaplen
    }

    /// Flushes buffered records to the writer.
    pub fn flush(&mut self) -> Result<(), CaptureError> {
        let target = self.target.clone();
        self.writer.flush().map_err(|e| CaptureError {
            target,
            op: "flushing",
            source: e,
        })
    }

    /// Flushes and returns the writer.
    pub fn into_inner(mut self) -> Result<W, CaptureError> {
        self.flush()?;
        Ok(self.writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pcap_file::pcap::PcapReader;
    use stack::{FramePool, PoolConfig};

    #[test]
    fn frames_and_timestamps_read_back() {
        let pool = FramePool::with_frames(8, PoolConfig::default()).unwrap();
        let mut cap = Capture::new(Vec::new(), 100).unwrap();
        let mut frames = Vec::new();
        for i in 0..3u8 {
            let mut f = pool.alloc().unwrap();
            let len = 60 + usize::from(i) * 40;
            for (j, b) in f.append(len).unwrap().iter_mut().enumerate() {
                *b = i.wrapping_mul(31).wrapping_add(j as u8);
            }
            frames.push(f);
        }
        cap.capture(&frames[0], stack::Instant::from_nanos(1_500_000_123))
            .unwrap();
        cap.capture(&frames[1], std::time::Duration::new(1_700_000_000, 999))
            .unwrap();
        cap.capture_batch(&frames[2..], stack::Instant::from_secs(2))
            .unwrap();
        assert_eq!(cap.packets(), 3);
        let bytes = cap.into_inner().unwrap();
        let mut r = PcapReader::new(&bytes[..]).unwrap();
        assert_eq!(r.header().datalink, DataLink::ETHERNET);
        assert_eq!(r.header().snaplen, 100);
        let expect_ts = [
            std::time::Duration::new(1, 500_000_123),
            std::time::Duration::new(1_700_000_000, 999),
            std::time::Duration::new(2, 0),
        ];
        // Raw records: pcap-file 2.0's parsed reader refuses a record whose original
        // length exceeds the snap length, which tcpdump and Wireshark accept.
        for (f, ts) in frames.iter().zip(expect_ts) {
            let p = r.next_raw_packet().unwrap().unwrap();
            assert_eq!(
                std::time::Duration::new(p.ts_sec.into(), p.ts_frac),
                ts,
                "nanosecond timestamps"
            );
            assert_eq!(p.orig_len as usize, f.len());
            let kept = f.len().min(100);
            assert_eq!(&p.data[..], &f.data()[..kept]);
        }
        assert!(r.next_packet().is_none());
    }

    #[test]
    fn file_capture_is_readable_while_open_and_snaplen_cuts() {
        let path = std::env::temp_dir().join(format!("dp-capture-{}.pcap", std::process::id()));
        let mut cap = Capture::create(&path, 0).unwrap();
        assert_eq!(cap.snaplen(), DEFAULT_SNAPLEN);
        let frame: Vec<u8> = (0..1514u32).map(|i| (i % 251) as u8).collect();
        for i in 0..10u64 {
            cap.capture_bytes(&frame, std::time::Duration::from_micros(i * 10))
                .unwrap();
        }
        cap.flush().unwrap();
        let mut r = PcapReader::new(File::open(&path).unwrap()).unwrap();
        let mut n = 0;
        while let Some(p) = r.next_packet() {
            let p = p.unwrap();
            assert_eq!(p.timestamp, std::time::Duration::from_micros(n * 10));
            assert_eq!(&p.data[..], &frame[..]);
            n += 1;
        }
        assert_eq!(n, 10);
        drop(cap);
        let mut small = Capture::new(Vec::new(), 64).unwrap();
        small
            .capture_bytes(&frame, std::time::Duration::ZERO)
            .unwrap();
        let bytes = small.into_inner().unwrap();
        let mut r = PcapReader::new(&bytes[..]).unwrap();
        let p = r.next_raw_packet().unwrap().unwrap();
        assert_eq!((p.data.len(), p.orig_len), (64, 1514));
        assert_eq!(&p.data[..], &frame[..64]);
        std::fs::remove_file(&path).unwrap();
    }
}
