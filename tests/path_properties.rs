//! Property tests for path normalisation: no input normalises outside the
//! root, and normalising twice changes nothing.

use proptest::prelude::*;
use tokengate::path::normalise;

/// Paths built from the pieces attackers use: dot segments, empty segments,
/// encoded dots and letters, semicolons, and ordinary names.
fn tricky_path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        Just("".to_owned()),
        Just(".".to_owned()),
        Just("..".to_owned()),
        Just("%2e".to_owned()),
        Just("%2E%2e".to_owned()),
        Just(".%2e".to_owned()),
        Just("..;".to_owned()),
        Just("%61dmin".to_owned()),
        Just("admin".to_owned()),
        Just("a;b".to_owned()),
        Just("%7e".to_owned()),
        Just("%zz".to_owned()),
        Just("%2f".to_owned()),
        "[a-zA-Z0-9._~%-]{0,6}",
    ];
    prop::collection::vec(segment, 0..10).prop_map(|segments| format!("/{}", segments.join("/")))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    #[test]
    fn no_input_normalises_outside_the_root(path in tricky_path()) {
        if let Ok(n) = normalise(&path) {
            prop_assert!(n.starts_with('/'), "{path} -> {n}");
            prop_assert!(!n.contains("//"), "{path} -> {n}");
            for segment in n.split('/') {
                prop_assert!(segment != "." && segment != "..", "{path} -> {n}");
                let lower = segment.to_ascii_lowercase();
                prop_assert!(!lower.starts_with("%2e%2e") && !lower.starts_with(".%2e") && !lower.starts_with("%2e."), "{path} -> {n}");
            }
        }
    }

    #[test]
    fn normalising_twice_changes_nothing(path in tricky_path()) {
        if let Ok(once) = normalise(&path) {
            let twice = normalise(&once).expect("a normal form is itself valid");
            prop_assert_eq!(once.as_ref(), twice.as_ref());
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_stay_rooted(path in "/[ -~]{0,64}") {
        if let Ok(n) = normalise(&path) {
            prop_assert!(n.starts_with('/'));
            let again = normalise(&n).expect("a normal form is itself valid");
            prop_assert_eq!(again.as_ref(), n.as_ref());
        }
    }
}
