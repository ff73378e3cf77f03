//! The README's "Trying it" commands as a user pastes them into an interactive shell: no
//! SIPp is backgrounded with `&` (the shell stops it at its first terminal output, and the
//! seat never answers: SIPp's own `-bg` is used instead), and each step comes before the
//! steps that need it.

const README: &str = include_str!("../../README.md");

/// The README's shell lines, continuation lines joined.
fn shell_commands() -> Vec<String> {
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut current = String::new();
    for line in README.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with("```") {
            in_block = trimmed == "```sh";
            continue;
        }
        if !in_block {
            continue;
        }
        current.push_str(trimmed.trim_end_matches('\\'));
        current.push(' ');
        if !trimmed.ends_with('\\') {
            let command = std::mem::take(&mut current);
            commands.push(command.split_whitespace().collect::<Vec<_>>().join(" "));
        }
    }
    commands
}

#[test]
fn background_sipp_phones_use_sipp_background_mode() {
    let sipps: Vec<String> = shell_commands()
        .into_iter()
        .filter(|c| c.starts_with("sipp "))
        .collect();
    assert!(sipps.len() >= 8, "{sipps:?}");
    for c in &sipps {
        let c = c.trim_end();
        assert!(!c.ends_with('&'), "backgrounded by the shell: {c}");
        if c.contains("seat_answer.xml") || c.contains("seat_refers.xml") {
            assert!(
                c.contains(" -bg"),
                "a phone that must outlive the line: {c}"
            );
        }
    }
}

#[test]
fn arm3_is_taken_out_before_arm4_is_registered_for_the_escalation() {
    let commands = shell_commands();
    let position = |what: &str| {
        commands
            .iter()
            .position(|c| c.contains(what))
            .unwrap_or_else(|| panic!("no command with {what}"))
    };
    let arm3_out = position("-s arm3 -au arm3 -ap arm3-demo -key contact_port 5071 -key expires 0");
    let arm4_in = position("-s arm4 -au arm4");
    let refers = position("seat_refers.xml");
    assert!(arm3_out < refers && arm3_out < arm4_in);
}
