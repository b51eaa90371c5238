//! Routing: longest-prefix-match tables and the route table built on them.

pub mod lpm;
