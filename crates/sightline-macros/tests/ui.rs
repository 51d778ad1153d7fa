//! Compile errors of `#[derive(Redact)]`: each file in `ui/` holds one mistake, and its
//! `.stderr` is the message a user sees (regenerate with `TRYBUILD=overwrite` and read it).

#[test]
fn bad_attributes_are_compile_errors_that_say_why() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/*.rs");
}
