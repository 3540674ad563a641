// The problem statement is being written.
fn main() {}
