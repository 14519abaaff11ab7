//! Work in progress (issue 5).
fn main() {}
