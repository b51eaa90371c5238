//! `dataplane sim`: runs a topology file and prints the summary; a bad file is one line
//! naming the file, the line and the key, with exit status 2.

use std::process::Command;

fn topology(name: &str) -> String {
    format!(
        "{}/../configs/topologies/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

#[test]
fn sim_runs_a_topology_and_prints_the_summary() {
    let out = Command::new(env!("CARGO_BIN_EXE_dataplane"))
        .args([
            "sim",
            &topology("chain.toml"),
            "--seed",
            "3",
            "--until",
            "12s",
        ])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    for want in [
        "simulated time 12.000000000s",
        "seed 3",
        "ping h1 -> 10.0.5.2: sent 100 delivered 100 lost 0",
        "udp  h1 -> 10.0.5.2:9000: sent 1125 delivered 1125 lost 0",
        "drops by node",
        "r3               ttl_expired 1",
        "wall time",
        "events processed",
    ] {
        assert!(text.contains(want), "{want:?} missing in\n{text}");
    }
}

#[test]
fn sim_writes_one_pcap_per_link() {
    let dir = std::env::temp_dir().join(format!("dp-sim-cli-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_dataplane"))
        .args(["sim", &topology("lossy.toml"), "--until", "2s", "--pcap"])
        .arg(&dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    for link in ["h1-r", "radio"] {
        let len = std::fs::metadata(dir.join(format!("{link}.pcap")))
            .unwrap()
            .len();
        assert!(len > 1000, "{link}: {len} bytes");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sim_refuses_a_bad_file_with_file_line_and_key() {
    let dir = std::env::temp_dir().join(format!("dp-sim-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.toml");
    std::fs::write(
        &file,
        "[[node]]\nname = \"a\"\nkind = \"host\"\n\n[[node]]\nname = \"b\"\nkind = \"host\"\n\n[[link]]\na = \"a\"\nb = \"b\"\ndelay = \"fast\"\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dataplane"))
        .arg("sim")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    let want = format!(
        "dataplane sim: {}:12: link[0].delay: \"fast\"",
        file.display()
    );
    assert!(err.starts_with(&want), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_dataplane"))
        .args(["sim", &topology("chain.toml"), "--until", "soon"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let _ = std::fs::remove_dir_all(&dir);
}
