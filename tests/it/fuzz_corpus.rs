//! The fuzz corpus (`fuzz/corpus/<target>/`), replayed on stable through the very checks the
//! `cargo fuzz` targets run (`fuzz/src/lib.rs`): every input the fuzzer kept, and every
//! crash it found once, goes through the SIP guard, SDP, RTP/RTCP, dial-plan and digest
//! parsers on every test run, nightly compiler or not. See README.md, "Fuzzing".

#[path = "../../fuzz/src/lib.rs"]
mod checks;

use std::path::Path;

#[test]
fn every_corpus_input_passes_its_target_check() {
    let corpus = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut failures = Vec::new();
    for (target, check) in checks::TARGETS {
        let mut files: Vec<_> = std::fs::read_dir(corpus.join(target))
            .unwrap_or_else(|e| panic!("fuzz/corpus/{target}: {e}"))
            .map(|entry| entry.expect("a directory entry").path())
            .collect();
        files.sort();
        assert!(
            files.len() >= 3,
            "fuzz/corpus/{target} has {} inputs",
            files.len()
        );
        for file in files {
            let bytes = std::fs::read(&file).expect("a readable corpus file");
            if std::panic::catch_unwind(|| check(&bytes)).is_err() {
                failures.push(format!("{target}: {}", file.display()));
            }
        }
    }
    assert!(failures.is_empty(), "failed:\n{}", failures.join("\n"));
}
