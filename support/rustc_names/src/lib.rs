//! Compiler messages as a learner reads them.
//!
//! DataFusion reaches every crate through `support/kata_datafusion`, a shared library
//! that re-exports it; the workspace renames it back
//! (`datafusion = { package = "kata_datafusion" }` in the root `Cargo.toml`), so a kata's
//! code says `datafusion::prelude::SessionContext`. rustc names the items by the crate
//! that holds them, `kata_datafusion::prelude::SessionContext`: a name the learner never
//! wrote. The launcher (a step's build) and the grader (a whole program's) show rustc's
//! messages through [`as_written`].

/// How rustc names DataFusion's items, and how a kata's code names them.
const DATAFUSION: (&str, &str) = ("kata_datafusion::", "datafusion::");

/// `message` (rustc's, rendered) with DataFusion's items named as a kata's code names them.
pub fn as_written(message: &str) -> String {
    let (rustc, code) = DATAFUSION;
    message.replace(rustc, code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datafusions_items_are_named_as_the_katas_code_names_them() {
        let rustc = "43 | pub fn create_session() -> SessionContext {
   |                            -------------- expected `kata_datafusion::prelude::SessionContext` because of return type
44 |     datafusion::prelude::SessionConfig::new()
   |     ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ expected `SessionContext`, found `SessionConfig`";
        let shown = as_written(rustc);
        assert!(
            shown.contains("expected `datafusion::prelude::SessionContext` because of return type"),
            "{shown}"
        );
        assert!(!shown.contains("kata_datafusion"), "{shown}");
        // What the learner wrote is unchanged.
        assert!(shown.contains("44 |     datafusion::prelude::SessionConfig::new()"));
    }
}
