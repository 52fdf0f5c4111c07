//! Documentation generated from code stays current: regenerate with `TFE_BLESS=1 cargo test --test docs`.

mod common;

#[test]
fn operator_table_is_current() {
    common::check_generated(
        "docs/OPERATORS.md",
        &tfe::lower::operators_markdown(),
        "cargo test --test docs",
    );
}
