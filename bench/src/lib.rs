//! Library of the bench crate.
