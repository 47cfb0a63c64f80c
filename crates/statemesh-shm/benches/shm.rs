//! Placeholder: the benchmark against mmap-sync is being written.

fn main() {}
