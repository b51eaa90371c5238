//! `bpf`: the dataplane's XDP program (C source) and its loader (libbpf-rs).
//!
//! This crate holds a place in the workspace layout of `DESIGN.md`; the XDP program, its
//! steering modes and its loader arrive with the AF_XDP driver (issue 3). Nothing here is
//! used yet.
