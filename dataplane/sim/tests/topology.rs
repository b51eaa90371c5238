//! Topology files: the examples run, the same file and seed give byte-identical captures
//! and summaries, another seed gives another run, and bad files get an error naming the
//! file, the line and the key.

use std::path::{Path, PathBuf};

use sim::{LinkId, Sim, Summary, Topology};
use stack::Duration;

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../configs/topologies")
        .join(name)
}

fn scratch(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sim-{}-{tag}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs a topology with captures of every link into `dir`; returns the summary and the
/// capture files' bytes by link name.
fn run_with_pcap(file: &str, seed: Option<u64>, dir: &Path) -> (String, Vec<(String, Vec<u8>)>) {
    let topo = Topology::load(&example(file)).unwrap();
    let mut sim: Sim = topo.build(seed).unwrap();
    let mut files = Vec::new();
    for i in 0..sim.link_count() {
        let id = LinkId(i as u32);
        let name = sim.link_name(id).unwrap().to_string();
        let path = dir.join(format!("{name}.pcap"));
        sim.capture_link(id, &path).unwrap();
        files.push((name, path));
    }
    sim.run_for(topo.until.unwrap_or(Duration::from_secs(10)))
        .unwrap();
    sim.flush_captures().unwrap();
    let summary = Summary::of(&sim).render().to_string();
    drop(sim);
    let pcaps = files
        .into_iter()
        .map(|(n, p)| (n, std::fs::read(p).unwrap()))
        .collect();
    (summary, pcaps)
}

#[test]
fn same_file_and_seed_give_byte_identical_pcaps_and_summaries() {
    let (d1, d2, d3) = (scratch("a"), scratch("b"), scratch("c"));
    let (s1, p1) = run_with_pcap("lossy.toml", Some(42), &d1);
    let (s2, p2) = run_with_pcap("lossy.toml", Some(42), &d2);
    assert_eq!(s1, s2);
    assert_eq!(p1.len(), 2);
    for ((n1, b1), (n2, b2)) in p1.iter().zip(&p2) {
        assert_eq!(n1, n2);
        assert!(b1.len() > 10_000, "{n1}: {} bytes", b1.len());
        assert!(b1 == b2, "{n1}: captures differ");
    }
    // Another seed: another run.
    let (s3, p3) = run_with_pcap("lossy.toml", Some(43), &d3);
    assert_ne!(s1, s3);
    assert!(p1.iter().zip(&p3).any(|((_, a), (_, b))| a != b));
    for d in [d1, d2, d3] {
        let _ = std::fs::remove_dir_all(d);
    }
}

#[test]
fn captures_carry_simulated_timestamps() {
    let dir = scratch("ts");
    let (_, pcaps) = run_with_pcap("chain.toml", None, &dir);
    let (_, bytes) = &pcaps[0];
    let mut reader = pcap_file::pcap::PcapReader::new(&bytes[..]).unwrap();
    let mut last = std::time::Duration::ZERO;
    let mut n = 0;
    while let Some(p) = reader.next_packet() {
        let p = p.unwrap();
        assert!(p.timestamp >= last);
        assert!(p.timestamp <= std::time::Duration::from_secs(12));
        last = p.timestamp;
        n += 1;
    }
    // 100 + 100 pings, their replies, resolution, one probe and its error.
    assert!(n >= 400, "{n}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_examples_run_as_described() {
    for (file, must) in [
        (
            "chain.toml",
            vec![
                "sent 100 delivered 100 lost 0",
                "TimeExceeded from 10.0.3.2",
            ],
        ),
        ("dumbbell.toml", vec!["bottleneck", "queue-drops"]),
        ("lossy.toml", vec!["radio", "corrupted"]),
        (
            "tcp.toml",
            vec![
                "bulk4            tcp  h1 -> 10.1.3.2:5001: bytes 2000000 sent 2000000 delivered 2000000 corrupted 0 complete",
                "bulk6            tcp  h2 -> [fd01:1::2]:5001: bytes 1000000 sent 1000000 delivered 1000000 corrupted 0 complete",
            ],
        ),
    ] {
        let topo = Topology::load(&example(file)).unwrap();
        let mut sim = topo.build(None).unwrap();
        sim.run_for(topo.until.unwrap()).unwrap();
        let s = Summary::of(&sim).render().to_string();
        for m in must {
            assert!(s.contains(m), "{file}: {m:?} missing in\n{s}");
        }
    }
}

fn err(text: &str) -> String {
    let e = Topology::from_str(text, "t.toml")
        .and_then(|t| t.build(None).map(|_| t))
        .unwrap_err();
    e.to_string()
}

const TWO: &str =
    "[[node]]\nname = \"a\"\nkind = \"host\"\n\n[[node]]\nname = \"b\"\nkind = \"host\"\n";

#[test]
fn bad_topologies_name_file_line_and_key() {
    let cases: Vec<(String, &str)> = vec![
        ("[[node]]\nname = \"a\"\nkind = \"switch\"\n".into(), "t.toml:3: node[0].kind: \"switch\""),
        ("[[node]]\nname = \"a\"\nkind = \"host\"\ncolour = 1\n".into(), "t.toml:4: node[0].colour: unknown field"),
        (format!("{TWO}\n[[link]]\na = \"a\"\nb = \"c\"\n"), "t.toml:11: link[0].b: no node named \"c\""),
        (format!("{TWO}\n[[link]]\na = \"a\"\nb = \"b\"\nbandwidth = \"10Mbt\"\n"), "t.toml:12: link[0].bandwidth: \"10Mbt\": unknown unit"),
        (format!("{TWO}\n[[link]]\na = \"a\"\nb = \"b\"\ndelay = \"5\"\n"), "t.toml:12: link[0].delay: \"5\": a duration needs a unit"),
        (format!("{TWO}\n[[link]]\na = \"a\"\nb = \"b\"\nloss = 1.5\n"), "t.toml:12: link[0].loss: 1.5: a probability is between 0 and 1"),
        (format!("{TWO}\n[[link]]\na = \"a\"\nb = \"b\"\na-addrs = [\"10.0.0.1/33\"]\n"), "t.toml:12: link[0].a-addrs[0]: \"10.0.0.1/33\""),
        (format!("{TWO}\n[[link]]\na = \"a\"\nb = \"b\"\ngilbert-elliott = {{ p-gb = 2.0, p-bg = 0.1 }}\n"), "t.toml:12: link[0].gilbert-elliott.p-gb"),
        (format!("{TWO}\n[[route]]\nnode = \"a\"\nprefix = \"10.0.0.0/8\"\n"), "t.toml:11: route[0]: a route needs exactly one of"),
        (format!("{TWO}\n[[route]]\nnode = \"a\"\nprefix = \"10.0.0.0/8\"\nvia = \"10.9.9.9\"\n"), "t.toml:10: route[0]: node a: route 10.0.0.0/8"),
        (format!("{TWO}\n[[ping]]\nfrom = \"a\"\nto = \"nowhere\"\n"), "t.toml:11: ping[0].to: \"nowhere\": not an IP address"),
        (format!("{TWO}\n[[ping]]\nfrom = \"a\"\nto = \"10.0.0.1\"\ninterval = \"0s\"\n"), "t.toml:12: ping[0].interval: must be longer than 0"),
        (format!("{TWO}\n[[event]]\nat = \"1s\"\naction = \"link-down\"\n"), "t.toml:11: event[0].link: action \"link-down\" needs link"),
        (format!("{TWO}\n[[event]]\nat = \"1s\"\naction = \"explode\"\n"), "t.toml:11: event[0].action: \"explode\": one of"),
        (format!("{TWO}\n[[event]]\nat = \"1s\"\naction = \"link-up\"\nlink = \"x-y\"\n"), "t.toml:12: event[0].link: no link named \"x-y\""),
        (format!("{TWO}\n[[tcp]]\nfrom = \"a\"\nto = \"10.0.0.1\"\nbytes = 10\n"), "t.toml:11: tcp[0].to: \"10.0.0.1\": not an address and port"),
        (format!("{TWO}\n[[tcp]]\nfrom = \"a\"\nto = \"10.0.0.1:0\"\nbytes = 10\n"), "t.toml:11: tcp[0].to: the port must not be 0"),
        (format!("{TWO}\n[[tcp]]\nfrom = \"a\"\nto = \"10.0.0.1:80\"\nbytes = 0\n"), "t.toml:12: tcp[0].bytes: 0: a flow sends 1 to"),
        (format!("{TWO}\n[[tcp]]\nfrom = \"a\"\nto = \"10.0.0.1:80\"\nbytes = -5\n"), "t.toml:12: tcp[0].bytes:"),
        (format!("{TWO}\n[[tcp]]\nfrom = \"c\"\nto = \"10.0.0.1:80\"\nbytes = 5\n"), "t.toml:10: tcp[0].from: no node named \"c\""),
        (format!("{TWO}\n[[tcp]]\nfrom = \"a\"\nto = \"10.0.0.1:80\"\nbytes = 5\nstart = \"soon\"\n"), "t.toml:13: tcp[0].start:"),
        (format!("{TWO}\n[[tcp]]\nfrom = \"a\"\nto = \"10.0.0.1:80\"\n"), "t.toml:9"),
        ("[sim]\nuntil = \"forever\"\n".into(), "t.toml:2: sim.until:"),
        ("[sim]\nseed = \"one\"\n".into(), "t.toml:2: sim.seed:"),
        ("[sim]\npool-frames = 4000000000\n".into(), "t.toml:2: sim.pool-frames: 4000000000: 16 to 262144 frames"),
        ("[[node]\n".into(), "t.toml:1"),
        (format!("{TWO}[[node]]\nname = \"a\"\nkind = \"host\"\n"), "t.toml:9: node[2].name: node \"a\" is defined twice"),
    ];
    for (text, want) in cases {
        let got = err(&text);
        assert!(
            got.starts_with(want),
            "want {want:?}\n got {got:?}\nfor\n{text}"
        );
    }
}

#[test]
fn a_missing_file_is_named() {
    let e = Topology::load(Path::new("/nonexistent/t.toml")).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("/nonexistent/t.toml: cannot read"),
        "{e}"
    );
}

#[test]
fn truncated_and_mangled_files_give_errors_never_panics() {
    for file in ["tcp.toml", "lossy.toml"] {
        let text = std::fs::read_to_string(example(file)).unwrap();
        let mut refused = 0;
        for cut in (0..text.len()).step_by(7) {
            if !text.is_char_boundary(cut) {
                continue;
            }
            match Topology::from_str(&text[..cut], "cut.toml") {
                Ok(t) => {
                    let _ = t.build(None);
                }
                Err(e) => {
                    assert!(e.to_string().starts_with("cut.toml"), "{e}");
                    refused += 1;
                }
            }
        }
        assert!(refused > 10, "{file}");
    }
    let text = std::fs::read_to_string(example("lossy.toml")).unwrap();
    // Values replaced by ones of the wrong shape or range.
    for (from, to) in [
        ("\"2Mbit\"", "\"-2Mbit\""),
        ("\"15ms\"", "\"15 parsecs\""),
        ("queue = 50", "queue = -1"),
        ("p-gb = 0.02", "p-gb = \"x\""),
        ("\"192.168.2.1/24\"", "\"192.168.2.1/99\""),
        ("at = \"10s\"", "at = \"1e9s\""),
        ("kind = \"router\"", "kind = 7"),
        ("\"fd00:2::1\"", "\"fd00:2::1/64\""),
    ] {
        let bad = text.replacen(from, to, 1);
        assert_ne!(bad, text, "{from}");
        let e = Topology::from_str(&bad, "m.toml")
            .and_then(|t| t.build(None).map(|_| t))
            .expect_err(to);
        let msg = e.to_string();
        assert!(msg.starts_with("m.toml:"), "{msg}");
        assert!(e.line.is_some() && e.key.is_some(), "{msg}");
    }
}
