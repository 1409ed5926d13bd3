//! Listener assembly and shutdown.
