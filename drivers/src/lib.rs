//! In-memory links between stack instances.
