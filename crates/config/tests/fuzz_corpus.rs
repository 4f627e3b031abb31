//! Replays tests/corpus/fuzz/config_toml (the `config_toml` fuzz target's property): loading
//! never panics, and a refusal always explains itself.

use std::collections::BTreeMap;
use std::path::PathBuf;

#[test]
fn config_toml_seeds() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/corpus/fuzz/config_toml");
    let env: BTreeMap<String, String> = BTreeMap::new();
    let mut outcomes = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries {
        let text = std::fs::read_to_string(&path).unwrap();
        let outcome = portcullis_config::from_str(&text, None, &env);
        if let Err(errors) = &outcome {
            assert!(!errors.to_string().is_empty(), "{}", path.display());
        }
        outcomes.push((
            path.file_name().unwrap().to_string_lossy().into_owned(),
            outcome.is_ok(),
        ));
    }
    assert_eq!(
        outcomes,
        [
            ("bad-values".to_owned(), false),
            ("minimal".to_owned(), true),
            ("not-toml".to_owned(), false)
        ]
    );
}
