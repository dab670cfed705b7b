//! Recursive Fibonacci: call-heavy integer code. Prints fib(N) (default 40) and, on stderr, the time the
//! computation took by the monotonic clock, so that process start and compilation are left out.

use std::env;
use std::time::Instant;

fn fib(n: u32) -> u64 {
    if n < 2 {
        n as u64
    } else {
        fib(n - 1) + fib(n - 2)
    }
}

fn main() {
    let n: u32 = env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(40);
    let start = Instant::now();
    let r = fib(n);
    let ns = start.elapsed().as_nanos();
    println!("fib({}) = {}", n, r);
    eprintln!("kernel-ns {}", ns);
}
