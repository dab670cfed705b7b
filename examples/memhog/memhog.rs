//! Allocates and touches memory 1 MiB at a time until an allocation fails; Rust then aborts, which the
//! host reports as the memory limit.

fn main() {
    let mut blocks: Vec<Vec<u8>> = Vec::new();
    loop {
        let n = blocks.len();
        // Filling with a non-zero byte makes every page really used.
        blocks.push(vec![(n % 251) as u8 + 1; 1 << 20]);
        if blocks.len() % 64 == 0 {
            println!("{} MiB", blocks.len());
        }
    }
}
