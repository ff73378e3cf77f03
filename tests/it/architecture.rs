//! Guard rails on the architecture: the sans-IO core never reads a clock or does IO.

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

#[test]
fn core_modules_take_time_as_an_argument_and_do_no_io() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let forbidden = [
        "Instant::now",
        "SystemTime::now",
        "Utc::now",
        "Local::now",
        "wall_clock_now",
        "tokio::",
        "std::net::UdpSocket",
        "std::fs",
    ];
    let mut files = Vec::new();
    for core in ["call", "acd", "routing", "media/dtmf", "media/session"] {
        rust_files(&root.join(core), &mut files);
    }
    // The media logic of a call; the IO around it is `media/relay.rs`.
    for module in [
        "media/session.rs",
        "media/playback.rs",
        "media/stream.rs",
        "media/rtcp.rs",
        "media/recording/mixer.rs",
        "media/recording/jitter.rs",
    ] {
        files.push(root.join(module));
    }
    // The one routing file that reads the disk (the dial plan directory).
    files.retain(|f| !f.ends_with("routing/files.rs"));
    assert!(files.len() >= 12, "core files found: {files:?}");
    // The Router (dial plans, named timers) is core too.
    for router in [
        "call/router.rs",
        "call/router/route.rs",
        "call/router/timers.rs",
        "call/router/admission.rs",
        "call/router/presence.rs",
        "call/router/sdp.rs",
        "call/router/phones.rs",
        "call/router/wrap_up.rs",
    ] {
        assert!(files.contains(&root.join(router)), "{router} checked");
    }
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for word in forbidden {
            assert!(!text.contains(word), "{} uses {word}", file.display());
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
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} lacks a //! module doc",
            file.display()
        );
    }
}
