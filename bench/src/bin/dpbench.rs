//! dpbench
fn main() {}
