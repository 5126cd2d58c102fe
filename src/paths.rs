//! Paths (being written).
