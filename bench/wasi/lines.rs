//! Writes N short lines (default 1,000,000) to stdout with println!, which flushes each line: one
//! fd_write per line, the pattern of chatty programs. On stderr, the kernel's own elapsed time.

use std::env;
use std::time::Instant;

fn main() {
    let n: u32 = env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1_000_000);
    let start = Instant::now();
    for i in 0..n {
        println!("line {}", i);
    }
    let ns = start.elapsed().as_nanos();
    eprintln!("kernel-ns {}", ns);
}
