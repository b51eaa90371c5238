//! Compiles `bpf/router.bpf.c` (the XDP programs of `dpbench router`) with clang into
//! `$OUT_DIR/router.bpf.o` (see `src/router/bpf.rs`).

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let src = "bpf/router.bpf.c";
    println!("cargo:rerun-if-changed={src}");
    let out = PathBuf::from(env::var("OUT_DIR").expect("OUT_DIR")).join("router.bpf.o");
    // <linux/bpf.h> includes <asm/types.h>, which Debian keeps under the multiarch
    // directory of the host.
    let arch = env::var("CARGO_CFG_TARGET_ARCH").unwrap_or_else(|_| "x86_64".into());
    let multiarch = format!("/usr/include/{arch}-linux-gnu");
    let clang = env::var("CLANG").unwrap_or_else(|_| "clang".into());
    let status = Command::new(&clang)
        .args(["-O2", "-g", "-target", "bpf", "-Wall", "-Werror"])
        .arg(format!("-I{multiarch}"))
        .arg("-c")
        .arg(src)
        .arg("-o")
        .arg(&out)
        .status();
    match status {
        Ok(s) if s.success() => {}
        Ok(s) => panic!("{clang} failed to compile {src} ({s}): see the messages above"),
        Err(e) => panic!(
            "cannot run {clang} to compile {src}: {e} (install clang and libbpf-dev: bash scripts/deps.sh)"
        ),
    }
}
