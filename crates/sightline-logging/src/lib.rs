//! JSON lines for tracing.
