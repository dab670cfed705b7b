//! Dense matrix product of two N x N f64 matrices (default N = 1000), i-k-j order: floating-point loops
//! over linear memory. Prints a checksum of the product; on stderr, the kernel's own elapsed time.

use std::env;
use std::time::Instant;

fn main() {
    let n: usize = env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(1000);
    let a: Vec<f64> = (0..n * n).map(|i| ((i * 7 + 3) % 101) as f64 / 101.0).collect();
    let b: Vec<f64> = (0..n * n).map(|i| ((i * 13 + 5) % 97) as f64 / 97.0).collect();
    let mut c = vec![0.0f64; n * n];
    let start = Instant::now();
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            let row_b = &b[k * n..k * n + n];
            let row_c = &mut c[i * n..i * n + n];
            for j in 0..n {
                row_c[j] += aik * row_b[j];
            }
        }
    }
    let ns = start.elapsed().as_nanos();
    let sum: f64 = c.iter().enumerate().map(|(i, v)| v * ((i % 11) as f64 + 1.0)).sum();
    println!("matmul {}x{}: checksum {:.6}", n, n, sum);
    eprintln!("kernel-ns {}", ns);
}
