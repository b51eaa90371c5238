//! Routing: longest-prefix-match tables and the route table built on them.

pub mod lpm;
pub mod table;

pub use table::{NextHop, Route, RouteError, RouteOrigin, RouteTable};
