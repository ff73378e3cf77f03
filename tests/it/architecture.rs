//! Guard rails on the architecture: the sans-IO core (the `sas-core` crate) never reads a
//! clock or does IO, and every module says what it owns.

use std::path::Path;

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The core crate, `crates/sas-core`: the compiler keeps IO out of it (none of the IO
/// crates is a dependency), and these tests keep it that way.
fn core_dir() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("crates/sas-core")
}

#[test]
fn the_core_crate_depends_on_no_io_crate() {
    let text = std::fs::read_to_string(core_dir().join("Cargo.toml")).unwrap();
    let manifest: toml::Table = text.parse().unwrap();
    let mut names = Vec::new();
    for section in ["dependencies", "dev-dependencies", "build-dependencies"] {
        if let Some(deps) = manifest.get(section).and_then(|d| d.as_table()) {
            names.extend(deps.keys().cloned());
        }
    }
    assert!(names.contains(&"serde".to_string()), "deps read: {names:?}");
    assert!(
        manifest.get("target").is_none(),
        "no per-target dependencies"
    );
    let io = [
        "tokio",
        "sled",
        "rsipstack",
        "webrtc",
        "rtc",
        "hyper",
        "mio",
        "socket2",
    ];
    for name in &names {
        let base = name.split(['-', '_']).next().unwrap_or(name);
        assert!(
            !io.contains(&name.as_str()) && !io.contains(&base),
            "sas-core must not depend on {name}: IO belongs to the sas-router crate"
        );
    }
}

#[test]
fn core_sources_take_time_as_an_argument_and_do_no_io() {
    let forbidden = [
        "Instant::now",
        "SystemTime::now",
        "Utc::now",
        "Local::now",
        "wall_clock_now",
        "tokio::",
        "sled::",
        "rsipstack::",
        "webrtc::",
        "hyper::",
        "std::fs",
        "UdpSocket",
        "TcpStream",
        "TcpListener",
        "crate::net",
        "crate::app",
        "crate::http",
        "store::Store",
        "media::relay",
        "sas_router",
    ];
    let root = core_dir().join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    // The Router (dial plans, named timers), the ACD, the media logic, the record and the reports are core.
    for module in [
        "call/router.rs",
        "call/router/timers.rs",
        "acd/mod.rs",
        "routing/flow.rs",
        "media/session.rs",
        "media/recording/mixer.rs",
        "record.rs",
        "report.rs",
        "report/figures.rs",
        "call/router/admission.rs",
        "call/router/presence.rs",
        "call/router/sdp.rs",
        "call/router/phones.rs",
        "call/router/wrap_up.rs",
    ] {
        assert!(files.contains(&root.join(module)), "{module} checked");
    }
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        // Code only: docs may say where the IO is.
        let code: Vec<&str> = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect();
        for word in forbidden {
            if let Some(line) = code.iter().find(|l| l.contains(word)) {
                panic!("{} uses {word}: {line}", file.display());
            }
        }
    }
}

#[test]
fn every_module_says_what_it_owns() {
    let mut files = Vec::new();
    rust_files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut files,
    );
    rust_files(&core_dir().join("src"), &mut files);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} lacks a //! module doc",
            file.display()
        );
    }
}
