//! `dataplane sim FILE`: runs a topology file in the laboratory (the `sim` crate) and
//! prints its summary: per flow what was sent, delivered and lost with delay statistics,
//! per node the drops by reason, per link what its impairments did, then the simulated
//! time, the events processed and the wall time.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use sim::{Summary, Topology};

/// Options of `dataplane sim`.
pub struct SimOptions {
    /// Overrides the file's seed.
    pub seed: Option<u64>,
    /// Overrides the file's run time ("10s", "500ms").
    pub until: Option<String>,
    /// Writes one pcap file per link into this directory.
    pub pcap: Option<PathBuf>,
}

/// Loads, builds and runs the topology; exit status 2 for a bad file or option, 1 for a
/// run that fails (the step budget, a capture that cannot be written).
pub fn run(file: &Path, options: &SimOptions) -> ExitCode {
    let topo = match Topology::load(file) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("dataplane sim: {e}");
            return ExitCode::from(2);
        }
    };
    let until = match &options.until {
        None => topo.until,
        Some(s) => match sim::topo::parse_duration(s) {
            Ok(d) => Some(d),
            Err(e) => {
                eprintln!("dataplane sim: --until: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let mut lab = match topo.build(options.seed) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("dataplane sim: {e}");
            return ExitCode::from(2);
        }
    };
    if let Some(dir) = &options.pcap {
        if let Err(e) = std::fs::create_dir_all(dir) {
            eprintln!("dataplane sim: --pcap {}: {e}", dir.display());
            return ExitCode::FAILURE;
        }
        for i in 0..lab.link_count() {
            let id = sim::LinkId(i as u32);
            let name = lab.link_name(id).unwrap_or("link").to_string();
            if let Err(e) = lab.capture_link(id, &dir.join(format!("{name}.pcap"))) {
                eprintln!("dataplane sim: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let started = std::time::Instant::now();
    let result = match until {
        Some(d) => lab.run_for(d),
        None => lab.run_until_idle(),
    };
    let wall = started.elapsed();
    let result = result.and_then(|()| lab.flush_captures());
    // Written, not printed: a closed pipe (`| head`) must not panic the process.
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(Summary::of(&lab).render().as_bytes());
    let _ = writeln!(
        out,
        "\nwall time {}, simulated time {}, {} events ({:.0} events/s)",
        sim::summary::fmt_wall(wall),
        sim::world::fmt_instant(lab.now()),
        lab.events_processed(),
        lab.events_processed() as f64 / wall.as_secs_f64().max(1e-9)
    );
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dataplane sim: {e}");
            ExitCode::FAILURE
        }
    }
}
