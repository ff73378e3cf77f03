//! Called-number normalisation: the forms trunks send, reduced to the national short form.
//!
//! `sip:15@trunk`, `tel:15`, `tel:+33-15;phone-context=…`, `+3315`, `003315` and `15` all
//! become `15`; routing then matches numbers exactly, never by prefix.

/// Reduces a called number or URI user part to digits in national form.
///
/// Steps: drop the `sip:`/`sips:`/`tel:` scheme, the host and URI parameters; drop RFC 3966
/// visual separators; drop the French country code (`+33`, `0033`).
pub fn normalise(raw: &str) -> String {
    let raw = raw.trim().trim_start_matches('<').trim_end_matches('>');
    let lower = raw.to_ascii_lowercase();
    let without_scheme = ["sips:", "sip:", "tel:"]
        .iter()
        .find_map(|s| lower.starts_with(s).then(|| &raw[s.len()..]))
        .unwrap_or(raw);
    let user = without_scheme
        .split(['@', ';', '?'])
        .next()
        .unwrap_or_default();
    let digits: String = user
        .chars()
        .filter(|c| !matches!(c, '-' | '.' | '(' | ')' | ' '))
        .collect();
    let national = digits
        .strip_prefix("+33")
        .or_else(|| digits.strip_prefix("0033"))
        .unwrap_or(&digits);
    national.to_string()
}

#[cfg(test)]
mod tests {
    use super::normalise;

    #[test]
    fn trunk_forms_reduce_to_the_short_number() {
        for form in [
            "15",
            "sip:15@trunk.example",
            "sip:15@10.0.0.1:5060;user=phone",
            "tel:15",
            "<tel:+33-15;phone-context=+33>",
            "+3315",
            "003315",
            "SIP:15@X",
        ] {
            assert_eq!(normalise(form), "15", "{form}");
        }
        for form in ["116117", "tel:116-117", "sip:+33116117@t", "116 117"] {
            assert_eq!(normalise(form), "116117", "{form}");
        }
    }

    #[test]
    fn matching_stays_exact() {
        assert_eq!(normalise("150"), "150");
        assert_eq!(normalise("sip:1515@x"), "1515");
        assert_eq!(normalise("+3312345678"), "12345678");
        assert_eq!(normalise(""), "");
    }
}
