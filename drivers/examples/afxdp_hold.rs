//! Holds an AF_XDP driver open until SIGINT or SIGTERM, then drops it and exits 0: the
//! helper process of `drivers/tests/teardown.rs`.
//!
//! Usage: `afxdp_hold DEV` (run it inside the namespace, e.g. with `ip netns exec`,
//! which keeps the process id). Prints `ready <mode>` once the XDP program is attached,
//! receives (and discards) frames until a shutdown is requested, prints
//! `stopping <signal>` and drops the driver, which detaches the program.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use drivers::{AfXdp, AfXdpConfig, Driver, Shutdown};

fn main() -> ExitCode {
    let Some(dev) = std::env::args().nth(1) else {
        eprintln!("usage: afxdp_hold DEV");
        return ExitCode::from(2);
    };
    let shutdown = match Shutdown::install() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("installing the signal handlers: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut drv = match AfXdp::open(&AfXdpConfig::new(dev)) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    println!("ready {}", drv.xdp_mode());
    let _ = std::io::stdout().flush();
    let mut frames = Vec::new();
    while !shutdown.wait_timeout(Duration::from_millis(20)) {
        if let Err(e) = drv.recv(0, &mut frames, 64) {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
        frames.clear();
    }
    println!("stopping {:?}", shutdown.signal());
    drop(drv);
    ExitCode::SUCCESS
}
