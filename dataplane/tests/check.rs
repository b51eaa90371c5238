//! `dataplane check --config FILE`, run as a user would: the example files pass, a broken
//! file gives one line naming the file, line and key, and exit status 2.

use std::path::{Path, PathBuf};
use std::process::Command;

fn configs() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs")
}

fn check(path: &Path) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dataplane"))
        .args(["check", "--config"])
        .arg(path)
        .output()
        .expect("run dataplane")
}

#[test]
fn example_configs_pass_check() {
    for name in ["router.toml", "host.toml"] {
        let out = check(&configs().join(name));
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{name}: {stderr}");
        assert!(stdout.contains(": ok"), "{name}: {stdout}");
        assert!(
            stdout.contains("ports:") && stdout.contains("workers:"),
            "{stdout}"
        );
    }
    let out = check(&configs().join("router.toml"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for want in [
        "r-h1",
        "r-h2",
        "198.51.100.1/24",
        "2001:db8:1::1/64",
        "203.0.113.1/24",
        "2001:db8:2::1/64",
        "steering all",
        "cores [1]",
    ] {
        assert!(stdout.contains(want), "missing {want:?} in\n{stdout}");
    }
}

#[test]
fn broken_config_gives_one_line_and_exit_2() {
    let dir = std::env::temp_dir().join(format!("dataplane-check-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("broken.toml");
    std::fs::write(
        &path,
        "[[ports]]\nname = \"a\"\ndriver = \"memory\"\nipv4 = [\"198.51.100.1/24\"]\n\n\
         [[routes]]\nprefix = \"192.0.2.0/24\"\nvia = \"10.9.9.9\"\n",
    )
    .unwrap();
    let out = check(&path);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    std::fs::remove_dir_all(&dir).ok();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "dataplane check: {}:8: routes[0].via: gateway 10.9.9.9 is not on a connected network of any port\n",
            path.display()
        )
    );
    assert!(out.stdout.is_empty());
}

#[test]
fn missing_file_exits_2() {
    let out = check(Path::new("/nonexistent/dataplane.toml"));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("dataplane check: /nonexistent/dataplane.toml: cannot read:"),
        "{stderr}"
    );
    assert_eq!(stderr.lines().count(), 1);
}
