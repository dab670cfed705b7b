//! Sieve of Eratosthenes over a byte array: memory-bound loops. Counts the primes below N (default
//! 10,000,000) R times (default 10) and prints the count; on stderr, the kernel's own elapsed time.

use std::env;
use std::time::Instant;

fn count_primes(n: usize) -> usize {
    let mut composite = vec![false; n];
    let mut count = 0;
    let mut i = 2;
    while i < n {
        if !composite[i] {
            count += 1;
            // i * i would overflow a 32-bit usize (wasm32) for i >= 65536; such an i marks nothing anyway.
            if i <= (n - 1) / i {
                let mut j = i * i;
                while j < n {
                    composite[j] = true;
                    j += i;
                }
            }
        }
        i += 1;
    }
    count
}

fn main() {
    let mut args = env::args().skip(1);
    let n: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10_000_000);
    let rounds: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(10);
    let start = Instant::now();
    let mut total = 0;
    for _ in 0..rounds {
        total += count_primes(n);
    }
    let ns = start.elapsed().as_nanos();
    println!("primes below {}: {} (x{})", n, total / rounds, rounds);
    eprintln!("kernel-ns {}", ns);
}
