//! dataplane
fn main() {}
