//! Documentation generated from code stays current: regenerate with `TFE_BLESS=1 cargo test --test docs`.

use std::path::Path;

fn check_generated(relative: &str, generated: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    if std::env::var_os("TFE_BLESS").is_some() {
        std::fs::write(&path, generated).unwrap();
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{relative} is out of date; regenerate it with `TFE_BLESS=1 cargo test --test docs`"
    );
}

#[test]
fn operator_table_is_current() {
    check_generated("docs/OPERATORS.md", &tfe::lower::operators_markdown());
}
